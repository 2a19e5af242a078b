using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Per-plan backup metrics, labelled workspace (the plan's namespace) and backupplan: not
/// <c>namespace</c>, which Prometheus renames to exported_namespace when a ServiceMonitor attaches the
/// operator's own namespace, so alerts could not tell two workspaces' plans of one name apart.
/// </summary>
public sealed class BackupMetrics
{
    public BackupMetrics(CollectorRegistry registry)
    {
        var f = Metrics.WithCustomRegistry(registry);
        LastSuccess = f.CreateGauge("controlplane_backup_last_success_timestamp_seconds", "Completion time of the newest Completed backup of a plan, or the plan's creation time while it has none (Unix seconds): a plan that never succeeds becomes overdue too.", "workspace", "backupplan");
        Duration = f.CreateGauge("controlplane_backup_duration_seconds", "How long the newest Completed backup of a plan took (dump, upload and verification).", "workspace", "backupplan");
        Size = f.CreateGauge("controlplane_backup_size_bytes", "Size of the newest Completed backup of a plan as stored.", "workspace", "backupplan");
    }

    public Gauge LastSuccess { get; }
    public Gauge Duration { get; }
    public Gauge Size { get; }

    public void Set(string ns, string plan, DateTime completedAt, TimeSpan duration, long size)
    {
        LastSuccess.WithLabels(ns, plan).Set(UnixSeconds(completedAt));
        Duration.WithLabels(ns, plan).Set(duration.TotalSeconds);
        Size.WithLabels(ns, plan).Set(size);
    }

    /// <summary>No Completed backup (yet): the plan is as old as its creation, so `time() - x` still grows and alerts.</summary>
    public void NoSuccess(string ns, string plan, DateTime createdAt)
    {
        LastSuccess.WithLabels(ns, plan).Set(UnixSeconds(createdAt));
        Duration.RemoveLabelled(ns, plan);
        Size.RemoveLabelled(ns, plan);
    }

    static double UnixSeconds(DateTime t) => new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)).ToUnixTimeMilliseconds() / 1000.0;

    public void Remove(string ns, string plan)
    {
        LastSuccess.RemoveLabelled(ns, plan);
        Duration.RemoveLabelled(ns, plan);
        Size.RemoveLabelled(ns, plan);
    }
}
