using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>A ring's workspaces as resolved now: the namespaces it covers, and what was refused (another tenant's, or unknown).</summary>
/// <summary>ReachesProd: one of its workspaces is prod, so the ring needs two approvals whatever its spec says.</summary>
public sealed record RingView(IReadOnlyList<string> Namespaces, IReadOnlyList<string> Refused, bool ReachesProd = false);

/// <summary>What the Rollout needs to know of the target Deployment in one namespace.</summary>
public sealed record DeploymentView(
    string Namespace,
    bool Exists,
    bool OnTarget,
    bool RolledOut,
    IReadOnlyList<ContainerImage> Images,
    int Restarts,
    int NotReady,
    DateTime? LastRestartAt,
    string Summary)
{
    public static DeploymentView Missing(string ns) => new(ns, false, false, false, [], 0, 0, null, "not found");
}

// What RolloutPlan decides on (facts, read by the reconciler) and what it returns (the decision, applied by it).

/// <summary>A successRate reading: a value, no sample, or why Prometheus could not be asked.</summary>
public sealed record MetricReading(double? Value, string? Unavailable)
{
    public static MetricReading Of(double? value) => new(value, null);
    public static MetricReading Down(string why) => new(null, why);
}

/// <summary>Everything the plan decides on, read from caches (and Prometheus) by the reconciler.</summary>
public sealed record RolloutFacts(
    DateTime Now,
    IReadOnlyList<string> Invalid,
    string? Tenant,
    bool TenantSuspended,
    string? WaitingFor,
    IReadOnlyList<RingView> Rings,
    IReadOnlyDictionary<string, DeploymentView> Deployments,
    ApprovalState? Approval,
    MetricReading? Metric,
    RequesterAccess? Access = null);

/// <summary>One namespace where a requester may not patch the target Deployment, and the message that says so.</summary>
public sealed record AccessDenial(string Namespace, string Message);

/// <summary>
/// Whether the Rollout's requesters may patch the target Deployment in the namespaces of the ring
/// about to start (SubjectAccessReviews, asked only then): which namespaces were checked and what was
/// denied. A ring whose namespaces were not all checked does not start in this pass.
/// </summary>
public sealed record RequesterAccess(IReadOnlySet<string> Checked, IReadOnlyList<AccessDenial> Denied)
{
    public static RequesterAccess Granted(IEnumerable<string> namespaces) => new(namespaces.ToHashSet(StringComparer.Ordinal), []);

    public bool Covers(IEnumerable<string> namespaces) => namespaces.All(Checked.Contains);

    public IReadOnlyList<string> DeniedIn(IEnumerable<string> namespaces)
    {
        var wanted = namespaces.ToHashSet(StringComparer.Ordinal);
        return Denied.Where(d => wanted.Contains(d.Namespace)).Select(d => d.Message).Distinct().ToList();
    }
}

/// <summary>A condition's value, as the plan wants it.</summary>
public sealed record Verdict(bool Status, string Reason, string Message);

/// <summary>An Event, and the audit action when it is also audited (with <paramref name="AuditDetails"/> added to the row's details: an approval ask's approvers).</summary>
public sealed record RolloutNotice(string Reason, string Message, bool Warning = false, string? AuditAction = null, string? AuditReason = null,
    System.Text.Json.Nodes.JsonObject? AuditDetails = null);

/// <summary>Images to set in one namespace.</summary>
public sealed record ImagePatch(string Namespace, IReadOnlyList<ContainerImage> Containers);

/// <summary>
/// What one pass does: the new status (conditions are set by the reconciler from the verdicts, in one
/// place), the image patches (forward, after the status that records the previous images; or a
/// rollback, before anything else), notices, and when to look again.
/// </summary>
public sealed record RolloutDecision(
    RolloutStatus Status,
    IReadOnlyList<ImagePatch> Patches,
    bool Rollback,
    IReadOnlyList<RolloutNotice> Notices,
    Verdict Progressing,
    Verdict Paused,
    Verdict Ready,
    TimeSpan? RequeueAfter);
