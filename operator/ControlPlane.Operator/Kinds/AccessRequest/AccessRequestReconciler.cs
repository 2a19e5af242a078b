using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Governs an AccessRequest: its phase and conditions are <see cref="AccessRequestPlan.Decide"/> of its
/// facts (its tenant's access policy, its Approvals as <see cref="ApprovalPolicy"/> counts them for the
/// workspace's environment, whether its RoleBinding exists, the time). The apply is thin: audit rows
/// first, then an ending grant's binding is deleted before the status says so, a starting grant's times
/// are recorded in status before its binding is made. An Active request is looked at again at its
/// recorded status.expiresAt, so expiry survives restarts (the resync reads the recorded time, no timer).
/// A finalizer lets a deleted request's grant end audited (access.revoked).
/// </summary>
public sealed class AccessRequestReconciler(
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
    ILogger<AccessRequestReconciler> logger) : IReconciler<AccessRequest>
{
    public static readonly ResourceType Type = ResourceType.For<AccessRequest>(namespaced: true);

    readonly GrantApply<AccessRequest, AccessRequestStatus> grants =
        new(Type, AccessRequestReasons.Granting, r => r.Status?.Conditions, CopyStatus, AccessRequestResources.Binding, api, applier, database, writer, events, logger);

    public static void Setup(TermBuilder b, SystemDatabase database)
    {
        var requests = b.Informer<AccessRequest>(Type);
        var ws = WorkspaceReconciler.WorkspacesOf(b);
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        var approvals = b.Informer<Approval>(ApprovalReconciler.Type);
        var roleBindings = WorkspaceReconciler.RoleBindingsOf(b);
        var writes = new OwnWrites();
        var reconciler = new AccessRequestReconciler(ws, tenants, approvals, roleBindings, b.Api, new ChildApplier(b.Api, writes), database,
            StalledStatus.Writer(b, writes), b.Events, b.Time, b.Loggers.CreateLogger<AccessRequestReconciler>());
        IEnumerable<string> InNamespace(string ns) => requests.InNamespace(ns).Select(r => $"{ns}/{r.Metadata.Name}");
        b.Controller("accessrequest", requests, reconciler)
            .SkipsEchoesOf(writes)
            // A new, changed or withdrawn Approval of a request (its status changes nothing here).
            .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == AccessRequest.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            // Its own binding deleted or changed by someone else: an Active grant puts it back, an ended one removes it again.
            .Watches(roleBindings, AccessRequestResources.OwnerOf)
            .Watches(ws, w => InNamespace(w.Metadata.Name))
            // The tenant's access policy bounds role and duration of pending requests.
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : ws.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name).SelectMany(w => InNamespace(w.Metadata.Name)));
    }

    public Task<ReconcileResult> ReconcileAsync(AccessRequest request, CancellationToken ct) => ReconcileErrors.RunAsync(request, PassAsync, ErrorReport, ct);

    // Postgres failures are the pass's own condition (DatabaseUnavailable), not a ReconcileError.
    ErrorReport<AccessRequest> ErrorReport => new(writer, Type, AccessRequestConditions.Ready, r => r.Status?.Conditions, CopyStatus, events, time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException),
    };

    static AccessRequestStatus CopyStatus(AccessRequest r, List<V1Condition> conditions) => new()
    {
        Phase = r.Status?.Phase ?? AccessRequestPhase.Pending,
        Requester = r.Status?.Requester,
        ApprovedBy = r.Status?.ApprovedBy,
        GrantedAt = r.Status?.GrantedAt,
        ExpiresAt = r.Status?.ExpiresAt,
        EndedAt = r.Status?.EndedAt,
        RoleBinding = r.Status?.RoleBinding,
        ObservedGeneration = r.Metadata.Generation,
        Conditions = conditions,
    };

    ApprovalState ApprovalOf(AccessRequest request, Workspace? ws) =>
        ws is null
            ? new ApprovalState(false, false, 1, [], [], "not in a workspace")
            : ApprovalPolicy.Evaluate(request, WorkspaceEnvironments.Effective(ws), approvals.InNamespace(request.Metadata.NamespaceProperty),
                a => ApprovalPolicy.HoldsApproverRole(a, roleBindings.InNamespace), roleBindings.InNamespace);

    async Task<ReconcileResult> PassAsync(AccessRequest request, CancellationToken ct)
    {
        try
        {
            return await GovernAsync(request, ct).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound && request.Metadata.DeletionTimestamp is not null)
        {
            // A stale cached copy of a request whose finalizer an earlier pass removed: it is gone, nothing to end.
            return ReconcileResult.Done;
        }
    }

    async Task<ReconcileResult> GovernAsync(AccessRequest request, CancellationToken ct)
    {
        (var go, request) = await grants.BeginAsync(request, ct).ConfigureAwait(false);
        if (!go) return ReconcileResult.Done;
        var ns = request.Metadata.NamespaceProperty;
        var now = time.GetUtcNow().UtcDateTime;
        var ws = workspaces.Get(ns);
        var tenant = ws is null ? null : tenants.Get(ws.Spec.Tenant);
        var name = AccessRequestPlan.BindingName(request.Metadata.Name);
        var (cached, ours, foreign) = GrantApply<AccessRequest, AccessRequestStatus>.Binding(request, roleBindings, name);
        var d = AccessRequestPlan.Decide(new AccessRequestFacts(request, tenant, ApprovalOf(request, ws), ours, now));
        var step = new GrantStep<AccessRequestStatus>(d.Status, d.Binding, d.Conditions, d.Notices, d.Audits, d.RecheckIn, d.Phase.ToString());
        return await grants.ApplyAsync(request, tenant?.Metadata.Name, name, step, now, cached, foreign, ct).ConfigureAwait(false);
    }
}
