using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The tenant's self-service ClusterRoleBindings (<see cref="SelfService"/>): owners, and its workspaces' WorkspaceAdmins.</summary>
public sealed partial class TenantReconciler
{
    public static readonly ResourceType ClusterRoleBindings = new("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false);

    public static IEnumerable<string> TenantOfBinding(V1ClusterRoleBinding binding) =>
        binding.Metadata.Labels?.TryGetValue(ApiGroup.TenantLabel, out var t) == true
        && binding.Metadata.Labels.ContainsKey(ApiGroup.SelfServiceLabel) ? [t] : [];

    /// <summary>Writes only on a difference (subjects or roleRef drifted, or missing): an unchanged tenant writes nothing.</summary>
    async Task ApplySelfServiceBindingsAsync(Tenant tenant, CancellationToken ct)
    {
        var own = workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name);
        foreach (var desired in SelfServiceBindings.Bindings(tenant, own))
        {
            var outcome = await children.ApplyAsync(ClusterRoleBindings, desired, bindings.Get(desired.Metadata.Name), ["roleRef", "subjects"], ct).ConfigureAwait(false);
            if (outcome == ApplyOutcome.Unchanged) continue;
            logger.LogInformation("tenant {Tenant}: ClusterRoleBinding {Binding} {Outcome}", tenant.Metadata.Name, desired.Metadata.Name, outcome);
            await events.NormalAsync(tenant, TenantReasons.SelfServiceAccess, $"ClusterRoleBinding {desired.Metadata.Name} {outcome.ToString().ToLowerInvariant()} ({desired.Subjects?.Count ?? 0} subject(s))", ct).ConfigureAwait(false);
        }
    }
}
