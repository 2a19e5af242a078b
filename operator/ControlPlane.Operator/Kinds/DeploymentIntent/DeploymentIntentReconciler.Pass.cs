using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// What one reconcile of an intent decides: the new status, its conditions (set in one place), the
/// phase changes (each checked by the state machine) with their event-store entries, and the Events.
/// </summary>
public sealed class IntentPass(DeploymentIntent intent, DeploymentIntentStatus status, DateTime now)
{
    public DeploymentIntent Intent { get; } = intent;
    public DeploymentIntentStatus Status { get; set; } = status;
    public DateTime Now { get; } = now;
    public string Tenant { get; set; } = "";
    public ConditionSet Conditions { get; } = new(intent.Status?.Conditions, intent.Metadata.Generation, now);
    public List<DeploymentEvent> Events { get; } = [];
    public List<(string Type, string Reason, string Message)> Notices { get; } = [];

    /// <summary>When a pass that stops before the rings (waiting for a scan report) looks again; null: the watches will say.</summary>
    public TimeSpan? Recheck { get; set; }

    /// <summary>Why no ring may start now (serious findings not covered by Exceptions), or null: set by the exception gate.</summary>
    public (string Reason, string Message)? ExceptionHold { get; set; }

    /// <summary>When the earliest Exception in use expires: the intent looks again then.</summary>
    public TimeSpan? ExceptionRecheck { get; set; }

    /// <summary>Security-relevant outcomes for the audit trail (policy violations).</summary>
    public List<AuditEntry> Audits { get; } = [];

    string Key(string what) => $"{Intent.Metadata.Uid}/g{Intent.Metadata.Generation}/{what}";

    /// <summary>A phase change, legal by the table (or by the pipeline's path through it), each step an event-store entry.</summary>
    public void Move(IntentPhase to, string reason, string message, JsonObject? details = null, string? ring = null)
    {
        foreach (var step in IntentStateMachine.Path(Status.Phase ?? IntentPhase.Pending, to))
        {
            var from = Status.Phase ?? IntentPhase.Pending;
            Status.Phase = step;
            var stepDetails = step == to ? details : null;
            // approval.requested names the CAB's assigned approvers (set by the CAB gate earlier in the pass).
            if (step == IntentPhase.AwaitingApproval) stepDetails = ApprovalAsks.With(stepDetails, null, [], Status.AssignedApprovers);
            Events.Add(Entry("transition", from.ToString(), step.ToString(), ring, step == to ? reason : step.ToString(), step == to ? message : $"on the way to {to}", stepDetails,
                $"phase/{from}->{step}{(ring is null ? "" : "/" + ring)}"));
            Notices.Add((step is IntentPhase.Denied or IntentPhase.Failed or IntentPhase.RolledBack ? "Warning" : "Normal", step.ToString(), step == to ? message : $"{from} -> {step}"));
        }
    }

    /// <summary>A ring step, a drift finding or a plane error: an event-store entry without a phase change.</summary>
    public void Record(string type, string? ring, string reason, string message, JsonObject? details, string dedupe, bool warning = false)
    {
        Events.Add(Entry(type, Status.Phase?.ToString(), Status.Phase?.ToString(), ring, reason, message, details, dedupe));
        Notices.Add((warning ? "Warning" : "Normal", reason, message));
    }

    DeploymentEvent Entry(string type, string? from, string? to, string? ring, string reason, string message, JsonObject? details, string dedupe)
    {
        var d = details?.DeepClone().AsObject() ?? new JsonObject();
        d["message"] = message;
        return new DeploymentEvent(Intent.Metadata.Uid ?? "", Intent.Metadata.NamespaceProperty, Intent.Metadata.Name, Tenant, Status.CorrelationId ?? Intent.Metadata.Uid ?? "",
            Intent.Metadata.Generation ?? 0, type, from, to, ring, ApprovalPolicy.AuthorsOf(Intent).LastOrDefault() ?? "unknown", reason, d, Key(dedupe));
    }

    public IntentRingStatus Ring(string name)
    {
        Status.Rings ??= [];
        var ring = Status.Rings.FirstOrDefault(r => r.Name == name);
        if (ring is null)
        {
            ring = new IntentRingStatus { Name = name, Phase = IntentRingPhase.Pending };
            Status.Rings.Add(ring);
        }

        return ring;
    }
}
