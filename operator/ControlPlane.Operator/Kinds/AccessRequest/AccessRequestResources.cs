using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The RoleBinding that carries an AccessRequest's grant, a pure function of the request and its recorded status.</summary>
public static class AccessRequestResources
{
    public const string RequestLabel = "controlplane.io/access-request";
    public const string ExpiresAtAnnotation = "controlplane.io/expires-at";

    /// <summary>
    /// Bound to the requester (a User) with the workspace ClusterRole asked for, owned by the request (so the
    /// garbage collector takes it with the request), labelled managed-by so the operator's RoleBinding cache
    /// sees it, and deliberately without the workspace label: the Workspace reconciler owns only its members' bindings.
    /// </summary>
    public static V1RoleBinding Binding(AccessRequest request, AccessRequestStatus status) => new()
    {
        ApiVersion = "rbac.authorization.k8s.io/v1",
        Kind = "RoleBinding",
        Metadata = new V1ObjectMeta
        {
            Name = AccessRequestPlan.BindingName(request.Metadata.Name),
            NamespaceProperty = request.Metadata.NamespaceProperty,
            Labels = new Dictionary<string, string>
            {
                [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue,
                [RequestLabel] = request.Metadata.Name,
            },
            Annotations = new Dictionary<string, string>
            {
                [ExpiresAtAnnotation] = status.ExpiresAt?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture) ?? "",
            },
            OwnerReferences = [ChildApplier.OwnerReference(request)],
        },
        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(request.Spec.Role) },
        Subjects = [new Rbacv1Subject { Kind = "User", Name = status.Requester ?? "", ApiGroup = "rbac.authorization.k8s.io" }],
    };

    /// <summary>The request a RoleBinding carries the grant of (its controlling owner), as a queue key; none for other bindings.</summary>
    public static IEnumerable<string> OwnerOf(V1RoleBinding rb) =>
        rb.Metadata.OwnerReferences?.Where(o => o.Controller == true && o.Kind == AccessRequest.KubeKind && o.ApiVersion == ApiGroup.ApiVersion)
            .Select(o => $"{rb.Metadata.NamespaceProperty}/{o.Name}") ?? [];

    /// <summary>Whether an existing binding is this request's (same owner uid): the operator never adopts or deletes another's.</summary>
    public static bool IsOurs(V1RoleBinding rb, AccessRequest request) =>
        rb.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Kind == AccessRequest.KubeKind && o.Uid == request.Metadata.Uid) == true;
}
