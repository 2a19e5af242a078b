using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Admission;

/// <summary>Identity stamps and Approvals: who asked, who edited, who may approve what was reviewed.</summary>
public sealed partial class AdmissionHandler
{
    static string? AnnotationOf(JsonObject? obj, string key) =>
        obj?["metadata"]?["annotations"]?[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>
    /// The stamped annotations an object must carry once admitted (null: absent). On create: its creator,
    /// and on an Approval the approver's groups. On update: what it had, except that a change of an
    /// approvable kind's spec makes the requester its last spec editor. Status writes go to the status
    /// subresource, which the webhook rules (resources "*", no "*/*") do not match: they stamp nothing.
    /// A change of a Rollout's paused/abort alone is a control action: it makes nobody an author.
    /// On an Approval's create, its target's content hash as admission sees it (<see cref="TargetContentHashAsync"/>).
    /// </summary>
    public static Dictionary<string, string?> Stamps(AdmissionRequest r, string? targetContentHash = null)
    {
        if (r.Operation == "CREATE")
        {
            return new()
            {
                [ApiGroup.CreatedByAnnotation] = r.UserInfo.Username,
                [ApiGroup.LastSpecEditorAnnotation] = null,
                [ApiGroup.SpecEditorsAnnotation] = null,
                [ApiGroup.ApproverGroupsAnnotation] = r.Kind.Kind == Approval.KubeKind ? ApprovalPolicy.FormatGroups(r.UserInfo.Groups) : null,
                [ApiGroup.TargetContentHashAnnotation] = r.Kind.Kind == Approval.KubeKind ? targetContentHash : null,
                [ApiGroup.AuthorGroupsAnnotation] = ApprovableKinds.Contains(r.Kind.Kind) ? Requesters.WithAuthorGroups(null, r.UserInfo.Username, r.UserInfo.Groups) : null,
            };
        }

        var stamps = ApiGroup.StampedAnnotations.ToDictionary(k => k, k => AnnotationOf(r.OldObject, k));
        // On a Workspace it names who last changed the members, for the audit trail.
        if ((ApprovableKinds.Contains(r.Kind.Kind) || r.Kind.Kind == Workspace.KubeKind)
            && !JsonNode.DeepEquals(ApprovalPolicy.ApprovalRelevantSpec(r.Kind.Kind, r.OldObject?["spec"]), ApprovalPolicy.ApprovalRelevantSpec(r.Kind.Kind, r.Object?["spec"])))
        {
            stamps[ApiGroup.LastSpecEditorAnnotation] = r.UserInfo.Username;
            // Every editor stays an author: a later edit by someone else does not clear an earlier one's.
            if (ApprovableKinds.Contains(r.Kind.Kind)) stamps[ApiGroup.SpecEditorsAnnotation] = ApprovalPolicy.WithSpecEditor(stamps[ApiGroup.SpecEditorsAnnotation], r.UserInfo.Username);
            // Their groups too: the operator acts with each author's rights (a SubjectAccessReview carries the groups).
            if (ApprovableKinds.Contains(r.Kind.Kind)) stamps[ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(stamps[ApiGroup.AuthorGroupsAnnotation], r.UserInfo.Username, r.UserInfo.Groups);
        }

        return stamps;
    }

    /// <summary>On an Approval's create: the content hash of the target it names, read as the generation check reads it; otherwise null.</summary>
    async Task<string?> TargetContentHashAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation != "CREATE" || r.Kind.Kind != Approval.KubeKind || r.Kind.Group != ApiGroup.Group) return null;
        if (r.Object?["spec"]?["target"] is not JsonObject t || t["kind"] is not JsonValue k || !k.TryGetValue<string>(out var kind)
            || t["name"] is not JsonValue n || !n.TryGetValue<string>(out var name)) return null;
        var target = await caches.TargetAsync(r.Namespace ?? "", kind, name, ct).ConfigureAwait(false);
        return target is null ? null : ApprovalPolicy.ContentHash(target);
    }

    async Task MutateApprovalAsync(AdmissionRequest r, JsonArray ops, List<string> warnings, CancellationToken ct)
    {
        var spec = r.Object!["spec"] as JsonObject;
        if (spec is null) return;
        if (spec["approver"] is JsonValue claimed && claimed.TryGetValue<string>(out var who) && who != r.UserInfo.Username)
        {
            warnings.Add("spec.approver: set by the admission webhook to the requester; the value supplied was replaced");
        }

        ops.Add(new JsonObject { ["op"] = spec.ContainsKey("approver") ? "replace" : "add", ["path"] = "/spec/approver", ["value"] = r.UserInfo.Username });
        var kind = spec["target"]?["kind"]?.GetValue<string>();
        var name = spec["target"]?["name"]?.GetValue<string>();
        if (kind is null || name is null) return;
        var target = await caches.TargetAsync(r.Namespace ?? "", kind, name, ct).ConfigureAwait(false);
        if (target is null) return;
        // Filled in only when absent: a value the approver submitted is what they reviewed, and the
        // validating webhook refuses it when it is not the current one (never rewritten).
        if (!spec.ContainsKey("targetGeneration") && target.Metadata.Generation is { } generation)
        {
            ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/targetGeneration", ["value"] = generation });
        }

        if (!spec.ContainsKey("targetUID") && target.Metadata.Uid is { } uid)
        {
            ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/targetUID", ["value"] = uid });
        }
    }

    /// <summary>Defence in depth behind the mutating webhook: a stamped annotation that is not what the webhook stamps is refused, naming it.</summary>
    static List<string> ValidateStamps(AdmissionRequest r, string? targetContentHash) =>
        Stamps(r, targetContentHash).Where(kv => AnnotationOf(r.Object, kv.Key) != kv.Value)
            .Select(kv => $"metadata.annotations[{kv.Key}]: set only by the admission webhook (expected {(kv.Value is null ? "unset" : "\"" + kv.Value + "\"")}); it cannot be set or changed by a requester")
            .ToList();

    async Task<List<string>> ValidateApprovalAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation == "UPDATE")
        {
            // Every spec field, including the stamped approver, targetUID and targetGeneration: refused, never rewritten.
            var fields = new[] { r.OldObject?["spec"] as JsonObject, r.Object?["spec"] as JsonObject }
                .SelectMany(o => o?.Select(kv => kv.Key) ?? []).Distinct().Order(StringComparer.Ordinal).ToArray();
            return Immutable(r.OldObject, r.Object, fields).Select(p => p + ": an Approval is immutable once created; create a new one instead").ToList();
        }

        if (r.Operation != "CREATE" || r.Object is null) return [];
        var approval = As<Approval>(r.Object);
        var ns = r.Namespace ?? "";
        var user = r.UserInfo.Username;
        var t = approval.Spec.Target;
        var target = await caches.TargetAsync(ns, t.Kind, t.Name, ct).ConfigureAwait(false);
        if (target is null) return [$"spec.target: {t.Kind} {ns}/{t.Name} does not exist"];
        var problems = new List<string>();
        if (ApprovalPolicy.NotAPerson(user, r.UserInfo.Groups) is { } machine) problems.Add($"spec.approver: {machine}");
        if (ApprovalPolicy.ControlsAnAuthor(user, r.UserInfo.Groups ?? [], target, caches.RoleBindings.InNamespace) is { } controls) problems.Add($"spec.approver: {controls}");
        if (ApprovalPolicy.AuthorOf(target) == user)
        {
            problems.Add($"spec.approver: {user} created {t.Kind} {t.Name}; self-approval is not allowed (two-person rule)");
        }
        else if (ApprovalPolicy.EveryAuthorOf(target).Contains(user))
        {
            var when = ApprovalPolicy.AuthorsOf(target).Contains(user) ? "last changed" : "changed";
            problems.Add($"spec.approver: {user} {when} the spec of {t.Kind} {t.Name} (generation {target.Metadata.Generation}) and is an author of it; self-approval is not allowed (two-person rule)");
        }

        if (approval.Spec.Approver is { } claimed && claimed != user) problems.Add("spec.approver: must be the requester (set by the admission webhook)");
        if (approval.Spec.TargetUID != target.Metadata.Uid)
        {
            problems.Add($"spec.targetUID: \"{approval.Spec.TargetUID}\" is not the UID of {t.Kind} {ns}/{t.Name} (\"{target.Metadata.Uid}\"): the object reviewed was deleted and recreated; review the current one");
        }

        if (approval.Spec.TargetGeneration != target.Metadata.Generation)
        {
            problems.Add($"spec.targetGeneration: {approval.Spec.TargetGeneration?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unset"} is not the current generation {target.Metadata.Generation} of {t.Kind} {ns}/{t.Name}: it changed since; review generation {target.Metadata.Generation} and approve that");
        }

        if (!await caches.IsApproverAsync(ns, user, r.UserInfo.Groups ?? [], ct).ConfigureAwait(false))
        {
            problems.Add($"spec.approver: {user} holds neither the Approver nor the WorkspaceAdmin role in workspace {ns}");
        }

        return problems;
    }
}
