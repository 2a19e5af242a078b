using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// DeploymentIntent metrics: CAB approval time, intents by phase, ring success rate, rollbacks, drift and remediations, time to compliance, connector errors. One per
/// process (the registry's); each leadership term points <see cref="Source"/> at its own cache. The
/// intent's namespace is the label workspace: a scrape's target labels take `namespace`.
/// </summary>
public sealed class IntentMetrics
{
    readonly Histogram approvalSeconds;
    readonly Gauge ringSuccessRate;
    readonly Counter rollbacks;
    // Drift, remediation, time to compliance and connector errors (issue 23).
    readonly Counter driftFindings;
    readonly Counter remediations;
    readonly Histogram timeToCompliance;
    readonly Counter planeErrors;

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
        driftFindings = f.CreateCounter("controlplane_deployment_drift_findings_total", "Drift found on an execution plane by a DeploymentIntent's check, by type (version_mismatch, assignment_missing, scope_mismatch).",
            new CounterConfiguration { LabelNames = ["tenant", "workspace", "type"] });
        remediations = f.CreateCounter("controlplane_deployment_remediations_total", "Remediations asked of an execution plane (rollback, uninstall, redeploy) and whether the plane accepted them (succeeded, failed).",
            new CounterConfiguration { LabelNames = ["tenant", "workspace", "type", "outcome"] });
        timeToCompliance = f.CreateHistogram("controlplane_deployment_time_to_compliance_seconds", "Time from a DeploymentIntent ring's start to its completion (the plane's success and the soak).",
            new HistogramConfiguration { LabelNames = ["ring"], Buckets = Histogram.ExponentialBuckets(60, 2, 14) });
        planeErrors = f.CreateCounter("controlplane_execution_plane_errors_total", "Execution plane (connector) errors by class: TRANSIENT, PERMANENT, POLICY_VIOLATION, or unavailable (no answer: timeout, connection refused or lost).",
            new CounterConfiguration { LabelNames = ["plane", "class", "code"] });
        var driftUnremediated = f.CreateGauge("controlplane_deployment_drift_unremediated", "DeploymentIntents whose last drift check found drift (status.drift set): not back in sync yet.");
        var byPhase = f.CreateGauge("controlplane_deployment_intents", "DeploymentIntents by phase.", new GaugeConfiguration { LabelNames = ["phase"] });
        IntentPhase[] phases = [IntentPhase.Pending, IntentPhase.RiskAssessed, IntentPhase.ScopeValidated, IntentPhase.AwaitingApproval, IntentPhase.InProgress,
            IntentPhase.Completed, IntentPhase.Failed, IntentPhase.RolledBack, IntentPhase.Denied];
        metrics.Registry.AddBeforeCollectCallback(() =>
        {
            var counts = Source().GroupBy(i => i.Status?.Phase ?? IntentPhase.Pending).ToDictionary(g => g.Key, g => g.Count());
            foreach (var phase in phases) byPhase.WithLabels(phase.ToString()).Set(counts.GetValueOrDefault(phase));
            driftUnremediated.Set(Source().Count(i => i.Status?.Drift is not null));
        });
    }

    public void ObserveApproval(DeploymentIntent intent, DateTime approvedAt)
    {
        if (intent.Metadata.CreationTimestamp is { } created) approvalSeconds.Observe(Math.Max(0, (approvedAt - created.ToUniversalTime()).TotalSeconds));
    }

    public void RingSuccessRate(DeploymentIntent intent, string ring, double rate) =>
        ringSuccessRate.WithLabels(intent.Metadata.NamespaceProperty, intent.Metadata.Name, ring).Set(rate);

    public void RolledBack(DeploymentIntent intent) => rollbacks.WithLabels(intent.Metadata.NamespaceProperty).Inc();

    public void DriftFound(DeploymentIntent intent, string tenant, string type) => driftFindings.WithLabels(tenant, intent.Metadata.NamespaceProperty, type).Inc();

    public void Remediated(DeploymentIntent intent, string tenant, string type, bool succeeded) =>
        remediations.WithLabels(tenant, intent.Metadata.NamespaceProperty, type, succeeded ? "succeeded" : "failed").Inc();

    public void RingCompleted(string ring, DateTime startedAt, DateTime completedAt) => timeToCompliance.WithLabels(ring).Observe(Math.Max(0, (completedAt - startedAt).TotalSeconds));

    /// <summary>One connector error; a plane that did not answer at all is class unavailable.</summary>
    public void PlaneError(string plane, Adapters.PlaneError e) =>
        planeErrors.WithLabels(plane, e.NoAnswer ? "unavailable" : Adapters.HttpPlaneErrors.WireName(e.Class), e.Code).Inc();
}
