using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Break-glass by tenant and workspace, rebuilt at every scrape from the current term's caches (the PrometheusRule's
/// alerts read them): controlplane_breakglass_active (Active, not past status.expiresAt) and
/// controlplane_breakglass_review_overdue (ReviewOverdue=True: granted, no review by status.reviewDeadline).
/// </summary>
public sealed class BreakGlassMetrics
{
    public BreakGlassMetrics(CollectorRegistry registry, Func<IEnumerable<IInformer>> informers, TimeProvider time)
    {
        _ = new WorkspaceCountGauge<BreakGlass>(registry, "controlplane_breakglass_active",
            "Break-glass emergency grants in force (BreakGlasses Active, not past status.expiresAt), by tenant and workspace.", BreakGlass.KubeKind, Active, informers, time);
        _ = new WorkspaceCountGauge<BreakGlass>(registry, "controlplane_breakglass_review_overdue",
            "Break-glass invocations past status.reviewDeadline without a review (ReviewOverdue=True), by tenant and workspace.", BreakGlass.KubeKind, (b, _) => Overdue(b), informers, time);
    }

    public static bool Active(BreakGlass b, DateTime now) => BreakGlassPlan.InForce(b, now);

    public static bool Overdue(BreakGlass b) => b.Status?.Conditions?.Any(c => c.Type == BreakGlassConditions.ReviewOverdue && c.Status == "True") == true;

    /// <summary>Per (tenant, workspace): how many are active and how many overdue. Pure, for tests.</summary>
    public static Dictionary<(string Tenant, string Workspace), (int Active, int Overdue)> Count(IEnumerable<BreakGlass> all, Func<string, string?> tenantOf, DateTime now)
    {
        var list = all.ToList();
        var active = WorkspaceCountGauge<BreakGlass>.Count(list, b => b.Metadata.NamespaceProperty ?? "", tenantOf, b => Active(b, now));
        var overdue = WorkspaceCountGauge<BreakGlass>.Count(list, b => b.Metadata.NamespaceProperty ?? "", tenantOf, Overdue);
        return active.ToDictionary(kv => kv.Key, kv => (kv.Value, overdue[kv.Key]));
    }
}
