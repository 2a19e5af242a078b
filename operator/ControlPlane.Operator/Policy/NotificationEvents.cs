using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Policy;

/// <summary>The table a notification's source row is in.</summary>
public enum NotificationSource
{
    Audit,
    Deployment,
}

/// <summary>
/// One committed row of controlplane.audit_events or controlplane.deployment_events, as the delivery loop
/// reads it by cursor: the fields mapping and routing need, and (for siem) the chain links.
/// </summary>
public sealed record SourceRow(
    NotificationSource Source,
    long Id,
    DateTime OccurredAt,
    string Type,
    string Kind,
    string ObjectName,
    string? Tenant,
    string? Workspace,
    string Actor,
    string? Reason,
    string? FromPhase,
    string? ToPhase,
    JsonObject Details,
    string PrevHash,
    string Hash,
    long? TenantSeq,
    string? TenantHash,
    JsonObject? Hashed = null);

/// <summary>An event as channels receive it: a stable id (the idempotency key), its type and where it happened.</summary>
public sealed record NotificationEvent(string Id, string Type, DateTime Time, string? Tenant, string? Workspace, string Subject, JsonObject Details)
{
    /// <summary>The webhook body (docs/notifications.md#payloads).</summary>
    public JsonObject ToJson() => new()
    {
        ["id"] = Id,
        ["type"] = Type,
        ["time"] = Time.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture),
        ["tenant"] = Tenant,
        ["workspace"] = Workspace,
        ["subject"] = Subject,
        ["details"] = Details.DeepClone(),
    };

    public static NotificationEvent FromJson(JsonObject o) => new(
        (string?)o["id"] ?? "",
        (string?)o["type"] ?? "",
        DateTime.Parse((string?)o["time"] ?? "1970-01-01T00:00:00Z", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
        (string?)o["tenant"],
        (string?)o["workspace"],
        (string?)o["subject"] ?? "",
        o["details"] as JsonObject ?? new JsonObject());
}

/// <summary>
/// The stable list of event types a NotificationChannel subscribes to, and the one mapping from the rows the
/// operator already writes (audit actions, deployment event types and phases) to them. Pure: the delivery
/// loop reads rows by cursor and asks here what each one is.
/// </summary>
public static class NotificationEvents
{
    public const string ApprovalRequested = "approval.requested";
    public const string ApprovalDecided = "approval.decided";
    public const string ExposurePublished = "exposure.published";
    public const string ExposureRejected = "exposure.rejected";
    public const string RolloutPaused = "rollout.paused";
    public const string RolloutRolledBack = "rollout.rolled_back";
    public const string RolloutCompleted = "rollout.completed";
    public const string BackupFailed = "backup.failed";
    public const string BackupOverdue = "backup.overdue";
    public const string RestoreCompleted = "restore.completed";
    public const string IntentDenied = "intent.denied";
    public const string IntentNeedsCab = "intent.needs_cab";
    public const string IntentNeedsException = "intent.needs_exception";
    public const string IntentCompleted = "intent.completed";
    public const string IntentDrift = "intent.drift";
    public const string AccessGranted = "access.granted";
    public const string AccessExpired = "access.expired";
    public const string BreakGlassUsed = "breakglass.used";
    public const string ChannelAutoDisabled = "channel.auto_disabled";

    /// <summary>The type of a test delivery (the controlplane.io/test-delivery annotation); always sent, whatever spec.events says.</summary>
    public const string ChannelTest = "channel.test";

    /// <summary>Every type a channel may name in spec.events, in the documented order.</summary>
    public static readonly IReadOnlyList<string> Types =
    [
        ApprovalRequested, ApprovalDecided, ExposurePublished, ExposureRejected, RolloutPaused, RolloutRolledBack, RolloutCompleted,
        BackupFailed, BackupOverdue, RestoreCompleted, IntentDenied, IntentNeedsCab, IntentNeedsException, IntentCompleted, IntentDrift,
        AccessGranted, AccessExpired, BreakGlassUsed, ChannelAutoDisabled,
    ];

    /// <summary>Types only platform channels hear: they describe the platform's own channels, not a tenant's activity.</summary>
    public static readonly FrozenSet<string> PlatformOnly = new[] { ChannelAutoDisabled }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The audit actions (audit_events.action) that are events, and what they are.</summary>
    static readonly FrozenDictionary<string, string> AuditActions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["exposure.published"] = ExposurePublished,
        ["exposure.rejected"] = ExposureRejected,
        ["exposure.refused"] = ExposureRejected,
        ["rollout.paused"] = RolloutPaused,
        ["rollout.rolled-back"] = RolloutRolledBack,
        ["rollout.completed"] = RolloutCompleted,
        ["backup.failed"] = BackupFailed,
        ["backup.overdue"] = BackupOverdue,
        ["restore.completed"] = RestoreCompleted,
        ["access.granted"] = AccessGranted,
        ["access.expired"] = AccessExpired,
        // The row BreakGlassPlan writes when an emergency grant is made (severity security).
        ["breakglass.invoked"] = BreakGlassUsed,
        ["channel.auto_disabled"] = ChannelAutoDisabled,
        // Approvals asked for and decided, of the kinds whose reconcilers audit them.
        ["access.requested"] = ApprovalRequested,
        ["restore.requested"] = ApprovalRequested,
        ["exposure.approval-requested"] = ApprovalRequested,
        ["rollout.approval-requested"] = ApprovalRequested,
        ["exception.requested"] = ApprovalRequested,
        ["access.rejected"] = ApprovalDecided,
        ["restore.approved"] = ApprovalDecided,
        ["restore.rejected"] = ApprovalDecided,
        ["exception.approved"] = ApprovalDecided,
        ["exception.rejected"] = ApprovalDecided,
        ["rollout.approved"] = ApprovalDecided,
        ["rollout.rejected"] = ApprovalDecided,
        ["rollout.promoted"] = ApprovalDecided,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The audit actions that are also an approval decision (besides their own event), with the decision.</summary>
    static readonly FrozenDictionary<string, string> Decisions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["access.granted"] = "approved",
        ["access.rejected"] = "rejected",
        ["restore.approved"] = "approved",
        ["restore.rejected"] = "rejected",
        ["exception.approved"] = "approved",
        ["exception.rejected"] = "rejected",
        // An Exposure generation goes live only once approved (exposure.published names its approvers); a counting reject is exposure.rejected.
        ["exposure.published"] = "approved",
        ["exposure.rejected"] = "rejected",
        // A ring that waited starts (or spec.promote ends its soak early) once the generation is approved.
        ["rollout.approved"] = "approved",
        ["rollout.rejected"] = "rejected",
        ["rollout.promoted"] = "approved",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    public static bool IsKnown(string type) => Types.Contains(type, StringComparer.Ordinal);

    /// <summary>
    /// The events a committed row is (none for most rows): its id is "&lt;source&gt;/&lt;row id&gt;[/&lt;type&gt;]", stable
    /// across restarts and replicas, so a receiver de-duplicates redeliveries by it.
    /// </summary>
    public static IReadOnlyList<NotificationEvent> Of(SourceRow row)
    {
        var types = row.Source == NotificationSource.Audit ? AuditTypes(row) : DeploymentTypes(row);
        return [.. types.Select(t => new NotificationEvent(EventId(row, t), t, row.OccurredAt, row.Tenant, row.Workspace, Subject(row), DetailsOf(row, t)))];
    }

    static IEnumerable<string> AuditTypes(SourceRow row)
    {
        if (AuditActions.TryGetValue(row.Type, out var type)) yield return type;
        if (Decisions.ContainsKey(row.Type) && type != ApprovalDecided) yield return ApprovalDecided;
    }

    static IEnumerable<string> DeploymentTypes(SourceRow row)
    {
        switch (row.Type)
        {
            case "transition" when row.ToPhase == "Denied":
                yield return IntentDenied;
                // A CAB rejection is also a decision.
                if (row.Reason == "Rejected") yield return ApprovalDecided;
                break;
            case "transition" when row.ToPhase == "Completed":
                yield return IntentCompleted;
                break;
            case "transition" when row.ToPhase == "AwaitingApproval":
                yield return row.Reason is "RequiresException" or "AwaitingException" ? IntentNeedsException : IntentNeedsCab;
                yield return ApprovalRequested;
                break;
            case "approval" when row.Reason == "Approved":
                yield return ApprovalDecided;
                break;
            case "drift":
                yield return IntentDrift;
                break;
        }
    }

    static string EventId(SourceRow row, string type) =>
        $"{(row.Source == NotificationSource.Audit ? "audit" : "deployment")}/{row.Id.ToString(CultureInfo.InvariantCulture)}/{type}";

    /// <summary>The object the event is about, as kind/namespace/name.</summary>
    static string Subject(SourceRow row) => $"{row.Kind}/{row.ObjectName}";

    static JsonObject DetailsOf(SourceRow row, string type)
    {
        var d = row.Details.DeepClone().AsObject();
        d["actor"] = row.Actor;
        d["source"] = row.Source == NotificationSource.Audit ? "audit" : "deployment";
        d["sourceId"] = row.Id;
        d["sourceType"] = row.Type;
        if (row.Reason is not null) d["reason"] ??= row.Reason;
        if (row.ToPhase is not null) d["phase"] = row.ToPhase;
        if (type == ApprovalDecided && Decisions.TryGetValue(row.Type, out var decision)) d["decision"] = decision;
        if (type == ApprovalDecided && row.Source == NotificationSource.Deployment) d["decision"] = row.Reason == "Rejected" ? "rejected" : "approved";
        return d;
    }

    /// <summary>A SIEM line: the row as stored, with both chains' links and the hashed object, so the receiver proves nothing is missing (ids and tenant sequence numbers without gaps) or altered (hashes recomputed).</summary>
    public static JsonObject SiemLine(SourceRow row) => new()
    {
        ["id"] = $"{(row.Source == NotificationSource.Audit ? "audit" : "deployment")}/{row.Id.ToString(CultureInfo.InvariantCulture)}",
        ["table"] = row.Source == NotificationSource.Audit ? "audit_events" : "deployment_events",
        ["seq"] = row.Id,
        ["time"] = row.OccurredAt.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture),
        ["type"] = row.Type,
        ["kind"] = row.Kind,
        ["object"] = row.ObjectName,
        ["tenant"] = row.Tenant,
        ["workspace"] = row.Workspace,
        ["actor"] = row.Actor,
        ["reason"] = row.Reason,
        ["details"] = row.Details.DeepClone(),
        ["prevHash"] = row.PrevHash,
        ["hash"] = row.Hash,
        ["tenantSeq"] = row.TenantSeq,
        ["tenantHash"] = row.TenantHash,
        // The object each hash is computed over (as the audit API serves it): the receiver recomputes hash = sha256(prevHash || canonical(event)).
        ["event"] = row.Hashed?.DeepClone(),
    };
}
