namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// The spec rules of an AccessRequest, shared by its admission (which refuses) and its reconciler (which
/// rejects it again: the webhook can be bypassed, and the tenant's policy can tighten after admission).
/// Each problem names the field and the rule broken.
/// </summary>
public static class AccessRequestRules
{
    /// <summary>Without a tenant policy a grant lasts at most this long.</summary>
    public static readonly TimeSpan DefaultMaxDuration = TimeSpan.FromHours(8);

    /// <summary>Without a tenant policy the highest role a request may ask for.</summary>
    public const string DefaultMaxRole = "Operator";

    /// <summary>No tenant policy stretches a grant beyond this (a week): standing access belongs in spec.members.</summary>
    public static readonly TimeSpan HardMaxDuration = TimeSpan.FromDays(7);

    /// <summary>The shortest grant worth approving.</summary>
    public static readonly TimeSpan MinDuration = TimeSpan.FromSeconds(10);

    /// <summary>Its RoleBinding is named controlplane-access-&lt;name&gt;, and an object name has at most 253 characters.</summary>
    public const int MaxNameLength = 253 - 20;

    /// <summary>Why the request's name cannot carry its RoleBinding's, or null.</summary>
    public static string? NameProblem(string? name) =>
        (name ?? "").Length > MaxNameLength ? $"metadata.name: at most {MaxNameLength} characters (its RoleBinding is named controlplane-access-<name>)" : null;

    public const int MinJustification = 20;
    public const int MinJustificationWords = 4;

    /// <summary>
    /// How much each workspace role grants, to bound a request by the tenant's maximum: Auditor reads,
    /// Approver and SecurityReviewer read and approve, Operator runs workloads, IntegrationAdmin holds
    /// the Secrets, WorkspaceAdmin everything.
    /// </summary>
    public static int Rank(string? role) => role switch
    {
        "Auditor" => 1,
        "Approver" or "SecurityReviewer" => 2,
        "Operator" => 3,
        "IntegrationAdmin" => 4,
        "WorkspaceAdmin" => 5,
        _ => 0,
    };

    public static string MaxRole(Tenant? tenant) => tenant?.Spec.AccessPolicy?.MaxRole is { } r && Rank(r) > 0 ? r : DefaultMaxRole;

    public static TimeSpan MaxDuration(Tenant? tenant) =>
        tenant?.Spec.AccessPolicy?.MaxDuration is { } text && Durations.TryParse(text, out var max) && max > TimeSpan.Zero
            ? (max < HardMaxDuration ? max : HardMaxDuration)
            : DefaultMaxDuration;

    /// <summary>Why a justification (an AccessRequest's, a BreakGlass's) does not say why access is needed, or null.</summary>
    public static string? JustificationProblem(string? text)
    {
        var justification = (text ?? "").Trim();
        var words = justification.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.OrdinalIgnoreCase).Count();
        return justification.Length < MinJustification || words < MinJustificationWords
            ? $"spec.justification: {justification.Length} characters and {words} distinct words; at least {MinJustification} characters and {MinJustificationWords} distinct words say why the access is needed"
            : null;
    }

    /// <summary>Every problem of the spec against the tenant's policy (<paramref name="tenant"/> null: the defaults).</summary>
    public static List<string> Problems(AccessRequestSpec spec, Tenant? tenant)
    {
        var problems = new List<string>();
        var max = MaxRole(tenant);
        if (Rank(spec.Role) == 0)
        {
            problems.Add($"spec.role: \"{spec.Role}\" is not a workspace role (WorkspaceAdmin, Operator, Approver, Auditor, IntegrationAdmin, SecurityReviewer)");
        }
        else if (Rank(spec.Role) > Rank(max))
        {
            problems.Add($"spec.role: {spec.Role} is above the tenant's spec.accessPolicy.maxRole ({max}): ask for {max} or less");
        }

        if (!Durations.TryParse(spec.Duration, out var duration))
        {
            problems.Add($"spec.duration: \"{spec.Duration}\" is not a duration (e.g. 30m, 2h)");
        }
        else
        {
            var maxDuration = MaxDuration(tenant);
            if (duration < MinDuration) problems.Add($"spec.duration: {spec.Duration} is shorter than {Durations.Format(MinDuration)}");
            if (duration > maxDuration) problems.Add($"spec.duration: {spec.Duration} is beyond the tenant's spec.accessPolicy.maxDuration ({Durations.Format(maxDuration)})");
        }

        if (JustificationProblem(spec.Justification) is { } why) problems.Add(why);

        if (spec.Ticket is { Length: > 256 }) problems.Add("spec.ticket: at most 256 characters");
        return problems;
    }
}
