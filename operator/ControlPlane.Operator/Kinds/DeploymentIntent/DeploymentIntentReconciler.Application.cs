using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The two subset checks of issue 23 at reconcile: the target within every author's publisher scope (the
/// Tenant's spec.publishers) and within the approved scope of the intent's Application (read from the cache,
/// in the intent's own namespace only: names are per namespace, so another tenant's Application is never found).
/// </summary>
public sealed partial class DeploymentIntentReconciler
{
    /// <summary>The Application gate for the intent now (<see cref="ApplicationPlan.Gate"/>).</summary>
    ApplicationGate GateOf(DeploymentIntent intent) =>
        ApplicationPlan.Gate(intent.Spec, intent.Metadata.NamespaceProperty, caches.Applications.Get($"{intent.Metadata.NamespaceProperty}/{intent.Spec.Application}"));

    /// <summary>Every author (creator and spec editors, with their recorded groups) outside the tenant's publisher scopes, naming the dimension and value.</summary>
    static List<string> PublisherProblems(DeploymentIntent intent, Tenant tenant) =>
        PublisherScopes.Problems(intent.Spec.TargetScope, Requesters.AuthorsOf(intent), tenant);

    /// <summary>Why a ring may not start now as far as scope goes (a publisher lost, the Application narrowed or not approved), or null with the version checked against.</summary>
    (string Reason, string Message)? ScopeHold(DeploymentIntent intent, Tenant tenant, string ring, out int? version)
    {
        var gate = GateOf(intent);
        version = gate.Version;
        if (PublisherProblems(intent, tenant) is { Count: > 0 } publisher)
        {
            return (IntentReasons.OutsidePublisherScope, $"ring {ring} does not start: {string.Join("; ", publisher)}");
        }

        return gate.Verdict == GateVerdict.Allow ? null : (gate.Reason, $"ring {ring} does not start: {gate.Message}");
    }
}
