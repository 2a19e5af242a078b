using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// What a BreakGlass's decision reads: the object, its tenant (null: not in a workspace), the other BreakGlasses
/// of its workspace (a second invocation is refused), its review (its Approvals' sum, as
/// <see cref="BreakGlassReview"/> counts them), whether its RoleBinding exists, the time and the review window.
/// </summary>
public sealed record BreakGlassFacts(
    BreakGlass BreakGlass,
    Tenant? Tenant,
    IReadOnlyList<BreakGlass> Others,
    ApprovalState Review,
    bool BindingExists,
    DateTime Now,
    TimeSpan ReviewWindow);

/// <summary>The next status, its conditions, what to do with the binding, Events, audit rows, and when to look again (expiresAt, reviewDeadline).</summary>
public sealed record BreakGlassDecision(
    BreakGlassStatus Status,
    BindingAction Binding,
    IReadOnlyList<ConditionVerdict> Conditions,
    IReadOnlyList<Notice> Notices,
    IReadOnlyList<AccessAudit> Audits,
    TimeSpan? RecheckIn)
{
    public BreakGlassPhase Phase => Status.Phase ?? BreakGlassPhase.Unknown;
}

/// <summary>
/// A BreakGlass's life, a pure function of its facts. A new BreakGlass is granted at once (Active, grantedAt = now,
/// expiresAt = grantedAt + spec.duration, reviewDeadline = grantedAt + the review window, all recorded in status)
/// unless it is Refused: not in a workspace, not a person, break-glass disabled (no spec.accessPolicy.breakGlass),
/// the spec breaks <see cref="BreakGlassRules"/>, the invoker match stamped at admission does not hold under the
/// current policy, or another BreakGlass of the workspace is Active (or older and not yet decided: of two created
/// at once only the oldest is granted). An Active grant is read from its recorded times: Expired from expiresAt on,
/// Ended on spec.end, deletion, a reviewer's reject, or the policy withdrawn (the policy removed, the invoker or the
/// role no longer in it: less access is always safe). Expired, Ended and Refused are final.
/// The review is after the fact: a counting Approval marks it Reviewed (recorded once, late or not); a granted
/// BreakGlass without one past reviewDeadline is ReviewOverdue, until a review arrives. Events and audit rows only
/// on a change (phase, review, overdue), so a pass with nothing new writes nothing.
/// </summary>
public static class BreakGlassPlan
{
    /// <summary>The audit actions that record a change of state (its phase, its review), each once in the object's life.</summary>
    public static readonly IReadOnlyList<string> Transitions =
        ["breakglass.invoked", "breakglass.refused", "breakglass.review_overdue", "breakglass.reviewed", "breakglass.expired", "breakglass.ended"];

    /// <summary>The RoleBinding that carries a BreakGlass's grant.</summary>
    public static string BindingName(string name) => BreakGlassRules.BindingPrefix + name;

    /// <summary>The invoker: whoever created the BreakGlass, as the admission webhook stamped it.</summary>
    public static string? InvokerOf(BreakGlass b) => ApprovalPolicy.AuthorOf(b);

    /// <summary>The policy entry that let the invoker invoke, as the admission webhook stamped it.</summary>
    public static string? MatchOf(BreakGlass b) =>
        b.Metadata.Annotations?.TryGetValue(ApiGroup.BreakGlassInvokerMatchAnnotation, out var m) == true ? m : null;

    /// <summary>In force: Active and not past its recorded expiry.</summary>
    public static bool InForce(BreakGlass b, DateTime now) =>
        b.Status is { Phase: BreakGlassPhase.Active, ExpiresAt: { } at } && at.ToUniversalTime() > now && b.Metadata.DeletionTimestamp is null;

    /// <summary>
    /// The BreakGlass among <paramref name="others"/> that keeps <paramref name="b"/> from being granted, or null: one in
    /// force, or an older one (by creation, then name) not yet decided, not deleted and not ended.
    /// </summary>
    public static BreakGlass? Blocker(BreakGlass b, IEnumerable<BreakGlass> others, DateTime now) =>
        others.Where(o => o.Metadata.Name != b.Metadata.Name)
            .FirstOrDefault(o => InForce(o, now) || (Undecided(o) && Older(o, b)));

    /// <summary>Invoked and not yet decided by the operator (no phase), not deleted and not ended: it may be granted next.</summary>
    public static bool Undecided(BreakGlass b) =>
        (b.Status?.Phase is null or BreakGlassPhase.Unknown) && b.Metadata.DeletionTimestamp is null && b.Spec.End != true;

    static bool Older(BreakGlass a, BreakGlass b)
    {
        var (ta, tb) = (a.Metadata.CreationTimestamp ?? DateTime.MaxValue, b.Metadata.CreationTimestamp ?? DateTime.MaxValue);
        return ta < tb || (ta == tb && string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name) < 0);
    }

    /// <summary>Why an Active grant must end now because the tenant's policy no longer allows it, or null.</summary>
    static string? Withdrawn(BreakGlass b, Tenant? tenant, string? invoker)
    {
        var policy = BreakGlassRules.PolicyOf(tenant);
        if (policy is null) return "spec.accessPolicy.breakGlass was removed from the tenant: break-glass is disabled, the grant ended early";
        if (policy.Role != b.Spec.Role) return $"the tenant's emergency role is now {policy.Role}, not {b.Spec.Role}: the grant ended early";
        return BreakGlassRules.MatchHolds(policy, invoker, MatchOf(b)) ? null
            : $"{invoker} is no longer named by spec.accessPolicy.breakGlass.invokers ({MatchOf(b) ?? "no match stamped"}): the grant ended early";
    }

    public static BreakGlassDecision Decide(BreakGlassFacts f)
    {
        var b = f.BreakGlass;
        var old = b.Status;
        var oldPhase = old?.Phase is null or BreakGlassPhase.Unknown ? (BreakGlassPhase?)null : old.Phase;
        var invoker = InvokerOf(b);
        var deleting = b.Metadata.DeletionTimestamp is not null;
        var status = new BreakGlassStatus
        {
            Invoker = invoker,
            GrantedAt = old?.GrantedAt,
            ExpiresAt = old?.ExpiresAt,
            EndedAt = old?.EndedAt,
            ReviewDeadline = old?.ReviewDeadline,
            ReviewedBy = old?.ReviewedBy,
            ReviewedAt = old?.ReviewedAt,
            ObservedGeneration = b.Metadata.Generation,
        };
        var ready = old?.Conditions?.FirstOrDefault(c => c.Type == BreakGlassConditions.Ready);
        string reason, message;
        BreakGlassPhase phase;
        var binding = BindingAction.None;
        var reviewRejected = f.Review.Rejected && old?.GrantedAt is not null;

        if (oldPhase is BreakGlassPhase.Expired or BreakGlassPhase.Ended or BreakGlassPhase.Refused)
        {
            // Final: keep what was recorded; a binding still there (a failed delete) goes.
            phase = oldPhase.Value;
            reason = ready?.Reason ?? oldPhase.Value.ToString();
            message = ready?.Message ?? $"the BreakGlass is {oldPhase}: emergency access needs a new BreakGlass";
            binding = Grants.BindingEnds(f.BindingExists);
        }
        else if (oldPhase == BreakGlassPhase.Active && old?.ExpiresAt is { } recorded)
        {
            var expires = recorded.ToUniversalTime();
            var withdrawn = Withdrawn(b, f.Tenant, invoker);
            GrantCourse course;
            (course, binding) = Grants.ActiveCourse(expires, f.Now, deleting || b.Spec.End == true || reviewRejected || withdrawn is not null, f.BindingExists);
            (phase, reason, message) = course switch
            {
                GrantCourse.End => (BreakGlassPhase.Ended,
                    withdrawn is not null && !deleting && b.Spec.End != true ? BreakGlassReasons.PolicyWithdrawn : BreakGlassReasons.Ended,
                    deleting ? "the BreakGlass was deleted: the grant ended early"
                    : b.Spec.End == true ? "spec.end is true: the grant ended early"
                    : reviewRejected ? $"the review rejected the invocation ({f.Review.Message}): the grant ended early"
                    : withdrawn!),
                GrantCourse.Expire => (BreakGlassPhase.Expired, BreakGlassReasons.Expired, $"the emergency grant of {b.Spec.Role} to {invoker} expired at {expires:u}; its RoleBinding is deleted"),
                _ => (BreakGlassPhase.Active, BreakGlassReasons.Active,
                    $"BREAK-GLASS: {invoker} holds {b.Spec.Role} in workspace {b.Metadata.NamespaceProperty} until {expires:u} (incident {b.Spec.Incident})"),
            };
            if (course == GrantCourse.Hold) status.RoleBinding = BindingName(b.Metadata.Name);
            else status.EndedAt = f.Now;
        }
        else
        {
            (phase, reason, message) = Admit(f, invoker);
            if (phase == BreakGlassPhase.Active)
            {
                status.GrantedAt = f.Now;
                status.ExpiresAt = f.Now + (BreakGlassRules.DurationOf(b.Spec) ?? BreakGlassRules.HardMaxDuration);
                status.ReviewDeadline = f.Now + f.ReviewWindow;
                status.RoleBinding = BindingName(b.Metadata.Name);
                message = $"BREAK-GLASS: {invoker} holds {b.Spec.Role} in workspace {b.Metadata.NamespaceProperty} until {status.ExpiresAt:u} (incident {b.Spec.Incident}); review due by {status.ReviewDeadline:u}";
                binding = f.BindingExists ? BindingAction.None : BindingAction.Ensure;
            }
            else if (f.BindingExists)
            {
                // Nothing was granted; a binding of this name is not ours to keep.
                binding = BindingAction.Delete;
            }
        }

        status.Phase = phase;
        if (phase != BreakGlassPhase.Active) status.RoleBinding = null;

        var notices = new List<Notice>();
        var audits = new List<AccessAudit>();
        var details = Details(b, invoker, f.Tenant, status);
        if (phase != oldPhase)
        {
            switch (phase)
            {
                case BreakGlassPhase.Active:
                    // Loud: a Warning Event and a security audit row at once.
                    notices.Add(new(BreakGlassReasons.BreakGlassInvoked, message, Warning: true));
                    audits.Add(new("breakglass.invoked", details, "security"));
                    break;
                case BreakGlassPhase.Expired:
                    notices.Add(new(BreakGlassReasons.Expired, message));
                    audits.Add(new("breakglass.expired", details, "security"));
                    break;
                case BreakGlassPhase.Ended:
                    details["reason"] = message;
                    notices.Add(new(reason, message, Warning: true));
                    audits.Add(new("breakglass.ended", details, "security"));
                    break;
                case BreakGlassPhase.Refused:
                    details["reason"] = reason;
                    notices.Add(new(reason, message, Warning: true));
                    audits.Add(new("breakglass.refused", details, "security"));
                    break;
            }
        }

        var (reviewed, overdue) = JudgeReview(f, status, notices, audits);
        var conditions = new List<ConditionVerdict>
        {
            new(BreakGlassConditions.Ready, phase == BreakGlassPhase.Active, reason, message),
            reviewed,
            overdue,
        };

        // Look again at the next recorded time: expiry while Active, the review deadline while no review came.
        return new(status, binding, conditions, notices, audits,
            Grants.RecheckIn(f.Now, phase == BreakGlassPhase.Active ? status.ExpiresAt : null, status.ReviewedAt is null ? status.ReviewDeadline : null));
    }

    /// <summary>A new BreakGlass: granted, or refused and why (the first rule it breaks).</summary>
    static (BreakGlassPhase, string, string) Admit(BreakGlassFacts f, string? invoker)
    {
        var b = f.BreakGlass;
        var refused = BreakGlassPhase.Refused;
        if (f.Tenant is null)
        {
            return (refused, BreakGlassReasons.NotInAWorkspace,
                $"metadata.namespace: \"{b.Metadata.NamespaceProperty}\" is not the namespace of a workspace: a BreakGlass belongs to a workspace");
        }

        if (string.IsNullOrEmpty(invoker))
        {
            return (refused, BreakGlassReasons.NotAPerson, $"metadata.annotations[{ApiGroup.CreatedByAnnotation}]: the invoker is unknown (the admission webhook stamps it)");
        }

        if (ApprovalPolicy.NotAPerson(invoker, null) is { } machine) return (refused, BreakGlassReasons.NotAPerson, $"{machine}: only a person invokes break-glass");
        if (BreakGlassRules.Disabled(f.Tenant) is { } disabled) return (refused, BreakGlassReasons.BreakGlassDisabled, disabled);
        var problems = BreakGlassRules.Problems(b.Spec, f.Tenant);
        if (BreakGlassRules.NameProblem(b.Metadata.Name) is { } badName) problems.Insert(0, badName);
        if (problems.Count > 0) return (refused, BreakGlassReasons.PolicyViolation, string.Join("; ", problems));
        var policy = BreakGlassRules.PolicyOf(f.Tenant);
        if (!BreakGlassRules.MatchHolds(policy, invoker, MatchOf(b)))
        {
            return (refused, BreakGlassReasons.NotAnInvoker,
                $"metadata.annotations[{ApiGroup.BreakGlassInvokerMatchAnnotation}]: {invoker} is not named by the tenant's spec.accessPolicy.breakGlass.invokers ({MatchOf(b) ?? "no match stamped by the admission webhook"})");
        }

        if (b.Metadata.DeletionTimestamp is not null || b.Spec.End == true)
        {
            return (refused, BreakGlassReasons.NotGranted, b.Spec.End == true ? "spec.end is true: ended before it was granted" : "deleted before it was granted");
        }

        if (Blocker(b, f.Others, f.Now) is { } other)
        {
            return (refused, BreakGlassReasons.AlreadyActive,
                $"BreakGlass {other.Metadata.Name} is already {(InForce(other, f.Now) ? "active" : "invoked")} in workspace {b.Metadata.NamespaceProperty}: one break-glass at a time; end it (spec.end) first");
        }

        return (BreakGlassPhase.Active, BreakGlassReasons.Active, "");
    }

    /// <summary>Reviewed and ReviewOverdue, recording the review once (late or not) and auditing the first overdue pass once.</summary>
    static (ConditionVerdict Reviewed, ConditionVerdict Overdue) JudgeReview(BreakGlassFacts f, BreakGlassStatus status, List<Notice> notices, List<AccessAudit> audits)
    {
        var b = f.BreakGlass;
        if (status.GrantedAt is null || status.ReviewDeadline is not { } deadlineRecorded)
        {
            const string none = "nothing was granted: there is nothing to review";
            return (new(BreakGlassConditions.Reviewed, false, BreakGlassReasons.NotGranted, none), new(BreakGlassConditions.ReviewOverdue, false, BreakGlassReasons.NotGranted, none));
        }

        var deadline = deadlineRecorded.ToUniversalTime();
        var wasOverdue = b.Status?.Conditions?.Any(c => c.Type == BreakGlassConditions.ReviewOverdue && c.Status == "True") == true;
        if (status.ReviewedAt is null && (f.Review.Approved || f.Review.Rejected))
        {
            status.ReviewedAt = f.Now;
            status.ReviewedBy = string.Join(", ", f.Review.Approvers.Concat(f.Review.RejectedBy).Distinct().Order(StringComparer.Ordinal));
            var late = f.Now > deadline;
            var details = Details(b, InvokerOf(b), f.Tenant, status);
            details["decision"] = f.Review.Rejected ? "reject" : "approve";
            details["late"] = late;
            audits.Add(new("breakglass.reviewed", details, "security"));
            notices.Add(new(late ? BreakGlassReasons.ReviewedLate : BreakGlassReasons.Reviewed,
                $"break-glass by {InvokerOf(b)} reviewed by {status.ReviewedBy}{(late ? $", after the deadline {deadline:u}" : "")}", Warning: late || f.Review.Rejected));
        }

        if (status.ReviewedAt is { } at)
        {
            var late = at.ToUniversalTime() > deadline;
            var text = $"reviewed by {status.ReviewedBy} at {at.ToUniversalTime():u}{(late ? $", after the deadline {deadline:u}" : "")}";
            return (new(BreakGlassConditions.Reviewed, true, late ? BreakGlassReasons.ReviewedLate : BreakGlassReasons.Reviewed, text),
                new(BreakGlassConditions.ReviewOverdue, false, late ? BreakGlassReasons.ReviewedLate : BreakGlassReasons.Reviewed, text));
        }

        var awaiting = $"an Approval of BreakGlass {b.Metadata.Name} by an Approver, WorkspaceAdmin or SecurityReviewer of the workspace (never {InvokerOf(b)}) is due by {deadline:u}";
        if (f.Now < deadline)
        {
            return (new(BreakGlassConditions.Reviewed, false, BreakGlassReasons.AwaitingReview, awaiting), new(BreakGlassConditions.ReviewOverdue, false, BreakGlassReasons.WithinWindow, awaiting));
        }

        var overdue = $"no review since the deadline {deadline:u}: {awaiting[..awaiting.IndexOf(" is due", StringComparison.Ordinal)]} is overdue";
        if (!wasOverdue)
        {
            audits.Add(new("breakglass.review_overdue", Details(b, InvokerOf(b), f.Tenant, status), "security"));
            notices.Add(new(BreakGlassReasons.ReviewOverdue, overdue, Warning: true));
        }

        return (new(BreakGlassConditions.Reviewed, false, BreakGlassReasons.ReviewOverdue, overdue), new(BreakGlassConditions.ReviewOverdue, true, BreakGlassReasons.ReviewOverdue, overdue));
    }

    static JsonObject Details(BreakGlass b, string? invoker, Tenant? tenant, BreakGlassStatus status) => new()
    {
        ["namespace"] = b.Metadata.NamespaceProperty,
        ["invoker"] = invoker,
        ["invokerMatch"] = MatchOf(b),
        ["role"] = b.Spec.Role,
        ["duration"] = b.Spec.Duration ?? Durations.Format(BreakGlassRules.HardMaxDuration),
        ["justification"] = b.Spec.Justification,
        ["incident"] = b.Spec.Incident,
        ["grantedAt"] = status.GrantedAt?.ToUniversalTime().ToString("O"),
        ["expiresAt"] = status.ExpiresAt?.ToUniversalTime().ToString("O"),
        ["reviewDeadline"] = status.ReviewDeadline?.ToUniversalTime().ToString("O"),
        ["reviewedBy"] = status.ReviewedBy,
        ["tenant"] = tenant?.Metadata.Name,
    };
}

/// <summary>
/// Who may review a BreakGlass (an Approval of it): a person holding Approver, WorkspaceAdmin or SecurityReviewer in its
/// workspace, never its invoker (the invoker is its author, so <see cref="ApprovalPolicy.Judge"/> refuses them however
/// they hold the role, by name or through a group). One review is enough in every environment.
/// </summary>
public static class BreakGlassReview
{
    public static readonly IReadOnlyList<string> ReviewerRoles = [.. ApprovalPolicy.ApproverRoles, WorkspaceRoles.ClusterRoleName("SecurityReviewer")];

    public static bool IsReviewer(string? user, IReadOnlyCollection<string> groups, IEnumerable<V1RoleBinding> bindingsInNamespace) =>
        ApprovalPolicy.HoldsRole(user, groups, bindingsInNamespace, ReviewerRoles);

    /// <summary><see cref="IsReviewer"/> for an admitted Approval, with the groups recorded at admission.</summary>
    public static bool HoldsReviewerRole(Approval approval, Func<string, IEnumerable<V1RoleBinding>> bindingsIn) =>
        IsReviewer(approval.Spec.Approver, ApprovalPolicy.GroupsOf(approval), bindingsIn(approval.Metadata.NamespaceProperty));

    /// <summary>The review's state: one counting Approval (approve or reject) by a reviewer.</summary>
    public static ApprovalState Evaluate(BreakGlass b, IEnumerable<Approval> approvals, Func<string, IEnumerable<V1RoleBinding>> bindingsIn) =>
        ApprovalPolicy.Evaluate(b, 1, approvals, a => HoldsReviewerRole(a, bindingsIn), bindingsIn);
}
