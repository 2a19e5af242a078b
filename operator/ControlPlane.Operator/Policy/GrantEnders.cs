using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Who may end a just-in-time grant early, for one kind: the flag that ends it, the workspace roles (besides its
/// author) whose holders may set it, and how a refusal names them.
/// </summary>
public sealed record GrantEnder(string Kind, string Flag, string AuthorWord, IReadOnlyList<string> Roles, string RolesText);

/// <summary>
/// RBAC lets every workspace member update AccessRequests and BreakGlasses (a requester must be able to revoke their own),
/// so it cannot say whose grant a member may end: this does. Setting the flag (false or absent to true), and deleting an
/// AccessRequest (which ends its grant too), is for the grant's author (the stamped created-by, never what the object
/// says now), a holder of one of the kind's roles in the workspace, the operator and cluster admins. Everyone else
/// would be ending a colleague's access, which is a denial of service the audit trail would only record afterwards.
/// </summary>
public static class GrantEnders
{
    public static readonly GrantEnder AccessRequest = new("AccessRequest", "revoke", "requester",
        [WorkspaceRoles.ClusterRoleName("WorkspaceAdmin")], "a WorkspaceAdmin of the workspace");

    /// <summary>A reviewer may end a break-glass it finds unjustified: the roles that review one (<see cref="BreakGlassReview.ReviewerRoles"/>).</summary>
    public static readonly GrantEnder BreakGlass = new("BreakGlass", "end", "invoker",
        BreakGlassReview.ReviewerRoles, "a WorkspaceAdmin, Approver or SecurityReviewer of the workspace");

    /// <summary>True when this update sets the flag: not true before, true after.</summary>
    public static bool Sets(GrantEnder e, JsonNode? oldObject, JsonNode? newObject) =>
        !IsTrue(oldObject?["spec"]?[e.Flag]) && IsTrue(newObject?["spec"]?[e.Flag]);

    /// <summary>The author stamped at creation (controlplane.io/created-by), read from the stored object, never from the incoming one.</summary>
    public static string? AuthorOf(JsonNode? storedObject) =>
        storedObject?["metadata"]?["annotations"]?[ControlPlane.Api.V1Alpha1.ApiGroup.CreatedByAnnotation] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>True when <paramref name="user"/> is the grant's author: they may end their own grant without any role.</summary>
    public static bool IsAuthor(string user, string? author) => !string.IsNullOrEmpty(author) && author == user;

    /// <summary>
    /// Why <paramref name="user"/> may not end the grant, or null. <paramref name="privileged"/>: the operator or a cluster
    /// admin (the caller knows who they are); <paramref name="holdsRole"/>: bound to one of <see cref="GrantEnder.Roles"/> in the workspace.
    /// </summary>
    public static string? Refusal(GrantEnder e, bool deleting, string name, string user, string? author, bool privileged, bool holdsRole)
    {
        if (privileged || holdsRole || IsAuthor(user, author)) return null;
        var what = deleting ? $"delete {e.Kind} {name} (which ends its grant)" : $"set spec.{e.Flag} on {e.Kind} {name}";
        return $"spec.{e.Flag}: {user} may not {what}: only its {e.AuthorWord} ({author ?? "unknown"}), {e.RolesText}, the operator or a cluster admin may end someone's grant";
    }

    static bool IsTrue(JsonNode? node) => node is JsonValue v && v.TryGetValue<bool>(out var b) && b;
}
