using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.AuditApi;

/// <summary>
/// notificationdeliveries (kind NotificationDelivery): one NotificationChannel's delivery history, newest first, as the
/// audit API serves it (docs/notifications.md "Delivery history"). Pure: rows in, API objects out. Never the payload.
/// </summary>
public static partial class NotificationDeliveryObjects
{
    [System.Text.RegularExpressions.GeneratedRegex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    private static partial System.Text.RegularExpressions.Regex ObjectName();

    public const string Plural = "notificationdeliveries";
    public const string Kind = "NotificationDelivery";
    public const string ChannelField = "channel";
    public const string ChannelLabel = "audit.controlplane.io/channel";
    public const int DefaultLimit = 100;
    public const int MaxLimit = 500;

    /// <summary>The channel a fieldSelector names (channel=&lt;name&gt; or channel==&lt;name&gt;), or an error naming the parameter.</summary>
    public static (string? Channel, string? Error) ChannelOf(string? fieldSelector)
    {
        const string need = "fieldSelector: channel=<name> is required: notificationdeliveries is the history of one NotificationChannel in the namespace";
        if (string.IsNullOrWhiteSpace(fieldSelector)) return (null, need);
        var terms = fieldSelector.Split(',', StringSplitOptions.TrimEntries);
        if (terms.Length != 1) return (null, "fieldSelector: only channel=<name> is supported");
        var kv = terms[0].Split(terms[0].Contains("==", StringComparison.Ordinal) ? "==" : "=", 2, StringSplitOptions.TrimEntries);
        if (kv.Length != 2 || kv[0] != ChannelField || kv[1].Length == 0) return (null, need);
        return kv[1].Length <= 253 && ObjectName().IsMatch(kv[1]) ? (kv[1], null) : (null, $"fieldSelector: channel \"{kv[1]}\" is not a valid object name");
    }

    public static JsonObject Object(string ns, string channel, DeliveryRecord d) => new()
    {
        ["apiVersion"] = AuditObjects.GroupVersion,
        ["kind"] = Kind,
        ["metadata"] = new JsonObject
        {
            ["name"] = d.Id.ToString(CultureInfo.InvariantCulture),
            ["namespace"] = ns,
            ["creationTimestamp"] = Time(d.CommittedAt),
            ["labels"] = new JsonObject { [ChannelLabel] = channel },
        },
        ["channel"] = channel,
        ["eventId"] = d.EventId,
        ["eventType"] = d.EventType,
        ["state"] = d.State,
        ["attempts"] = d.Attempts,
        ["lastStatusCode"] = d.LastStatusCode,
        ["lastError"] = d.LastError,
        ["lastAttemptAt"] = d.LastAttemptAt is { } a ? Time(a) : null,
        ["deliveredAt"] = d.DeliveredAt is { } t ? Time(t) : null,
        ["committedAt"] = Time(d.CommittedAt),
    };

    public static JsonObject List(string ns, string channel, IEnumerable<DeliveryRecord> rows) => new()
    {
        ["apiVersion"] = AuditObjects.GroupVersion,
        ["kind"] = Kind + "List",
        ["metadata"] = new JsonObject(),
        ["items"] = new JsonArray([.. rows.Select(r => (JsonNode)Object(ns, channel, r))]),
    };

    /// <summary>The discovery entry: list only (a history is read, never watched or changed here).</summary>
    public static JsonObject Discovery() => new()
    {
        ["name"] = Plural,
        ["singularName"] = Kind.ToLowerInvariant(),
        ["namespaced"] = true,
        ["kind"] = Kind,
        ["verbs"] = new JsonArray("list"),
        ["shortNames"] = new JsonArray("ncd"),
        ["categories"] = new JsonArray("controlplane-audit"),
    };

    static string Time(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}

public sealed partial class AuditApiServer
{
    /// <summary>
    /// GET .../namespaces/{ns}/notificationdeliveries?fieldSelector=channel=NAME[&amp;limit=N]: whoever may get the channel
    /// (controlplane.io notificationchannels, a SubjectAccessReview for the proxied user) may read its history.
    /// </summary>
    async Task DeliveriesAsync(HttpContext http, ProxiedUser user, string? ns)
    {
        var q = http.Request.Query;
        if (ns is null)
        {
            await Reply(http, 400, AuditObjects.Status(400, "BadRequest", "notificationdeliveries is namespaced: ask in the channel's namespace")).ConfigureAwait(false);
            return;
        }

        if (q["watch"].FirstOrDefault() is "1" or "true")
        {
            await Reply(http, 405, AuditObjects.Status(405, "MethodNotAllowed", "notificationdeliveries: list only")).ConfigureAwait(false);
            return;
        }

        var (channel, error) = NotificationDeliveryObjects.ChannelOf(q["fieldSelector"].FirstOrDefault());
        if (channel is null)
        {
            await Reply(http, 400, AuditObjects.Status(400, "BadRequest", error!)).ConfigureAwait(false);
            return;
        }

        if (!await AuthorizeAsync(http, user, ApiGroup.Group, "notificationchannels", "get", ns, channel).ConfigureAwait(false)) return;
        var limit = int.TryParse(q["limit"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l > 0
            ? Math.Min(l, NotificationDeliveryObjects.MaxLimit)
            : NotificationDeliveryObjects.DefaultLimit;
        // The live channel's UID (read with the operator's own rights, after the caller's were checked): the history of
        // exactly this channel, never of an earlier one under the same name or namespace.
        NotificationChannel? live;
        try
        {
            live = await api.TryGetAsync<NotificationChannel>(ResourceType.For<NotificationChannel>(true), ns, channel, http.RequestAborted).ConfigureAwait(false);
        }
        catch (KubeApiException e)
        {
            logger.LogWarning("audit API: reading notificationchannel {Namespace}/{Name} failed: {Status}", ns, channel, (int)e.StatusCode);
            await Reply(http, 503, AuditObjects.Status(503, "ServiceUnavailable", "the channel could not be read; retry")).ConfigureAwait(false);
            return;
        }

        if (live?.Metadata.Uid is not { } uid)
        {
            await Reply(http, 404, AuditObjects.Status(404, "NotFound", $"notificationchannels.{ApiGroup.Group} \"{channel}\" not found")).ConfigureAwait(false);
            return;
        }

        await Guarded(http, async () =>
        {
            var rows = await log.NotificationHistoryAsync(uid, limit, http.RequestAborted).ConfigureAwait(false);
            await Reply(http, 200, NotificationDeliveryObjects.List(ns, channel, rows)).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }
}
