using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// A gauge of objects of one kind per (tenant, workspace) that meet a test, rebuilt at every scrape from the current
/// term's caches (AccessRequest grants in force, BreakGlasses active or overdue for review). Every workspace with an
/// object has a series (zero when none meets the test); a workspace whose objects are all gone loses its series;
/// a follower, which caches nothing, exports none.
/// </summary>
public sealed class WorkspaceCountGauge<T> where T : class, k8s.IKubernetesObject<k8s.Models.V1ObjectMeta>
{
    readonly Gauge gauge;
    readonly HashSet<(string Tenant, string Workspace)> exported = [];
    readonly object gate = new();

    public WorkspaceCountGauge(CollectorRegistry registry, string name, string help, string kind, Func<T, DateTime, bool> counts,
        Func<IEnumerable<IInformer>> informers, TimeProvider time)
    {
        gauge = Metrics.WithCustomRegistry(registry).CreateGauge(name, help, "tenant", "workspace");
        registry.AddBeforeCollectCallback(() =>
        {
            var all = informers().ToList();
            IEnumerable<TObj> Of<TObj>(string k) => all.Where(i => i.Type.Group == ApiGroup.Group && i.Type.Kind == k).SelectMany(i => i.Objects).OfType<TObj>();
            var workspaces = Of<Workspace>(Workspace.KubeKind).ToDictionary(w => w.Metadata.Name, w => w.Spec.Tenant);
            Set(Count(Of<T>(kind), o => o.Metadata.NamespaceProperty ?? "", ns => workspaces.GetValueOrDefault(ns), o => counts(o, time.GetUtcNow().UtcDateTime)));
        });
    }

    /// <summary>Objects meeting the test per (tenant, workspace); every workspace with an object has a count. Pure, for tests.</summary>
    public static Dictionary<(string Tenant, string Workspace), int> Count(IEnumerable<T> objects, Func<T, string> namespaceOf, Func<string, string?> tenantOf, Func<T, bool> counts)
    {
        var result = new Dictionary<(string, string), int>();
        foreach (var o in objects)
        {
            var ns = namespaceOf(o);
            var key = (tenantOf(ns) ?? "", ns);
            result[key] = result.GetValueOrDefault(key) + (counts(o) ? 1 : 0);
        }

        return result;
    }

    void Set(Dictionary<(string Tenant, string Workspace), int> counts)
    {
        lock (gate)
        {
            foreach (var gone in exported.Where(k => !counts.ContainsKey(k)).ToList())
            {
                gauge.RemoveLabelled(gone.Tenant, gone.Workspace);
                exported.Remove(gone);
            }

            foreach (var (key, n) in counts)
            {
                gauge.WithLabels(key.Tenant, key.Workspace).Set(n);
                exported.Add(key);
            }
        }
    }
}
