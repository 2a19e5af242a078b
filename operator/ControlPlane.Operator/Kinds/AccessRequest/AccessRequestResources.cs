using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The RoleBinding that carries an AccessRequest's grant, a pure function of the request and its recorded status.</summary>
public static class AccessRequestResources
{
    public const string RequestLabel = "controlplane.io/access-request";
    public const string ExpiresAtAnnotation = GrantBindings.ExpiresAtAnnotation;

    /// <summary>The <see cref="GrantBindings.Binding"/> of the requester with the role asked for, labelled with the request.</summary>
    public static V1RoleBinding Binding(AccessRequest request, AccessRequestStatus status) =>
        GrantBindings.Binding(request, AccessRequestPlan.BindingName(request.Metadata.Name), RequestLabel, request.Spec.Role, status.Requester, status.ExpiresAt);

    /// <summary>The request a RoleBinding carries the grant of (its controlling owner), as a queue key; none for other bindings.</summary>
    public static IEnumerable<string> OwnerOf(V1RoleBinding rb) => GrantBindings.OwnerOf(rb, AccessRequest.KubeKind);

    /// <summary>Whether an existing binding is this request's (same owner uid): the operator never adopts or deletes another's.</summary>
    public static bool IsOurs(V1RoleBinding rb, AccessRequest request) => GrantBindings.IsOurs(rb, request);
}
