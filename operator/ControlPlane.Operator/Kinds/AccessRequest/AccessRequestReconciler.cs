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
/// workspace's environment, whether its RoleBinding exists, the time). The apply is thin: an ending
/// grant's binding is deleted first, then audit rows (a grant's end once), then the status; a starting
/// grant's times are recorded in status before its binding is made. An Active request is looked at again at its
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
    ILogger<AccessRequestReconciler> logger,
    AccessExpiryLag expiryLag) : IReconciler<AccessRequest>
{
    public static readonly ResourceType Type = ResourceType.For<AccessRequest>(namespaced: true);
    const string Actor = "controlplane-operator";

    public static void Setup(TermBuilder b, SystemDatabase database)
    {
        var requests = b.Informer<AccessRequest>(Type);
        var ws = WorkspaceReconciler.WorkspacesOf(b);
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        var approvals = b.Informer<Approval>(ApprovalReconciler.Type);
        var roleBindings = WorkspaceReconciler.RoleBindingsOf(b);
        var writes = new OwnWrites();
        var reconciler = new AccessRequestReconciler(ws, tenants, approvals, roleBindings, b.Api, new ChildApplier(b.Api, writes), database,
            StalledStatus.Writer(b, writes), b.Events, b.Time, b.Loggers.CreateLogger<AccessRequestReconciler>(),
            new AccessExpiryLag(b.Metrics.Registry));
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
        var ns = request.Metadata.NamespaceProperty;
        var deleting = request.Metadata.DeletionTimestamp is not null;
        if (deleting && !ObjectWriter.HasFinalizer(request, ApiGroup.Finalizer)) return ReconcileResult.Done;
        if (!deleting) request = await writer.AddFinalizerAsync(Type, request, ApiGroup.Finalizer, ct).ConfigureAwait(false);

        var now = time.GetUtcNow().UtcDateTime;
        var ws = workspaces.Get(ns);
        var tenant = ws is null ? null : tenants.Get(ws.Spec.Tenant);
        var cached = roleBindings.Get($"{ns}/{AccessRequestPlan.BindingName(request.Metadata.Name)}");
        // A binding of that name that is not this request's is never adopted nor deleted.
        var foreign = cached is not null && !AccessRequestResources.IsOurs(cached, request);
        var ours = cached is not null && !foreign;
        var decision = AccessRequestPlan.Decide(new AccessRequestFacts(request, tenant, ApprovalOf(request, ws), ours, now));
        var conditions = new ConditionSet(request.Status?.Conditions, request.Metadata.Generation, now);
        // An ending grant's binding goes first, before its record and its status: less access is always safe, the
        // expiry's lag is not the audit chain's (appends are serialised), and a pass that cannot reach the API server
        // records nothing (the next pass ends the grant and audits it).
        if (decision.Binding == BindingAction.Delete)
        {
            var deleted = await DeleteBindingAsync(ns, request, cached?.Metadata.Uid, decision.Phase, ct).ConfigureAwait(false);
            // An expiry records itself (audit row, status, Event) in a second pass queued behind the other grants
            // already due: when many fall due at once, every binding goes before any bookkeeping holds a worker.
            // (A binding already gone, the cache behind, is recorded in this pass.)
            if (deleted && decision.Phase == AccessRequestPhase.Expired && request.Status?.Phase == AccessRequestPhase.Active && !deleting)
            {
                return ReconcileResult.RequeueAfter(TimeSpan.Zero);
            }
        }

        try
        {
            // Audited before the status that reports it: a failed write leaves the phase as it was, and the next pass audits it.
            foreach (var audit in decision.Audits)
            {
                var entry = new AuditEntry(Actor, audit.Action, AccessRequest.KubeKind, $"{ns}/{request.Metadata.Name}", tenant?.Metadata.Name, audit.Details, audit.Severity);
                // A grant ends once: a pass repeated after its row committed but its status did not (API server gone) appends nothing.
                if (audit.Action is "access.expired" or "access.revoked" && audit.Details["expiresAt"]?.GetValue<string>() is { } grantExpiry)
                {
                    await database.AppendGrantEndOnceAsync(entry, grantExpiry, ct).ConfigureAwait(false);
                }
                else
                {
                    await database.AppendAuditAsync(entry, ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var failure = PostgresFailure.Of(e, "The system of record");
            // The grant already ended (its binding is gone); only its record waits for Postgres.
            conditions.Set(AccessRequestConditions.Ready, false, failure.Reason, $"{failure.Message}; the change to {decision.Phase} is recorded once it is reachable");
            await writer.UpdateStatusAsync(Type, request, CopyStatus(request, conditions.ToList()), ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }

        var status = decision.Status;
        status.Conditions = conditions.Apply(decision.Conditions).ToList();
        if (foreign)
        {
            status.Conditions = conditions.Set(AccessRequestConditions.Ready, false, AccessRequestReasons.Granting,
                $"RoleBinding {cached!.Metadata.Name} exists and is not this request's; it is never adopted: delete it or use another request name").ToList();
        }

        request = await writer.UpdateStatusAsync(Type, request, status, ct).ConfigureAwait(false);
        // A starting grant's times are recorded first, so its expiry is known before it exists.
        if (decision.Binding == BindingAction.Ensure && !foreign)
        {
            await applier.ApplyAsync(WorkspaceReconciler.RoleBindings, AccessRequestResources.Binding(request, status), cached, ["roleRef", "subjects"], ct).ConfigureAwait(false);
        }

        await events.SendAsync(request, decision.Notices, ct).ConfigureAwait(false);
        if (deleting)
        {
            await writer.RemoveFinalizerAsync(Type, request, ApiGroup.Finalizer, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (foreign) return ReconcileResult.Retry("RoleBinding name taken by another owner");
        // Expiry is status.expiresAt, a recorded time: look again at it.
        return decision.RecheckIn is { } r ? ReconcileResult.RequeueAfter(r) : ReconcileResult.Done;
    }

    /// <summary>Deletes the grant's binding; false when it was already gone.</summary>
    async Task<bool> DeleteBindingAsync(string ns, AccessRequest request, string? uid, AccessRequestPhase phase, CancellationToken ct)
    {
        try
        {
            await api.DeleteAsync(WorkspaceReconciler.RoleBindings, ns, AccessRequestPlan.BindingName(request.Metadata.Name), ct, uid).ConfigureAwait(false);
            // An expiry's lag, once: a later pass finds no binding to delete (the decision asks for none).
            if (phase == AccessRequestPhase.Expired && request.Status?.Phase == AccessRequestPhase.Active && request.Status.ExpiresAt is { } expiresAt)
            {
                expiryLag.Observe(expiresAt, time.GetUtcNow().UtcDateTime);
            }

            logger.LogInformation("AccessRequest {Namespace}/{Name}: RoleBinding deleted", ns, request.Metadata.Name);
            return true;
        }
        catch (KubeApiException e) when (e.IsNotFound)
        {
            return false;
        }
    }
}
