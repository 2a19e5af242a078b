using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Exceptions: in a workspace; every rule of <see cref="ExceptionRules"/> (a finding id per entry, compensating
/// controls for High/Critical, a person as owner, a real justification), and spec.expiresAt in the future and
/// within the tenant's spec.exceptionPolicy.maxDuration, from now on create and from its creation on update.
/// </summary>
public sealed class ExceptionAdmission(AdmissionCaches caches, TimeProvider time) : IAdmissionHandler
{
    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return Task.FromResult<List<string>>([]);
        // Metadata-only writes (finalizers, labels) pass: the reconciler judges the spec again anyway.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return Task.FromResult<List<string>>([]);
        var tenant = caches.TenantOfNamespace(r.Namespace);
        if (tenant is null) return Task.FromResult<List<string>>([$"metadata.namespace: \"{r.Namespace}\" is not a workspace: an Exception belongs to a workspace"]);
        var exception = As<SecurityException>(r.Object);
        var now = time.GetUtcNow().UtcDateTime;
        var since = r.Operation == "CREATE" ? now : exception.Metadata.CreationTimestamp?.ToUniversalTime() ?? now;
        return Task.FromResult(ExceptionRules.Problems(exception.Spec, ExceptionRules.MaxDuration(tenant), since, now));
    }
}
