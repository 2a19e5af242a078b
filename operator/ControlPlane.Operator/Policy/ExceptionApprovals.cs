using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Who may approve an Exception: a person holding the SecurityReviewer role in its workspace (Approver and
/// WorkspaceAdmin do not count), who is none of: an author of the Exception (creator, spec editor), its
/// spec.owner, or an author of a DeploymentIntent it would cover (same namespace, same artifact digest):
/// whoever wants the change through never waives its findings. A SecurityReviewer's Approval of another
/// kind counts as a CAB approval only if they also hold Approver (<see cref="ApprovalPolicy.ApproverRoles"/>).
/// Admission, the Approval reconciler, the Exception reconciler and the DeploymentIntent reconciler all ask this.
/// </summary>
public static class ExceptionApprovals
{
    public static readonly IReadOnlyList<string> ReviewerRoles = [WorkspaceRoles.ClusterRoleName("SecurityReviewer")];

    public static bool IsSecurityReviewer(string? user, IReadOnlyCollection<string> groups, IEnumerable<V1RoleBinding> bindingsInNamespace) =>
        ApprovalPolicy.HoldsRole(user, groups, bindingsInNamespace, ReviewerRoles);

    /// <summary><see cref="IsSecurityReviewer"/> for an admitted Approval, with the groups recorded at admission.</summary>
    public static bool HoldsReviewerRole(Approval approval, Func<string, IEnumerable<V1RoleBinding>> bindingsIn) =>
        IsSecurityReviewer(approval.Spec.Approver, ApprovalPolicy.GroupsOf(approval), bindingsIn(approval.Metadata.NamespaceProperty));

    /// <summary>The intents an Exception would cover: those of its namespace whose artifact has its digest.</summary>
    public static IEnumerable<DeploymentIntent> CoveredIntents(SecurityException exception, IEnumerable<DeploymentIntent> inNamespace) =>
        inNamespace.Where(i => i.Metadata.NamespaceProperty == exception.Metadata.NamespaceProperty
                               && !string.IsNullOrEmpty(i.Spec.Artifact.Sha256)
                               && string.Equals(i.Spec.Artifact.Sha256, exception.Spec.Artifact.Sha256, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Why <paramref name="user"/> may not approve <paramref name="exception"/> beyond the rules of every approval, or null.
    /// With <paramref name="bindingsIn"/>, one who can act as a ServiceAccount that authored a covered intent is its author too.
    /// </summary>
    public static string? Conflict(string? user, SecurityException exception, IEnumerable<DeploymentIntent> intentsInNamespace,
        IReadOnlyCollection<string>? groups = null, Func<string, IEnumerable<V1RoleBinding>>? bindingsIn = null)
    {
        if (string.IsNullOrEmpty(user)) return null;
        if (user == exception.Spec.Owner) return $"{user} is spec.owner of Exception {exception.Metadata.Name}; the owner never approves their own exception";
        foreach (var intent in CoveredIntents(exception, intentsInNamespace))
        {
            if (ApprovalPolicy.EveryAuthorOf(intent).Contains(user))
            {
                return $"{user} authored DeploymentIntent {intent.Metadata.Name}, which Exception {exception.Metadata.Name} would cover (same artifact digest); an intent's author never approves its exception";
            }

            if (bindingsIn is not null && ApprovalPolicy.ControlsAnAuthor(user, groups ?? [], intent, bindingsIn) is { } controls)
            {
                return $"{controls}; Exception {exception.Metadata.Name} would cover it (same artifact digest)";
            }
        }

        return null;
    }

    /// <summary>Whether one Approval of an Exception counts, and why not: <see cref="ApprovalPolicy.Judge"/> with the SecurityReviewer role, then <see cref="Conflict"/>.</summary>
    public static ApprovalVerdict Judge(Approval approval, SecurityException? exception, IEnumerable<DeploymentIntent> intentsInNamespace, Func<string, IEnumerable<V1RoleBinding>> bindingsIn)
    {
        var verdict = ApprovalPolicy.Judge(approval, exception, a => HoldsReviewerRole(a, bindingsIn), bindingsIn);
        if (verdict.Reason == ApprovalReasons.NotAnApprover)
        {
            return verdict with { Message = $"{approval.Spec.Approver} does not hold the SecurityReviewer role in workspace {approval.Metadata.NamespaceProperty}: only a SecurityReviewer approves an Exception" };
        }

        if (!verdict.Counts || exception is null) return verdict;
        return Conflict(approval.Spec.Approver, exception, intentsInNamespace, ApprovalPolicy.GroupsOf(approval), bindingsIn) is { } conflict
            ? new(false, ApprovalReasons.SelfApproval, conflict)
            : verdict;
    }

    /// <summary>Whether the Exception's current generation is approved (one counting SecurityReviewer; any counting reject wins).</summary>
    public static ApprovalState Evaluate(SecurityException exception, IEnumerable<Approval> approvals, IEnumerable<DeploymentIntent> intentsInNamespace, Func<string, IEnumerable<V1RoleBinding>> bindingsIn)
    {
        var intents = intentsInNamespace.ToList();
        return ApprovalPolicy.Evaluate(exception, 1, approvals,
            a => HoldsReviewerRole(a, bindingsIn) && Conflict(a.Spec.Approver, exception, intents, ApprovalPolicy.GroupsOf(a), bindingsIn) is null, bindingsIn);
    }
}
