using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// controlplane_notification_deliveries_total{outcome} (delivered, failed), controlplane_notification_delivery_latency_seconds
/// (the source row's commit to the receiver's 2xx, retries included) and controlplane_notification_backlog{channel}
/// (undelivered events per channel, namespace/name). Made once per process (OperatorRuntime): every leadership term shares it.
/// </summary>
public sealed class NotificationMetrics
{
    public Counter Deliveries { get; }
    public Histogram Latency { get; }
    public Gauge Backlog { get; }

    public NotificationMetrics(CollectorRegistry registry)
    {
        var f = Metrics.WithCustomRegistry(registry);
        Deliveries = f.CreateCounter("controlplane_notification_deliveries_total", "Notification delivery attempts, by outcome (delivered, failed).", "outcome");
        Latency = f.CreateHistogram("controlplane_notification_delivery_latency_seconds", "From the reported row's commit to its delivery (2xx), retries included.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.01, 2, 16) });
        Backlog = f.CreateGauge("controlplane_notification_backlog", "Undelivered events per NotificationChannel (namespace/name).", "channel");
    }
}
