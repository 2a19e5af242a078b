using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// RequireException: serious findings (High/Critical vulnerabilities, unsigned packages, scope violations) hold
/// every ring not yet started until approved, unexpired Exceptions of the intent's own namespace, for its
/// artifact digest, cover each (<see cref="ExceptionCoverage"/>). Whether an Exception counts is judged here
/// from its spec, its Approvals and the time, with the rules its own reconciler uses (<see cref="ExceptionPlan"/>),
/// never from a status that could lag. A ring already running goes on (nothing is rolled back silently); the
/// next one waits, with a Warning, an audit row and an exception_expired event, when cover is lost.
/// </summary>
public sealed partial class DeploymentIntentReconciler
{
    void GateOnExceptions(IntentPass pass, Tenant tenant, IReadOnlyList<Finding> findings)
    {
        var intent = pass.Intent;
        var status = pass.Status;
        if (status.Phase is IntentPhase.Completed or IntentPhase.Denied or IntentPhase.Failed or IntentPhase.RolledBack) return;
        var previous = Conditions.Find(intent.Status?.Conditions, IntentConditions.ExceptionsCovered);
        var coverage = ExceptionCoverage.Of(findings, intent.Spec.Artifact.Sha256, ExceptionsInForce(intent.Metadata.NamespaceProperty, tenant, pass.Now));
        if (coverage.Serious.Count == 0)
        {
            // Intents without serious findings get no condition at all (nothing to cover).
            if (previous is not null) pass.Conditions.Set(IntentConditions.ExceptionsCovered, true, IntentReasons.NoSeriousFindings, "no serious findings: no Exception needed");
            status.Exceptions = null;
            return;
        }

        status.Exceptions = coverage.InUse.Count == 0 ? null : coverage.InUse
            .Select(u => new IntentException { Name = u.Exception, Covers = [.. u.Covers], ExpiresAt = coverage.Covered.First(c => c.Exception == u.Exception).ExpiresAt })
            .ToList();
        if (coverage.Complete)
        {
            var by = string.Join("; ", coverage.Covered.Select(c => $"{c.Finding} by Exception {c.Exception} until {c.ExpiresAt:u}"));
            pass.Conditions.Set(IntentConditions.ExceptionsCovered, true, IntentReasons.ExceptionsCovered, $"every serious finding is covered: {by}");
            if (coverage.EarliestExpiry is { } expires && expires > pass.Now) pass.ExceptionRecheck = expires - pass.Now + TimeSpan.FromSeconds(1);
            if (previous?.Status != ConditionStatus.True)
            {
                var details = new JsonObject
                {
                    ["covered"] = new JsonArray(coverage.Covered.Select(c => (JsonNode)new JsonObject
                    {
                        ["finding"] = c.Finding.Id, ["type"] = c.Finding.Type.ToString(), ["severity"] = c.Finding.Severity, ["exception"] = c.Exception,
                        ["expiresAt"] = c.ExpiresAt.ToString("O"),
                    }).ToArray()),
                    ["sha256"] = intent.Spec.Artifact.Sha256,
                };
                pass.Record("exception_granted", null, IntentReasons.ExceptionGranted, $"Exceptions cover every serious finding: {by}", details, "exception/granted/" + Fingerprint(intent.Metadata.NamespaceProperty, coverage));
            }

            return;
        }

        var started = (status.Rings ?? []).Any(r => r.Phase is IntentRingPhase.InProgress or IntentRingPhase.Completed);
        var lost = previous?.Status == ConditionStatus.True || previous?.Reason == IntentReasons.ExceptionExpired || started;
        var reason = lost ? IntentReasons.ExceptionExpired : IntentReasons.AwaitingException;
        var message = $"not covered by an approved, unexpired Exception of namespace {intent.Metadata.NamespaceProperty} for artifact sha256 {intent.Spec.Artifact.Sha256}: "
                      + Findings.Summary(coverage.Uncovered.ToList()) + (coverage.Hints.Count > 0 ? " (" + string.Join("; ", coverage.Hints.Take(Findings.NamedInMessages)) + ")" : "")
                      + (started ? "; the ring in progress goes on, no further ring starts" : "; no ring starts");
        pass.Conditions.Set(IntentConditions.ExceptionsCovered, false, reason, message);
        pass.ExceptionHold = (reason, message);
        if (previous?.Status == ConditionStatus.True)
        {
            // Cover lost mid-change (expired, deleted, rejected, its approval withdrawn): said loudly, never rolled back silently.
            var details = new JsonObject
            {
                ["uncovered"] = new JsonArray(coverage.Uncovered.Select(f => (JsonNode)JsonValue.Create(f.Id)).ToArray()),
                ["sha256"] = intent.Spec.Artifact.Sha256,
            };
            pass.Record("exception_expired", status.CurrentRing, IntentReasons.ExceptionExpired, message, details,
                $"exception/expired/{previous.LastTransitionTime.ToUniversalTime():O}", warning: true);
            pass.Audits.Add(new AuditEntry(Actor, "deploymentintent.exceptionExpired", DeploymentIntent.KubeKind, $"{intent.Metadata.NamespaceProperty}/{intent.Metadata.Name}",
                pass.Tenant, details, "warning"));
        }
    }

    /// <summary>The ring that would start waits: AwaitingApproval (the contract's phases are fixed) with the exception reason on Ready.</summary>
    static void HoldForExceptions(IntentPass pass, string ring, string reason, string message)
    {
        var status = pass.Status;
        if (status.Phase == IntentPhase.ScopeValidated
            || (status.Phase == IntentPhase.InProgress && !(status.Rings ?? []).Any(r => r.Phase == IntentRingPhase.InProgress)))
        {
            pass.Move(IntentPhase.AwaitingApproval, reason, $"ring {ring} waits: {message}", null, ring);
        }

        pass.Conditions.Set(IntentConditions.Progressing, false, reason, $"ring {ring} waits: {message}")
            .Set(IntentConditions.Ready, false, reason, $"ring {ring} waits: {message}");
    }

    /// <summary>Every Exception of the namespace and whether it counts now, as its own reconciler would decide.</summary>
    IEnumerable<ExceptionInForce> ExceptionsInForce(string ns, Tenant tenant, DateTime now)
    {
        var approvals = caches.Approvals.InNamespace(ns).ToList();
        var intents = caches.Intents.InNamespace(ns).ToList();
        foreach (var x in caches.Exceptions.InNamespace(ns))
        {
            if (x.Metadata.DeletionTimestamp is not null) continue;
            var approval = ExceptionApprovals.Evaluate(x, approvals, intents, caches.RoleBindings.InNamespace);
            yield return new ExceptionInForce(x, ExceptionPlan.Counts(new ExceptionFacts(x, tenant, approval, now)));
        }
    }

    /// <summary>Which Exceptions (by UID and generation) covered what: a new cover is a new exception_granted entry, the same one is not.</summary>
    string Fingerprint(string ns, ExceptionCoverage coverage)
    {
        var parts = coverage.Covered.Select(c => caches.Exceptions.Get($"{ns}/{c.Exception}") is { } x
                ? $"{c.Finding.Type}/{c.Finding.Id}={x.Metadata.Uid}/{x.Metadata.Generation}"
                : $"{c.Finding.Type}/{c.Finding.Id}={c.Exception}")
            .Order(StringComparer.Ordinal);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("|", parts))))[..16];
    }
}
