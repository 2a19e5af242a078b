using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Governs an Exception: its phase (Pending, Active, Expired, Rejected) and conditions are
/// <see cref="ExceptionPlan.Decide"/> of its facts (its tenant's policy, the SecurityReviewers' Approvals
/// as <see cref="ExceptionApprovals"/> judges them, the time). A change of phase is audited before the
/// status reports it and told in an Event; an Active or Pending one is looked at again at spec.expiresAt.
/// What it covers is the DeploymentIntent reconciler's to decide, with the same rules, not this status.
/// </summary>
public sealed class ExceptionReconciler(
    Informer<Workspace> workspaces,
    Informer<Tenant> tenants,
    Informer<Approval> approvals,
    Informer<DeploymentIntent> intents,
    Informer<V1RoleBinding> roleBindings,
    SystemDatabase database,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger<ExceptionReconciler> logger) : IReconciler<SecurityException>
{
    public static readonly ResourceType Type = ResourceType.For<SecurityException>(namespaced: true);
    const string Actor = "controlplane-operator";

    /// <summary>The term's one informer of Exceptions (the intent reconciler and the Approval reconciler read it too).</summary>
    public static Informer<SecurityException> ExceptionsOf(TermBuilder b) => b.Informer<SecurityException>(Type);

    public static void Setup(TermBuilder b, SystemDatabase database)
    {
        var exceptions = ExceptionsOf(b);
        var ws = WorkspaceReconciler.WorkspacesOf(b);
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        var approvals = b.Informer<Approval>(ApprovalReconciler.Type);
        var intents = b.Informer<DeploymentIntent>(DeploymentIntentReconciler.Type);
        var roleBindings = WorkspaceReconciler.RoleBindingsOf(b);
        var writes = new OwnWrites();
        var reconciler = new ExceptionReconciler(ws, tenants, approvals, intents, roleBindings, database, StalledStatus.Writer(b, writes), b.Events, b.Time,
            b.Loggers.CreateLogger<ExceptionReconciler>());
        IEnumerable<string> InNamespace(string ns) => exceptions.InNamespace(ns).Select(e => $"{ns}/{e.Metadata.Name}");
        b.Controller("exception", exceptions, reconciler)
            .SkipsEchoesOf(writes)
            // A new, changed or withdrawn Approval of an Exception (its status changes nothing here).
            .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == SecurityException.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            // Who holds SecurityReviewer changes who counts.
            .Watches(roleBindings, rb => InNamespace(rb.Metadata.NamespaceProperty))
            // An intent of the same digest makes its authors ineligible to approve (only spec changes matter).
            .WatchesEvents(intents, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : exceptions.InNamespace(e.Object.Metadata.NamespaceProperty)
                    .Where(x => string.Equals(x.Spec.Artifact.Sha256, e.Object.Spec.Artifact.Sha256, StringComparison.OrdinalIgnoreCase))
                    .Select(x => $"{x.Metadata.NamespaceProperty}/{x.Metadata.Name}"))
            .Watches(ws, w => InNamespace(w.Metadata.Name))
            // The tenant's exception policy bounds expiresAt.
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : ws.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name).SelectMany(w => InNamespace(w.Metadata.Name)));
    }

    public Task<ReconcileResult> ReconcileAsync(SecurityException exception, CancellationToken ct) => ReconcileErrors.RunAsync(exception, PassAsync, ErrorReport, ct);

    // Postgres failures are the pass's own condition (DatabaseUnavailable), not a ReconcileError.
    ErrorReport<SecurityException> ErrorReport => new(writer, Type, ExceptionConditions.Ready, e => e.Status?.Conditions, CopyStatus, events, time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException),
    };

    static SecurityExceptionStatus CopyStatus(SecurityException e, List<V1Condition> conditions) => new()
    {
        Phase = e.Status?.Phase ?? ExceptionPhase.Pending,
        ApprovedBy = e.Status?.ApprovedBy,
        ApprovedAt = e.Status?.ApprovedAt,
        ObservedGeneration = e.Metadata.Generation,
        Conditions = conditions,
    };

    async Task<ReconcileResult> PassAsync(SecurityException exception, CancellationToken ct)
    {
        if (exception.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done;
        var ns = exception.Metadata.NamespaceProperty;
        var now = time.GetUtcNow().UtcDateTime;
        var tenant = workspaces.Get(ns) is { } ws ? tenants.Get(ws.Spec.Tenant) : null;
        var approval = ExceptionApprovals.Evaluate(exception, approvals.InNamespace(ns), intents.InNamespace(ns), roleBindings.InNamespace);
        var decision = ExceptionPlan.Decide(new ExceptionFacts(exception, tenant, approval, now));
        var conditions = new ConditionSet(exception.Status?.Conditions, exception.Metadata.Generation, now);
        try
        {
            // Audited before the status that reports it: a failed audit leaves the phase as it was, and the next pass audits it;
            // a status write lost after the audit (a conflict, a crash) finds its row on record and does not repeat it.
            var key = $"{ns}/{exception.Metadata.Name}";
            foreach (var audit in decision.Audits)
            {
                var recorded = audit.Once
                    ? await database.AuditExistsAsync(SecurityException.KubeKind, key, audit.Action, (string?)audit.Details["reason"] ?? "", exception.Metadata.Generation, ct).ConfigureAwait(false)
                    // Since its creation: a deleted Exception of the same name (its deletion leaves no row) is not this one.
                    : await database.LatestTransitionIsAsync(SecurityException.KubeKind, key, ExceptionPlan.Transitions, audit.Action, audit.Details, ct,
                        exception.Metadata.CreationTimestamp).ConfigureAwait(false);
                if (recorded) continue;
                await database.AppendAuditAsync(new AuditEntry(Actor, audit.Action, SecurityException.KubeKind, key, tenant?.Metadata.Name,
                    audit.Details, audit.Severity), ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var failure = PostgresFailure.Of(e, "The system of record");
            conditions.Set(ExceptionConditions.Ready, false, failure.Reason, $"{failure.Message}; the change to {decision.Phase} is recorded once it is reachable");
            await writer.UpdateStatusAsync(Type, exception, CopyStatus(exception, conditions.ToList()), ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }

        var status = new SecurityExceptionStatus
        {
            Phase = decision.Phase,
            ApprovedBy = decision.ApprovedBy,
            ApprovedAt = decision.ApprovedAt,
            ObservedGeneration = exception.Metadata.Generation,
            Conditions = conditions.Apply(decision.Conditions).ToList(),
        };
        await writer.UpdateStatusAsync(Type, exception, status, ct).ConfigureAwait(false);
        await events.SendAsync(exception, decision.Notices, ct).ConfigureAwait(false);
        // Expiry is spec.expiresAt, a recorded time: look again just after it.
        return decision.RecheckIn is { } r ? ReconcileResult.RequeueAfter(r + TimeSpan.FromSeconds(1)) : ReconcileResult.Done;
    }
}
