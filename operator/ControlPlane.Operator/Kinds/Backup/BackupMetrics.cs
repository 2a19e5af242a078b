using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>Per-plan backup metrics (labels namespace, backupplan, as the chart's PrometheusRule reads them).</summary>
public sealed class BackupMetrics
{
    public BackupMetrics(CollectorRegistry registry)
    {
        var f = Metrics.WithCustomRegistry(registry);
        LastSuccess = f.CreateGauge("controlplane_backup_last_success_timestamp_seconds", "Completion time of the newest Completed backup of a plan (Unix seconds).", "namespace", "backupplan");
        Duration = f.CreateGauge("controlplane_backup_duration_seconds", "How long the newest Completed backup of a plan took (dump, upload and verification).", "namespace", "backupplan");
        Size = f.CreateGauge("controlplane_backup_size_bytes", "Size of the newest Completed backup of a plan as stored.", "namespace", "backupplan");
    }

    public Gauge LastSuccess { get; }
    public Gauge Duration { get; }
    public Gauge Size { get; }

    public void Set(string ns, string plan, DateTime completedAt, TimeSpan duration, long size)
    {
        LastSuccess.WithLabels(ns, plan).Set(new DateTimeOffset(DateTime.SpecifyKind(completedAt, DateTimeKind.Utc)).ToUnixTimeMilliseconds() / 1000.0);
        Duration.WithLabels(ns, plan).Set(duration.TotalSeconds);
        Size.WithLabels(ns, plan).Set(size);
    }

    public void Remove(string ns, string plan)
    {
        LastSuccess.RemoveLabelled(ns, plan);
        Duration.RemoveLabelled(ns, plan);
        Size.RemoveLabelled(ns, plan);
    }
}
