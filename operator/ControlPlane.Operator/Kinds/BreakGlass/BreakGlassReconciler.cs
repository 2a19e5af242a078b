using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Governs a BreakGlass: its phase and conditions are <see cref="BreakGlassPlan.Decide"/> of its facts (its tenant's
/// break-glass policy, the other BreakGlasses of its workspace, its review as <see cref="BreakGlassReview"/> counts
/// the Approvals, whether its RoleBinding exists, the time, the review window). The apply is the one AccessRequests
/// use (<see cref="GrantApply{T, TStatus}"/>): audit first, an ending grant's binding deleted before the status says
/// so, a starting grant's times recorded before its binding is made. It is looked at again at its recorded
/// status.expiresAt and status.reviewDeadline, so expiry and ReviewOverdue survive restarts. A finalizer lets a
/// deleted BreakGlass's grant end audited (breakglass.ended).
/// </summary>
public sealed class BreakGlassReconciler(Informer<BreakGlass> breakGlasses, GrantContext g, TimeSpan reviewWindow, ILogger<BreakGlassReconciler> logger) : IReconciler<BreakGlass>
{
    public static readonly ResourceType Type = ResourceType.For<BreakGlass>(namespaced: true);
    public const string OwnerLabel = "controlplane.io/break-glass";

    readonly GrantApply<BreakGlass, BreakGlassStatus> grants = new(Type, BreakGlassReasons.Granting, b => b.Status, () => new(), Binding, g, logger,
        s => s.Phase == BreakGlassPhase.Active ? s.ExpiresAt : null, transitions: BreakGlassPlan.Transitions);

    public static void Setup(TermBuilder b, SystemDatabase database, TimeSpan reviewWindow)
    {
        var g = GrantContext.Of(b, database);
        var all = b.Informer<BreakGlass>(Type);
        GrantApply<BreakGlass, BreakGlassStatus>.Watch(b, "breakglass", all, new BreakGlassReconciler(all, g, reviewWindow, b.Loggers.CreateLogger<BreakGlassReconciler>()), g);
    }

    /// <summary>The invoker's RoleBinding to the emergency role, labelled with the BreakGlass.</summary>
    public static V1RoleBinding Binding(BreakGlass b, BreakGlassStatus status) =>
        GrantBindings.Binding(b, BreakGlassPlan.BindingName(b.Metadata.Name), OwnerLabel, b.Spec.Role, status.Invoker, status.ExpiresAt);

    public Task<ReconcileResult> ReconcileAsync(BreakGlass b, CancellationToken ct) => grants.ReconcileAsync(b, GovernAsync, ct);

    async Task<ReconcileResult> GovernAsync(BreakGlass b, CancellationToken ct)
    {
        (var go, b) = await grants.BeginAsync(b, ct).ConfigureAwait(false);
        if (!go) return ReconcileResult.Done;
        var ns = b.Metadata.NamespaceProperty;
        var now = g.Time.GetUtcNow().UtcDateTime;
        var tenant = g.TenantOf(ns);
        var name = BreakGlassPlan.BindingName(b.Metadata.Name);
        var (cached, ours, foreign) = grants.Binding(b, name);
        var review = BreakGlassReview.Evaluate(b, g.Approvals.InNamespace(ns), g.RoleBindings.InNamespace);
        var others = breakGlasses.InNamespace(ns).Where(o => o.Metadata.Name != b.Metadata.Name).ToList();
        var d = BreakGlassPlan.Decide(new BreakGlassFacts(b, tenant, others, review, ours, now, reviewWindow));
        var step = new GrantStep<BreakGlassStatus>(d.Status, d.Binding, d.Conditions, d.Notices, d.Audits, d.RecheckIn, d.Phase.ToString());
        return await grants.ApplyAsync(b, tenant?.Metadata.Name, name, step, now, cached, foreign, ct).ConfigureAwait(false);
    }
}
