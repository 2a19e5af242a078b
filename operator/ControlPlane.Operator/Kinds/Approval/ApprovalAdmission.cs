using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Approvals: the approver is the requester, a person who holds the Approver or WorkspaceAdmin role and
/// is no author of the target; the target's UID and generation are the ones reviewed; immutable once created.
/// The mutating pass sets the approver and, when absent, the target's UID and generation.
/// </summary>
public sealed class ApprovalAdmission(AdmissionCaches caches, TimeProvider? time = null) : IAdmissionHandler
{
    readonly TimeProvider clock = time ?? TimeProvider.System;

    public async Task MutateAsync(AdmissionRequest r, AdmissionPatch patch, CancellationToken ct)
    {
        if (r.Operation != "CREATE") return;
        var ops = patch.Operations;
        var spec = r.Object!["spec"] as JsonObject;
        if (spec is null) return;
        if (spec["approver"] is JsonValue claimed && claimed.TryGetValue<string>(out var who) && who != r.UserInfo.Username)
        {
            patch.Warnings.Add("spec.approver: set by the admission webhook to the requester; the value supplied was replaced");
        }

        ops.Add(new JsonObject { ["op"] = spec.ContainsKey("approver") ? "replace" : "add", ["path"] = "/spec/approver", ["value"] = r.UserInfo.Username });
        var kind = spec["target"]?["kind"]?.GetValue<string>();
        var name = spec["target"]?["name"]?.GetValue<string>();
        if (kind is null || name is null) return;
        var target = await caches.LiveTargetAsync(r.Namespace ?? "", kind, name, ct).ConfigureAwait(false);
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

    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
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
        var target = await caches.LiveTargetAsync(ns, t.Kind, t.Name, ct).ConfigureAwait(false);
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

        // An ended AccessRequest is final (AccessRequestPlan): approving it again would grant nothing, so it is refused rather than ignored.
        if (target is AccessRequest { Status.Phase: AccessRequestPhase.Expired or AccessRequestPhase.Revoked or AccessRequestPhase.Rejected } ended)
        {
            problems.Add($"spec.target: AccessRequest {ns}/{t.Name} is {ended.Status!.Phase}: an ended request is never granted again; ask with a new AccessRequest");
        }

        if (target is SecurityException exception)
        {
            // Only a SecurityReviewer, never the owner or an author of an intent it would cover (ExceptionApprovals).
            problems.AddRange(await ExceptionApprovalProblemsAsync(exception, ns, user, r.UserInfo.Groups ?? [], ct).ConfigureAwait(false));
        }
        else if (target is BreakGlass)
        {
            // The after-the-fact review: an Approver, WorkspaceAdmin or SecurityReviewer of the workspace (BreakGlassReview).
            if (!await caches.IsApproverAsync(ns, user, r.UserInfo.Groups ?? [], ct).ConfigureAwait(false)
                && !await caches.IsSecurityReviewerAsync(ns, user, r.UserInfo.Groups ?? [], ct).ConfigureAwait(false))
            {
                problems.Add($"spec.approver: {user} holds none of Approver, WorkspaceAdmin or SecurityReviewer in workspace {ns}: only they review a BreakGlass");
            }
        }
        else if (!await caches.IsApproverAsync(ns, user, r.UserInfo.Groups ?? [], ct).ConfigureAwait(false))
        {
            problems.Add($"spec.approver: {user} holds neither the Approver nor the WorkspaceAdmin role in workspace {ns}");
        }

        // CAB conditions, expiry, justification and the rollback plan, judged on the intent as the API server has it now.
        if (target is DeploymentIntent intent)
        {
            problems.AddRange(CabConditions.Problems(approval.Spec, DeploymentIntentResources.Rings(intent.Spec), DeploymentIntentResources.NeedsCab(intent.Status),
                intent.Spec.RollbackPlan?.Validated == true, clock.GetUtcNow().UtcDateTime));
        }
        else
        {
            if (approval.Spec.Conditions is not null) problems.Add($"spec.conditions: only an Approval of a DeploymentIntent has conditions (this one names a {t.Kind})");
            if (approval.Spec.ExpiresAt is not null) problems.Add($"spec.expiresAt: only an Approval of a DeploymentIntent expires (this one names a {t.Kind})");
        }

        return problems;
    }

    async Task<List<string>> ExceptionApprovalProblemsAsync(SecurityException exception, string ns, string user, IReadOnlyCollection<string> groups, CancellationToken ct)
    {
        var problems = new List<string>();
        if (!await caches.IsSecurityReviewerAsync(ns, user, groups, ct).ConfigureAwait(false))
        {
            problems.Add($"spec.approver: {user} does not hold the SecurityReviewer role in workspace {ns}: only a SecurityReviewer approves an Exception (Approver and WorkspaceAdmin do not)");
        }

        if (ExceptionApprovals.Conflict(user, exception, await caches.IntentsAsync(ns, ct).ConfigureAwait(false), groups, caches.RoleBindings.InNamespace) is { } conflict)
        {
            problems.Add($"spec.approver: {conflict}");
        }
        return problems;
    }
}
