using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>What an Exception's decision reads: the object, its tenant (null: not in a workspace), its approvals' sum, the time.</summary>
public sealed record ExceptionFacts(SecurityException Exception, Tenant? Tenant, ApprovalState Approval, DateTime Now);

/// <summary>
/// An audit row the decision asks for (appended before the status that reports it). <paramref name="Once"/>: appended
/// only if no row of this action, details.reason and details.generation is on record (an ask, decided from a status that may lag).
/// Otherwise it is a change of phase (<see cref="ExceptionPlan.Transitions"/>): appended unless the newest transition on
/// record is this one with these details (the status write after it was lost, so the status still shows the phase before).
/// </summary>
public sealed record ExceptionAudit(string Action, JsonObject Details, string Severity = "info", bool Once = false);

/// <summary>What to write: the next status (phase, approvedBy/At), its conditions, Events, audit rows, and when to look again (at expiresAt).</summary>
public sealed record ExceptionDecision(
    ExceptionPhase Phase,
    string? ApprovedBy,
    DateTime? ApprovedAt,
    IReadOnlyList<ConditionVerdict> Conditions,
    IReadOnlyList<Notice> Notices,
    IReadOnlyList<ExceptionAudit> Audits,
    TimeSpan? RecheckIn);

/// <summary>
/// An Exception's life, a pure function of its facts: Rejected when it breaks its rules or the tenant's
/// policy (<see cref="ExceptionRules"/>: expiresAt at most maxDuration after creation) or a SecurityReviewer
/// rejected it; Expired from spec.expiresAt on (a recorded time: the reconciler requeues at it, no timer);
/// Active while approved (<see cref="ExceptionApprovals"/>) and unexpired; else Pending. Events and audit
/// rows only on a change of phase, so a pass with nothing new writes nothing.
/// </summary>
public static class ExceptionPlan
{
    /// <summary>The audit actions that record a change of phase, in the order of the object's life.</summary>
    public static readonly IReadOnlyList<string> Transitions = ["exception.approved", "exception.expired", "exception.rejected", "exception.revoked"];

    public static ExceptionDecision Decide(ExceptionFacts f)
    {
        var e = f.Exception;
        var old = e.Status;
        var expires = e.Spec.ExpiresAt.ToUniversalTime();
        string? approvedBy = null;
        DateTime? approvedAt = null;
        ExceptionPhase phase;
        string reason, message;
        var problems = f.Tenant is null ? [] : ExceptionRules.Problems(e.Spec, ExceptionRules.MaxDuration(f.Tenant), Created(e, f.Now));
        if (f.Tenant is null)
        {
            (phase, reason, message) = (ExceptionPhase.Rejected, ExceptionReasons.NotInAWorkspace,
                $"metadata.namespace: \"{e.Metadata.NamespaceProperty}\" is not the namespace of a workspace: an Exception belongs to a workspace");
        }
        else if (problems.Count > 0)
        {
            (phase, reason, message) = (ExceptionPhase.Rejected, ExceptionReasons.PolicyViolation, string.Join("; ", problems));
        }
        else if (f.Approval.Rejected)
        {
            (phase, reason, message) = (ExceptionPhase.Rejected, ExceptionReasons.Rejected, f.Approval.Message);
        }
        else if (f.Now >= expires)
        {
            (phase, reason, message) = (ExceptionPhase.Expired, ExceptionReasons.Expired, $"spec.expiresAt {expires:u} has passed: it covers nothing any more; a new Exception needs a new review");
            // Who approved it stays on record.
            approvedBy = old?.ApprovedBy;
            approvedAt = old?.ApprovedAt;
        }
        else if (f.Approval.Approved)
        {
            approvedBy = string.Join(", ", f.Approval.Approvers);
            var same = old?.Phase == ExceptionPhase.Active && old.ObservedGeneration == e.Metadata.Generation && old.ApprovedBy == approvedBy;
            approvedAt = same ? old!.ApprovedAt ?? f.Now : f.Now;
            (phase, reason, message) = (ExceptionPhase.Active, ExceptionReasons.Active, $"approved by {approvedBy}; covers {string.Join(", ", e.Spec.Covers)} up to {e.Spec.Severity} on {Short(e.Spec.Artifact.Sha256)} until {expires:u}");
        }
        else
        {
            (phase, reason, message) = (ExceptionPhase.Pending, ExceptionReasons.AwaitingApproval, $"awaiting an Approval from a SecurityReviewer of workspace {e.Metadata.NamespaceProperty}: {f.Approval.Message}");
        }

        var conditions = new List<ConditionVerdict>
        {
            new(ExceptionConditions.Approved, f.Approval.Approved && !f.Approval.Rejected,
                f.Approval.Rejected ? ExceptionReasons.Rejected : f.Approval.Approved ? ExceptionReasons.Approved : ExceptionReasons.AwaitingApproval, f.Approval.Message),
            new(ExceptionConditions.Ready, phase == ExceptionPhase.Active, reason, message),
        };

        var notices = new List<Notice>();
        var audits = new List<ExceptionAudit>();
        if (old?.Phase != phase || (phase == ExceptionPhase.Active && old.ObservedGeneration != e.Metadata.Generation))
        {
            var details = Details(e, f.Tenant);
            switch (phase)
            {
                case ExceptionPhase.Active:
                    details["approvedBy"] = approvedBy;
                    notices.Add(new(ExceptionReasons.Approved, message));
                    audits.Add(new("exception.approved", details));
                    break;
                case ExceptionPhase.Expired:
                    notices.Add(new(ExceptionReasons.Expired, message, Warning: true));
                    audits.Add(new("exception.expired", details, "warning"));
                    break;
                case ExceptionPhase.Rejected:
                    details["reason"] = reason;
                    // Who rejected, or what broke the rules: a second rejection after the first was withdrawn differs from it on record.
                    if (reason == ExceptionReasons.Rejected) details["rejectedBy"] = new JsonArray(f.Approval.RejectedBy.Select(r => (JsonNode?)JsonValue.Create(r)).ToArray());
                    else details["message"] = message;
                    notices.Add(new(reason, message, Warning: true));
                    audits.Add(new("exception.rejected", details, "warning"));
                    break;
                case ExceptionPhase.Pending when old?.Phase == ExceptionPhase.Active:
                    // Its approval no longer counts (the spec changed, the reviewer lost the role): it stops covering.
                    notices.Add(new(ExceptionReasons.AwaitingApproval, message, Warning: true));
                    audits.Add(new("exception.revoked", details, "warning"));
                    break;
            }
        }

        // Waiting for a SecurityReviewer: asked once per generation, so approval.requested reaches them.
        if (ApprovalAskPlans.ForException(e, phase, f.Approval, Details(e, f.Tenant)) is { } ask) audits.Add(new(ask.Action, ask.Details, Once: true));

        TimeSpan? recheck = phase is ExceptionPhase.Active or ExceptionPhase.Pending && expires > f.Now ? expires - f.Now : null;
        return new(phase, approvedBy, approvedAt, conditions, notices, audits, recheck);
    }

    /// <summary>Whether the Exception counts at <paramref name="now"/>: the phase the plan gives it now, Active.</summary>
    public static bool Counts(ExceptionFacts f) => Decide(f).Phase == ExceptionPhase.Active;

    static DateTime Created(SecurityException e, DateTime now) => e.Metadata.CreationTimestamp?.ToUniversalTime() ?? now;

    static JsonObject Details(SecurityException e, Tenant? tenant) => new()
    {
        ["namespace"] = e.Metadata.NamespaceProperty,
        ["generation"] = e.Metadata.Generation,
        ["type"] = e.Spec.Type,
        ["severity"] = e.Spec.Severity,
        ["sha256"] = e.Spec.Artifact.Sha256,
        ["covers"] = new JsonArray(e.Spec.Covers.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()),
        ["owner"] = e.Spec.Owner,
        ["expiresAt"] = e.Spec.ExpiresAt.ToUniversalTime().ToString("O"),
        ["tenant"] = tenant?.Metadata.Name,
    };

    static string Short(string sha) => sha.Length > 12 ? "sha256:" + sha[..12] : sha;

    /// <summary>The finding type an Exception's spec.type accepts.</summary>
    public static FindingType? TypeOf(string type) => type switch
    {
        "vulnerability" => FindingType.Vulnerability,
        "unsignedPackage" => FindingType.UnsignedPackage,
        "scopeViolation" => FindingType.ScopeViolation,
        _ => null,
    };
}

/// <summary>One serious finding and the Exception that covers it.</summary>
public sealed record CoveredFinding(Finding Finding, string Exception, DateTime ExpiresAt);

/// <summary>An Exception as an intent sees it: the object and whether it counts now (Active by <see cref="ExceptionPlan"/>).</summary>
public sealed record ExceptionInForce(SecurityException Exception, bool Active);

/// <summary>Which serious findings are covered, by which Exception, and which are not (with why, when an Exception names one but does not count).</summary>
public sealed record ExceptionCoverage(IReadOnlyList<Finding> Serious, IReadOnlyList<CoveredFinding> Covered, IReadOnlyList<Finding> Uncovered, IReadOnlyList<string> Hints)
{
    public bool Complete => Uncovered.Count == 0;

    /// <summary>The Exceptions in use and what each covers (status.exceptions of the intent).</summary>
    public IReadOnlyList<(string Exception, IReadOnlyList<string> Covers)> InUse =>
        Covered.GroupBy(c => c.Exception, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, (IReadOnlyList<string>)g.Select(c => c.Finding.Id).Order(StringComparer.Ordinal).ToList())).ToList();

    /// <summary>The earliest expiry among the Exceptions in use: when the intent must look again.</summary>
    public DateTime? EarliestExpiry => Covered.Count == 0 ? null : Covered.Min(c => c.ExpiresAt);

    /// <summary>
    /// Which serious findings of an artifact approved, unexpired Exceptions cover: an Exception counts for a
    /// finding when it is Active, has the intent's digest, its type is the finding's, spec.covers names the
    /// finding's id, and the finding's severity is at most the Exception's. Of several, the one expiring last.
    /// Every finding that is not serious (Low/Medium vulnerabilities) needs none.
    /// </summary>
    public static ExceptionCoverage Of(IReadOnlyList<Finding> findings, string? artifactSha256, IEnumerable<ExceptionInForce> exceptions)
    {
        var serious = findings.Where(f => f.Serious).ToList();
        var sameArtifact = exceptions.Where(x => !string.IsNullOrEmpty(artifactSha256)
                                                 && string.Equals(x.Exception.Spec.Artifact.Sha256, artifactSha256, StringComparison.OrdinalIgnoreCase)).ToList();
        var covered = new List<CoveredFinding>();
        var uncovered = new List<Finding>();
        var hints = new List<string>();
        foreach (var finding in serious)
        {
            var naming = sameArtifact.Where(x => ExceptionPlan.TypeOf(x.Exception.Spec.Type) == finding.Type && x.Exception.Spec.Covers.Contains(finding.Id, StringComparer.Ordinal)).ToList();
            var best = naming.Where(x => x.Active && Findings.Rank(finding.Severity) <= Findings.Rank(x.Exception.Spec.Severity))
                .OrderByDescending(x => x.Exception.Spec.ExpiresAt).ThenBy(x => x.Exception.Metadata.Name, StringComparer.Ordinal).FirstOrDefault();
            if (best is not null)
            {
                covered.Add(new(finding, best.Exception.Metadata.Name, best.Exception.Spec.ExpiresAt.ToUniversalTime()));
                continue;
            }

            uncovered.Add(finding);
            foreach (var x in naming)
            {
                hints.Add(!x.Active
                    ? $"Exception {x.Exception.Metadata.Name} names {finding.Id} but is {x.Exception.Status?.Phase?.ToString() ?? "not approved"}, not Active"
                    : $"Exception {x.Exception.Metadata.Name} covers {finding.Id} only up to {x.Exception.Spec.Severity}, the finding is {finding.Severity}");
            }
        }

        return new(serious, covered, uncovered, hints);
    }
}
