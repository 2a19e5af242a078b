using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Rollouts: spec rules and a target fixed once started, rings inside the tenant, and no confused deputy
/// (the requester must be able to patch the Deployment in every ring workspace).
/// </summary>
public sealed class RolloutAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        [.. ValidateRollout(r), .. RingsInTenant(r), .. await RequesterMayPatchRingsAsync(r, ct).ConfigureAwait(false)];

    static List<string> ValidateRollout(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var problems = SpecRules.Rollout(As<Rollout>(r.Object).Spec);
        // The change rolled out is fixed once started: a new version is a new Rollout (its previous
        // images and ring history belong to this one).
        if (r.Operation == "UPDATE") problems.AddRange(Immutable(r.OldObject, r.Object, "target"));
        return problems;
    }

    List<string> RingsInTenant(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var own = caches.WorkspaceOfNamespace(r.Namespace);
        if (own is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var rollout = As<Rollout>(r.Object);
        var problems = new List<string>();
        for (var i = 0; i < rollout.Spec.Rings.Count; i++)
        {
            var ring = rollout.Spec.Rings[i];
            for (var j = 0; j < (ring.Workspaces?.Count ?? 0); j++)
            {
                if (!caches.InTenant(ring.Workspaces![j], own.Spec.Tenant))
                {
                    problems.Add($"spec.rings[{i}].workspaces[{j}]: \"{ring.Workspaces[j]}\" is not a workspace of tenant {own.Spec.Tenant}");
                }
            }

            // Selectors are evaluated over the tenant's own workspaces only; one naming another tenant is a mistake or an attempt.
            if (ring.Selector?.MatchLabels?.TryGetValue(ApiGroup.TenantLabel, out var t) == true && t != own.Spec.Tenant)
            {
                problems.Add($"spec.rings[{i}].selector.matchLabels.{ApiGroup.TenantLabel}: \"{t}\" is not this rollout's tenant {own.Spec.Tenant}");
            }

            foreach (var e in ring.Selector?.MatchExpressions ?? [])
            {
                if (e.Key == ApiGroup.TenantLabel && e.Operator == "In" && (e.Values ?? []).Any(v => v != own.Spec.Tenant))
                {
                    problems.Add($"spec.rings[{i}].selector.matchExpressions: {ApiGroup.TenantLabel} may only name tenant {own.Spec.Tenant}");
                }
            }
        }

        return problems;
    }

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
            && JsonNode.DeepEquals(ApprovableKinds.Rollout.ContentOf(r.OldObject?["spec"]), ApprovableKinds.Rollout.ContentOf(r.Object["spec"]))) return [];
        var own = caches.WorkspaceOfNamespace(r.Namespace);
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
