using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Who may write a Workspace. RBAC lets tenant owners and WorkspaceAdmins reach the kind at all
/// (<see cref="SelfService"/>); here each write is narrowed: an owner to workspaces of the tenants
/// they own, a WorkspaceAdmin to spec.members of the workspaces they administer, everyone else to
/// what a platform administrator (who may update Tenants) does.
/// </summary>
public sealed partial class WorkspaceAdmission
{
    async Task<List<string>> SelfServiceAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE" or "DELETE") || settings.MayWriteGoverned(r.UserInfo)) return [];
        var user = r.UserInfo.Username;
        var groups = (IReadOnlyCollection<string>?)r.UserInfo.Groups ?? [];
        var named = new[] { r.OldObject, r.Object }.Select(o => o?["spec"]?["tenant"]?.GetValue<string>()).OfType<string>().Distinct().ToList();
        var owned = true;
        foreach (var name in named)
        {
            var tenant = await caches.TenantAsync(name, ct).ConfigureAwait(false);
            owned &= tenant is not null && SelfService.IsOwner(tenant, user, groups);
        }

        // Unlocking a prod workspace's deletion stays with the platform: an owner cannot lift the guard.
        var unlock = r.Operation != "DELETE" && AnnotationOf(r.Object, ApiGroup.AllowDeleteAnnotation) is { } value && value != AnnotationOf(r.OldObject, ApiGroup.AllowDeleteAnnotation);
        if (owned && named.Count > 0 && !unlock) return [];

        string refusal;
        if (owned && named.Count > 0)
        {
            refusal = $"metadata.annotations[{ApiGroup.AllowDeleteAnnotation}]: only a platform administrator may lift a workspace's deletion guard ({user} owns the tenant but may not)";
        }
        else if (r.Operation == "UPDATE" && r.OldObject is not null && SelfService.IsWorkspaceAdmin(As<Workspace>(r.OldObject), user, groups, caches.Workspaces.Get))
        {
            var others = SelfService.ChangesBesidesMembers(WithoutStamps(r.OldObject), WithoutStamps(r.Object));
            if (others.Count == 0) return [];
            refusal = $"{string.Join(", ", others)}: a WorkspaceAdmin ({user}) may change only spec.members of workspace {r.Name}";
        }
        else
        {
            var tenants = named.Count == 0 ? "(none)" : string.Join(", ", named);
            refusal = r.Operation == "UPDATE"
                ? $"spec.tenant: {user} is neither an owner of tenant {tenants} (its spec.owners) nor a WorkspaceAdmin of workspace {r.Name}, and may not change it"
                : $"spec.tenant: {user} is not an owner of tenant {tenants} (its spec.owners) and may not {r.Operation.ToLowerInvariant()} its workspaces";
        }

        // Anyone else is judged by RBAC alone, as before self-service: a platform administrator.
        return await caches.IsPlatformAdminAsync(r.UserInfo, ct).ConfigureAwait(false) ? [] : [refusal];
    }

    /// <summary>kubectl apply records what it applied here: a member list applied from Git changes it too.</summary>
    const string LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

    /// <summary>
    /// The object without the annotations only the webhook writes (the mutating pass just stamped them)
    /// and kubectl apply's bookkeeping, so a WorkspaceAdmin's `kubectl apply` of new members passes.
    /// </summary>
    static JsonObject? WithoutStamps(JsonObject? obj)
    {
        if (obj?.DeepClone() is not JsonObject copy) return null;
        if (copy["metadata"]?["annotations"] is JsonObject annotations)
        {
            foreach (var key in ApiGroup.StampedAnnotations.Append(LastAppliedAnnotation)) annotations.Remove(key);
            if (annotations.Count == 0) copy["metadata"]!.AsObject().Remove("annotations");
        }

        return copy;
    }
}
