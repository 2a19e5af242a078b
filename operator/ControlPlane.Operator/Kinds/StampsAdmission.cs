using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The stamps every controlplane.io kind gets, ahead of its own admission: who created it, who edited
/// its spec (and their groups), on an Approval the approver's groups and its target's content hash, and
/// the operator-only on-behalf-of. Only the API server knows who asked: a requester's value is replaced
/// (mutating) and a stamp that is not what the webhook stamps is refused (validating).
/// </summary>
public sealed class StampsAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    static string Escape(string segment) => segment.Replace("~", "~0").Replace("/", "~1");

    public async Task MutateAsync(AdmissionRequest r, AdmissionPatch patch, CancellationToken ct)
    {
        var ops = patch.Operations;
        var annotations = r.Object!["metadata"]?["annotations"] as JsonObject;
        void SetAnnotation(string key, string? value)
        {
            if (value is null)
            {
                if (annotations?.ContainsKey(key) != true) return;
                ops.Add(new JsonObject { ["op"] = "remove", ["path"] = "/metadata/annotations/" + Escape(key) });
                annotations.Remove(key);
            }
            else if (annotations is null)
            {
                ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/metadata/annotations", ["value"] = new JsonObject { [key] = value } });
                annotations = new JsonObject { [key] = value };
            }
            else
            {
                ops.Add(new JsonObject { ["op"] = annotations.ContainsKey(key) ? "replace" : "add", ["path"] = "/metadata/annotations/" + Escape(key), ["value"] = value });
                annotations[key] = value;
            }
        }

        // Whatever the requester wrote in a stamped annotation is overwritten on create and restored on
        // update: only the API server knows who asked. Not silently: the requester gets a warning.
        foreach (var (key, value) in Stamps(r, await TargetContentHashAsync(r, ct).ConfigureAwait(false), InvokerMatch(r)).Concat(OperatorStamps(r)))
        {
            var supplied = AnnotationOf(r.Object, key);
            if (supplied == value) continue;
            if (r.Operation == "CREATE" ? supplied is not null : supplied != AnnotationOf(r.OldObject, key))
            {
                patch.Warnings.Add($"metadata.annotations[{key}]: set only by the admission webhook; the value supplied was {(r.Operation == "CREATE" ? "replaced" : "restored")}");
            }

            SetAnnotation(key, value);
        }
    }

    /// <summary>Defence in depth behind the mutating webhook: stamps exist on our own kinds only (the mutating webhook sees nothing else).</summary>
    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        r.Operation is "CREATE" or "UPDATE" && r.Kind.Group == ApiGroup.Group
            ? [.. ValidateStamps(r, await TargetContentHashAsync(r, ct).ConfigureAwait(false), InvokerMatch(r)), .. ValidateOperatorStamps(r)]
            : [];

    /// <summary>
    /// The stamped annotations an object must carry once admitted (null: absent). On create: its creator,
    /// and on an Approval the approver's groups. On update: what it had, except that a change of an
    /// approvable kind's spec makes the requester its last spec editor. Status writes go to the status
    /// subresource, which the webhook rules (resources "*", no "*/*") do not match: they stamp nothing.
    /// A change of a Rollout's paused/abort alone is a control action: it makes nobody an author.
    /// On an Approval's create, its target's content hash as admission sees it (<see cref="TargetContentHashAsync"/>).
    /// </summary>
    /// On a BreakGlass's create, which entry of the tenant's break-glass invokers names the caller (<see cref="InvokerMatch"/>).
    public static Dictionary<string, string?> Stamps(AdmissionRequest r, string? targetContentHash = null, string? invokerMatch = null)
    {
        // An approvable kind (IApprovableKind): whoever changes its content is an author of that generation.
        var approvable = ApprovableKinds.Of(r.Kind.Kind);
        if (r.Operation == "CREATE")
        {
            return new()
            {
                [ApiGroup.CreatedByAnnotation] = r.UserInfo.Username,
                [ApiGroup.LastSpecEditorAnnotation] = null,
                [ApiGroup.SpecEditorsAnnotation] = null,
                [ApiGroup.ApproverGroupsAnnotation] = r.Kind.Kind == "Approval" ? ApprovalPolicy.FormatGroups(r.UserInfo.Groups) : null,
                [ApiGroup.TargetContentHashAnnotation] = r.Kind.Kind == "Approval" ? targetContentHash : null,
                [ApiGroup.AuthorGroupsAnnotation] = approvable is not null ? Requesters.WithAuthorGroups(null, r.UserInfo.Username, r.UserInfo.Groups) : null,
                [ApiGroup.BreakGlassInvokerMatchAnnotation] = r.Kind.Kind == BreakGlass.KubeKind ? invokerMatch : null,
            };
        }

        var stamps = ApiGroup.StampedAnnotations.ToDictionary(k => k, k => AnnotationOf(r.OldObject, k));
        // On a Workspace it names who last changed the members, for the audit trail.
        if ((approvable is not null || r.Kind.Kind == "Workspace")
            && !JsonNode.DeepEquals(ApprovalPolicy.ApprovalRelevantSpec(r.Kind.Kind, r.OldObject?["spec"]), ApprovalPolicy.ApprovalRelevantSpec(r.Kind.Kind, r.Object?["spec"])))
        {
            stamps[ApiGroup.LastSpecEditorAnnotation] = r.UserInfo.Username;
            // Every editor stays an author: a later edit by someone else does not clear an earlier one's.
            if (approvable is not null) stamps[ApiGroup.SpecEditorsAnnotation] = ApprovalPolicy.WithSpecEditor(stamps[ApiGroup.SpecEditorsAnnotation], r.UserInfo.Username);
            // Their groups too: the operator acts with each author's rights (a SubjectAccessReview carries the groups).
            if (approvable is not null) stamps[ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(stamps[ApiGroup.AuthorGroupsAnnotation], r.UserInfo.Username, r.UserInfo.Groups);
        }

        return stamps;
    }

    /// <summary>On an Approval's create: the content hash of the target it names, read as the generation check reads it; otherwise null.</summary>
    async Task<string?> TargetContentHashAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation != "CREATE" || r.Kind.Kind != "Approval" || r.Kind.Group != ApiGroup.Group) return null;
        if (r.Object?["spec"]?["target"] is not JsonObject t || t["kind"] is not JsonValue k || !k.TryGetValue<string>(out var kind)
            || t["name"] is not JsonValue n || !n.TryGetValue<string>(out var name)) return null;
        var target = await caches.LiveTargetAsync(r.Namespace ?? "", kind, name, ct).ConfigureAwait(false);
        return target is null || ApprovableKinds.Of(kind) is not { } approvable ? null : approvable.ContentHash(target);
    }

    /// <summary>
    /// On a BreakGlass's create, the entry of its tenant's spec.accessPolicy.breakGlass.invokers that names the caller
    /// (by user, or by a group only the API server can vouch for): the reconciler, which never sees groups, grants on
    /// this stamp and re-checks it against the current policy. Null otherwise.
    /// </summary>
    string? InvokerMatch(AdmissionRequest r) =>
        r.Operation == "CREATE" && r.Kind.Group == ApiGroup.Group && r.Kind.Kind == BreakGlass.KubeKind
            ? BreakGlassRules.InvokerMatch(BreakGlassRules.PolicyOf(caches.TenantOfNamespace(r.Namespace)), r.UserInfo.Username, r.UserInfo.Groups)
            : null;

    /// <summary>A stamped annotation that is not what the webhook stamps is refused, naming it.</summary>
    static List<string> ValidateStamps(AdmissionRequest r, string? targetContentHash, string? invokerMatch) =>
        Stamps(r, targetContentHash, invokerMatch).Where(kv => AnnotationOf(r.Object, kv.Key) != kv.Value)
            .Select(kv => $"metadata.annotations[{kv.Key}]: set only by the admission webhook (expected {(kv.Value is null ? "unset" : "\"" + kv.Value + "\"")}); it cannot be set or changed by a requester")
            .ToList();

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
}
