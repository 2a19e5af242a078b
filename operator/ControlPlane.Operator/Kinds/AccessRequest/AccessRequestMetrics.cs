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
    readonly Gauge active;
    readonly HashSet<(string Tenant, string Workspace)> exported = [];
    readonly object gate = new();

    public AccessRequestMetrics(CollectorRegistry registry, Func<IEnumerable<IInformer>> informers, TimeProvider time)
    {
        active = Metrics.WithCustomRegistry(registry).CreateGauge("controlplane_access_grants_active",
            "Just-in-time grants in force (AccessRequests Active, not past status.expiresAt), by tenant and workspace.", "tenant", "workspace");
        registry.AddBeforeCollectCallback(() => Refresh(informers().ToList(), time.GetUtcNow().UtcDateTime));
    }

    /// <summary>Grants in force per (tenant, workspace); every workspace with a request has a count (zero when none is in force). Pure, for tests.</summary>
    public static Dictionary<(string Tenant, string Workspace), int> Count(IEnumerable<AccessRequest> requests, Func<string, string?> tenantOf, DateTime now)
    {
        var counts = new Dictionary<(string, string), int>();
        foreach (var r in requests)
        {
            var ns = r.Metadata.NamespaceProperty ?? "";
            var key = (tenantOf(ns) ?? "", ns);
            var n = counts.GetValueOrDefault(key);
            if (r.Status is { Phase: AccessRequestPhase.Active, ExpiresAt: { } at } && at.ToUniversalTime() > now) n++;
            counts[key] = n;
        }

        return counts;
    }

    void Refresh(IReadOnlyList<IInformer> informers, DateTime now)
    {
        IEnumerable<T> Of<T>(string kind) => informers.Where(i => i.Type.Group == ApiGroup.Group && i.Type.Kind == kind).SelectMany(i => i.Objects).OfType<T>();
        var workspaces = Of<Workspace>(Workspace.KubeKind).ToDictionary(w => w.Metadata.Name, w => w.Spec.Tenant);
        var counts = Count(Of<AccessRequest>(AccessRequest.KubeKind), ns => workspaces.GetValueOrDefault(ns), now);
        lock (gate)
        {
            foreach (var gone in exported.Where(k => !counts.ContainsKey(k)).ToList())
            {
                active.RemoveLabelled(gone.Tenant, gone.Workspace);
                exported.Remove(gone);
            }

            foreach (var (key, n) in counts)
            {
                active.WithLabels(key.Tenant, key.Workspace).Set(n);
                exported.Add(key);
            }
        }
    }
}
