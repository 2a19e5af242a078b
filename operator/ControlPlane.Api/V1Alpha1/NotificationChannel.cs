using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// A NotificationChannel: where the operator sends the events it records (approvals asked for and decided,
/// publications, rollbacks, failed backups, denied intents, grants, break-glass use), signed, retried and
/// never lost (docs/notifications.md). In a workspace namespace it hears its workspace's events; with
/// spec.scope Tenant (created and edited only by an owner of the tenant) every workspace of its tenant
/// that spec.workspaceSelector selects; in the operator's namespace (platform) every tenant's, and only
/// there may spec.type be siem (every audit and deployment event with its chain links). Each event is
/// delivered at least once per idempotency key, in order per channel; after spec.maxConsecutiveFailures
/// failed attempts in a row the channel is disabled (WebhookAutoDisabled) until its spec changes.
/// </summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "notificationchannels")]
[EntityScope(EntityScope.Namespaced), ShortName("nc")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Type", ".spec.type")]
[PrinterColumn("Pending", ".status.pending", "integer")]
[PrinterColumn("Delivered", ".status.delivered", "integer")]
[PrinterColumn("Failures", ".status.consecutiveFailures", "integer")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class NotificationChannel : CustomResource<NotificationChannelSpec, NotificationChannelStatus>
{
    public const string KubeKind = "NotificationChannel";

    public NotificationChannel() => Kind = KubeKind;
}

/// <summary>Where to send, how to sign, which events.</summary>
public sealed class NotificationChannelSpec
{
    [Required, Enum("webhook", "slack", "pagerduty", "siem")]
    [Description("webhook (signed JSON POST), slack (incoming-webhook message), pagerduty (Events API v2; the routing key comes from spec.urlSecretRef's Secret, key routingKey) or siem (JSON lines of every audit and deployment event with its sequence number and chain hash; platform channels only).")]
    public string Type { get; set; } = "";

    [Enum("Workspace", "Tenant"), Default("Workspace")]
    [Description("Workspace (default): the events of this channel's workspace. Tenant: the events of every workspace of the tenant spec.workspaceSelector selects; only an owner of the tenant (Tenant spec.owners) may create or edit such a channel. Ignored in the operator's namespace (platform channels hear every tenant).")]
    public string? Scope { get; set; }

    [Pattern("^https?://.+$"), Length(1, 2048)]
    [Description("Where events are POSTed (webhook, siem). Checked against the platform's allowed URL prefixes and hosts; private, loopback and link-local addresses are refused unless the platform allows them. Slack and PagerDuty URLs are secrets: use spec.urlSecretRef.")]
    public string? Url { get; set; }

    [Description("A Secret in this channel's namespace holding the URL (key given; slack, webhook, siem) or, for pagerduty, the routing key (key routingKey; the URL is then spec.url or the Events API v2 default). Its value is never written to status, logs or Events.")]
    public SecretKeyReference? UrlSecretRef { get; set; }

    [Description("A Secret in this channel's namespace with the HMAC-SHA256 signing secret (key current) and, during a rotation, the previous one (key previous): both signatures are sent while both exist.")]
    public SigningSecretReference? SigningSecretRef { get; set; }

    [Length(0, 32)]
    [Description("The event types this channel hears (docs/notifications.md#event-types), e.g. approval.requested, rollout.rolled_back; empty: every type. Ignored by siem (it streams everything).")]
    public List<string>? Events { get; set; }

    [Description("Tenant-wide and platform channels: the workspaces (by their labels) whose events it hears; empty: all of them. Events without a workspace (tenant and platform events) always pass.")]
    public LabelSelector? WorkspaceSelector { get; set; }

    [Range(1, 1000), Default(10)]
    [Description("After this many failed attempts in a row the channel is disabled (condition WebhookAutoDisabled) until its spec changes. Default 10.")]
    public int? MaxConsecutiveFailures { get; set; }
}

/// <summary>The Secret holding a channel's signing secrets.</summary>
public sealed class SigningSecretReference
{
    [Required, Pattern(Patterns.DnsLabel), Length(1, 253)]
    [Description("Name of the Secret, in the channel's namespace.")]
    public string Name { get; set; } = "";

    [Length(1, 253), Default("current")]
    [Description("The key of the current signing secret (default current).")]
    public string? CurrentKey { get; set; }

    [Length(1, 253), Default("previous")]
    [Description("The key of the previous signing secret (default previous): while it is present, deliveries carry a second v1 signature made with it, so receivers verify with either during a rotation.")]
    public string? PreviousKey { get; set; }
}

/// <summary>The observed state of a NotificationChannel, written by the operator.</summary>
public sealed class NotificationChannelStatus : StatusBase
{
    /// <summary>Pending (not yet checked), Active (delivering), AutoDisabled (too many failures in a row; change the spec to re-enable) or Invalid (the spec or a Secret it names is unusable).</summary>
    [JsonConverter(typeof(PhaseConverter<NotificationChannelPhase>))]
    public NotificationChannelPhase? Phase { get; set; }

    [Description("Events waiting for delivery (never attempted, or to be retried).")]
    public long? Pending { get; set; }

    [Description("Events delivered (a 2xx answer).")]
    public long? Delivered { get; set; }

    [Description("Failed delivery attempts (each is retried with backoff until delivered).")]
    public long? Failed { get; set; }

    [Description("Failed attempts in a row since the last delivery.")]
    public int? ConsecutiveFailures { get; set; }

    [DateTimeFormat, Description("When the last delivery succeeded.")]
    public DateTime? LastDeliveredAt { get; set; }

    [Description("The last failure: an HTTP status code or a sanitized message (never the URL, a routing key or a secret).")]
    public string? LastError { get; set; }

    [Description("The test-delivery nonces (annotation controlplane.io/test-delivery) already sent, newest last (at most 10).")]
    public List<string>? TestNonces { get; set; }
}
