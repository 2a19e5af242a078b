using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
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
