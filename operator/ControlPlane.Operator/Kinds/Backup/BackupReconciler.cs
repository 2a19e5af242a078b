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

    public static Informer<Backup> BackupsOf(TermBuilder b) => b.Informer<Backup>(Type);

    public static Informer<BackupPlan> PlansOf(TermBuilder b) => b.Informer<BackupPlan>(BackupPlanReconciler.Type);

    public static void Setup(TermBuilder b, SystemDatabase database, BackupTargetsFactory targetsFactory, BackgroundJobs jobs, PgTools tools)
    {
        var backups = BackupsOf(b);
        var plans = PlansOf(b);
        var writes = new OwnWrites();
        var targets = targetsFactory(b);
        var janitor = new BackupJanitor(database, targets, b.Time, b.Loggers.CreateLogger<BackupJanitor>());
        var reconciler = new BackupReconciler(plans, targets, jobs, janitor, tools, database, b.Api, StalledStatus.Writer(b, writes), b.Events, b.Time,
            b.Loggers.CreateLogger<BackupReconciler>());
        b.Loop("backup-jobs", jobs.RunTermAsync);
        b.Loop("backup-janitor", janitor.RunAsync);
        // Watched so that they have synced before the first reconcile (an interrupted backup needs its storage at once).
        b.Controller("backup", backups, reconciler).SkipsEchoesOf(writes)
            .Watches(plans, _ => [])
            .Watches(targets.Workspaces, _ => [])
            .Watches(targets.Tenants, _ => []);
    }

    /// <summary>Facts (its job, its plan, its targets), decisions by <see cref="BackupRunPlan"/>, each applied before the next is asked.</summary>
    public async Task<ReconcileResult> ReconcileAsync(Backup backup, CancellationToken ct)
    {
        var uid = backup.Metadata.Uid ?? "";
        switch (BackupRunPlan.Triage(backup, jobs.IsRunning(uid)))
        {
            case BackupStep.Finalize:
                return await FinalizeAsync(backup, ct).ConfigureAwait(false);
            case BackupStep.Interrupted:
                return await InterruptedAsync(backup, ct).ConfigureAwait(false);
            case BackupStep.Prepare:
                break;
            default:
                return ReconcileResult.Done;
        }

        backup = await writer.AddFinalizerAsync(Type, backup, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        var plan = plans.Get($"{backup.Metadata.NamespaceProperty}/{backup.Spec.BackupPlan}");
        if (BackupRunPlan.Plan(backup, plan) is { } noPlan) return await ApplyAsync(backup, noPlan, ct).ConfigureAwait(false);

        BackupSource? source = null;
        S3Target? storage = null;
        PgLogin? login = null;
        BackupResolution resolution;
        try
        {
            source = targets.Source(plan!);
            storage = await targets.StorageAsync(plan!, source.Region, ct).ConfigureAwait(false);
            login = await targets.LoginAsync(source, ct).ConfigureAwait(false);
            resolution = new BackupResolution.Resolved();
        }
        catch (BackupRefusedException e)
        {
            resolution = new BackupResolution.Refused(e.Reason, e.Message);
        }
        catch (BackupNotReadyException e)
        {
            resolution = new BackupResolution.NotReady(e.Message);
        }

        var step = BackupRunPlan.Resolve(plan!, resolution);
        if (step is not BackupStep.Start) return await ApplyAsync(backup, step, ct).ConfigureAwait(false);
        var started = backup;
        if (!jobs.TryStart(uid, jobCt => RunAsync(started, source!, storage!, login!, jobCt)))
        {
            if (jobs.IsRunning(uid)) return ReconcileResult.Done;
            return await ApplyAsync(backup, BackupRunPlan.Queued(jobs.Running), ct).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    async Task<ReconcileResult> ApplyAsync(Backup backup, BackupStep step, CancellationToken ct)
    {
        switch (step)
        {
            case BackupStep.Fail fail:
                return await FailAsync(backup, fail.Reason, fail.Message, ct).ConfigureAwait(false);
            case BackupStep.Wait wait:
                await PendingAsync(backup, wait.Reason, wait.Message, ct).ConfigureAwait(false);
                return ReconcileResult.RequeueAfter(BackupRunPlan.WaitDelay);
            default:
                throw new InvalidOperationException($"not a step to apply here: {step}");
        }
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
        return ReconcileResult.Terminal(reason); // counted as a terminal error, not a success
    }

    DateTime Now => time.GetUtcNow().UtcDateTime;

    static BackupStatus Copy(BackupStatus? s) => s is null ? new BackupStatus() : new BackupStatus
    {
        Phase = s.Phase, StartedAt = s.StartedAt, CompletedAt = s.CompletedAt, SizeBytes = s.SizeBytes, Size = s.Size, Sha256 = s.Sha256, Key = s.Key, UploadId = s.UploadId,
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
    Task<Backup> WriteStatusAsync(Backup backup, Func<BackupStatus, BackupStatus> change, CancellationToken ct) =>
        writer.UpdateStatusFromLatestAsync(Type, backup, current => change(Copy(current.Status)), ct);
}

/// <summary>Makes the term's <see cref="BackupTargets"/> (its workspace cache belongs to the term).</summary>
public delegate BackupTargets BackupTargetsFactory(TermBuilder b);
