using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Cli;

/// <summary>A NotificationChannel as `channel list` shows it.</summary>
public sealed record ChannelRow(string Namespace, string Name, string Type, string Phase, long Pending, long Delivered, long Failed, int ConsecutiveFailures,
    DateTime? LastDeliveredAt, string? LastError);

/// <summary>One delivery as `channel history` shows it.</summary>
public sealed record DeliveryRow(string EventId, string EventType, string State, int Attempts, int? LastStatusCode, string? LastError, DateTime? LastAttemptAt,
    DateTime? DeliveredAt, DateTime CommittedAt);

public static partial class Commands
{
    public static Command Channel(Globals g)
    {
        var cmd = new Command("channel", "NotificationChannels (docs/notifications.md): send a signed test event, list channels with their delivery counts, show a channel's delivery history.");
        var name = new Argument<string>("name") { Description = "The NotificationChannel (in -n <namespace>)" };
        var timeout = TimeoutOption();
        timeout.DefaultValueFactory = _ => TimeSpan.FromMinutes(2);
        var noWait = NoWaitOption();
        var test = new Command("test",
            "Send a signed test event (type channel.test): sets the controlplane.io/test-delivery annotation to a fresh nonce and waits until the channel's status records it.")
        {
            name, timeout, noWait,
        };
        test.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var ns = kube.Namespace;
            var channel = r.GetValue(name)!;
            // Fails with the API server's NotFound/Forbidden before anything is changed.
            await kube.GetAsync<NotificationChannel>(ns, channel, ct);
            var nonce = TestNonce(DateTime.UtcNow);
            await kube.MergePatchAsync<NotificationChannel>(ns, channel,
                new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [ApiGroup.TestDeliveryAnnotation] = nonce } } }, ct);
            Console.WriteLine($"notificationchannel.controlplane.io/{channel} in {ns}: test delivery {nonce} requested");
            if (r.GetValue(noWait)) return 0;
            var done = await FollowAsync(r.GetValue(timeout), ct, async () => await kube.GetAsync<NotificationChannel>(ns, channel, ct),
                c => c.Status?.Phase?.ToString() ?? "Pending",
                c => c.Status?.Conditions?.FirstOrDefault(x => x.Type == "Ready")?.Message,
                c => c.Status?.TestNonces?.Contains(nonce) == true || c.Status?.Phase is NotificationChannelPhase.AutoDisabled);
            if (done.Status?.TestNonces?.Contains(nonce) != true)
            {
                throw new CliError($"channel {channel} is {done.Status?.Phase}: the test event waits until it is enabled again (a spec change re-enables it); last error: {done.Status?.LastError ?? "-"}");
            }

            Console.WriteLine($"queued: {nonce} recorded in status.testNonces; the event (id test/{done.Metadata.Uid}/{nonce}) is delivered in order after what is pending " +
                              $"({done.Status.Pending ?? 0} pending, last error: {done.Status.LastError ?? "-"})");
            return 0;
        });
        cmd.Add(test);

        var all = new Option<bool>("--all-namespaces", "-A") { Description = "Every namespace you may list" };
        var output = Globals.OutputOption();
        var list = new Command("list", "NotificationChannels: type, phase, pending / delivered / failed counts, consecutive failures, last delivery, last error.") { all, output };
        list.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var rows = (await kube.ListAsync<NotificationChannel>(r.GetValue(all) ? null : kube.Namespace, ct)).Select(ChannelRowOf).ToList();
            if (r.GetValue(output) is { } format)
            {
                Console.Write(Output.Render(rows, format));
                return 0;
            }

            Console.Write(RenderChannelList(rows, r.GetValue(all) ? null : kube.Namespace));
            return 0;
        });
        cmd.Add(list);

        var historyName = new Argument<string>("name") { Description = "The NotificationChannel (in -n <namespace>)" };
        var limit = new Option<int>("--limit") { Description = "Newest deliveries to show (at most 500)", DefaultValueFactory = _ => 20 };
        var historyOutput = Globals.OutputOption();
        var history = new Command("history",
            "A channel's delivery history, newest first (through the audit API's notificationdeliveries): event, state, attempts, last status code and error, times. " +
            "Whoever may get the channel may read it.")
        {
            historyName, limit, historyOutput,
        };
        history.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var ns = kube.Namespace;
            var channel = r.GetValue(historyName)!;
            // Fails with the API server's NotFound/Forbidden first, in its words.
            await kube.GetAsync<NotificationChannel>(ns, channel, ct);
            var n = r.GetValue(limit);
            if (n is < 1 or > 500) throw new CliError($"--limit: {n} is out of range (1 to 500)");
            var rows = (await ListAuditAsync(kube, new AuditQuery(ns, "notificationdeliveries", null, "channel=" + channel), n, ct)).Select(DeliveryRowOf).Take(n).ToList();
            if (r.GetValue(historyOutput) is { } format)
            {
                Console.Write(Output.Render(rows, format));
                return 0;
            }

            Console.Write(RenderDeliveries(rows, channel));
            return 0;
        });
        cmd.Add(history);
        return cmd;
    }

    public static DeliveryRow DeliveryRowOf(JsonObject o) => new(Obj.Str(o["eventId"]) ?? "", Obj.Str(o["eventType"]) ?? "", Obj.Str(o["state"]) ?? "",
        (int)(Obj.Long(o["attempts"]) ?? 0), Obj.Long(o["lastStatusCode"]) is { } code ? (int)code : null, Obj.Str(o["lastError"]),
        Obj.Str(o["lastAttemptAt"]) is { } a ? DateTime.Parse(a, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal) : null,
        Obj.Str(o["deliveredAt"]) is { } d ? DateTime.Parse(d, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal) : null,
        DateTime.Parse(Obj.Str(o["committedAt"]) ?? "0001-01-01T00:00:00Z", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal));

    public static string RenderDeliveries(IReadOnlyList<DeliveryRow> rows, string channel)
    {
        if (rows.Count == 0) return $"no deliveries recorded for channel {channel}\n";
        return Output.Table(["EVENT", "TYPE", "STATE", "ATTEMPTS", "CODE", "LAST ATTEMPT", "DELIVERED", "LAST ERROR"],
            rows.Select(d => (IReadOnlyList<string>)
            [
                d.EventId, d.EventType, d.State, d.Attempts.ToString(CultureInfo.InvariantCulture), d.LastStatusCode?.ToString(CultureInfo.InvariantCulture) ?? "-",
                Output.Time(d.LastAttemptAt), Output.Time(d.DeliveredAt), d.LastError ?? "-",
            ]));
    }

    /// <summary>A nonce no earlier test of the channel used: the time (readable in status.testNonces) and random hex.</summary>
    public static string TestNonce(DateTime now) => $"{now.ToUniversalTime().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture).ToLowerInvariant()}-{Suffix()}";

    public static ChannelRow ChannelRowOf(NotificationChannel c) => new(c.Metadata.NamespaceProperty, c.Metadata.Name, c.Spec.Type, c.Status?.Phase?.ToString() ?? "Pending",
        c.Status?.Pending ?? 0, c.Status?.Delivered ?? 0, c.Status?.Failed ?? 0, c.Status?.ConsecutiveFailures ?? 0, c.Status?.LastDeliveredAt, c.Status?.LastError);

    public static string RenderChannelList(IReadOnlyList<ChannelRow> rows, string? ns)
    {
        if (rows.Count == 0) return ns is null ? "no notification channels\n" : $"no notification channels in namespace {ns}\n";
        return Output.Table(["NAMESPACE", "NAME", "TYPE", "PHASE", "PENDING", "DELIVERED", "FAILED", "FAILURES", "LAST DELIVERED", "LAST ERROR"],
            rows.OrderBy(c => c.Namespace, StringComparer.Ordinal).ThenBy(c => c.Name, StringComparer.Ordinal).Select(c => (IReadOnlyList<string>)
            [
                c.Namespace, c.Name, c.Type, c.Phase, c.Pending.ToString(CultureInfo.InvariantCulture), c.Delivered.ToString(CultureInfo.InvariantCulture),
                c.Failed.ToString(CultureInfo.InvariantCulture), c.ConsecutiveFailures.ToString(CultureInfo.InvariantCulture), Output.Time(c.LastDeliveredAt), c.LastError ?? "-",
            ]));
    }
}
