using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>The admission side of <see cref="GrantEnders"/>: who is privileged and who holds a role, asked only when the caller is not the grant's author.</summary>
public static class GrantEndAdmission
{
    /// <summary>
    /// An update of a grant's spec (AccessRequest, BreakGlass): <paramref name="immutable"/> fields unchanged, the end flag
    /// only false -> true (<see cref="AdmissionChecks.GrantUpdateProblems"/>), and set only by someone who may end it.
    /// </summary>
    public static async Task<List<string>> UpdateProblemsAsync(AdmissionRequest r, string[] immutable, GrantEnder ender, string hint,
        AdmissionCaches caches, AdmissionSettings settings, CancellationToken ct)
    {
        var problems = AdmissionChecks.GrantUpdateProblems(r, immutable, ender.Flag, hint);
        if (await ProblemAsync(r, ender, caches, settings, ct).ConfigureAwait(false) is { } ending) problems.Add(ending);
        return problems;
    }

    /// <summary>Why this request may not end the grant (set the flag on UPDATE, or DELETE), or null; null too when the request ends nothing.</summary>
    public static async Task<string?> ProblemAsync(AdmissionRequest r, GrantEnder ender, AdmissionCaches caches, AdmissionSettings settings, CancellationToken ct)
    {
        var deleting = r.Operation == "DELETE";
        if (!deleting && !(r.Operation == "UPDATE" && GrantEnders.Sets(ender, r.OldObject, r.Object))) return null;
        var user = r.UserInfo.Username;
        var author = GrantEnders.AuthorOf(r.OldObject);
        // The namespace controller and garbage collector delete with the workspace: MayWriteGoverned names them with the operator and cluster admins.
        if (GrantEnders.IsAuthor(user, author) || settings.MayWriteGoverned(r.UserInfo)) return null;
        var holds = await caches.HoldsRoleAsync(r.Namespace ?? "", user, r.UserInfo.Groups ?? [], ender.Roles, ct).ConfigureAwait(false);
        return GrantEnders.Refusal(ender, deleting, r.Name ?? r.OldObject?["metadata"]?["name"]?.GetValue<string>() ?? "", user, author, privileged: false, holds);
    }
}
