using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Just-in-time grants in force by tenant and workspace, rebuilt at every scrape from the current term's caches:
/// controlplane_access_grants_active (phase Active, not past status.expiresAt). A workspace whose grants all
/// ended loses its series; a follower, which caches nothing, exports none.
/// </summary>
public sealed class AccessRequestMetrics
{
    public AccessRequestMetrics(CollectorRegistry registry, Func<IEnumerable<IInformer>> informers, TimeProvider time) =>
        _ = new WorkspaceCountGauge<AccessRequest>(registry, "controlplane_access_grants_active",
            "Just-in-time grants in force (AccessRequests Active, not past status.expiresAt), by tenant and workspace.", AccessRequest.KubeKind, InForce, informers, time);

    static bool InForce(AccessRequest r, DateTime now) => r.Status is { Phase: AccessRequestPhase.Active, ExpiresAt: { } at } && at.ToUniversalTime() > now;

    /// <summary>Grants in force per (tenant, workspace); every workspace with a request has a count (zero when none is in force). Pure, for tests.</summary>
    public static Dictionary<(string Tenant, string Workspace), int> Count(IEnumerable<AccessRequest> requests, Func<string, string?> tenantOf, DateTime now) =>
        WorkspaceCountGauge<AccessRequest>.Count(requests, r => r.Metadata.NamespaceProperty ?? "", tenantOf, r => InForce(r, now));
}
