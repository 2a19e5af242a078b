using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Self-service for tenants: owners create, edit and delete their tenant's Workspaces; WorkspaceAdmins
/// edit the members of their own Workspace. RBAC opens the verbs on the cluster-scoped Workspace kind
/// (two static ClusterRoles, bound per tenant by the Tenant reconciler); the validating webhook narrows
/// every write to the requester's own tenant or workspace (<see cref="Webhooks.AdmissionHandler"/>).
/// </summary>
public static class SelfService
{
    public const string TenantOwnerRole = "controlplane:tenant-owner";
    public const string MemberManagerRole = "controlplane:workspace-member-manager";

    /// <summary>The label naming the tenant a self-service ClusterRoleBinding belongs to.</summary>
    public const string BindingLabel = "controlplane.io/self-service";

    static readonly string[] Read = ["get", "list", "watch"];

    public static IReadOnlyList<V1ClusterRole> ClusterRoles() =>
    [
        Role(TenantOwnerRole, "tenant-owner",
        [
            new() { ApiGroups = [ApiGroup.Group], Resources = ["workspaces"], Verbs = [.. Read, "create", "update", "patch", "delete"] },
            // Their own Tenant by name (quota, usage); no list: other tenants' owners and networks are not theirs to see.
            new() { ApiGroups = [ApiGroup.Group], Resources = ["tenants"], Verbs = ["get"] },
        ]),
        Role(MemberManagerRole, "workspace-member-manager",
        [
            new() { ApiGroups = [ApiGroup.Group], Resources = ["workspaces"], Verbs = [.. Read, "update", "patch"] },
        ]),
    ];

    static V1ClusterRole Role(string name, string label, List<V1PolicyRule> rules) => new()
    {
        ApiVersion = "rbac.authorization.k8s.io/v1",
        Kind = "ClusterRole",
        Metadata = new V1ObjectMeta
        {
            Name = name,
            Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "controlplane", ["controlplane.io/self-service-role"] = label },
        },
        Rules = rules,
    };

    public static string OwnersBindingName(string tenant) => $"controlplane:tenant:{tenant}:owners";

    public static string MemberManagersBindingName(string tenant) => $"controlplane:tenant:{tenant}:workspace-admins";

    /// <summary>
    /// The tenant's two ClusterRoleBindings: its owners to <see cref="TenantOwnerRole"/>, and every
    /// WorkspaceAdmin member of its workspaces to <see cref="MemberManagerRole"/>. Both exist even when
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
        return [Binding(tenant, OwnersBindingName(tenant.Metadata.Name), TenantOwnerRole, owners), Binding(tenant, MemberManagersBindingName(tenant.Metadata.Name), MemberManagerRole, admins)];
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
                [WorkspaceResources.ManagedBy] = WorkspaceResources.ManagedByValue,
                [WorkspaceResources.TenantLabel] = tenant.Metadata.Name,
                [BindingLabel] = role == TenantOwnerRole ? "owners" : "workspace-admins",
            },
            OwnerReferences = [ChildApplier.OwnerReference(tenant)],
        },
        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = role },
        // No subjects is null, not []: the API server stores an empty list as absent, and a [] would never match it.
        Subjects = subjects.Distinct().OrderBy(s => s.Kind, StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal)
            .Select(s => WorkspaceResources.Subject(s.Kind, s.Name)).ToList() is { Count: > 0 } list ? list : null,
    };

    /// <summary>Whether a subject list (a tenant's owners, a workspace's members) names the requester by user, group or service account.</summary>
    public static bool Names(string kind, string name, string user, IReadOnlyCollection<string> groups) => kind switch
    {
        "User" => name == user,
        "Group" => groups.Contains(name),
        "ServiceAccount" => "system:serviceaccount:" + name.Replace('/', ':') == user,
        _ => false,
    };

    public static bool IsOwner(Tenant tenant, string user, IReadOnlyCollection<string> groups) =>
        (tenant.Spec.Owners ?? []).Any(o => Names(o.Kind, o.Name, user, groups));

    /// <summary>Whether the requester is a WorkspaceAdmin member; a ServiceAccount outside the tenant's workspaces (<paramref name="workspaceOf"/>) is not.</summary>
    public static bool IsWorkspaceAdmin(Workspace ws, string user, IReadOnlyCollection<string> groups, Func<string, Workspace?>? workspaceOf = null) =>
        (ws.Spec.Members ?? []).Select((m, i) => (m, i)).Any(x => x.m.Role == "WorkspaceAdmin" && Names(x.m.Kind, x.m.Name, user, groups)
                                                                 && (workspaceOf is null || WorkspaceMembers.ForeignServiceAccount(x.i, x.m, ws, workspaceOf) is null));

    /// <summary>
    /// What a WorkspaceAdmin changed besides spec.members (empty when only members changed): the rest of
    /// the spec, labels, annotations and finalizers stay as they were. Named by field for the refusal.
    /// </summary>
    public static List<string> ChangesBesidesMembers(JsonObject? before, JsonObject? after)
    {
        var changed = new List<string>();
        var oldSpec = before?["spec"]?.DeepClone() as JsonObject ?? [];
        var newSpec = after?["spec"]?.DeepClone() as JsonObject ?? [];
        foreach (var key in oldSpec.Select(kv => kv.Key).Union(newSpec.Select(kv => kv.Key)).Where(k => k != "members").Order(StringComparer.Ordinal))
        {
            if (!JsonNode.DeepEquals(oldSpec[key], newSpec[key])) changed.Add("spec." + key);
        }

        foreach (var key in new[] { "labels", "annotations", "finalizers", "ownerReferences" })
        {
            if (!JsonNode.DeepEquals(before?["metadata"]?[key], after?["metadata"]?[key])) changed.Add("metadata." + key);
        }

        return changed;
    }

    /// <summary>Members added and removed between two specs, as "Kind/name:Role" (for the audit trail).</summary>
    public static (List<string> Added, List<string> Removed) MemberDiff(IEnumerable<WorkspaceMember>? before, IEnumerable<WorkspaceMember>? after)
    {
        static HashSet<string> Keys(IEnumerable<WorkspaceMember>? members) => (members ?? []).Select(m => $"{m.Kind}/{m.Name}:{m.Role}").ToHashSet(StringComparer.Ordinal);
        var old = Keys(before);
        var now = Keys(after);
        return (now.Except(old).Order(StringComparer.Ordinal).ToList(), old.Except(now).Order(StringComparer.Ordinal).ToList());
    }
}
