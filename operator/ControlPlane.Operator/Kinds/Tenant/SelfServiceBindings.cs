using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The objects a tenant's self-service grants are made of (the rules are <see cref="SelfService"/>'s).</summary>
public static class SelfServiceBindings
{
    /// <summary>
    /// The tenant's two ClusterRoleBindings: its owners to <see cref="SelfService.TenantOwnerRole"/>, and every
    /// WorkspaceAdmin member of its workspaces to <see cref="SelfService.MemberManagerRole"/>. Both exist even when
    /// empty, so a removed last owner or admin loses the binding's subject, not a stale binding.
    /// </summary>
    public static IReadOnlyList<V1ClusterRoleBinding> Bindings(Tenant tenant, IEnumerable<Workspace> workspaces)
    {
        var owners = (tenant.Spec.Owners ?? []).Where(o => WorkspaceMembers.NotBindable("spec.owners", o.Kind, o.Name) is null).Select(o => (o.Kind, o.Name));
        var own = workspaces.Where(w => w.Spec.Tenant == tenant.Metadata.Name).ToList();
        // A ServiceAccount member outside the tenant's own workspaces is no admin of anything (WorkspaceMembers).
        var names = own.ToDictionary(w => w.Metadata.Name, StringComparer.Ordinal);
        var admins = own.SelectMany(w => (w.Spec.Members ?? []).Select((m, i) => (Workspace: w, Member: m, Index: i)))
            .Where(x => x.Member.Role == "WorkspaceAdmin" && WorkspaceMembers.ForeignServiceAccount(x.Index, x.Member, x.Workspace, n => names.GetValueOrDefault(n)) is null
                        && (x.Member.Kind == "ServiceAccount" || WorkspaceMembers.NotBindable("", x.Member.Kind, x.Member.Name) is null))
            .Select(x => (x.Member.Kind, x.Member.Name));
        return [Binding(tenant, SelfService.OwnersBindingName(tenant.Metadata.Name), SelfService.TenantOwnerRole, owners), Binding(tenant, SelfService.MemberManagersBindingName(tenant.Metadata.Name), SelfService.MemberManagerRole, admins)];
    }

    static V1ClusterRoleBinding Binding(Tenant tenant, string name, string role, IEnumerable<(string Kind, string Name)> subjects) => new()
    {
        ApiVersion = "rbac.authorization.k8s.io/v1",
        Kind = "ClusterRoleBinding",
        Metadata = new V1ObjectMeta
        {
            Name = name,
            Labels = new Dictionary<string, string>
            {
                [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue,
                [ApiGroup.TenantLabel] = tenant.Metadata.Name,
                [ApiGroup.SelfServiceLabel] = role == SelfService.TenantOwnerRole ? "owners" : "workspace-admins",
            },
            OwnerReferences = [ChildApplier.OwnerReference(tenant)],
        },
        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = role },
        // No subjects is null, not []: the API server stores an empty list as absent, and a [] would never match it.
        Subjects = subjects.Distinct().OrderBy(s => s.Kind, StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal)
            .Select(s => WorkspaceResources.Subject(s.Kind, s.Name)).ToList() is { Count: > 0 } list ? list : null,
    };
}
