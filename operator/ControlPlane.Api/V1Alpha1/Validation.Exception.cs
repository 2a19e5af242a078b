using System.Globalization;
using System.Text.RegularExpressions;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// The spec rules of an Exception, shared by its admission (which refuses) and its reconciler (which
/// rejects it again: the webhook can be bypassed, and the tenant's policy can tighten after admission).
/// Each problem names the field and the rule broken.
/// </summary>
public static partial class ExceptionRules
{
    /// <summary>Without a tenant policy an Exception lasts at most this long.</summary>
    public static readonly TimeSpan DefaultMaxDuration = TimeSpan.FromDays(90);

    public const int MinJustification = 40;
    public const int MinJustificationWords = 6;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")]
    private static partial Regex FindingId();

    /// <summary>The tenant's spec.exceptionPolicy.maxDuration, or the default; null with the problem when it does not parse.</summary>
    public static TimeSpan MaxDuration(Tenant? tenant) =>
        tenant?.Spec.ExceptionPolicy?.MaxDuration is { } text && Durations.TryParse(text, out var max) ? max : DefaultMaxDuration;

    /// <summary>
    /// Every problem of the spec. <paramref name="since"/> is when its duration starts (its creation;
    /// at admission of a create, now); <paramref name="now"/> given (admission) also refuses an expiresAt already past.
    /// </summary>
    public static List<string> Problems(SecurityExceptionSpec spec, TimeSpan maxDuration, DateTime since, DateTime? now = null)
    {
        var problems = new List<string>();
        if (spec.Type is not ("vulnerability" or "unsignedPackage" or "scopeViolation"))
        {
            problems.Add($"spec.type: \"{spec.Type}\" must be vulnerability, unsignedPackage or scopeViolation");
        }

        if (spec.Severity is not ("Low" or "Medium" or "High" or "Critical")) problems.Add($"spec.severity: \"{spec.Severity}\" must be Low, Medium, High or Critical");
        if (string.IsNullOrEmpty(spec.Artifact.Sha256) || !Regex.IsMatch(spec.Artifact.Sha256, Patterns.Sha256))
        {
            problems.Add("spec.artifact.sha256: must be the artifact's SHA-256 digest (64 lowercase hex characters): an Exception covers one artifact");
        }

        var covers = spec.Covers ?? [];
        if (covers.Count == 0) problems.Add("spec.covers: name at least one finding (no wildcards)");
        for (var i = 0; i < covers.Count; i++)
        {
            if (!FindingId().IsMatch(covers[i] ?? ""))
            {
                problems.Add($"spec.covers[{i}]: \"{Cut(covers[i])}\" is not a finding id (letters, digits and . _ : / @ + -, at most 128, no wildcards or spaces)");
            }
        }

        if (covers.Distinct(StringComparer.Ordinal).Count() != covers.Count) problems.Add("spec.covers: lists a finding twice");
        var controls = (spec.CompensatingControls ?? []).Where(c => !string.IsNullOrWhiteSpace(c)).ToList();
        if (spec.Severity is "High" or "Critical" && controls.Count == 0)
        {
            problems.Add($"spec.compensatingControls: a {spec.Severity} exception needs at least one compensating control");
        }

        if ((spec.CompensatingControls ?? []).Any(c => string.IsNullOrWhiteSpace(c) || c.Length > 1024)) problems.Add("spec.compensatingControls: each control is 1 to 1024 characters, not blank");
        if (SpecRules.SubjectName("spec.owner", spec.Owner) is { } owner) problems.Add(owner);
        else if (KubernetesIdentities.IsServiceAccount(spec.Owner, null)) problems.Add($"spec.owner: \"{spec.Owner}\" is a ServiceAccount; the owner is a person");
        var justification = (spec.Justification ?? "").Trim();
        var words = justification.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.OrdinalIgnoreCase).Count();
        if (justification.Length < MinJustification || words < MinJustificationWords)
        {
            problems.Add($"spec.justification: {justification.Length} characters and {words} distinct words; at least {MinJustification} characters and {MinJustificationWords} distinct words say why the findings are accepted");
        }

        var expires = spec.ExpiresAt.ToUniversalTime();
        if (now is { } at && expires <= at.ToUniversalTime())
        {
            problems.Add($"spec.expiresAt: {Show(expires)} is not in the future");
        }

        if (expires > since.ToUniversalTime() + maxDuration)
        {
            problems.Add($"spec.expiresAt: {Show(expires)} is beyond the tenant's spec.exceptionPolicy.maxDuration ({Durations.Format(maxDuration)}) from {Show(since.ToUniversalTime())}: at most {Show(since.ToUniversalTime() + maxDuration)}");
        }

        return problems;
    }

    static string Show(DateTime t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    static string Cut(string? s) => s is null ? "" : s.Length > 64 ? s[..64] + "..." : s;
}
