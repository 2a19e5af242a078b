using System.Collections.Concurrent;
using Prometheus;

namespace ControlPlane.Runtime;

/// <summary>
/// The operator's metrics, with controller-runtime's names, in a registry owned by one operator
/// instance (so two instances in one process, as in the leader-election tests, do not mix).
/// </summary>
public sealed class OperatorMetrics
{
    public OperatorMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        ReconcileTotal = f.CreateCounter("controller_runtime_reconcile_total", "Total number of reconciliations per controller.", "controller", "result");
        ReconcileErrors = f.CreateCounter("controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per controller.", "controller");
        ReconcileTime = f.CreateHistogram("controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller.",
            new HistogramConfiguration { LabelNames = ["controller"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        ActiveWorkers = f.CreateGauge("controller_runtime_active_workers", "Number of currently used workers per controller.", "controller");
        MaxConcurrentReconciles = f.CreateGauge("controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent reconciles per controller.", "controller");
        QueueDepth = f.CreateGauge("workqueue_depth", "Current depth of workqueue.", "name");
        QueueAdds = f.CreateCounter("workqueue_adds_total", "Total number of adds handled by workqueue.", "name");
        QueueRetries = f.CreateCounter("workqueue_retries_total", "Total number of retries handled by workqueue.", "name");
        QueueLatency = f.CreateHistogram("workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue before being requested.",
            new HistogramConfiguration { LabelNames = ["name"], Buckets = Histogram.ExponentialBuckets(0.0001, 4, 12) });
        QueueUnfinishedWork = f.CreateGauge("workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads.", "name");
        QueueLongestRunning = f.CreateGauge("workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.", "name");
        TerminalReconcileErrors = f.CreateCounter("controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller (no retry until the spec changes).", "controller");
        QueueWorkDuration = f.CreateHistogram("workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
            new HistogramConfiguration { LabelNames = ["name"], Buckets = Histogram.ExponentialBuckets(0.0001, 4, 12) });
        WatchRestarts = f.CreateCounter("controlplane_watch_restarts_total", "Watches restarted, by resource and reason (timeout, error, gone, watchdog).", "resource", "reason");
        Relists = f.CreateCounter("controlplane_informer_relists_total", "Full re-lists performed by informers.", "resource");
        SyncSeconds = f.CreateGauge("controlplane_informer_sync_seconds",
            "Seconds from an informer's start to its first complete list (the longest of a resource's informers; per namespace for namespaced sets), by resource.", "resource");
        RestRequests = f.CreateCounter("rest_client_requests_total", "Number of HTTP requests to the API server, partitioned by verb and status code.", "verb", "code");
        LeaderStatus = f.CreateGauge("leader_election_master_status", "1 while this instance holds the lease.", "name");
        WebhookLatency = f.CreateHistogram("controlplane_webhook_request_duration_seconds", "Admission decision latency, by operation, kind and outcome.",
            new HistogramConfiguration { LabelNames = ["operation", "kind", "outcome"], Buckets = WebhookLatencyBuckets });
        PostgresErrors = f.CreateCounter("controlplane_postgres_errors_total", "Postgres operations that failed.", "operation");
        PostgresWrites = f.CreateCounter("controlplane_postgres_writes_total", "Postgres write transactions, by database (system of record, or a region's server).", "database");
        ControllersIdle = f.CreateGauge("controlplane_controllers_idle", "1 when every work queue is empty and no reconcile is running or waiting, else 0.");
        CachedObjects = f.CreateGauge("controlplane_informer_cached_objects", "Objects held in an informer's cache, by resource.", "resource");
        OutOfScope = f.CreateCounter("controlplane_informer_out_of_scope_total",
            "Listed or watched objects dropped before caching because their namespace is outside the informer's scope, by resource.", "resource");
        // Read at scrape time, as client-go's queues refresh them every 500 ms: a stuck item grows between two Done calls.
        Registry.AddBeforeCollectCallback(() =>
        {
            foreach (var (name, (_, inProgress)) in queues)
            {
                var (unfinished, longest) = inProgress();
                QueueUnfinishedWork.WithLabels(name).Set(unfinished);
                QueueLongestRunning.WithLabels(name).Set(longest);
            }
        });
        // process_* and dotnet_* (working set, CPU seconds, managed heap), as controller-runtime exposes process_* and go_*.
        DotNetStats.Register(Registry);
    }

    // The live queue of each name (a new term replaces its queues); only its owner removes it.
    readonly ConcurrentDictionary<string, (object Queue, Func<(double, double)> InProgress)> queues = new();

    internal void TrackQueue(string name, object queue, Func<(double, double)> inProgress) => queues[name] = (queue, inProgress);

    internal void UntrackQueue(string name, object queue)
    {
        if (queues.TryGetValue(name, out var live) && ReferenceEquals(live.Queue, queue) && queues.TryRemove(new(name, live)))
        {
            // A stopped queue has nothing in progress.
            QueueUnfinishedWork.WithLabels(name).Set(0);
            QueueLongestRunning.WithLabels(name).Set(0);
        }
    }

    /// <summary>
    /// Round boundaries: the chart's latency SLO counts requests under one of them (its threshold must
    /// be a bucket; the PrometheusRule template refuses another value).
    /// </summary>
    public static readonly double[] WebhookLatencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    public CollectorRegistry Registry { get; }
    public Counter ReconcileTotal { get; }
    public Counter ReconcileErrors { get; }
    public Histogram ReconcileTime { get; }
    public Gauge ActiveWorkers { get; }
    public Gauge MaxConcurrentReconciles { get; }
    public Gauge QueueDepth { get; }
    public Counter QueueAdds { get; }
    public Counter QueueRetries { get; }
    public Histogram QueueLatency { get; }
    public Histogram QueueWorkDuration { get; }
    public Gauge QueueUnfinishedWork { get; }
    public Gauge QueueLongestRunning { get; }
    public Counter TerminalReconcileErrors { get; }
    public Counter WatchRestarts { get; }
    public Counter Relists { get; }
    public Gauge SyncSeconds { get; }
    public Counter RestRequests { get; }
    public Gauge LeaderStatus { get; }
    public Counter PostgresErrors { get; }
    public Histogram WebhookLatency { get; }
    public Counter PostgresWrites { get; }
    public Gauge ControllersIdle { get; }
    public Gauge CachedObjects { get; }
    public Counter OutOfScope { get; }
}
