using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>A member the operator will not bind, with the message naming it (spec.members[i].name); Pending while its namespace is a workspace of the tenant not yet holding it.</summary>
public sealed record RefusedMember(int Index, WorkspaceMember Member, string Message, bool Pending = false);

/// <summary>
/// Which members may be bound. A ServiceAccount is whoever holds its namespace: a member
/// "ci/deployer" is only the tenant's when namespace ci is a workspace of the same tenant (or the
/// workspace's own namespace). Otherwise another tenant could create that workspace (or wait for it
/// to change hands) and mint the token. Admission refuses such a member; the reconciler, which never
/// trusts admission alone, binds nothing for it and removes its binding when the namespace changes hands.
/// </summary>
public static class WorkspaceMembers
{
    /// <summary>
    /// The ServiceAccount members of <paramref name="ws"/> whose namespace is not a workspace of its tenant.
    /// <paramref name="workspaceOf"/> finds a workspace by name; <paramref name="holdsNamespace"/> (the
    /// reconciler's) says whether that workspace really holds its namespace (owner reference to its UID).
    /// </summary>
    public static IReadOnlyList<RefusedMember> ForeignServiceAccounts(Workspace ws, Func<string, Workspace?> workspaceOf, Func<Workspace, bool>? holdsNamespace = null)
    {
        var refused = new List<RefusedMember>();
        var members = ws.Spec.Members ?? [];
        for (var i = 0; i < members.Count; i++)
        {
            if (ForeignServiceAccount(i, members[i], ws, workspaceOf, holdsNamespace) is { } message)
            {
                refused.Add(new RefusedMember(i, members[i], message, Pending: workspaceOf(KubernetesIdentities.NamespaceOf(members[i])!)?.Spec.Tenant == ws.Spec.Tenant));
            }
        }

        return refused;
    }

    /// <summary>
    /// Every member the reconciler will not bind: a ServiceAccount outside the tenant, and (stored while
    /// the webhook was absent) a "system:" identity or a name that reads as another (<see cref="SpecRules.UnreadableName"/>).
    /// </summary>
    public static IReadOnlyList<RefusedMember> Refused(Workspace ws, Func<string, Workspace?> workspaceOf, Func<Workspace, bool>? holdsNamespace = null)
    {
        var members = ws.Spec.Members ?? [];
        var refused = ForeignServiceAccounts(ws, workspaceOf, holdsNamespace).ToList();
        for (var i = 0; i < members.Count; i++)
        {
            if (refused.Any(r => r.Index == i) || members[i].Kind == "ServiceAccount") continue;
            if (NotBindable($"spec.members[{i}].name", members[i].Kind, members[i].Name) is { } why) refused.Add(new RefusedMember(i, members[i], why));
        }

        return refused.OrderBy(r => r.Index).ToList();
    }

    /// <summary>Why a User or Group (a member or a tenant owner) is never bound, or null: a "system:" identity, or a name that reads as another.</summary>
    public static string? NotBindable(string field, string kind, string name) =>
        SpecRules.SystemIdentity(field, kind, name) ?? (string.IsNullOrEmpty(name) || SpecRules.UnreadableName(name) is null ? null : SpecRules.SubjectName(field, name));

    /// <summary>Why member <paramref name="i"/> is a ServiceAccount outside the tenant, or null (any other kind, or a ServiceAccount of the tenant).</summary>
    public static string? ForeignServiceAccount(int i, WorkspaceMember member, Workspace ws, Func<string, Workspace?> workspaceOf, Func<Workspace, bool>? holdsNamespace = null)
    {
        if (KubernetesIdentities.NamespaceOf(member) is not { } ns || ns == ws.Metadata.Name) return null;
        var holder = workspaceOf(ns);
        var field = $"spec.members[{i}].name";
        if (holder is null || holder.Spec.Tenant != ws.Spec.Tenant)
        {
            return $"{field}: ServiceAccount \"{member.Name}\" lives in namespace \"{ns}\", which is not a workspace of tenant {ws.Spec.Tenant}; a ServiceAccount member must belong to one of the tenant's own workspaces";
        }

        return holdsNamespace is null || holdsNamespace(holder)
            ? null
            : $"{field}: ServiceAccount \"{member.Name}\": namespace \"{ns}\" is not (yet) held by workspace {ns} of tenant {ws.Spec.Tenant}; bound once it is";
    }
}
