using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// DeploymentIntent metrics: CAB approval time, intents by phase, ring success rate, rollbacks. One per
/// process (the registry's); each leadership term points <see cref="Source"/> at its own cache. The
/// intent's namespace is the label workspace: a scrape's target labels take `namespace`.
/// </summary>
public sealed class IntentMetrics
{
    readonly Histogram approvalSeconds;
    readonly Gauge ringSuccessRate;
    readonly Counter rollbacks;

    /// <summary>The intents of the current term (none while not leading).</summary>
    public Func<IEnumerable<DeploymentIntent>> Source { get; set; } = () => [];

    public IntentMetrics(OperatorMetrics metrics)
    {
        var f = Metrics.WithCustomRegistry(metrics.Registry);
        approvalSeconds = f.CreateHistogram("controlplane_cab_approval_seconds", "Time from a DeploymentIntent's creation to its CAB approval (decided - submitted).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(60, 2, 14) });
        ringSuccessRate = f.CreateGauge("controlplane_deployment_ring_success_rate", "Success rate the execution plane reports for a ring in progress.",
            new GaugeConfiguration { LabelNames = ["workspace", "intent", "ring"] });
        rollbacks = f.CreateCounter("controlplane_deployment_rollbacks_total", "DeploymentIntents rolled back.", new CounterConfiguration { LabelNames = ["workspace"] });
        var byPhase = f.CreateGauge("controlplane_deployment_intents", "DeploymentIntents by phase.", new GaugeConfiguration { LabelNames = ["phase"] });
        IntentPhase[] phases = [IntentPhase.Pending, IntentPhase.RiskAssessed, IntentPhase.ScopeValidated, IntentPhase.AwaitingApproval, IntentPhase.InProgress,
            IntentPhase.Completed, IntentPhase.Failed, IntentPhase.RolledBack, IntentPhase.Denied];
        metrics.Registry.AddBeforeCollectCallback(() =>
        {
            var counts = Source().GroupBy(i => i.Status?.Phase ?? IntentPhase.Pending).ToDictionary(g => g.Key, g => g.Count());
            foreach (var phase in phases) byPhase.WithLabels(phase.ToString()).Set(counts.GetValueOrDefault(phase));
        });
    }

    public void ObserveApproval(DeploymentIntent intent, DateTime approvedAt)
    {
        if (intent.Metadata.CreationTimestamp is { } created) approvalSeconds.Observe(Math.Max(0, (approvedAt - created.ToUniversalTime()).TotalSeconds));
    }

    public void RingSuccessRate(DeploymentIntent intent, string ring, double rate) =>
        ringSuccessRate.WithLabels(intent.Metadata.NamespaceProperty, intent.Metadata.Name, ring).Set(rate);

    public void RolledBack(DeploymentIntent intent) => rollbacks.WithLabels(intent.Metadata.NamespaceProperty).Inc();
}
