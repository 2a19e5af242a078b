using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// BreakGlasses: in a workspace whose tenant declares spec.accessPolicy.breakGlass (else break-glass is disabled);
/// invoked by a person the policy names by user or group (the webhook sees the caller's groups and stamps which entry
/// matched, <see cref="StampsAdmission"/>); the declared emergency role only, for at most the policy's maxDuration
/// (never over 1h), with a real justification and an incident; not while another BreakGlass of the workspace is
/// active or just invoked (the cache; the reconciler refuses a second one again). Once created nothing can stretch it:
/// role, duration, justification and incident are immutable, and spec.end only goes from false to true.
/// </summary>
public sealed class BreakGlassAdmission(AdmissionCaches caches, TimeProvider time, AdmissionSettings settings) : IAdmissionHandler
{
    static readonly string[] ImmutableFields = ["role", "duration", "justification", "incident"];

    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only writes (finalizers) pass; the stamps are StampsAdmission's.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        if (r.Operation == "UPDATE")
        {
            return await GrantEndAdmission.UpdateProblemsAsync(r, ImmutableFields, GrantEnders.BreakGlass,
                "a BreakGlass is granted as it was invoked; invoke again with a new BreakGlass", caches, settings, ct).ConfigureAwait(false);
        }

        var tenant = caches.TenantOfNamespace(r.Namespace);
        if (tenant is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace: a BreakGlass belongs to a workspace"];
        var b = As<BreakGlass>(r.Object);
        var all = BreakGlassRules.Problems(b.Spec, tenant);
        if (BreakGlassRules.NameProblem(b.Metadata.Name) is { } badName) all.Insert(0, badName);
        var user = r.UserInfo.Username;
        if (KubernetesIdentities.IsServiceAccount(user, r.UserInfo.Groups))
        {
            all.Add($"metadata.annotations[{ApiGroup.CreatedByAnnotation}]: {user} is a ServiceAccount; only a person invokes break-glass");
        }
        else if (BreakGlassRules.Disabled(tenant) is null && BreakGlassRules.InvokerMatch(BreakGlassRules.PolicyOf(tenant), user, r.UserInfo.Groups) is null)
        {
            all.Add($"spec.accessPolicy.breakGlass.invokers: {user} is named neither as a user nor through a group by tenant {tenant.Metadata.Name}'s break-glass policy; only the invokers it names may break the glass");
        }

        // The cache answers at once; two created within its lag are settled by the reconciler (the oldest wins).
        var now = time.GetUtcNow().UtcDateTime;
        if (caches.BreakGlasses.InNamespace(r.Namespace ?? "").FirstOrDefault(o => o.Metadata.Name != b.Metadata.Name
                && (BreakGlassPlan.InForce(o, now) || BreakGlassPlan.Undecided(o))) is { } other)
        {
            all.Add($"metadata.namespace: BreakGlass {other.Metadata.Name} is already active in workspace {r.Namespace} (invoker {BreakGlassPlan.InvokerOf(other)}): one break-glass at a time; end it (spec.end) first");
        }

        return all;
    }
}
