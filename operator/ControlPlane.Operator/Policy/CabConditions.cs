using System.Globalization;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// The conditions of a CAB approval (spec.conditions.maxRing, spec.conditions.minSoak, spec.expiresAt) and its
/// justification, pure: whether an approval counts for starting a given ring at a given time, the soak it
/// asks of a ring, what is recorded with a ring it let start, and the admission rules naming the field.
/// </summary>
public static class CabConditions
{
    /// <summary>The shortest justification an approve of a change needing CAB may carry.</summary>
    public const int MinJustificationLength = 20;

    /// <summary>The longest least soak an approval may ask.</summary>
    public static readonly TimeSpan MaxSoak = TimeSpan.FromDays(365);

    /// <summary>
    /// Why <paramref name="approval"/> does not count for starting <paramref name="ring"/> (in <paramref name="rings"/>
    /// order) at <paramref name="now"/>, or null when it does: expired, or the ring is past its maxRing.
    /// A reject is never limited (it blocks whatever its conditions say).
    /// </summary>
    public static (string Reason, string Message)? NotFor(Approval approval, string ring, IReadOnlyList<string> rings, DateTime now)
    {
        if (approval.Spec.Decision == "reject") return null;
        if (approval.Spec.ExpiresAt is { } expires && now >= expires.ToUniversalTime())
        {
            return (ApprovalReasons.Expired, $"expired at {expires.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture)} (spec.expiresAt): it no longer counts for ring {ring}, not yet started");
        }

        if (approval.Spec.Conditions?.MaxRing is { } max)
        {
            var limit = IndexOf(rings, max);
            var at = IndexOf(rings, ring);
            if (limit < 0) return (ApprovalReasons.BeyondMaxRing, $"spec.conditions.maxRing {max} is not one of the intent's rings ({string.Join(", ", rings)}): it counts for none");
            if (at > limit) return (ApprovalReasons.BeyondMaxRing, $"counts for rings up to {max} only (spec.conditions.maxRing), not ring {ring}");
        }

        return null;
    }

    static int IndexOf(IReadOnlyList<string> rings, string ring)
    {
        for (var i = 0; i < rings.Count; i++) if (rings[i] == ring) return i;
        return -1;
    }

    /// <summary>The least soak this approval asks of <paramref name="ring"/>, or null.</summary>
    public static TimeSpan? MinSoak(Approval approval, string ring) =>
        approval.Spec.Conditions?.MinSoak?.FirstOrDefault(s => s.Ring == ring) is { } soak && Durations.TryParse(soak.Duration, out var d) ? d : null;

    /// <summary>What is kept with a ring an approval let start: the approval as it was then.</summary>
    public static RingApproval Record(Approval approval, string ring) => new()
    {
        Approver = approval.Spec.Approver ?? "",
        Approval = approval.Metadata.Name,
        MaxRing = approval.Spec.Conditions?.MaxRing,
        MinSoak = approval.Spec.Conditions?.MinSoak?.FirstOrDefault(s => s.Ring == ring)?.Duration,
        ExpiresAt = approval.Spec.ExpiresAt?.ToUniversalTime(),
    };

    /// <summary>The longest least soak among the approvals that let a ring start, as a duration string (hours or minutes), or null.</summary>
    public static string? RecordedSoak(IEnumerable<Approval> approvals, string ring)
    {
        var longest = approvals.Select(a => MinSoak(a, ring)).Where(s => s is not null).Max();
        return longest is { } d ? Format(d) : null;
    }

    /// <summary>A duration the Durations parser reads back exactly (whole seconds).</summary>
    public static string Format(TimeSpan d) => $"{(long)d.TotalSeconds}s";

    /// <summary>The least soak recorded with a started ring (status.rings[].minSoak), or zero.</summary>
    public static TimeSpan RecordedSoakOf(IntentRingStatus? ring) =>
        ring?.MinSoak is { } text && Durations.TryParse(text, out var d) ? d : TimeSpan.Zero;

    /// <summary>
    /// Admission of an Approval of a DeploymentIntent: its conditions name the intent's rings, its soaks parse and are
    /// bounded, its expiry is in the future, and an approve of an intent that needs CAB carries a justification
    /// and is refused while the rollback plan is not validated. Each problem names the field.
    /// </summary>
    public static List<string> Problems(ApprovalSpec spec, IReadOnlyList<string> rings, bool needsCab, bool rollbackValidated, DateTime now)
    {
        var problems = new List<string>();
        if (spec.Conditions?.MaxRing is { } max && !rings.Contains(max))
        {
            problems.Add($"spec.conditions.maxRing: \"{max}\" is not one of the intent's rings ({string.Join(", ", rings)})");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var soaks = spec.Conditions?.MinSoak ?? [];
        for (var i = 0; i < soaks.Count; i++)
        {
            if (!rings.Contains(soaks[i].Ring)) problems.Add($"spec.conditions.minSoak[{i}].ring: \"{soaks[i].Ring}\" is not one of the intent's rings ({string.Join(", ", rings)})");
            else if (!seen.Add(soaks[i].Ring)) problems.Add($"spec.conditions.minSoak[{i}].ring: \"{soaks[i].Ring}\" is listed twice");
            if (!Durations.TryParse(soaks[i].Duration, out var d) || d > MaxSoak)
            {
                problems.Add($"spec.conditions.minSoak[{i}].duration: \"{soaks[i].Duration}\" is not a duration of at most 365d (e.g. 7d, 36h)");
            }
        }

        if (spec.ExpiresAt is { } expires && expires.ToUniversalTime() <= now)
        {
            problems.Add($"spec.expiresAt: {expires.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture)} is not in the future");
        }

        if (spec.Decision == "approve" && needsCab)
        {
            if ((spec.Justification?.Trim().Length ?? 0) < MinJustificationLength)
            {
                problems.Add($"spec.justification: approving a DeploymentIntent that needs CAB approval takes a justification of at least {MinJustificationLength} characters");
            }

            if (!rollbackValidated)
            {
                problems.Add("spec.rollbackPlan.validated: the target DeploymentIntent's rollback plan is not validated (spec.rollbackPlan.validated is false): a risky change is not approved before its rollback was rehearsed");
            }
        }

        return problems;
    }
}
