using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// WorkspaceNetworkPolicies: the same bounds the reconciler renders within (<see cref="WorkspaceNetworkPolicyResources.OutOfBounds"/>):
/// CIDRs inside the tenant's allowlists, workspace peers of the same tenant, no rule without peers.
/// </summary>
public sealed class WorkspaceNetworkPolicyAdmission(AdmissionCaches caches) : IAdmissionHandler
{
    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) => Task.FromResult(Validate(r));

    List<string> Validate(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only updates always pass: a policy degraded by a shrunk allowlist can still be labelled or annotated.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        var policy = As<WorkspaceNetworkPolicy>(r.Object);
        var tenant = caches.TenantOfNamespace(r.Namespace);
        if (tenant is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var problems = new List<string>();
        if (WorkspaceNetworkPolicyResources.NameProblem(r.Name ?? policy.Metadata.Name) is { } name) problems.Add(name);
        problems.AddRange(WorkspaceNetworkPolicyResources.OutOfBounds(policy.Spec, TenantNetworkBounds.Of(tenant, ws => caches.InTenant(ws, tenant.Metadata.Name))));
        problems.AddRange(WorkspaceNetworkPolicyResources.MalformedSelectors(policy.Spec));
        return problems;
    }
}
