using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
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
public sealed class BreakGlassReconciler(
    Informer<BreakGlass> breakGlasses,
    Informer<Workspace> workspaces,
    Informer<Tenant> tenants,
    Informer<Approval> approvals,
    Informer<V1RoleBinding> roleBindings,
    KubeApi api,
    ChildApplier applier,
    SystemDatabase database,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    TimeSpan reviewWindow,
    ILogger<BreakGlassReconciler> logger) : IReconciler<BreakGlass>
{
    public static readonly ResourceType Type = ResourceType.For<BreakGlass>(namespaced: true);
    public const string OwnerLabel = "controlplane.io/break-glass";

    readonly GrantApply<BreakGlass, BreakGlassStatus> grants =
        new(Type, BreakGlassReasons.Granting, b => b.Status?.Conditions, CopyStatus, Binding, api, applier, database, writer, events, logger);

    public static void Setup(TermBuilder b, SystemDatabase database, TimeSpan reviewWindow)
    {
        var all = b.Informer<BreakGlass>(Type);
        var ws = WorkspaceReconciler.WorkspacesOf(b);
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        var approvals = b.Informer<Approval>(ApprovalReconciler.Type);
        var roleBindings = WorkspaceReconciler.RoleBindingsOf(b);
        var writes = new OwnWrites();
        var reconciler = new BreakGlassReconciler(all, ws, tenants, approvals, roleBindings, b.Api, new ChildApplier(b.Api, writes), database,
            StalledStatus.Writer(b, writes), b.Events, b.Time, reviewWindow, b.Loggers.CreateLogger<BreakGlassReconciler>());
        IEnumerable<string> InNamespace(string ns) => all.InNamespace(ns).Select(x => $"{ns}/{x.Metadata.Name}");
        b.Controller("breakglass", all, reconciler)
            .SkipsEchoesOf(writes)
            // A new, changed or withdrawn review (an Approval's status changes nothing here).
            .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == BreakGlass.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            // Its own binding deleted or changed by someone else: an Active grant puts it back, an ended one removes it again.
            .Watches(roleBindings, rb => GrantBindings.OwnerOf(rb, BreakGlass.KubeKind))
            .Watches(ws, w => InNamespace(w.Metadata.Name))
            // The tenant's break-glass policy: withdrawn mid-grant ends the grant.
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : ws.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name).SelectMany(w => InNamespace(w.Metadata.Name)));
    }

    /// <summary>The invoker's RoleBinding to the emergency role, labelled with the BreakGlass.</summary>
    public static V1RoleBinding Binding(BreakGlass b, BreakGlassStatus status) =>
        GrantBindings.Binding(b, BreakGlassPlan.BindingName(b.Metadata.Name), OwnerLabel, b.Spec.Role, status.Invoker, status.ExpiresAt);

    public Task<ReconcileResult> ReconcileAsync(BreakGlass b, CancellationToken ct) => ReconcileErrors.RunAsync(b, PassAsync, ErrorReport, ct);

    // Postgres failures are the pass's own condition (DatabaseUnavailable), not a ReconcileError.
    ErrorReport<BreakGlass> ErrorReport => new(writer, Type, BreakGlassConditions.Ready, x => x.Status?.Conditions, CopyStatus, events, time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException),
    };

    static BreakGlassStatus CopyStatus(BreakGlass b, List<V1Condition> conditions) => new()
    {
        Phase = b.Status?.Phase,
        Invoker = b.Status?.Invoker,
        GrantedAt = b.Status?.GrantedAt,
        ExpiresAt = b.Status?.ExpiresAt,
        EndedAt = b.Status?.EndedAt,
        ReviewDeadline = b.Status?.ReviewDeadline,
        ReviewedBy = b.Status?.ReviewedBy,
        ReviewedAt = b.Status?.ReviewedAt,
        RoleBinding = b.Status?.RoleBinding,
        ObservedGeneration = b.Metadata.Generation,
        Conditions = conditions,
    };

    async Task<ReconcileResult> PassAsync(BreakGlass b, CancellationToken ct)
    {
        try
        {
            return await GovernAsync(b, ct).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound && b.Metadata.DeletionTimestamp is not null)
        {
            // A stale cached copy of a BreakGlass whose finalizer an earlier pass removed: it is gone, nothing to end.
            return ReconcileResult.Done;
        }
    }

    async Task<ReconcileResult> GovernAsync(BreakGlass b, CancellationToken ct)
    {
        (var go, b) = await grants.BeginAsync(b, ct).ConfigureAwait(false);
        if (!go) return ReconcileResult.Done;
        var ns = b.Metadata.NamespaceProperty;
        var now = time.GetUtcNow().UtcDateTime;
        var tenant = workspaces.Get(ns) is { } ws ? tenants.Get(ws.Spec.Tenant) : null;
        var name = BreakGlassPlan.BindingName(b.Metadata.Name);
        var (cached, ours, foreign) = GrantApply<BreakGlass, BreakGlassStatus>.Binding(b, roleBindings, name);
        var review = BreakGlassReview.Evaluate(b, approvals.InNamespace(ns), roleBindings.InNamespace);
        var others = breakGlasses.InNamespace(ns).Where(o => o.Metadata.Name != b.Metadata.Name).ToList();
        var d = BreakGlassPlan.Decide(new BreakGlassFacts(b, tenant, others, review, ours, now, reviewWindow));
        var step = new GrantStep<BreakGlassStatus>(d.Status, d.Binding, d.Conditions, d.Notices, d.Audits, d.RecheckIn, d.Phase.ToString());
        return await grants.ApplyAsync(b, tenant?.Metadata.Name, name, step, now, cached, foreign, ct).ConfigureAwait(false);
    }
}
