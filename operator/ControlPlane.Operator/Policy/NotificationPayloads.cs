using System.Text;
using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// The bodies each channel type receives, from the stored delivery (an event's JSON, or for siem its row's line).
/// Pure: the routing key (pagerduty) is passed in at send time and never stored.
/// </summary>
public static class NotificationPayloads
{
    /// <summary>The body for a channel of <paramref name="type"/>; <paramref name="idempotencyKey"/> is the event id.</summary>
    public static byte[] Body(string type, JsonObject stored, string idempotencyKey, string? routingKey) => type switch
    {
        "slack" => Utf8(Slack(NotificationEvent.FromJson(stored)).ToJsonString()),
        "pagerduty" => Utf8(PagerDuty(NotificationEvent.FromJson(stored), idempotencyKey, routingKey ?? "").ToJsonString()),
        // One JSON line per row: a SIEM appends bodies as they come.
        "siem" => Utf8(stored.ToJsonString() + "\n"),
        _ => Utf8(stored.ToJsonString()),
    };

    public static string ContentType(string type) => type == "siem" ? "application/x-ndjson" : "application/json";

    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>A Slack incoming-webhook message: a text fallback and a section block.</summary>
    public static JsonObject Slack(NotificationEvent e)
    {
        var where = e.Workspace is null ? e.Tenant ?? "platform" : $"{e.Tenant}/{e.Workspace}";
        var text = $"[{e.Type}] {e.Subject} ({where})";
        if ((string?)e.Details["message"] is { } m) text += ": " + Truncate(m, 500);
        if (e.Details["approvers"] is JsonArray approvers && approvers.Count > 0) text += " — approvers: " + string.Join(", ", approvers.Select(a => (string?)a));
        return new JsonObject
        {
            ["text"] = text,
            ["blocks"] = new JsonArray(new JsonObject
            {
                ["type"] = "section",
                ["text"] = new JsonObject { ["type"] = "mrkdwn", ["text"] = Escape(text) },
            }),
        };
    }

    /// <summary>A PagerDuty Events API v2 trigger; dedup_key is the idempotency key, so a redelivery is one incident.</summary>
    public static JsonObject PagerDuty(NotificationEvent e, string idempotencyKey, string routingKey) => new()
    {
        ["routing_key"] = routingKey,
        ["event_action"] = "trigger",
        ["dedup_key"] = idempotencyKey,
        ["payload"] = new JsonObject
        {
            ["summary"] = Truncate($"{e.Type}: {e.Subject}" + ((string?)e.Details["message"] is { } m ? " — " + m : ""), 1024),
            ["source"] = e.Workspace is null ? e.Tenant ?? "controlplane" : $"{e.Tenant}/{e.Workspace}",
            ["severity"] = Severity(e.Type),
            ["timestamp"] = e.Time.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture),
            ["component"] = e.Subject,
            ["class"] = e.Type,
            ["custom_details"] = e.ToJson(),
        },
    };

    /// <summary>PagerDuty severity: failures and policy breaches are errors, waiting for people a warning, the rest info.</summary>
    public static string Severity(string type) => type switch
    {
        NotificationEvents.RolloutRolledBack or NotificationEvents.BackupFailed or NotificationEvents.BreakGlassUsed or NotificationEvents.ChannelAutoDisabled => "error",
        NotificationEvents.IntentDenied or NotificationEvents.IntentDrift or NotificationEvents.BackupOverdue or NotificationEvents.ExposureRejected => "warning",
        _ => "info",
    };

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    static string Truncate(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";
}
