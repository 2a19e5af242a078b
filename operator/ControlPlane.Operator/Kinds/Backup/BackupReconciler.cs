using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Runs each Backup once: pg_dump -Fc as the workspace's own role, streamed to S3 with multipart upload
/// (SHA-256 while streaming), then verified by reading the object back through `pg_restore --list`. A
/// Backup found Running that no job of this process runs was cut short (the operator stopped): it
/// becomes Failed with reason Interrupted and its partial upload is aborted. Deleting a Backup
/// (by hand or by retention) deletes its stored object first (finalizer); a completed backup of a
/// workspace being deleted is kept (Retain) or deleted after ControlPlane:Backup:DeleteGrace (Delete).
/// </summary>
public sealed partial class BackupReconciler(
    Informer<BackupPlan> plans,
    BackupTargets targets,
    BackgroundJobs jobs,
    BackupJanitor janitor,
    PgTools tools,
    SystemDatabase database,
    KubeApi api,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger logger) : IReconciler<Backup>
{
    public static readonly ResourceType Type = ResourceType.For<Backup>(namespaced: true);
    const string Actor = "controlplane-operator";

    /// <summary>How long a Backup waits before trying again for a slot or for its workspace's database.</summary>
    static readonly TimeSpan WaitDelay = TimeSpan.FromSeconds(2);

    public static Informer<Backup> BackupsOf(TermBuilder b) => b.Informer<Backup>(Type);

    public static Informer<BackupPlan> PlansOf(TermBuilder b) => b.Informer<BackupPlan>(BackupPlanReconciler.Type);

    public static void Setup(TermBuilder b, SystemDatabase database, BackupTargetsFactory targetsFactory, BackgroundJobs jobs, PgTools tools)
    {
        var backups = BackupsOf(b);
        var plans = PlansOf(b);
        var writes = new OwnWrites();
        var targets = targetsFactory(b);
        var janitor = new BackupJanitor(database, targets, b.Time, b.Loggers.CreateLogger<BackupJanitor>());
        var reconciler = new BackupReconciler(plans, targets, jobs, janitor, tools, database, b.Api, new ObjectWriter(b.Api, writes), b.Events, b.Time,
            b.Loggers.CreateLogger<BackupReconciler>());
        b.Loop("backup-jobs", jobs.RunTermAsync);
        b.Loop("backup-janitor", janitor.RunAsync);
        // Watched so that they have synced before the first reconcile (an interrupted backup needs its storage at once).
        b.Controller("backup", backups, reconciler).SkipsEchoesOf(writes)
            .Watches(plans, _ => [])
            .Watches(targets.Workspaces, _ => [])
            .Watches(targets.Tenants, _ => []);
    }

    public async Task<ReconcileResult> ReconcileAsync(Backup backup, CancellationToken ct)
    {
        if (backup.Metadata.DeletionTimestamp is not null) return await FinalizeAsync(backup, ct).ConfigureAwait(false);
        var uid = backup.Metadata.Uid ?? "";
        switch (backup.Status?.Phase)
        {
            case BackupPhase.Completed or BackupPhase.Failed:
                return ReconcileResult.Done;
            case BackupPhase.Running:
                return jobs.IsRunning(uid) ? ReconcileResult.Done : await InterruptedAsync(backup, ct).ConfigureAwait(false);
        }

        if (jobs.IsRunning(uid)) return ReconcileResult.Done;
        backup = await writer.AddFinalizerAsync(Type, backup, BackupRules.Finalizer, ct).ConfigureAwait(false);
        var ns = backup.Metadata.NamespaceProperty;
        var plan = plans.Get($"{ns}/{backup.Spec.BackupPlan}");
        if (plan is null) return await FailAsync(backup, BackupReasons.PlanNotFound, $"spec.backupPlan: BackupPlan {backup.Spec.BackupPlan} not found in namespace {ns}", ct).ConfigureAwait(false);
        BackupSource source;
        S3Target storage;
        PgLogin login;
        try
        {
            source = targets.Source(plan);
            storage = await targets.StorageAsync(plan, source.Region, ct).ConfigureAwait(false);
            login = await targets.LoginAsync(source, ct).ConfigureAwait(false);
        }
        catch (BackupRefusedException e)
        {
            return await FailAsync(backup, e.Reason, $"BackupPlan {plan.Metadata.Name}: {e.Message}", ct).ConfigureAwait(false);
        }
        catch (BackupNotReadyException e)
        {
            await PendingAsync(backup, BackupReasons.Waiting, e.Message, ct).ConfigureAwait(false);
            return ReconcileResult.RequeueAfter(WaitDelay);
        }

        var started = backup;
        if (!jobs.TryStart(uid, jobCt => RunAsync(started, source, storage, login, jobCt)))
        {
            if (jobs.IsRunning(uid)) return ReconcileResult.Done;
            await PendingAsync(backup, BackupReasons.Queued, $"waiting for a slot: {jobs.Running} backups or restores running (ControlPlane:Backup:MaxConcurrent)", ct).ConfigureAwait(false);
            return ReconcileResult.RequeueAfter(WaitDelay);
        }

        return ReconcileResult.Done;
    }

    Task PendingAsync(Backup backup, string reason, string message, CancellationToken ct)
    {
        var status = Copy(backup.Status);
        status.Phase = BackupPhase.Pending;
        status.Conditions = new ConditionSet(backup.Status?.Conditions, backup.Metadata.Generation, Now).Set(BackupConditions.Ready, false, reason, message).ToList();
        status.ObservedGeneration = backup.Metadata.Generation;
        return writer.UpdateStatusAsync(Type, backup, status, ct);
    }

    /// <summary>Refused before it ran: Failed with the reason, an Event and an audit event.</summary>
    async Task<ReconcileResult> FailAsync(Backup backup, string reason, string message, CancellationToken ct)
    {
        var status = Copy(backup.Status);
        status.Phase = BackupPhase.Failed;
        status.CompletedAt ??= Now;
        status.ObservedGeneration = backup.Metadata.Generation;
        status.Conditions = new ConditionSet(backup.Status?.Conditions, backup.Metadata.Generation, Now).Set(BackupConditions.Ready, false, reason, message).ToList();
        await writer.UpdateStatusAsync(Type, backup, status, ct).ConfigureAwait(false);
        await events.WarningAsync(backup, reason, message, ct).ConfigureAwait(false);
        await database.AppendAuditAsync(Audit(backup, "backup.failed", new JsonObject { ["reason"] = reason, ["message"] = message }), ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    DateTime Now => time.GetUtcNow().UtcDateTime;

    static BackupStatus Copy(BackupStatus? s) => s is null ? new BackupStatus() : new BackupStatus
    {
        Phase = s.Phase, StartedAt = s.StartedAt, CompletedAt = s.CompletedAt, SizeBytes = s.SizeBytes, Sha256 = s.Sha256, Key = s.Key, UploadId = s.UploadId,
        PgDumpVersion = s.PgDumpVersion, ServerVersion = s.ServerVersion, Database = s.Database, CorrelationId = s.CorrelationId,
        ObservedGeneration = s.ObservedGeneration, Conditions = s.Conditions?.ToList(),
    };

    AuditEntry Audit(Backup backup, string action, JsonObject details, string? tenant = null)
    {
        details["namespace"] = backup.Metadata.NamespaceProperty;
        details["backupPlan"] = backup.Spec.BackupPlan;
        if (backup.Status?.CorrelationId is { } id) details["correlationId"] = id;
        if (backup.Status?.Key is { } key) details["key"] = key;
        return new AuditEntry(Actor, action, "Backup", $"{backup.Metadata.NamespaceProperty}/{backup.Metadata.Name}", tenant, details);
    }

    /// <summary>Writes a status computed from the newest copy of the object (a job's writes race the controller's).</summary>
    async Task<Backup> WriteStatusAsync(Backup backup, Func<BackupStatus, BackupStatus> change, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = await api.GetAsync<Backup>(Type, backup.Metadata.NamespaceProperty, backup.Metadata.Name, ct).ConfigureAwait(false);
            if (current.Metadata.Uid != backup.Metadata.Uid) throw new InvalidOperationException($"Backup {backup.Metadata.Name} was replaced");
            try
            {
                return await writer.UpdateStatusAsync(Type, current, change(Copy(current.Status)), ct).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (e.IsConflict && attempt < 5)
            {
            }
        }
    }
}

/// <summary>Makes the term's <see cref="BackupTargets"/> (its workspace cache belongs to the term).</summary>
public delegate BackupTargets BackupTargetsFactory(TermBuilder b);
