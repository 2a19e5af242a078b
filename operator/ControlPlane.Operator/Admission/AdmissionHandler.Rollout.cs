using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Admission;

/// <summary>Rollouts: no confused deputy (the requester must be able to patch the Deployment in every ring workspace), and operator-only stamps.</summary>
public sealed partial class AdmissionHandler
{
    /// <summary>
    /// Annotations only the operator itself writes (on-behalf-of, on the Rollouts it makes for a
    /// DeploymentIntent): anyone else's value is dropped on create and restored on update. Empty for
    /// the operator's own requests.
    /// </summary>
    Dictionary<string, string?> OperatorStamps(AdmissionRequest r) =>
        r.Kind.Group != ApiGroup.Group || settings.OperatorUsernames.Contains(r.UserInfo.Username)
            ? []
            : new() { [ApiGroup.OnBehalfOfAnnotation] = r.Operation == "CREATE" ? null : AnnotationOf(r.OldObject, ApiGroup.OnBehalfOfAnnotation) };

    List<string> ValidateOperatorStamps(AdmissionRequest r) =>
        OperatorStamps(r).Where(kv => AnnotationOf(r.Object, kv.Key) != kv.Value)
            .Select(kv => $"metadata.annotations[{kv.Key}]: set only by the operator; it cannot be set or changed by {r.UserInfo.Username}")
            .ToList();

    /// <summary>
    /// The Rollout's requester must hold patch on the target Deployment in every workspace its rings
    /// reach (a SubjectAccessReview with the request's own user, groups and extra), on create and on
    /// every change of what is reviewed (not paused/abort). The reconciler asks again, for every author,
    /// before each ring starts. The operator's own Rollouts (for a DeploymentIntent) are checked there,
    /// for the intent's authors.
    /// </summary>
    async Task<List<string>> RequesterMayPatchRingsAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null || settings.OperatorUsernames.Contains(r.UserInfo.Username)) return [];
        if (r.Operation == "UPDATE"
            && JsonNode.DeepEquals(ApprovalPolicy.ApprovalRelevantSpec(Rollout.KubeKind, r.OldObject?["spec"]), ApprovalPolicy.ApprovalRelevantSpec(Rollout.KubeKind, r.Object["spec"]))) return [];
        var own = WorkspaceOfNamespace(r.Namespace);
        if (own is null) return [];
        var rollout = As<Rollout>(r.Object);
        var tenant = own.Spec.Tenant;
        var requester = new Requester(r.UserInfo.Username, r.UserInfo.Groups ?? []);
        var deployment = rollout.Spec.Target.Deployment;
        var answers = new Dictionary<string, AccessAnswer>(StringComparer.Ordinal);
        async Task<AccessAnswer> AskAsync(string ns)
        {
            if (answers.TryGetValue(ns, out var known)) return known;
            var check = new AccessCheck(ns, "apps", "deployments", "patch", deployment);
            return answers[ns] = await caches.Access.ReviewAsync(requester, check, ct, r.UserInfo.Uid, r.UserInfo.Extra).ConfigureAwait(false);
        }

        string What(string ns) => $"{requester.User} may not patch Deployment {deployment ?? "(any)"} in workspace {ns}: a Rollout acts only with its requester's rights";
        var problems = new List<string>();
        for (var i = 0; i < rollout.Spec.Rings.Count; i++)
        {
            var ring = rollout.Spec.Rings[i];
            var named = new HashSet<string>(StringComparer.Ordinal);
            for (var j = 0; j < (ring.Workspaces?.Count ?? 0); j++)
            {
                // Another tenant's or a missing workspace is refused by RingsInTenant already.
                if (caches.Workspaces.Get(ring.Workspaces![j]) is not { } ws || ws.Spec.Tenant != tenant) continue;
                var ns = RolloutResources.NamespaceOf(ws);
                named.Add(ns);
                if (!(await AskAsync(ns).ConfigureAwait(false)).Allowed) problems.Add($"spec.rings[{i}].workspaces[{j}]: {What(ns)}");
            }

            if (ring.Selector is null) continue;
            var view = RolloutResources.Resolve(new Ring { Name = ring.Name, Selector = ring.Selector }, tenant, caches.Workspaces.Get, caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant));
            foreach (var ns in view.Namespaces.Where(n => !named.Contains(n)))
            {
                if (!(await AskAsync(ns).ConfigureAwait(false)).Allowed) problems.Add($"spec.rings[{i}].selector: matches workspace {ns}, where {What(ns)}");
            }
        }

        return problems;
    }
}
