using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

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
        var reconciler = new BackupPlanReconciler(backups, targets, metrics, database, b.Api, StalledStatus.Writer(b, writes), b.Events, b.Time,
            b.Loggers.CreateLogger<BackupPlanReconciler>());
        b.Controller("backupplan", plans, reconciler)
            .SkipsEchoesOf(writes)
            .Watches(backups, bk => [$"{bk.Metadata.NamespaceProperty}/{bk.Spec.BackupPlan}"])
            .Watches(workspaces, ws => plans.InNamespace(ws.Metadata.Name).Select(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}"))
            .Watches(targets.Tenants, _ => []);
    }

    /// <summary>Facts from the caches, the schedule and retention decided by <see cref="BackupSchedulePlan"/>, then applied.</summary>
    public async Task<ReconcileResult> ReconcileAsync(BackupPlan plan, CancellationToken ct)
    {
        var ns = plan.Metadata.NamespaceProperty;
        var now = time.GetUtcNow().UtcDateTime;
        var facts = new BackupScheduleFacts(now, targets.Options.Backup, backups.InNamespace(ns).ToList(), SourceRefusal(plan));
        switch (BackupSchedulePlan.Decide(plan, facts))
        {
            case BackupScheduleDecision.Forget:
                metrics.Remove(ns, plan.Metadata.Name);
                return ReconcileResult.Done;
            case BackupScheduleDecision.Converge d:
                if (d.Create is { } backup) await CreateScheduledAsync(plan, backup, d.Status.LastScheduleTime, ct).ConfigureAwait(false);
                foreach (var b in d.Prune) await PruneAsync(plan, b, ct).ConfigureAwait(false);
                if (d.Sample is { } sample) metrics.Set(ns, plan.Metadata.Name, sample.CompletedAt, sample.Duration, sample.SizeBytes);
                else metrics.NoSuccess(ns, plan.Metadata.Name, plan.Metadata.CreationTimestamp?.ToUniversalTime() ?? now);
                if (d.OverdueStarts is { } episode) await AuditOverdueAsync(plan, episode, ct).ConfigureAwait(false);
                d.Status.Conditions = new ConditionSet(plan.Status?.Conditions, plan.Metadata.Generation, now).Apply(d.Verdicts).ToList();
                await writer.UpdateStatusAsync(Type, plan, d.Status, ct).ConfigureAwait(false);
                if (d.Refusal is { } refusal) await events.SendAsync(plan, [refusal], ct).ConfigureAwait(false);
                return ReconcileResult.RequeueAfter(d.RequeueAfter);
            case var other:
                throw new InvalidOperationException($"unknown decision {other}");
        }
    }

    /// <summary>Whether the plan's workspace resolves to a source to back up (read from the caches).</summary>
    PlanRefusal? SourceRefusal(BackupPlan plan)
    {
        try
        {
            targets.Source(plan);
            return null;
        }
        catch (BackupRefusedException e)
        {
            return new(e.Reason, e.Message);
        }
        catch (BackupNotReadyException e)
        {
            return new(BackupPlanReasons.WorkspaceNotReady, e.Message);
        }
    }

    /// <summary>
    /// backup.overdue, once per episode: written before the status that shows the condition True, and skipped when the
    /// episode's row exists (a pass repeated because that status write failed or the cache lags).
    /// </summary>
    async Task AuditOverdueAsync(BackupPlan plan, OverdueEpisode episode, CancellationToken ct)
    {
        var name = $"{plan.Metadata.NamespaceProperty}/{plan.Metadata.Name}";
        if (await database.AuditDetailExistsAsync("BackupPlan", name, "backup.overdue", "since", episode.Key, ct).ConfigureAwait(false)) return;
        string? tenant;
        try
        {
            tenant = targets.Source(plan).Tenant;
        }
        catch (Exception e) when (e is BackupRefusedException or BackupNotReadyException)
        {
            tenant = null; // the workspace does not resolve (its own condition says why): the platform still hears it
        }

        await database.AppendAuditAsync(new AuditEntry(Actor, "backup.overdue", "BackupPlan", name, tenant, new JsonObject
        {
            ["reason"] = BackupPlanReasons.Overdue, ["since"] = episode.Key, ["interval"] = episode.Interval.ToString(), ["message"] = episode.Message,
            ["namespace"] = plan.Metadata.NamespaceProperty, ["backupPlan"] = plan.Metadata.Name, ["schedule"] = plan.Spec.Schedule,
        }), ct).ConfigureAwait(false);
    }

    async Task CreateScheduledAsync(BackupPlan plan, Backup backup, DateTime? due, CancellationToken ct)
    {
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
