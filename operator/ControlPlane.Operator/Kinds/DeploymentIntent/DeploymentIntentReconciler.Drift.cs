using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>Drift checks, plane failures by class, and the one place a pass is written: event store, then status, then Events.</summary>
public sealed partial class DeploymentIntentReconciler
{
    /// <summary>
    /// Every spec.driftCheckInterval, each completed ring's actual state on the plane is compared with
    /// the intent: version_mismatch, assignment_missing, scope_mismatch. Recorded (status.drift, an
    /// Event, the event store); with driftRemediation auto the ring is redeployed through the plane.
    /// </summary>
    async Task<TimeSpan?> CheckDriftAsync(IntentPass pass, CancellationToken ct)
    {
        var status = pass.Status;
        var completed = status.Rings?.Where(r => r.Phase == IntentRingPhase.Completed).ToList() ?? [];
        if (completed.Count == 0 || status.Phase is not (IntentPhase.Completed or IntentPhase.InProgress or IntentPhase.AwaitingApproval)) return null;
        var interval = Durations.TryParse(pass.Intent.Spec.DriftCheckInterval, out var d) && d > TimeSpan.Zero ? d : TimeSpan.FromHours(1);
        var due = (status.LastDriftCheck ?? completed.Max(r => r.CompletedAt) ?? pass.Now) + interval;
        if (status.LastDriftCheck is not null && pass.Now < due) return due - pass.Now;
        if (status.LastDriftCheck is null && pass.Now < due) return due - pass.Now;

        var plane = await planes.ForAsync(pass.Intent, ct).ConfigureAwait(false);
        DriftStatus? found = null;
        string? foundRing = null;
        foreach (var ring in completed)
        {
            var state = await plane.QueryStatusAsync(Deployment(pass, ring.Name, ring.Workspaces ?? []), ct).ConfigureAwait(false);
            if (IntentDrift.Of(pass.Intent.Spec.Version, ring.Workspaces ?? [], state) is { } drift)
            {
                found = new DriftStatus { DetectedAt = pass.Now, Type = drift.Type, Desired = drift.Desired, Actual = drift.Actual };
                foundRing = ring.Name;
                break;
            }
        }

        status.LastDriftCheck = pass.Now;
        if (found is null)
        {
            status.Drift = null;
            pass.Conditions.Set(IntentConditions.InSync, true, "InSync", $"checked {pass.Now:u}: every completed ring matches the intent");
            return interval;
        }

        status.Drift = found;
        var what = $"ring {foundRing}: {found.Type} (desired {found.Desired}, actual {found.Actual})";
        var auto = pass.Intent.Spec.DriftRemediation == "auto";
        metrics.DriftFound(pass.Intent, pass.Tenant, found.Type!);
        pass.Record("drift", foundRing, IntentReasons.DriftDetected, what, new JsonObject { ["type"] = found.Type, ["desired"] = found.Desired, ["actual"] = found.Actual, ["remediation"] = pass.Intent.Spec.DriftRemediation },
            $"drift/{foundRing}/{pass.Now:O}", warning: true);
        if (auto)
        {
            var ring = completed.First(r => r.Name == foundRing);
            await RemediateCountedAsync(pass, plane, Deployment(pass, ring.Name, ring.Workspaces ?? []), PlaneRemediation.Redeploy, pass.Intent.Spec.Version, null, ct).ConfigureAwait(false);
            pass.Record("remediation", foundRing, IntentReasons.DriftRemediated, $"{what}: redeployed {pass.Intent.Spec.Version} through the plane", null, $"remediate/{foundRing}/{pass.Now:O}");
            pass.Conditions.Set(IntentConditions.InSync, false, IntentReasons.DriftRemediated, $"{what}; redeployed (driftRemediation auto), checked again in {interval}");
        }
        else
        {
            pass.Conditions.Set(IntentConditions.InSync, false, IntentReasons.DriftDetected, $"{what}; driftRemediation is report: nothing changed");
        }

        return interval;
    }

    /// <summary>A plane error by class: TRANSIENT retried (after its retryAfter), PERMANENT fails the intent, POLICY_VIOLATION denies it (a security event).</summary>
    async Task<ReconcileResult> PlaneFailedAsync(IntentPass pass, PlaneError e, CancellationToken ct)
    {
        var message = $"execution plane: {e.Class} {e.Code}: {e.Detail}";
        metrics.PlaneError(PlaneType(pass.Intent), e);
        switch (e.Class)
        {
            case PlaneErrorClass.Transient:
                pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.PlaneUnavailable, message).Set(IntentConditions.Ready, false, IntentReasons.PlaneUnavailable, message);
                await FinishAsync(pass, null, ct).ConfigureAwait(false);
                return e.RetryAfter is { } after ? ReconcileResult.RequeueAfter(after) : ReconcileResult.Retry(message);
            case PlaneErrorClass.PolicyViolation:
            {
                // Denied where the table allows it; a completed change keeps its phase and says so (it is not undone by a refusal).
                var previous = pass.Intent.Status?.Conditions?.FirstOrDefault(c => c.Type == IntentConditions.Ready);
                if (IntentStateMachine.IsLegal(pass.Status.Phase ?? IntentPhase.Pending, IntentPhase.Denied)) pass.Move(IntentPhase.Denied, IntentReasons.PolicyViolation, message, new JsonObject { ["code"] = e.Code });
                if (previous?.Reason != IntentReasons.PolicyViolation || previous.Message != message)
                {
                    pass.Audits.Add(new AuditEntry(ApprovalPolicy.AuthorsOf(pass.Intent).LastOrDefault() ?? "unknown", "deploymentintent.policyViolation", "DeploymentIntent",
                        $"{pass.Intent.Metadata.NamespaceProperty}/{pass.Intent.Metadata.Name}", pass.Tenant,
                        new JsonObject { ["reason"] = e.Code, ["generation"] = pass.Intent.Metadata.Generation, ["correlationId"] = pass.Status.CorrelationId, ["phase"] = pass.Status.Phase?.ToString() },
                        Severity: "security"));
                    pass.Notices.Add(("Warning", IntentReasons.PolicyViolation, message));
                }

                pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.Denied, message).Set(IntentConditions.Ready, false, IntentReasons.PolicyViolation, message);
                return await FinishAsync(pass, null, ct).ConfigureAwait(false);
            }

            default:
                if (IntentStateMachine.IsLegal(pass.Status.Phase ?? IntentPhase.Pending, IntentPhase.Failed)) pass.Move(IntentPhase.Failed, IntentReasons.PlaneRefused, message, new JsonObject { ["code"] = e.Code });
                pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.Failed, message).Set(IntentConditions.Ready, false, IntentReasons.PlaneRefused, message);
                return await FinishAsync(pass, null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Writes what the pass decided: the event-store entries (and security audit events) first, so
    /// no phase is shown that the store does not hold; then status; then the Events. Ready is True
    /// only for a completed, in-sync change.
    /// </summary>
    async Task<ReconcileResult> FinishAsync(IntentPass pass, TimeSpan? recheck, CancellationToken ct)
    {
        var status = pass.Status;
        if (status.Phase == IntentPhase.Completed && pass.Conditions.ToList().FirstOrDefault(c => c.Type == IntentConditions.InSync)?.Status != "False")
        {
            pass.Conditions.Set(IntentConditions.Ready, true, IntentReasons.Completed, $"every ring completed; {status.Rings?.Count ?? 0} ring(s) in sync");
        }

        if (status.Phase == IntentPhase.Completed && pass.Conditions.ToList().FirstOrDefault(c => c.Type == IntentConditions.InSync)?.Status == "False")
        {
            var drift = pass.Conditions.ToList().First(c => c.Type == IntentConditions.InSync);
            pass.Conditions.Set(IntentConditions.Ready, false, drift.Reason, drift.Message);
        }

        await database.AppendDeploymentEventsAsync(pass.Events, ct).ConfigureAwait(false);
        foreach (var audit in pass.Audits)
        {
            if (await OnRecordAsync(pass, audit, ct).ConfigureAwait(false)) continue;
            await database.AppendAuditAsync(audit, ct).ConfigureAwait(false);
        }

        status.ObservedGeneration = pass.Intent.Metadata.Generation;
        status.Conditions = pass.Conditions.ToList();
        await WriteStatusAsync(pass, ct).ConfigureAwait(false);
        foreach (var (type, reason, message) in pass.Notices) await events.RecordAsync(pass.Intent, type, reason, message, ct).ConfigureAwait(false);
        return recheck is { } r ? ReconcileResult.RequeueAfter(r) : ReconcileResult.Done;
    }

    async Task WriteStatusAsync(IntentPass pass, CancellationToken ct) =>
        await writer.UpdateStatusAsync(Type, pass.Intent, pass.Status, ct).ConfigureAwait(false);
}

/// <summary>Drift between what an intent deployed and what a plane reports.</summary>
public sealed record IntentDriftFinding(string Type, string Desired, string Actual);

public static class IntentDrift
{
    /// <summary>version_mismatch, assignment_missing or scope_mismatch; null when the ring is as deployed.</summary>
    public static IntentDriftFinding? Of(string version, IReadOnlyList<string> workspaces, PlaneStatus actual)
    {
        if (!actual.Assigned) return new("assignment_missing", $"{version} assigned", "not assigned");
        if (actual.ActualVersion is { } v && v != version) return new("version_mismatch", version, v);
        var want = workspaces.Order(StringComparer.Ordinal).ToList();
        var have = actual.Workspaces.Order(StringComparer.Ordinal).ToList();
        if (have.Count > 0 && !want.SequenceEqual(have)) return new("scope_mismatch", string.Join(",", want), string.Join(",", have));
        return null;
    }
}
