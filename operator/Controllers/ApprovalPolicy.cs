using ControlPlane.Operator.Api.V1Alpha1;
using k8s;
using k8s.Models;

namespace ControlPlane.Operator.Controllers;

/// <summary>Why one Approval does or does not count.</summary>
public sealed record ApprovalVerdict(bool Counts, string Reason, string Message);

/// <summary>Whether a target is approved for its current generation.</summary>
public sealed record ApprovalState(bool Approved, bool Rejected, int Required, IReadOnlyList<string> Approvers, IReadOnlyList<string> RejectedBy, string Message);

/// <summary>
/// The one answer to "is this target approved for its current generation", shared by every
/// reconciler that gates on approvals. An approval counts when it names the target's current
/// generation, its approver did not author the target, and its approver holds the Approver or
/// WorkspaceAdmin role. Any counting reject wins. Outside prod one approver suffices; in prod it
/// takes two distinct approvers (the two-person rule).
/// </summary>
public static class ApprovalPolicy
{
    public static string? AuthorOf(IKubernetesObject<V1ObjectMeta> target) =>
        target.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var who) == true ? who : null;

    public static ApprovalVerdict Judge(Approval approval, IKubernetesObject<V1ObjectMeta>? target, Func<Approval, bool> holdsApproverRole)
    {
        var t = approval.Spec.Target;
        if (target is null) return new(false, "TargetNotFound", $"{t.Kind} {t.Name} does not exist");
        if (string.IsNullOrEmpty(approval.Spec.Approver)) return new(false, "NoApprover", "spec.approver is empty: the approval did not pass the admission webhook");
        if (AuthorOf(target) == approval.Spec.Approver) return new(false, "SelfApproval", $"{approval.Spec.Approver} authored {t.Kind} {t.Name}; self-approval does not count");
        if (approval.Spec.TargetGeneration != target.Metadata.Generation)
        {
            return new(false, "StaleGeneration", $"approves generation {approval.Spec.TargetGeneration} but {t.Kind} {t.Name} is at generation {target.Metadata.Generation}: it changed after approval");
        }

        if (!holdsApproverRole(approval)) return new(false, "NotAnApprover", $"{approval.Spec.Approver} holds neither the Approver nor the WorkspaceAdmin role here");
        return new(true, approval.Spec.Decision == "reject" ? "Rejects" : "Counts", $"{approval.Spec.Decision}s generation {approval.Spec.TargetGeneration} of {t.Kind} {t.Name}");
    }

    public static ApprovalState Evaluate(IKubernetesObject<V1ObjectMeta> target, string environment, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole)
    {
        var required = environment == "prod" ? 2 : 1;
        var counting = approvals
            .Where(a => a.Spec.Target.Kind == target.Kind && a.Spec.Target.Name == target.Metadata.Name && a.Metadata.NamespaceProperty == target.Metadata.NamespaceProperty)
            .Where(a => Judge(a, target, holdsApproverRole).Counts)
            .ToList();
        var rejectedBy = counting.Where(a => a.Spec.Decision == "reject").Select(a => a.Spec.Approver!).Distinct().Order().ToList();
        var approvers = counting.Where(a => a.Spec.Decision == "approve").Select(a => a.Spec.Approver!).Distinct().Order().ToList();
        if (rejectedBy.Count > 0) return new(false, true, required, approvers, rejectedBy, $"rejected by {string.Join(", ", rejectedBy)}");
        var approved = approvers.Count >= required;
        return new(approved, false, required, approvers, rejectedBy,
            approved ? $"approved by {string.Join(", ", approvers)}" : $"{approvers.Count} of {required} approval(s) for generation {target.Metadata.Generation}");
    }
}
