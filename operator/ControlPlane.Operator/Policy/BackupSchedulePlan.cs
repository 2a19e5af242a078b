using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Configuration;
using Cronos;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>Why a BackupPlan is refused: the condition reason and a message naming the field.</summary>
public sealed record PlanRefusal(string Reason, string Message);

/// <summary>
/// What a BackupPlan's pass decides on, read from caches by the reconciler: its Backups, and what
/// resolving its workspace said (<c>BackupTargets.Source</c>: refused, not ready, or null when it resolves).
/// </summary>
public sealed record BackupScheduleFacts(DateTime Now, BackupOptions Options, IReadOnlyList<Backup> Backups, PlanRefusal? SourceRefusal);

/// <summary>The last Completed backup, for the plan's metrics.</summary>
public sealed record BackupSample(DateTime CompletedAt, TimeSpan Duration, long SizeBytes);

/// <summary>What one pass of a BackupPlan does.</summary>
public abstract record BackupScheduleDecision
{
    /// <summary>The plan is being deleted: its metrics go; its Backups stay (they go by their own finalizers).</summary>
    public sealed record Forget : BackupScheduleDecision;

    /// <summary>
    /// Create <see cref="Create"/> (when the schedule is due: one Backup per schedule time, by name), delete
    /// <see cref="Prune"/> (retention), record <see cref="Sample"/>, write the status with the verdicts, send
    /// <see cref="Refusal"/> as a Warning when its message is new, and look again after <see cref="RequeueAfter"/>.
    /// </summary>
    public sealed record Converge(
        Backup? Create,
        IReadOnlyList<Backup> Prune,
        BackupPlanStatus Status,
        IReadOnlyList<ConditionVerdict> Verdicts,
        BackupSample? Sample,
        Notice? Refusal,
        TimeSpan RequeueAfter) : BackupScheduleDecision
    {
        /// <summary>An overdue episode that starts in this pass: audited (backup.overdue) before the status is written.</summary>
        public OverdueEpisode? OverdueStarts { get; init; }
    }
}

/// <summary>
/// A BackupPlan's schedule (Cronos, UTC) and retention as a pure function of the plan and its Backups:
/// when to make a Backup, which to prune (keepLast, maxAge; never the newest Completed), its status
/// summary and conditions, and when to wake (next schedule time, becoming overdue, a Backup ageing out).
/// suspend stops scheduling and nothing else.
/// </summary>
public static class BackupSchedulePlan
{
    public static BackupScheduleDecision Decide(BackupPlan plan, BackupScheduleFacts facts)
    {
        if (plan.Metadata.DeletionTimestamp is not null) return new BackupScheduleDecision.Forget();

        var now = facts.Now;
        var created = plan.Metadata.CreationTimestamp ?? now;
        var status = new BackupPlanStatus { ObservedGeneration = plan.Metadata.Generation, LastScheduleTime = plan.Status?.LastScheduleTime };
        var ofPlan = facts.Backups.Where(b => b.Spec.BackupPlan == plan.Metadata.Name).ToList();

        var refusal = Refusal(plan, facts);
        CronExpression? cron = null;
        try
        {
            cron = BackupRules.ParseSchedule(plan.Spec.Schedule);
        }
        catch (CronFormatException e)
        {
            refusal = new(BackupPlanReasons.InvalidSchedule, $"spec.schedule: \"{plan.Spec.Schedule}\" is not a five-field cron expression ({e.Message})");
        }

        var schedule = cron is null ? new ScheduleDecision(null, null, TimeSpan.FromDays(1)) : BackupRules.Schedule(cron, plan.Status?.LastScheduleTime ?? created, now);
        Backup? create = null;
        if (refusal is null && !plan.Spec.Suspend && schedule.RunNow is { } due)
        {
            create = Scheduled(plan, due);
            status.LastScheduleTime = due;
        }

        status.NextScheduleTime = plan.Spec.Suspend || refusal is not null ? null : schedule.Next;

        // Retention: the plan deletes the Backups it prunes; each Backup's finalizer deletes its object first.
        TimeSpan? maxAge = Durations.TryParse(plan.Spec.Retention?.MaxAge, out var age) ? age : null;
        var prune = BackupRules.ToPrune(ofPlan, plan.Spec.Retention?.KeepLast, maxAge, now);
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
        BackupSample? sample = lastCompleted?.Status is { CompletedAt: { } done, StartedAt: { } start, SizeBytes: { } size } ? new(done, done - start, size) : null;

        var verdicts = new List<ConditionVerdict>();
        var lastFinished = retained.Where(b => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed).MaxBy(b => b.Status!.CompletedAt);
        if (lastFinished is null) verdicts.Add(new(BackupPlanConditions.LastBackupSucceeded, null, BackupPlanReasons.NoBackupYet, "no backup has finished yet"));
        else if (lastFinished.Status!.Phase == BackupPhase.Completed)
        {
            verdicts.Add(new(BackupPlanConditions.LastBackupSucceeded, true, BackupPlanReasons.Completed, $"Backup {lastFinished.Metadata.Name} completed at {lastFinished.Status.CompletedAt:O}"));
        }
        else
        {
            var why = lastFinished.Status.Conditions?.FirstOrDefault(c => c.Type == "Ready");
            verdicts.Add(new(BackupPlanConditions.LastBackupSucceeded, false, why?.Reason ?? BackupPlanReasons.Failed, $"Backup {lastFinished.Metadata.Name} failed: {why?.Message}"));
        }

        var overdue = !plan.Spec.Suspend && BackupRules.Overdue(lastCompleted?.Status?.CompletedAt, created, schedule.Interval, now);
        verdicts.Add(new(BackupPlanConditions.BackupOverdue, overdue, overdue ? BackupPlanReasons.Overdue : plan.Spec.Suspend ? BackupPlanReasons.Suspended : BackupPlanReasons.OnSchedule,
            overdue ? $"no Completed backup since {(lastCompleted?.Status?.CompletedAt ?? created):O}: more than twice the schedule's interval ({schedule.Interval})"
                : plan.Spec.Suspend ? "spec.suspend is true: nothing is scheduled" : "the last success is within twice the schedule's interval"));
        if (refusal is not null) verdicts.Add(new(BackupPlanConditions.Ready, false, refusal.Reason, refusal.Message));
        else verdicts.Add(new(BackupPlanConditions.Ready, true, plan.Spec.Suspend ? BackupPlanReasons.Suspended : BackupPlanReasons.Scheduled,
            plan.Spec.Suspend ? "suspended: no new backups are scheduled" : $"next backup at {schedule.Next:O}"));

        // A refusal is told once per message, not on every pass.
        var before = plan.Status?.Conditions?.FirstOrDefault(c => c.Type == BackupPlanConditions.Ready)?.Message;
        var notice = refusal is not null && before != refusal.Message ? new Notice(refusal.Reason, refusal.Message, Warning: true) : null;

        // Wake for the next schedule time and for the moment the plan would become overdue.
        var wake = new List<DateTime>();
        if (status.NextScheduleTime is { } next) wake.Add(next);
        if (!overdue && !plan.Spec.Suspend) wake.Add((lastCompleted?.Status?.CompletedAt ?? created) + 2 * schedule.Interval);
        if (maxAge is { } m && retained.Any(b => b.Status?.CompletedAt is not null)) wake.Add(retained.Where(b => b.Status?.CompletedAt is not null).Min(b => b.Status!.CompletedAt!.Value) + m);
        var delay = wake.Where(w => w > now).Select(w => w - now).DefaultIfEmpty(TimeSpan.FromHours(1)).Min();
        var requeue = delay < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : delay + TimeSpan.FromMilliseconds(200);
        return new BackupScheduleDecision.Converge(create, prune, status, verdicts, sample, notice, requeue)
        {
            OverdueStarts = BackupOverdueEpisodes.Starts(plan, verdicts, lastCompleted?.Status?.CompletedAt ?? created, schedule.Interval),
        };
    }

    /// <summary>What refuses the plan at reconcile (checked again, whatever admission let through), in this order.</summary>
    static PlanRefusal? Refusal(BackupPlan plan, BackupScheduleFacts facts)
    {
        if (BackupRules.PlanNameProblem(plan.Metadata.Name) is { } name) return new(BackupPlanReasons.InvalidName, name);
        if (BackupRules.TenantStorageRefusal(plan, facts.Options) is { } storage) return new(BackupPlanReasons.TenantStorageNotAllowed, storage);
        return facts.SourceRefusal;
    }

    /// <summary>The Backup a schedule time makes: named by the time, so a retried create is the same object.</summary>
    public static Backup Scheduled(BackupPlan plan, DateTime due) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = BackupRules.ScheduledBackupName(plan.Metadata.Name, due),
            NamespaceProperty = plan.Metadata.NamespaceProperty,
            Labels = new Dictionary<string, string> { [ApiGroup.BackupPlanLabel] = plan.Metadata.Name, [ApiGroup.ScheduledLabel] = "true" },
            Finalizers = [ApiGroup.Finalizer],
        },
        Spec = new BackupSpec { BackupPlan = plan.Metadata.Name },
    };
}
