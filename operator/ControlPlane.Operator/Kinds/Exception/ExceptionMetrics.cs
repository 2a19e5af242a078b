using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s;
using k8s.Models;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Exceptions by tenant and workspace (the namespace is the label workspace: a scrape's target labels take
/// `namespace`), rebuilt at every scrape from the current term's caches: controlplane_exceptions_active
/// (phase Active, not past spec.expiresAt), controlplane_exceptions_expiring (of those, expiring within
/// <see cref="ExceptionMetrics.ExpiringWithin"/>) and controlplane_exceptions_expiring_in_use (of those, covering a
/// DeploymentIntent that is not finished: its status.exceptions names it), which the ExceptionExpiringInUse alert reads.
/// A workspace whose Exceptions are all gone loses its series; a follower, which caches nothing, exports none.
/// </summary>
public sealed class ExceptionMetrics
{
    /// <summary>What "expiring" means for the gauges and the alert.</summary>
    public static readonly TimeSpan ExpiringWithin = TimeSpan.FromDays(7);

    readonly Gauge active;
    readonly Gauge expiring;
    readonly Gauge expiringInUse;
    readonly HashSet<(string Tenant, string Workspace)> exported = [];
    readonly object gate = new();

    public ExceptionMetrics(CollectorRegistry registry, Func<IEnumerable<IInformer>> informers, TimeProvider time)
    {
        var f = Metrics.WithCustomRegistry(registry);
        active = f.CreateGauge("controlplane_exceptions_active", "Exceptions in force (phase Active, not past spec.expiresAt), by tenant and workspace.", "tenant", "workspace");
        expiring = f.CreateGauge("controlplane_exceptions_expiring", "Active Exceptions whose spec.expiresAt is within 7 days, by tenant and workspace.", "tenant", "workspace");
        expiringInUse = f.CreateGauge("controlplane_exceptions_expiring_in_use",
            "Active Exceptions expiring within 7 days that cover a DeploymentIntent not yet finished (its next ring stops when they expire), by tenant and workspace.", "tenant", "workspace");
        registry.AddBeforeCollectCallback(() => Refresh(informers().ToList(), time.GetUtcNow().UtcDateTime));
    }

    /// <summary>The counts per (tenant, workspace): active, expiring, expiring and in use. Pure, for tests.</summary>
    public static Dictionary<(string Tenant, string Workspace), (int Active, int Expiring, int InUse)> Count(
        IEnumerable<SecurityException> exceptions, IEnumerable<DeploymentIntent> intents, Func<string, string?> tenantOf, DateTime now)
    {
        var inUse = intents
            .Where(i => i.Status?.Phase is not (IntentPhase.Completed or IntentPhase.Denied or IntentPhase.Failed or IntentPhase.RolledBack))
            .SelectMany(i => (i.Status?.Exceptions ?? []).Select(x => (i.Metadata.NamespaceProperty, x.Name)))
            .ToHashSet();
        var counts = new Dictionary<(string, string), (int, int, int)>();
        foreach (var x in exceptions)
        {
            var ns = x.Metadata.NamespaceProperty ?? "";
            var key = (tenantOf(ns) ?? "", ns);
            var (a, e, u) = counts.GetValueOrDefault(key);
            var expires = x.Spec.ExpiresAt.ToUniversalTime();
            if (x.Status?.Phase == ExceptionPhase.Active && expires > now)
            {
                a++;
                if (expires - now <= ExpiringWithin)
                {
                    e++;
                    if (inUse.Contains((ns, x.Metadata.Name))) u++;
                }
            }

            counts[key] = (a, e, u);
        }

        return counts;
    }

    void Refresh(IReadOnlyList<IInformer> informers, DateTime now)
    {
        IEnumerable<T> Of<T>(string kind) => informers.Where(i => i.Type.Group == ApiGroup.Group && i.Type.Kind == kind).SelectMany(i => i.Objects).OfType<T>();
        var workspaces = Of<Workspace>(Workspace.KubeKind).ToDictionary(w => w.Metadata.Name, w => w.Spec.Tenant);
        var counts = Count(Of<SecurityException>(SecurityException.KubeKind), Of<DeploymentIntent>(DeploymentIntent.KubeKind), ns => workspaces.GetValueOrDefault(ns), now);
        lock (gate)
        {
            foreach (var gone in exported.Where(k => !counts.ContainsKey(k)).ToList())
            {
                active.RemoveLabelled(gone.Tenant, gone.Workspace);
                expiring.RemoveLabelled(gone.Tenant, gone.Workspace);
                expiringInUse.RemoveLabelled(gone.Tenant, gone.Workspace);
                exported.Remove(gone);
            }

            foreach (var (key, (a, e, u)) in counts)
            {
                active.WithLabels(key.Tenant, key.Workspace).Set(a);
                expiring.WithLabels(key.Tenant, key.Workspace).Set(e);
                expiringInUse.WithLabels(key.Tenant, key.Workspace).Set(u);
                exported.Add(key);
            }
        }
    }
}
