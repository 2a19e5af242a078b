using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// What an AccessRequest's decision reads: the request, its tenant (null: not in a workspace), its
/// approvals' sum, whether its RoleBinding exists, and the time.
/// </summary>
public sealed record AccessRequestFacts(AccessRequest Request, Tenant? Tenant, ApprovalState Approval, bool BindingExists, DateTime Now);

/// <summary>What to do with the request's RoleBinding: make sure it exists, make sure it is gone, or leave it.</summary>
public enum BindingAction { None, Ensure, Delete }

/// <summary>An audit row the decision asks for (appended before the status that reports it).</summary>
public sealed record AccessAudit(string Action, JsonObject Details, string Severity = "info");

/// <summary>The next status, its conditions, what to do with the binding, Events, audit rows, and when to look again (at expiresAt).</summary>
public sealed record AccessRequestDecision(
    AccessRequestStatus Status,
    BindingAction Binding,
    IReadOnlyList<ConditionVerdict> Conditions,
    IReadOnlyList<Notice> Notices,
    IReadOnlyList<AccessAudit> Audits,
    TimeSpan? RecheckIn)
{
    public AccessRequestPhase Phase => Status.Phase ?? AccessRequestPhase.Unknown;
}

/// <summary>
/// An AccessRequest's life, a pure function of its facts. Expired, Revoked and Rejected are final: an
/// ended request is never granted again (a new request needs a new approval). A Pending request is
/// Rejected when it breaks <see cref="AccessRequestRules"/> under its tenant's policy, its requester is
/// not a person, or an approver rejected it; Revoked when spec.revoke is set before approval; Active once
/// approved, with grantedAt = now and expiresAt = grantedAt + spec.duration recorded in status. An Active
/// grant is read from its recorded times, never recomputed: Expired from status.expiresAt on, Revoked on
/// spec.revoke, a counting reject or deletion. The binding goes with every end. Events and audit rows
/// only on a change of phase, so a pass with nothing new writes nothing.
/// </summary>
public static class AccessRequestPlan
{
    /// <summary>The audit actions that record a change of phase, in the order of the object's life.</summary>
    public static readonly IReadOnlyList<string> Transitions = ["access.requested", "access.granted", "access.rejected", "access.expired", "access.revoked"];

    public const string BindingPrefix = "controlplane-access-";

    /// <summary>The RoleBinding that carries a request's grant.</summary>
    public static string BindingName(string request) => BindingPrefix + request;

    /// <summary>The requester: whoever created the request, as the admission webhook stamped it.</summary>
    public static string? RequesterOf(AccessRequest r) => ApprovalPolicy.AuthorOf(r);

    public static AccessRequestDecision Decide(AccessRequestFacts f)
    {
        var r = f.Request;
        var old = r.Status;
        var oldPhase = old?.Phase ?? AccessRequestPhase.Pending;
        var requester = RequesterOf(r);
        var deleting = r.Metadata.DeletionTimestamp is not null;
        var status = new AccessRequestStatus
        {
            Requester = requester,
            ApprovedBy = old?.ApprovedBy,
            GrantedAt = old?.GrantedAt,
            ExpiresAt = old?.ExpiresAt,
            EndedAt = old?.EndedAt,
            ObservedGeneration = r.Metadata.Generation,
        };
        string reason, message;
        AccessRequestPhase phase;
        var binding = BindingAction.None;

        if (oldPhase is AccessRequestPhase.Expired or AccessRequestPhase.Revoked or AccessRequestPhase.Rejected)
        {
            // Final: keep what was recorded; a binding still there (a failed delete) goes.
            phase = oldPhase;
            reason = old?.Conditions?.FirstOrDefault(c => c.Type == AccessRequestConditions.Ready)?.Reason ?? oldPhase.ToString();
            message = old?.Conditions?.FirstOrDefault(c => c.Type == AccessRequestConditions.Ready)?.Message ?? $"the request is {oldPhase}: a new AccessRequest needs a new approval";
            binding = Grants.BindingEnds(f.BindingExists);
        }
        else if (oldPhase == AccessRequestPhase.Active && old?.ExpiresAt is { } recorded)
        {
            var expires = recorded.ToUniversalTime();
            // The tenant's policy is read again on every pass: lowering maxRole or maxDuration, or removing the
            // workspace, ends a grant it no longer allows (less access is always safe).
            var withdrawn = f.Tenant is null
                ? $"the namespace {r.Metadata.NamespaceProperty} is no longer a workspace's"
                : AccessRequestRules.Problems(r.Spec, f.Tenant) is { Count: > 0 } now ? $"the tenant's access policy no longer allows this grant: {string.Join("; ", now)}" : null;
            GrantCourse course;
            (course, binding) = Grants.ActiveCourse(expires, f.Now, deleting || r.Spec.Revoke == true || f.Approval.Rejected || withdrawn is not null, f.BindingExists);
            (phase, reason, message) = course switch
            {
                GrantCourse.End when !deleting && r.Spec.Revoke != true && !f.Approval.Rejected && withdrawn is not null =>
                    (AccessRequestPhase.Revoked, AccessRequestReasons.PolicyWithdrawn, $"{withdrawn}: the grant ended early"),
                GrantCourse.End => (AccessRequestPhase.Revoked, AccessRequestReasons.Revoked,
                    deleting ? "the request was deleted: the grant ended early"
                    : r.Spec.Revoke == true ? "spec.revoke is true: the grant ended early"
                    : $"{f.Approval.Message}: the grant ended early"),
                GrantCourse.Expire => (AccessRequestPhase.Expired, AccessRequestReasons.Expired, $"the grant of {r.Spec.Role} to {requester} expired at {expires:u}; its RoleBinding is deleted"),
                _ => (AccessRequestPhase.Active, AccessRequestReasons.Active,
                    $"{requester} holds {r.Spec.Role} in workspace {r.Metadata.NamespaceProperty} until {expires:u} (approved by {old.ApprovedBy})"),
            };
            if (course == GrantCourse.Hold) status.RoleBinding = BindingName(r.Metadata.Name);
            else status.EndedAt = f.Now;
        }
        else
        {
            var problems = f.Tenant is null ? [] : AccessRequestRules.Problems(r.Spec, f.Tenant);
            if (AccessRequestRules.NameProblem(r.Metadata.Name) is { } badName) problems.Insert(0, badName);
            var notAPerson = string.IsNullOrEmpty(requester)
                ? "metadata.annotations[controlplane.io/created-by]: the requester is unknown (the admission webhook stamps it)"
                : ApprovalPolicy.NotAPerson(requester, null);
            if (f.Tenant is null)
            {
                (phase, reason, message) = (AccessRequestPhase.Rejected, AccessRequestReasons.NotInAWorkspace,
                    $"metadata.namespace: \"{r.Metadata.NamespaceProperty}\" is not the namespace of a workspace: an AccessRequest belongs to a workspace");
            }
            else if (notAPerson is not null)
            {
                (phase, reason, message) = (AccessRequestPhase.Rejected, AccessRequestReasons.NotAPerson, $"{notAPerson}: only a person is granted access just in time");
            }
            else if (problems.Count > 0)
            {
                (phase, reason, message) = (AccessRequestPhase.Rejected, AccessRequestReasons.PolicyViolation, string.Join("; ", problems));
            }
            else if (deleting || r.Spec.Revoke == true)
            {
                (phase, reason, message) = (AccessRequestPhase.Revoked, AccessRequestReasons.Revoked, deleting ? "the request was deleted before it was granted" : "spec.revoke is true: withdrawn before it was granted");
            }
            else if (f.Approval.Rejected)
            {
                (phase, reason, message) = (AccessRequestPhase.Rejected, AccessRequestReasons.Rejected, f.Approval.Message);
            }
            else if (f.Approval.Approved)
            {
                Durations.TryParse(r.Spec.Duration, out var duration);
                phase = AccessRequestPhase.Active;
                reason = AccessRequestReasons.Active;
                status.ApprovedBy = string.Join(", ", f.Approval.Approvers);
                status.GrantedAt = f.Now;
                status.ExpiresAt = f.Now + duration;
                status.RoleBinding = BindingName(r.Metadata.Name);
                message = $"{requester} holds {r.Spec.Role} in workspace {r.Metadata.NamespaceProperty} until {status.ExpiresAt:u} (approved by {status.ApprovedBy})";
                binding = f.BindingExists ? BindingAction.None : BindingAction.Ensure;
            }
            else
            {
                (phase, reason, message) = (AccessRequestPhase.Pending, AccessRequestReasons.AwaitingApproval,
                    $"awaiting approval in workspace {r.Metadata.NamespaceProperty} (never by {requester}): {f.Approval.Message}");
            }

            // Nothing was granted; a binding of this name is not ours to keep.
            if (phase != AccessRequestPhase.Active && f.BindingExists) binding = BindingAction.Delete;
        }

        status.Phase = phase;
        if (phase != AccessRequestPhase.Active) status.RoleBinding = null;
        var approved = phase == AccessRequestPhase.Active || (old?.GrantedAt is not null);
        var conditions = new List<ConditionVerdict>
        {
            new(AccessRequestConditions.Approved, approved && !f.Approval.Rejected ? true : f.Approval.Approved && !f.Approval.Rejected,
                f.Approval.Rejected ? AccessRequestReasons.Rejected : approved || f.Approval.Approved ? AccessRequestReasons.Approved : AccessRequestReasons.AwaitingApproval,
                approved && status.ApprovedBy is { } by ? $"approved by {by}" : f.Approval.Message),
            new(AccessRequestConditions.Ready, phase == AccessRequestPhase.Active, reason, message),
        };

        var notices = new List<Notice>();
        var audits = new List<AccessAudit>();
        if (phase != oldPhase || old?.Phase is null)
        {
            var details = Details(r, requester, f.Tenant, status);
            switch (phase)
            {
                case AccessRequestPhase.Active:
                    notices.Add(new(AccessRequestReasons.Approved, message));
                    audits.Add(new("access.granted", details, "security"));
                    break;
                case AccessRequestPhase.Expired:
                    notices.Add(new(AccessRequestReasons.Expired, message));
                    audits.Add(new("access.expired", details, "security"));
                    break;
                case AccessRequestPhase.Revoked:
                    details["reason"] = message;
                    notices.Add(new(AccessRequestReasons.Revoked, message, Warning: oldPhase == AccessRequestPhase.Active));
                    audits.Add(new("access.revoked", details, "security"));
                    break;
                case AccessRequestPhase.Rejected:
                    details["reason"] = reason;
                    notices.Add(new(reason, message, Warning: true));
                    audits.Add(new("access.rejected", details, "warning"));
                    break;
                case AccessRequestPhase.Pending when old?.Phase is null:
                    audits.Add(new("access.requested", ApprovalAsks.With(details, f.Approval.Required, f.Approval.Approvers, null)));
                    break;
            }
        }

        return new(status, binding, conditions, notices, audits, phase == AccessRequestPhase.Active ? Grants.RecheckIn(f.Now, status.ExpiresAt) : null);
    }

    static JsonObject Details(AccessRequest r, string? requester, Tenant? tenant, AccessRequestStatus status) => new()
    {
        ["namespace"] = r.Metadata.NamespaceProperty,
        ["requester"] = requester,
        ["role"] = r.Spec.Role,
        ["duration"] = r.Spec.Duration,
        ["justification"] = r.Spec.Justification,
        ["ticket"] = r.Spec.Ticket,
        ["approvedBy"] = status.ApprovedBy,
        ["grantedAt"] = status.GrantedAt?.ToUniversalTime().ToString("O"),
        ["expiresAt"] = status.ExpiresAt?.ToUniversalTime().ToString("O"),
        ["tenant"] = tenant?.Metadata.Name,
    };
}
