using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using k8s;
using k8s.Models;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// controlplane_object_ready{kind,workspace,name}: 1 while an object's Ready condition is True, else 0,
/// one series per cached controlplane.io object, rebuilt at every scrape from the current term's caches
/// (so a deleted object's series goes with it, and a follower, which caches nothing, exports none).
/// The object's namespace is the label workspace: a ServiceMonitor's target labels take `namespace`.
/// </summary>
public sealed class ObjectReadyMetrics
{
    readonly Gauge ready;
    readonly HashSet<(string Kind, string Workspace, string Name)> exported = [];
    readonly object gate = new();

    public ObjectReadyMetrics(CollectorRegistry registry, Func<IEnumerable<IInformer>> informers)
    {
        ready = Metrics.WithCustomRegistry(registry).CreateGauge("controlplane_object_ready",
            "1 while a controlplane.io object's Ready condition is True, else 0 (one series per object; the object's namespace is the label workspace).",
            "kind", "workspace", "name");
        registry.AddBeforeCollectCallback(() => Refresh(informers()));
    }

    void Refresh(IEnumerable<IInformer> informers)
    {
        var now = new Dictionary<(string Kind, string Workspace, string Name), bool>();
        foreach (var informer in informers)
        {
            if (informer.Type.Group != ApiGroup.Group) continue;
            foreach (var obj in informer.Objects)
            {
                now[(informer.Type.Kind, obj.Metadata.NamespaceProperty ?? "", obj.Metadata.Name)] = IsReady(obj);
            }
        }

        lock (gate)
        {
            foreach (var gone in exported.Where(k => !now.ContainsKey(k)).ToList())
            {
                ready.RemoveLabelled(gone.Kind, gone.Workspace, gone.Name);
                exported.Remove(gone);
            }

            foreach (var (key, isReady) in now)
            {
                ready.WithLabels(key.Kind, key.Workspace, key.Name).Set(isReady ? 1 : 0);
                exported.Add(key);
            }
        }
    }

    public static bool IsReady(IKubernetesObject<V1ObjectMeta> obj) =>
        obj is IHasStatusConditions { StatusConditions: { } conditions } && conditions.FirstOrDefault(c => c.Type == "Ready") is { Status: "True" };
}
