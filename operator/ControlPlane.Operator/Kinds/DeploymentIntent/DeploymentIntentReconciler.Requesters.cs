using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>No confused deputy on the http plane: the intent's authors must be able to change the application where a ring deploys.</summary>
public sealed partial class DeploymentIntentReconciler
{
    /// <summary>
    /// Why the intent's authors (creator and every spec editor, with their stamped groups) may not patch
    /// the application's Deployment in each of these workspaces (SubjectAccessReviews); null when all may.
    /// The kubernetes plane's Rollouts ask the same for the same authors before their ring starts.
    /// </summary>
    async Task<string?> RequesterDeniedAsync(Api.V1Alpha1.DeploymentIntent intent, IReadOnlyList<string> workspaces, CancellationToken ct)
    {
        var authors = Requesters.AuthorsOf(intent);
        if (authors.Count == 0) return $"no author is on record (metadata.annotations[{Api.V1Alpha1.ApiGroup.CreatedByAnnotation}], stamped by the admission webhook): the operator acts for nobody";
        var reviewer = new AccessReviewer(api);
        var denied = new List<string>();
        foreach (var name in workspaces)
        {
            var ns = caches.Workspaces.Get(name) is { } ws ? RolloutResources.NamespaceOf(ws) : name;
            foreach (var who in authors)
            {
                var answer = await reviewer.ReviewAsync(who, new AccessCheck(ns, "apps", "deployments", "patch", intent.Spec.Application), ct).ConfigureAwait(false);
                if (!answer.Allowed) denied.Add($"{who.User} may not patch Deployment {intent.Spec.Application} in workspace {ns}");
            }
        }

        return denied.Count == 0 ? null : string.Join("; ", denied);
    }
}
