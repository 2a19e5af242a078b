using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>DeploymentIntents: scope inside the tenant's, an immutable change request once assessed, a configured execution plane.</summary>
public sealed class DeploymentIntentAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only writes always pass (labels, finalizers, the garbage collector's foreground
        // deletion), even for an intent whose ring workspaces or tenant scopes have changed since.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        var intent = As<DeploymentIntent>(r.Object);
        var tenant = caches.TenantOfNamespace(r.Namespace);
        if (tenant is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];

        // A change request is what was scored and approved: once assessed its spec stays as it was.
        if (r.Operation == "UPDATE" && r.OldObject?["status"]?["phase"]?.GetValue<string>() is { } phase && phase != nameof(IntentPhase.Pending)
            && !JsonNode.DeepEquals(r.OldObject["spec"], r.Object["spec"]))
        {
            return [$"spec: is immutable once the intent has been assessed (phase {phase}): a DeploymentIntent is one change request; create a new one for another change"];
        }

        // Names derived from the intent's (its Rollouts, their labels): the name only on create (it cannot change).
        var names = DeploymentIntentResources.NameProblems(r.Operation == "CREATE" ? r.Name ?? intent.Metadata.Name : null, intent.Spec.TargetScope.Rings);
        var problems = DeploymentIntentResources.ScopeProblems(intent.Spec, tenant);
        // Cross-tenant references: a ring is the tenant's own workspaces only, checked here and again at reconcile.
        if (problems.Count == 0)
        {
            var name = tenant.Metadata.Name;
            var rings = DeploymentIntentResources.RingProblems(intent.Spec.TargetScope, name, await caches.WorkspacesOfTenantAsync(name, live: false, ct).ConfigureAwait(false));
            if (rings.Count > 0) rings = DeploymentIntentResources.RingProblems(intent.Spec.TargetScope, name, await caches.WorkspacesOfTenantAsync(name, live: true, ct).ConfigureAwait(false));
            problems.AddRange(rings);
        }

        // Issue 23: every dimension declared, the publisher scopes, the Application's scope.
        problems.AddRange(await IntentScopeAdmission.ProblemsAsync(r, intent, tenant, caches, ct).ConfigureAwait(false));

        foreach (var ring in intent.Spec.Schedule?.Keys ?? Enumerable.Empty<string>())
        {
            if (intent.Spec.TargetScope.Rings is { } rings && !rings.Contains(ring)) problems.Add($"spec.schedule.{ring}: ring is not in spec.targetScope.rings");
        }

        if (intent.Spec.Risk is { } risk)
        {
            foreach (var (name, value) in new[] { ("privilegeImpact", risk.PrivilegeImpact), ("supplyChainTrust", risk.SupplyChainTrust), ("blastRadius", risk.BlastRadius), ("changeComplexity", risk.ChangeComplexity), ("testEvidence", risk.TestEvidence) })
            {
                if (value is < 0 or > 1) problems.Add($"spec.risk.{name}: {value} is outside [0, 1]");
            }
        }

        if (!Durations.TryParse(intent.Spec.DriftCheckInterval, out var interval) || interval < TimeSpan.FromMinutes(1))
        {
            problems.Add($"spec.driftCheckInterval: \"{intent.Spec.DriftCheckInterval}\" is not a duration of at least 1m");
        }

        if (intent.Spec.ExecutionPlane?.Type == "http")
        {
            var plane = intent.Spec.ExecutionPlane;
            if (string.IsNullOrEmpty(plane.Url)) problems.Add("spec.executionPlane.url: required when type is http");
            else if (!UrlPrefixes.Allows(plane.Url, settings.Options.DeploymentIntent.PlaneUrlPrefixes))
            {
                problems.Add($"spec.executionPlane.url: {plane.Url} is not under ControlPlane:DeploymentIntent:PlaneUrlPrefixes: the operator calls only the planes the platform configured");
            }

            if (plane.CredentialsSecret is null) problems.Add("spec.executionPlane.credentialsSecret: required when type is http");
        }

        if (intent.Spec.EvidencePackRef is { } pack && (pack.ConfigMap is null) == (pack.Url is null))
        {
            problems.Add("spec.evidencePackRef: name exactly one of configMap and url");
        }

        // Evidence is mandatory, findings come from a scan report: new intents, and no update removes either.
        problems.AddRange(IntentEvidenceRules.Problems(intent.Spec, r.Operation == "UPDATE" && r.OldObject is not null ? As<DeploymentIntent>(r.OldObject).Spec : null, settings.Options.DeploymentIntent));
        return [.. names, .. problems];
    }
}
