using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Cronos;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The BackupPlan's conditions.</summary>
/// <summary>
/// A BackupPlan's schedule (Cronos, UTC) makes Backup objects; its retention (keepLast, maxAge; never
/// the newest Completed) deletes them, and each deleted Backup's finalizer deletes its stored object
/// first. Its status and metrics summarise its Backups. suspend stops scheduling and nothing else.
/// </summary>
public sealed class BackupPlanReconciler(
    Informer<Backup> backups,
    BackupTargets targets,
    BackupMetrics metrics,
    SystemDatabase database,
    KubeApi api,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger logger) : IReconciler<BackupPlan>
{
    public static readonly ResourceType Type = ResourceType.For<BackupPlan>(namespaced: true);
    const string Actor = "controlplane-operator";

    public static void Setup(TermBuilder b, SystemDatabase database, BackupTargetsFactory targetsFactory, BackupMetrics metrics)
    {
        var plans = BackupReconciler.PlansOf(b);
        var backups = BackupReconciler.BackupsOf(b);
        var workspaces = WorkspaceReconciler.WorkspacesOf(b);
        var writes = new OwnWrites();
        var targets = targetsFactory(b);
        var reconciler = new BackupPlanReconciler(backups, targets, metrics, database, b.Api, new ObjectWriter(b.Api, writes), b.Events, b.Time,
            b.Loggers.CreateLogger<BackupPlanReconciler>());
        b.Controller("backupplan", plans, reconciler)
            .SkipsEchoesOf(writes)
            .Watches(backups, bk => [$"{bk.Metadata.NamespaceProperty}/{bk.Spec.BackupPlan}"])
            .Watches(workspaces, ws => plans.InNamespace(ws.Metadata.Name).Select(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}"))
            .Watches(targets.Tenants, _ => []);
    }

    public async Task<ReconcileResult> ReconcileAsync(BackupPlan plan, CancellationToken ct)
    {
        var ns = plan.Metadata.NamespaceProperty;
        if (plan.Metadata.DeletionTimestamp is not null)
        {
            metrics.Remove(ns, plan.Metadata.Name);
            return ReconcileResult.Done;
        }

        var now = time.GetUtcNow().UtcDateTime;
        var created = plan.Metadata.CreationTimestamp ?? now;
        var conditions = new ConditionSet(plan.Status?.Conditions, plan.Metadata.Generation, now);
        var status = new BackupPlanStatus { ObservedGeneration = plan.Metadata.Generation, LastScheduleTime = plan.Status?.LastScheduleTime };
        var ofPlan = backups.InNamespace(ns).Where(b => b.Spec.BackupPlan == plan.Metadata.Name).ToList();

        var (refusalReason, refusal) = Refusal(plan);
        CronExpression? cron = null;
        try
        {
            cron = BackupRules.ParseSchedule(plan.Spec.Schedule);
        }
        catch (CronFormatException e)
        {
            (refusalReason, refusal) = (BackupPlanReasons.InvalidSchedule, $"spec.schedule: \"{plan.Spec.Schedule}\" is not a five-field cron expression ({e.Message})");
        }

        var decision = cron is null ? new ScheduleDecision(null, null, TimeSpan.FromDays(1)) : BackupRules.Schedule(cron, plan.Status?.LastScheduleTime ?? created, now);
        if (refusal is null && !plan.Spec.Suspend && decision.RunNow is { } due)
        {
            await CreateScheduledAsync(plan, due, ct).ConfigureAwait(false);
            status.LastScheduleTime = due;
        }

        status.NextScheduleTime = plan.Spec.Suspend || refusal is not null ? null : decision.Next;

        // Retention: the plan deletes the Backups it prunes; each Backup's finalizer deletes its object first.
        TimeSpan? maxAge = Durations.TryParse(plan.Spec.Retention?.MaxAge, out var age) ? age : null;
        var prune = BackupRules.ToPrune(ofPlan, plan.Spec.Retention?.KeepLast, maxAge, now);
        foreach (var b in prune) await PruneAsync(plan, b, ct).ConfigureAwait(false);
        var retained = ofPlan.Except(prune).Where(b => b.Metadata.DeletionTimestamp is null).ToList();

        // creationTimestamp has whole seconds: two Backups made in one second are told apart by when they started (not yet started: newest).
        var newest = retained.OrderBy(b => b.Metadata.CreationTimestamp).ThenBy(b => b.Status?.StartedAt ?? DateTime.MaxValue).LastOrDefault();
        status.LastBackup = newest is null ? null : new BackupRecord
        {
            Name = newest.Metadata.Name, StartedAt = newest.Status?.StartedAt, CompletedAt = newest.Status?.CompletedAt, SizeBytes = newest.Status?.SizeBytes,
            Sha256 = newest.Status?.Sha256, Phase = newest.Status?.Phase ?? BackupPhase.Pending,
        };
        status.FirstRecoverabilityPoint = BackupRules.FirstRecoverabilityPoint(retained);
        var lastCompleted = retained.Where(b => b.Status?.Phase == BackupPhase.Completed).MaxBy(b => b.Status!.CompletedAt);
        if (lastCompleted?.Status is { CompletedAt: { } done, StartedAt: { } start, SizeBytes: { } size }) metrics.Set(ns, plan.Metadata.Name, done, done - start, size);

        var lastFinished = retained.Where(b => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed).MaxBy(b => b.Status!.CompletedAt);
        if (lastFinished is null) conditions.SetUnknown(BackupPlanConditions.LastBackupSucceeded, BackupPlanReasons.NoBackupYet, "no backup has finished yet");
        else if (lastFinished.Status!.Phase == BackupPhase.Completed)
        {
            conditions.Set(BackupPlanConditions.LastBackupSucceeded, true, BackupPlanReasons.Completed, $"Backup {lastFinished.Metadata.Name} completed at {lastFinished.Status.CompletedAt:O}");
        }
        else
        {
            var why = Conditions.Find(lastFinished.Status.Conditions, BackupConditions.Ready);
            conditions.Set(BackupPlanConditions.LastBackupSucceeded, false, why?.Reason ?? BackupPlanReasons.Failed, $"Backup {lastFinished.Metadata.Name} failed: {why?.Message}");
        }

        var overdue = !plan.Spec.Suspend && BackupRules.Overdue(lastCompleted?.Status?.CompletedAt, created, decision.Interval, now);
        conditions.Set(BackupPlanConditions.BackupOverdue, overdue, overdue ? BackupPlanReasons.Overdue : plan.Spec.Suspend ? BackupPlanReasons.Suspended : BackupPlanReasons.OnSchedule,
            overdue ? $"no Completed backup since {(lastCompleted?.Status?.CompletedAt ?? created):O}: more than twice the schedule's interval ({decision.Interval})"
                : plan.Spec.Suspend ? "spec.suspend is true: nothing is scheduled" : "the last success is within twice the schedule's interval");
        if (refusal is not null) conditions.Set(BackupPlanConditions.Ready, false, refusalReason!, refusal);
        else conditions.Set(BackupPlanConditions.Ready, true, plan.Spec.Suspend ? BackupPlanReasons.Suspended : BackupPlanReasons.Scheduled,
            plan.Spec.Suspend ? "suspended: no new backups are scheduled" : $"next backup at {decision.Next:O}");
        status.Conditions = conditions.ToList();

        var before = plan.Status?.Conditions?.FirstOrDefault(c => c.Type == BackupPlanConditions.Ready)?.Message;
        await writer.UpdateStatusAsync(Type, plan, status, ct).ConfigureAwait(false);
        if (refusal is not null && before != refusal) await events.WarningAsync(plan, refusalReason!, refusal, ct).ConfigureAwait(false);

        // Wake for the next schedule time and for the moment the plan would become overdue.
        var wake = new List<DateTime>();
        if (status.NextScheduleTime is { } next) wake.Add(next);
        if (!overdue && !plan.Spec.Suspend) wake.Add((lastCompleted?.Status?.CompletedAt ?? created) + 2 * decision.Interval);
        if (maxAge is { } m && retained.Any(b => b.Status?.CompletedAt is not null)) wake.Add(retained.Where(b => b.Status?.CompletedAt is not null).Min(b => b.Status!.CompletedAt!.Value) + m);
        var delay = wake.Where(w => w > now).Select(w => w - now).DefaultIfEmpty(TimeSpan.FromHours(1)).Min();
        return ReconcileResult.RequeueAfter(delay < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : delay + TimeSpan.FromMilliseconds(200));
    }

    /// <summary>What refuses the plan at reconcile (checked again, whatever admission let through).</summary>
    (string? Reason, string? Message) Refusal(BackupPlan plan)
    {
        if (BackupRules.PlanNameProblem(plan.Metadata.Name) is { } name) return (BackupPlanReasons.InvalidName, name);
        try
        {
            if (BackupRules.TenantStorageRefusal(plan, targets.Options.Backup) is { } storage) return (BackupPlanReasons.TenantStorageNotAllowed, storage);
            targets.Source(plan);
            return (null, null);
        }
        catch (BackupRefusedException e)
        {
            return (e.Reason, e.Message);
        }
        catch (BackupNotReadyException e)
        {
            return (BackupPlanReasons.WorkspaceNotReady, e.Message);
        }
    }

    async Task CreateScheduledAsync(BackupPlan plan, DateTime due, CancellationToken ct)
    {
        var backup = new Backup
        {
            Metadata = new V1ObjectMeta
            {
                Name = BackupRules.ScheduledBackupName(plan.Metadata.Name, due),
                NamespaceProperty = plan.Metadata.NamespaceProperty,
                Labels = new Dictionary<string, string> { [BackupRules.PlanLabel] = plan.Metadata.Name, [BackupRules.ScheduledLabel] = "true" },
                Finalizers = [BackupRules.Finalizer],
            },
            Spec = new BackupSpec { BackupPlan = plan.Metadata.Name },
        };
        try
        {
            await api.CreateAsync(BackupReconciler.Type, backup.Metadata.NamespaceProperty, backup, ct).ConfigureAwait(false);
            logger.LogInformation("backup plan {Namespace}/{Plan}: created Backup {Name} for {Due:O}", plan.Metadata.NamespaceProperty, plan.Metadata.Name, backup.Metadata.Name, due);
        }
        catch (KubeApiException e) when (e.IsConflict)
        {
            // Already made for this schedule time (a retried pass): one Backup per time, by name.
        }
    }

    async Task PruneAsync(BackupPlan plan, Backup backup, CancellationToken ct)
    {
        try
        {
            await api.DeleteAsync(BackupReconciler.Type, backup.Metadata.NamespaceProperty, backup.Metadata.Name, ct, backup.Metadata.Uid).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound || e.IsConflict)
        {
            return;
        }

        await database.AppendAuditAsync(new AuditEntry(Actor, "backup.pruned", "Backup", $"{backup.Metadata.NamespaceProperty}/{backup.Metadata.Name}", null, new JsonObject
        {
            ["backupPlan"] = plan.Metadata.Name, ["phase"] = backup.Status?.Phase?.ToString(), ["completedAt"] = backup.Status?.CompletedAt?.ToString("O"),
            ["key"] = backup.Status?.Key, ["correlationId"] = backup.Status?.CorrelationId,
            ["keepLast"] = plan.Spec.Retention?.KeepLast, ["maxAge"] = plan.Spec.Retention?.MaxAge,
        }), ct).ConfigureAwait(false);
        await events.NormalAsync(plan, BackupPlanReasons.BackupPruned, $"Backup {backup.Metadata.Name} pruned by retention; its stored object is deleted first", ct).ConfigureAwait(false);
    }
}
