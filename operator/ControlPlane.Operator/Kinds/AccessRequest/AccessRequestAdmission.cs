using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// AccessRequests: in a workspace; created by a person (the requester is whoever creates it, stamped by
/// <see cref="StampsAdmission"/>, so it cannot be forged); every rule of <see cref="AccessRequestRules"/>
/// under the tenant's access policy (role at most spec.accessPolicy.maxRole, duration at most its
/// maxDuration, a real justification). Once created nothing can stretch the grant: role, duration,
/// justification and ticket are immutable, and spec.revoke only goes from false to true.
/// </summary>
public sealed class AccessRequestAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    static readonly string[] ImmutableFields = ["role", "duration", "justification", "ticket"];

    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        // Deleting an AccessRequest ends its grant: the same rule as spec.revoke.
        if (r.Operation == "DELETE") return await GrantEndAdmission.ProblemAsync(r, GrantEnders.AccessRequest, caches, settings, ct).ConfigureAwait(false) is { } del ? [del] : [];
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only writes (finalizers) pass.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        if (r.Operation == "UPDATE")
        {
            return await GrantEndAdmission.UpdateProblemsAsync(r, ImmutableFields, GrantEnders.AccessRequest,
                "an AccessRequest is approved as it is; ask for other access with a new AccessRequest", caches, settings, ct).ConfigureAwait(false);
        }

        var tenant = caches.TenantOfNamespace(r.Namespace);
        if (tenant is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace: an AccessRequest belongs to a workspace"];
        var request = As<AccessRequest>(r.Object);
        var all = AccessRequestRules.Problems(request.Spec, tenant);
        if (AccessRequestRules.NameProblem(request.Metadata.Name) is { } badName) all.Insert(0, badName);
        if (KubernetesIdentities.IsServiceAccount(r.UserInfo.Username, r.UserInfo.Groups))
        {
            all.Add($"metadata.annotations[{ApiGroup.CreatedByAnnotation}]: {r.UserInfo.Username} is a ServiceAccount; only a person requests access just in time");
        }

        return all;
    }
}
