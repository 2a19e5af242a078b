using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>Open rollback strategies: spec.rollbackPlan.strategy must be one the intent's plane advertises, checked when the intent is decided.</summary>
public sealed partial class DeploymentIntentReconciler
{
    /// <summary>
    /// Deny (naming spec.rollbackPlan.strategy and what the plane supports) when the plane does not advertise the
    /// strategy; asked only while the decision is being taken and nothing else denies. A plane that cannot answer
    /// its capabilities is PlaneUnavailable and the pass is retried: the check is never skipped.
    /// </summary>
    async Task<IntentDecision> WithRollbackStrategyAsync(IntentPass pass, IntentDecision decision, IReadOnlyList<string> scopeProblems, CancellationToken ct)
    {
        var status = pass.Status;
        var deciding = status.Decision is null || status.Phase is IntentPhase.Pending or IntentPhase.RiskAssessed;
        if (!deciding || decision.Decision == "Deny" || scopeProblems.Count > 0) return decision;
        var strategy = pass.Intent.Spec.RollbackPlan?.Strategy ?? "previous-version";
        var plane = await planes.ForAsync(pass.Intent, ct).ConfigureAwait(false);
        PlaneCapabilities capabilities;
        try
        {
            capabilities = await plane.CapabilitiesAsync(ct).ConfigureAwait(false);
        }
        catch (PlaneError e) when (e.Class != PlaneErrorClass.PolicyViolation)
        {
            // A refusal to say what it supports is not an answer: retried, never taken as "anything goes".
            throw new PlaneError(PlaneErrorClass.Transient, e.Class == PlaneErrorClass.Transient ? e.Code : Adapters.HttpPlaneErrors.ServiceUnavailable,
                $"capabilities (GET capabilities) unanswered, so spec.rollbackPlan.strategy cannot be checked: {e.Detail}", e.RetryAfter) { NoAnswer = e.NoAnswer };
        }

        return Policy.RollbackStrategies.Problem(strategy, capabilities.RollbackStrategies, PlaneType(pass.Intent)) is { } problem
            ? new IntentDecision("Deny", IntentReasons.RollbackStrategyUnsupported, problem)
            : decision;
    }

    /// <summary>How a failed ring is rolled back under the plan's strategy: the action, the version and the strategy named to the plane.</summary>
    static (string Action, string? Version, string? Strategy) RollbackOf(DeploymentIntent intent, RollbackPlan plan, string ring, IEnumerable<DeploymentIntent> sameApplication)
    {
        var (action, version) = plan.Strategy switch
        {
            "specific-version" => (PlaneRemediation.Rollback, plan.RollbackVersion),
            "previous-version" when PlaneType(intent) == "http" => DeploymentIntentResources.PreviousVersionRollback(intent, ring, sameApplication),
            "previous-version" => (PlaneRemediation.Rollback, null),
            // A plane-specific strategy (one the plane advertised): the plane does it its own way, told the plan's version if any.
            _ => (PlaneRemediation.Rollback, plan.RollbackVersion),
        };
        return (action, version, plan.Strategy);
    }

    /// <summary>A remediation through the plane, counted by type and outcome (controlplane_deployment_remediations_total).</summary>
    async Task RemediateCountedAsync(IntentPass pass, IExecutionPlane plane, PlaneDeployment deployment, string action, string? version, string? strategy, CancellationToken ct)
    {
        try
        {
            await plane.RemediateAsync(deployment, action, version, strategy, ct).ConfigureAwait(false);
        }
        catch (PlaneError)
        {
            metrics.Remediated(pass.Intent, pass.Tenant, action, succeeded: false);
            throw;
        }

        metrics.Remediated(pass.Intent, pass.Tenant, action, succeeded: true);
    }
}
