using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Issue 23 at admission: every dimension declared on a new intent, the requester and every recorded author
/// within the tenant's publisher scopes, and the target within its Application's scope. An Application not
/// there yet (or not approved yet) is no refusal: GitOps applies both together and the intent waits at
/// reconcile; only a definite violation (outside both the approved and the requested scope) is refused.
/// </summary>
public static class IntentScopeAdmission
{
    public static async Task<List<string>> ProblemsAsync(AdmissionRequest r, DeploymentIntent intent, Tenant tenant, AdmissionCaches caches, CancellationToken ct)
    {
        var problems = new List<string>();
        var target = intent.Spec.TargetScope;
        if (r.Operation == "CREATE")
        {
            if (string.IsNullOrEmpty(target.BusinessUnit)) problems.Add("spec.targetScope.businessUnit: required: every dimension of the target is declared (acquisition boundary, business unit, site class, rings)");
            if (string.IsNullOrEmpty(target.SiteClass)) problems.Add("spec.targetScope.siteClass: required: every dimension of the target is declared (acquisition boundary, business unit, site class, rings)");
        }

        // The requester as the API server authenticated them, then every author on record (the stamps already written).
        var authors = Requesters.AuthorsOf(intent).Where(a => a.User != r.UserInfo.Username)
            .Prepend(new Requester(r.UserInfo.Username, r.UserInfo.Groups ?? []));
        problems.AddRange(PublisherScopes.Problems(target, authors, tenant));

        // Names are per namespace: only the intent's own namespace is looked in (another tenant's Application is never found).
        var ns = r.Namespace ?? intent.Metadata.NamespaceProperty ?? "";
        if (await caches.LiveTargetAsync(ns, Application.KubeKind, intent.Spec.Application, ct).ConfigureAwait(false) is Application app
            && ApplicationPlan.Gate(intent.Spec, ns, app) is { Verdict: GateVerdict.Deny } gate)
        {
            problems.Add(gate.Message);
        }

        return problems;
    }
}
