using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Runs each Restore once, after its approvals (<see cref="RestoreResources.ApprovalOf"/>; a counting reject
/// makes it Failed/Rejected for good): the chosen Backup's object, its SHA-256 checked against the Backup's
/// before pg_restore reads it, streamed from S3 into pg_restore as the workspace's own role, into a fresh
/// database the operator made for it; in place, the live database is then kept under a recorded name and the
/// restored one takes its name. Every reference (workspace database prefix, backup of this workspace)
/// is checked here again, whatever admission let through. A Restore found Running that no job of this
/// process runs was cut short: it becomes Failed with reason Interrupted and its half-filled database is dropped.
/// </summary>
public sealed partial class RestoreReconciler(
    Informer<Backup> backups,
    Informer<BackupPlan> plans,
    Informer<Approval> approvals,
    Informer<V1RoleBinding> roleBindings,
    BackupTargets targets,
    BackgroundJobs jobs,
    PgTools tools,
    RegionDatabases regions,
    SystemDatabase database,
    KubeApi api,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger logger) : IReconciler<Restore>
{
    public static readonly ResourceType Type = ResourceType.For<Restore>(namespaced: true);
    const string Actor = "controlplane-operator";
    static readonly TimeSpan WaitDelay = TimeSpan.FromSeconds(2);

    public static void Setup(TermBuilder b, SystemDatabase database, RegionDatabases regions, BackupTargetsFactory targetsFactory, BackgroundJobs jobs, PgTools tools)
    {
        var restores = b.Informer<Restore>(Type);
        var backups = BackupReconciler.BackupsOf(b);
        var plans = BackupReconciler.PlansOf(b);
        var approvals = b.Informer<Approval>(ApprovalReconciler.Type);
        var roleBindings = WorkspaceReconciler.RoleBindingsOf(b);
        var writes = new OwnWrites();
        var targets = targetsFactory(b);
        var reconciler = new RestoreReconciler(backups, plans, approvals, roleBindings, targets, jobs, tools, regions, database, b.Api, StalledStatus.Writer(b, writes),
            b.Events, b.Time, b.Loggers.CreateLogger<RestoreReconciler>());
        IEnumerable<string> InNamespace(string ns) => restores.InNamespace(ns).Select(r => $"{ns}/{r.Metadata.Name}");
        b.Controller("restore", restores, reconciler).SkipsEchoesOf(writes)
            // A new, changed or withdrawn approval of a Restore; its status (the approval kind's) changes nothing here.
            .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == Restore.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            .Watches(roleBindings, rb => InNamespace(rb.Metadata.NamespaceProperty))
            // A named Backup completing, or a plan's recoverability window moving.
            .Watches(backups, bk => InNamespace(bk.Metadata.NamespaceProperty))
            .Watches(plans, p => InNamespace(p.Metadata.NamespaceProperty))
            .Watches(targets.Workspaces, ws => InNamespace(ws.Metadata.Name))
            .Watches(targets.Tenants, _ => []);
    }

    public async Task<ReconcileResult> ReconcileAsync(Restore restore, CancellationToken ct)
    {
        if (restore.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done;
        var uid = restore.Metadata.Uid ?? "";
        switch (restore.Status?.Phase)
        {
            case RestorePhase.Completed or RestorePhase.Failed:
                return ReconcileResult.Done;
            case RestorePhase.Running:
                return jobs.IsRunning(uid) ? ReconcileResult.Done : await InterruptedAsync(restore, ct).ConfigureAwait(false);
        }

        if (jobs.IsRunning(uid)) return ReconcileResult.Done;
        var ns = restore.Metadata.NamespaceProperty;
        var plan = plans.Get($"{ns}/{restore.Spec.BackupPlan}");
        if (plan is null) return await FailAsync(restore, RestoreReasons.PlanNotFound, $"spec.backupPlan: BackupPlan \"{restore.Spec.BackupPlan}\" not found in namespace {ns}", ct).ConfigureAwait(false);
        BackupSource source;
        try
        {
            source = targets.Source(plan);
        }
        catch (BackupRefusedException e)
        {
            return await FailAsync(restore, e.Reason, e.Message, ct).ConfigureAwait(false);
        }
        catch (BackupNotReadyException e)
        {
            return await PendingAsync(restore, RestoreReasons.Waiting, e.Message, ct).ConfigureAwait(false);
        }

        var target = RestoreResources.Target(restore.Spec, source.Database, uid, Now, out var targetRefusal);
        targetRefusal ??= target.InPlace ? null : RestoreResources.WorkspaceNameRefusal(target.Database, targets.Workspaces.List());
        if (targetRefusal is not null) return await FailAsync(restore, targetRefusal.Reason, targetRefusal.Message, ct).ConfigureAwait(false);
        var state = RestoreResources.ApprovalOf(restore, WorkspaceEnvironments.Effective(source.Workspace), approvals.InNamespace(ns), HoldsApproverRole, roleBindings.InNamespace);
        // A rejection is final, whatever the restore still waits for (its backup, a slot): nothing is restored, and a Failed Restore is done.
        if (state.Rejected) return await RejectedAsync(restore, target, state, source.Tenant, ct).ConfigureAwait(false);
        var choice = RestoreResources.ChooseBackup(restore.Spec, backups.InNamespace(ns).ToList(), plan.Status?.FirstRecoverabilityPoint);
        if (choice.Refusal is { } refusal) return await FailAsync(restore, refusal.Reason, refusal.Message, ct).ConfigureAwait(false);
        if (choice.Backup is not { } backup) return await PendingAsync(restore, RestoreReasons.WaitingForBackup, choice.WaitingFor ?? "waiting for the backup", ct).ConfigureAwait(false);

        S3Target storage;
        try
        {
            storage = await targets.StorageAsync(plan, source.Region, ct).ConfigureAwait(false);
        }
        catch (BackupRefusedException e)
        {
            return await FailAsync(restore, e.Reason, $"BackupPlan {plan.Metadata.Name}: {e.Message}", ct).ConfigureAwait(false);
        }

        // The Backup's status is checked against where this workspace's backups go and against the system of record.
        var record = await database.BackupRecordAsync(backup.Metadata.Uid ?? "", ct).ConfigureAwait(false);
        var notOurs = RestoreResources.BackupOfWorkspaceRefusal(backup, storage.KeyPrefix, source.Tenant, source.Workspace.Metadata.Name, source.Database);
        if (notOurs is null && (record is null || record.Namespace != ns || record.ObjectKey != backup.Status?.Key || record.Sha256 != backup.Status?.Sha256
                                || record.Phase != nameof(BackupPhase.Completed)))
        {
            notOurs = new RestoreRefusal(RestoreReasons.BackupNotOfWorkspace, $"spec: Backup \"{backup.Metadata.Name}\" does not match the system of record's backup of this workspace; it is refused");
        }

        if (notOurs is not null) return await FailAsync(restore, notOurs.Reason, notOurs.Message, ct).ConfigureAwait(false);

        if (restore.Status?.Phase is null) await RequestedAsync(restore, backup, target, state, source.Tenant, ct).ConfigureAwait(false);
        if (!state.Approved) return await AwaitingApprovalAsync(restore, backup, target, state, ct).ConfigureAwait(false);
        if (state.Required > 0 && !Conditions.IsTrue(restore.Status?.Conditions, RestoreConditions.Approved))
        {
            await AppendTransitionAsync(restore, Audit(restore, "restore.approved", new JsonObject
            {
                ["approvers"] = new JsonArray(state.Approvers.Select(a => (JsonNode)JsonValue.Create(a)).ToArray()), ["generation"] = restore.Metadata.Generation,
            }, source.Tenant), ct).ConfigureAwait(false);
            await events.NormalAsync(restore, RestoreReasons.Approved, $"generation {restore.Metadata.Generation} {state.Message}", ct).ConfigureAwait(false);
        }

        // Where and as whom the restore connects: built once here from the operator's record, passed down, never read again.
        PgLogin login;
        try
        {
            login = await targets.LoginAsync(source, ct).ConfigureAwait(false);
        }
        catch (BackupRefusedException e)
        {
            return await FailAsync(restore, e.Reason, e.Message, ct).ConfigureAwait(false);
        }
        catch (BackupNotReadyException e)
        {
            return await PendingAsync(restore, RestoreReasons.Waiting, e.Message, ct, state).ConfigureAwait(false);
        }

        var job = new RestoreJob(restore, backup, source, storage, target, record!.Id, state, login);
        if (!jobs.TryStart(uid, jobCt => RunAsync(job, jobCt)))
        {
            if (jobs.IsRunning(uid)) return ReconcileResult.Done;
            return await PendingAsync(restore, RestoreReasons.Queued, $"waiting for a slot: {jobs.Running} backups or restores running (ControlPlane:Backup:MaxConcurrent)", ct, state)
                .ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    bool HoldsApproverRole(Approval approval) =>
        ApprovalPolicy.HoldsApproverRole(approval, roleBindings.InNamespace);

    /// <summary>
    /// The audit actions that record a change of a Restore's phase. A change is audited before the status that reports it; when
    /// that status write is lost (a conflict with a lagging cache, a crash) the next pass decides from the old status again, and
    /// the row on record (the newest of these, with the same details) is not appended a second time.
    /// </summary>
    static readonly string[] Transitions = ["restore.requested", "restore.approved", "restore.rejected", "restore.started", "restore.completed", "restore.failed"];

    async Task AppendTransitionAsync(Restore restore, AuditEntry entry, CancellationToken ct)
    {
        if (await database.LatestTransitionIsAsync(entry.Kind, entry.ObjectName, Transitions, entry.Action, entry.Details, ct, restore.Metadata.CreationTimestamp)
                .ConfigureAwait(false)) return;
        await database.AppendAuditAsync(entry, ct).ConfigureAwait(false);
    }

    /// <summary>First seen: the request is audited once (its phase is written in the same reconcile; a lost write finds its row on record).</summary>
    async Task RequestedAsync(Restore restore, Backup backup, RestoreTargetPlan target, ApprovalState state, string tenant, CancellationToken ct)
    {
        await AppendTransitionAsync(restore, Audit(restore, "restore.requested", new JsonObject
        {
            ["backup"] = restore.Status?.Backup, ["database"] = target.Database, ["inPlace"] = target.InPlace, ["reason"] = restore.Spec.Reason,
            ["approvers"] = ApprovalAsks.Who(state.Required, state.Approvers, null), // who may approve: approval.requested names them
        }, tenant), ct).ConfigureAwait(false);
        await events.NormalAsync(restore, RestoreReasons.Requested, $"restore of Backup {backup.Metadata.Name} into {(target.InPlace ? $"{target.Database} (in place)" : target.Database)}", ct)
            .ConfigureAwait(false);
    }

    async Task<ReconcileResult> AwaitingApprovalAsync(Restore restore, Backup backup, RestoreTargetPlan target, ApprovalState state, CancellationToken ct)
    {
        var status = Copy(restore.Status);
        var first = status.Phase != RestorePhase.AwaitingApproval;
        status.Phase = RestorePhase.AwaitingApproval;
        status.Backup = backup.Metadata.Name;
        status.Database = target.Database;
        status.ObservedGeneration = restore.Metadata.Generation;
        status.Conditions = new ConditionSet(status.Conditions, restore.Metadata.Generation, Now)
            .Set(RestoreConditions.Approved, false, RestoreReasons.AwaitingApproval, state.Message)
            .Set(RestoreConditions.Ready, false, RestoreReasons.AwaitingApproval, $"generation {restore.Metadata.Generation}: {state.Message}").ToList();
        await writer.UpdateStatusAsync(Type, restore, status, ct).ConfigureAwait(false);
        if (first) await events.NormalAsync(restore, RestoreReasons.AwaitingApproval, state.Message, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>
    /// A counting reject (any reject wins): Failed for good, nothing restored. Audited before the status
    /// is written, so a failed audit leaves the phase as it was; a lost status write finds its row on record.
    /// </summary>
    async Task<ReconcileResult> RejectedAsync(Restore restore, RestoreTargetPlan target, ApprovalState state, string tenant, CancellationToken ct)
    {
        var generation = restore.Metadata.Generation;
        var message = $"generation {generation} {state.Message}; nothing was restored";
        await AppendTransitionAsync(restore, Audit(restore, "restore.rejected", new JsonObject
        {
            ["rejectedBy"] = new JsonArray(state.RejectedBy.Select(a => (JsonNode)JsonValue.Create(a)).ToArray()), ["generation"] = generation,
            ["backup"] = restore.Status?.Backup, ["database"] = target.Database, ["inPlace"] = target.InPlace,
        }, tenant), ct).ConfigureAwait(false);
        var status = Copy(restore.Status);
        status.Phase = RestorePhase.Failed;
        status.Database = target.Database;
        status.CompletedAt ??= Now;
        status.ObservedGeneration = generation;
        status.Conditions = new ConditionSet(status.Conditions, generation, Now)
            .Set(RestoreConditions.Approved, false, RestoreReasons.Rejected, state.Message)
            .Set(RestoreConditions.Ready, false, RestoreReasons.Rejected, message).ToList();
        await writer.UpdateStatusAsync(Type, restore, status, ct).ConfigureAwait(false);
        await events.WarningAsync(restore, RestoreReasons.Rejected, message, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    async Task<ReconcileResult> PendingAsync(Restore restore, string reason, string message, CancellationToken ct, ApprovalState? approved = null)
    {
        var status = Copy(restore.Status);
        status.Phase = RestorePhase.Pending;
        status.ObservedGeneration = restore.Metadata.Generation;
        var conditions = new ConditionSet(status.Conditions, restore.Metadata.Generation, Now).Set(RestoreConditions.Ready, false, reason, message);
        if (approved is not null) conditions.Set(RestoreConditions.Approved, true, RestoreReasons.Approved, approved.Message);
        status.Conditions = conditions.ToList();
        await writer.UpdateStatusAsync(Type, restore, status, ct).ConfigureAwait(false);
        return ReconcileResult.RequeueAfter(WaitDelay);
    }

    /// <summary>Refused before it ran: Failed with the reason (naming the field), an Event and an audit event.</summary>
    async Task<ReconcileResult> FailAsync(Restore restore, string reason, string message, CancellationToken ct)
    {
        var status = Copy(restore.Status);
        status.Phase = RestorePhase.Failed;
        status.CompletedAt ??= Now;
        status.ObservedGeneration = restore.Metadata.Generation;
        status.Conditions = new ConditionSet(status.Conditions, restore.Metadata.Generation, Now).Set(RestoreConditions.Ready, false, reason, message).ToList();
        await writer.UpdateStatusAsync(Type, restore, status, ct).ConfigureAwait(false);
        await events.WarningAsync(restore, reason, message, ct).ConfigureAwait(false);
        await database.AppendAuditAsync(Audit(restore, "restore.failed", new JsonObject { ["reason"] = reason, ["message"] = message }), ct).ConfigureAwait(false);
        return ReconcileResult.Terminal(reason); // counted as a terminal error, not a success
    }

    DateTime Now => time.GetUtcNow().UtcDateTime;

    static RestoreStatus Copy(RestoreStatus? s) => s is null ? new RestoreStatus() : new RestoreStatus
    {
        Phase = s.Phase, Backup = s.Backup, StartedAt = s.StartedAt, CompletedAt = s.CompletedAt, Database = s.Database, ReplacedDatabase = s.ReplacedDatabase,
        SmokeCheck = s.SmokeCheck is null ? null : new RestoreSmokeCheck { Passed = s.SmokeCheck.Passed, Tables = s.SmokeCheck.Tables, Message = s.SmokeCheck.Message },
        CorrelationId = s.CorrelationId, ObservedGeneration = s.ObservedGeneration, Conditions = s.Conditions?.ToList(),
    };

    AuditEntry Audit(Restore restore, string action, JsonObject details, string? tenant = null)
    {
        details["namespace"] = restore.Metadata.NamespaceProperty;
        details["backupPlan"] = restore.Spec.BackupPlan;
        if (restore.Status?.CorrelationId is { } id) details["correlationId"] = id;
        return new AuditEntry(Actor, action, "Restore", $"{restore.Metadata.NamespaceProperty}/{restore.Metadata.Name}", tenant, details);
    }

    /// <summary>Writes a status computed from the newest copy of the object (a job's writes race the controller's).</summary>
    Task<Restore> WriteStatusAsync(Restore restore, Func<RestoreStatus, RestoreStatus> change, CancellationToken ct) =>
        writer.UpdateStatusFromLatestAsync(Type, restore, current => change(Copy(current.Status)), ct);
}
