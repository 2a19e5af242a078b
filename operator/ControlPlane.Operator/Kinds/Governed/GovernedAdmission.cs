using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// In a workspace namespace only the operator writes Ingresses, NetworkPolicies, ResourceQuotas,
/// LimitRanges and RoleBindings: publication goes through Exposure, network rules through
/// WorkspaceNetworkPolicy, access through Workspace members and AccessRequests, so a RoleBinding added by
/// hand can neither reopen them nor grant standing access (nor pass for one of the operator's bindings,
/// which approvals are judged from). The webhook is only called for workspace namespaces.
/// One instance per governed kind; <paramref name="how"/> says what to do instead.
/// </summary>
public sealed class GovernedAdmission(AdmissionSettings settings, string how) : IAdmissionHandler
{
    public const string ThroughExposure = "publish through an Exposure";
    public const string ThroughNetworkPolicy = "declare a WorkspaceNetworkPolicy";
    public const string ThroughQuota = "ask for it in the Workspace's spec.quota";
    public const string ThroughMembers = "grant standing access through the Workspace's spec.members, or time-bound access through an AccessRequest";

    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        Task.FromResult<List<string>>(settings.MayWriteGoverned(r.UserInfo)
            ? []
            : [$"{r.Kind.Kind} objects in workspace namespace {r.Namespace} are managed by the operator only ({r.UserInfo.Username} may not {r.Operation.ToLowerInvariant()} them): {how}"]);
}
