using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using k8s.Models;
using OperatorRuntime = ControlPlane.Operator.OperatorRuntime;

namespace ControlPlane.Bench;

/// <summary>
/// Notification delivery (issue 26): events committed at a fixed rate (audit rows appended through the operator's
/// store, the rows its delivery loop reads by cursor) to webhook channels in the operator's namespace, each hearing
/// the events of its own workspace; a real receiver on 127.0.0.1 that checks every signature and records the first
/// arrival of each idempotency key. Measures committed → delivered p50/p99, then takes the receiver down for an
/// outage while events keep coming, brings it back and measures how fast the backlog drains; counts duplicates,
/// losses and per-channel order breaks. With BENCH_NOTIFY_SIEM=1 a siem channel also streams every row (a 21st channel
/// carrying the whole rate: more load than the issue's shape) and the receiver verifies the stream (SiemStreamVerifier).
/// </summary>
public static partial class Program
{
    static readonly int NotifyRate = Env("BENCH_NOTIFY_RATE", 100);
    static readonly int NotifyChannels = Env("BENCH_NOTIFY_CHANNELS", 20);
    static readonly int NotifySeconds = Env("BENCH_NOTIFY_SECONDS", 60);
    static readonly int NotifyOutageSeconds = Env("BENCH_NOTIFY_OUTAGE_SECONDS", 600);
    static readonly bool NotifySiem = Env("BENCH_NOTIFY_SIEM", 0) != 0;
    const string NotifyNamespace = "controlplane-system";
    const string ChannelLabel = "bench.controlplane.io/channel";

    /// <summary>One committed event: its sequence in the run, its channel and when its row's commit returned.</summary>
    sealed record Committed(int Seq, int Channel, long At);

    static async Task<JsonObject> NotifyAsync(BenchEnv env)
    {
        await using var receiver = await NotifyReceiver.StartAsync(NotifyChannels);
        var healthPort = Net.FreePort();
        var app = ControlPlane.Operator.Program.BuildApp([], config => Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(config,
            new Dictionary<string, string?>
            {
                ["ControlPlane:Kubeconfig"] = env.Plane.KubeconfigPath,
                ["ControlPlane:SystemDatabase"] = env.Postgres.ConnectionString(),
                ["ControlPlane:Regions:eu:Database"] = env.Postgres.RegionConnectionString(),
                ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{healthPort}",
                ["ControlPlane:Webhook:Enabled"] = "false",
                ["ControlPlane:Workers"] = Workers.ToString(CultureInfo.InvariantCulture),
                // The receiver is on loopback: platform channels may reach it only with this (never tenant channels).
                ["ControlPlane:NotificationAllowLoopback"] = "true",
                ["ControlPlane:NotificationUrlPrefixes:0"] = receiver.BaseUrl,
                ["Logging:LogLevel:Default"] = "Warning",
            }));
        await app.StartAsync();
        try
        {
            using var health = new HttpClient();
            await Net.WaitUntilAsync(async () => (await health.GetAsync($"http://127.0.0.1:{healthPort}/readyz")).IsSuccessStatusCode, TimeSpan.FromMinutes(2), "operator ready");
            var runtime = (OperatorRuntime)app.Services.GetService(typeof(OperatorRuntime))!;

            // One workspace per channel, labelled so exactly one channel hears it.
            await CreateTenantsAsync(env, NotifyChannels);
            var workspaces = new List<Workspace>();
            for (var i = 0; i < NotifyChannels; i++)
            {
                var ws = NewWorkspace(i, db: false);
                ws.Metadata.Labels = new Dictionary<string, string> { [ChannelLabel] = i.ToString(CultureInfo.InvariantCulture) };
                await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
                workspaces.Add(ws);
            }

            await Net.WaitUntilAsync(async () =>
            {
                foreach (var ws in workspaces)
                {
                    if ((await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ws.Metadata.Name, CancellationToken.None)).Status?.Phase != WorkspacePhase.Ready) return false;
                }

                return true;
            }, TimeSpan.FromMinutes(5), "bench workspaces Ready");

            var names = Enumerable.Range(0, NotifyChannels).Select(i => $"bench-{i:00}").ToList();
            for (var i = 0; i < NotifyChannels; i++)
            {
                await CreateChannelAsync(env, names[i], "webhook", $"{receiver.BaseUrl}c/{i}", receiver.Secret(i),
                    new JsonObject { ["matchLabels"] = new JsonObject { [ChannelLabel] = i.ToString(CultureInfo.InvariantCulture) } }, ["backup.failed"]);
            }

            if (NotifySiem) await CreateChannelAsync(env, "bench-siem", "siem", $"{receiver.BaseUrl}siem", receiver.SiemSecret, null, null);
            var all = NotifySiem ? [.. names, "bench-siem"] : names;
            await Net.WaitUntilAsync(async () =>
            {
                foreach (var name in all)
                {
                    var c = JsonNode.Parse(await env.Api.SendAsync(HttpMethod.Get, $"{ChannelsPath}/{name}", null, "application/json", CancellationToken.None))!;
                    if ((string?)c["status"]?["phase"] != "Active") return false;
                }

                return true;
            }, TimeSpan.FromMinutes(2), "bench channels Active");

            // Steady load: committed → delivered.
            var steady = await ProduceAsync(runtime.Database, workspaces, 0, NotifySeconds);
            await WaitDeliveredAsync(receiver, steady, TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(NotifySeconds));
            var timed = steady.Select(c => (c.Seq, c.Channel, Ms: receiver.FirstArrival(c.Seq) is { } at ? Stopwatch.GetElapsedTime(c.At, at).TotalMilliseconds : double.NaN))
                .Where(t => !double.IsNaN(t.Ms)).ToList();
            var latencies = timed.Select(t => t.Ms).ToList();
            // Where a tail comes from: by when the event was committed (10 s windows) and by channel.
            var byWindow = new JsonArray([.. timed.GroupBy(t => t.Seq / (NotifyRate * 10)).OrderBy(g => g.Key).Select(g => (JsonNode)new JsonArray(
                g.Key * 10, Math.Round(Percentiles.Of([.. g.Select(t => t.Ms)], 0.5), 0), Math.Round(Percentiles.Of([.. g.Select(t => t.Ms)], 0.99), 0), Math.Round(g.Max(t => t.Ms), 0)))]);
            var slowestChannels = new JsonArray([.. timed.GroupBy(t => t.Channel).Select(g => (Channel: g.Key, Max: g.Max(t => t.Ms), P50: Percentiles.Of([.. g.Select(t => t.Ms)], 0.5)))
                .OrderByDescending(c => c.Max).Take(5).Select(c => (JsonNode)new JsonArray(c.Channel, Math.Round(c.P50, 0), Math.Round(c.Max, 0)))]);

            // Outage: the receiver drops every connection while events keep being committed; then it is back.
            receiver.Down = true;
            var outage = await ProduceAsync(runtime.Database, workspaces, steady.Count, NotifyOutageSeconds);
            var deliveredDuringOutage = outage.Count(c => receiver.FirstArrival(c.Seq) is not null);
            var upAt = Stopwatch.GetTimestamp();
            receiver.Down = false;
            var backlog = outage.Where(c => receiver.FirstArrival(c.Seq) is null).ToList();
            // Generous: at a tenth of the goal rate, plus the longest backoff the engine may be sleeping (minutes).
            var drainDeadline = TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(backlog.Count / 50.0);
            var drained = await WaitDeliveredAsync(receiver, backlog, drainDeadline);
            var arrivals = backlog.Select(c => receiver.FirstArrival(c.Seq)).OfType<long>().ToList();
            var firstAfterUp = arrivals.Count == 0 ? (long?)null : arrivals.Min();
            var lastAfterUp = arrivals.Count == 0 ? (long?)null : arrivals.Max();
            var drainSeconds = firstAfterUp is { } f && lastAfterUp is { } l ? Stopwatch.GetElapsedTime(f, l).TotalSeconds : double.NaN;
            var upToEmptySeconds = lastAfterUp is { } l2 ? Stopwatch.GetElapsedTime(upAt, l2).TotalSeconds : double.NaN;

            // Late redeliveries show up a little after: give them a moment before counting duplicates.
            await Task.Delay(TimeSpan.FromSeconds(5));
            var everything = steady.Concat(outage).ToList();
            var lost = everything.Count(c => receiver.FirstArrival(c.Seq) is null);
            var duplicates = receiver.Duplicates;
            var orderBreaks = receiver.OrderBreaks();

            JsonObject? siem = null;
            if (NotifySiem)
            {
                var complete = await WaitUntilOrFalseAsync(() => receiver.SiemBenchRows >= everything.Count, TimeSpan.FromMinutes(10), "every bench row on the siem stream");
                var report = receiver.SiemReport();
                siem = new JsonObject
                {
                    ["lines"] = report.Lines,
                    ["accepted"] = report.Accepted,
                    ["duplicates"] = report.Duplicates,
                    ["unrecomputable"] = report.Unrecomputable,
                    ["problems"] = report.Problems.Count,
                    ["firstProblems"] = new JsonArray([.. report.Problems.Take(5).Select(p => (JsonNode)$"line {p.Line} {p.Table} {p.Sequence}: {p.Reason}")]),
                    ["benchRowsSeen"] = receiver.SiemBenchRows,
                    ["benchRowsCommitted"] = everything.Count,
                    ["complete"] = complete,
                };
            }

            JsonArray Ms(List<double> s) => [Math.Round(Percentiles.Of(s, 0.5), 1), Math.Round(Percentiles.Of(s, 0.99), 1), Math.Round(s.Count == 0 ? double.NaN : s.Max(), 1)];
            return new JsonObject
            {
                ["channels"] = NotifyChannels,
                ["ratePerSecond"] = NotifyRate,
                ["steadySeconds"] = NotifySeconds,
                ["steadyEvents"] = steady.Count,
                ["steadyAchievedRate"] = Math.Round(steady.Count / (double)Math.Max(1, NotifySeconds), 1),
                ["committedToDeliveredMs"] = Ms(latencies),
                ["latencyBy10sWindowMs"] = byWindow,
                ["slowestChannelsP50MaxMs"] = slowestChannels,
                ["outageSeconds"] = NotifyOutageSeconds,
                ["outageEvents"] = outage.Count,
                ["deliveredDuringOutage"] = deliveredDuringOutage,
                ["backlog"] = backlog.Count,
                ["backlogDrained"] = drained,
                ["receiverUpToFirstDeliverySeconds"] = firstAfterUp is { } fa ? Math.Round(Stopwatch.GetElapsedTime(upAt, fa).TotalSeconds, 2) : null,
                ["drainSeconds"] = Math.Round(drainSeconds, 2),
                ["drainEventsPerSecond"] = drainSeconds > 0 ? Math.Round(backlog.Count / drainSeconds, 1) : null,
                ["receiverUpToBacklogEmptySeconds"] = Math.Round(upToEmptySeconds, 2),
                ["drainEventsPerSecondFromReceiverUp"] = upToEmptySeconds > 0 ? Math.Round(backlog.Count / upToEmptySeconds, 1) : null,
                ["lost"] = lost,
                ["duplicates"] = duplicates,
                ["orderBreaks"] = orderBreaks,
                ["badSignatures"] = receiver.BadSignatures,
                ["refusedWhileDown"] = receiver.RefusedWhileDown,
                ["siem"] = siem,
                ["note"] = "webhook channels in the operator's namespace (one per workspace, selected by label, maxConsecutiveFailures 1000 so the outage does not disable them), " +
                           "events = backup.failed audit rows appended through SystemDatabase.AppendAuditAsync (open loop); latency from the append's commit to the receiver's first " +
                           "arrival of its idempotency key; outage = the receiver aborts every connection; drain rate = backlog / (first to last backlog arrival); " +
                           "the operator's own retry backoff decides how soon after the receiver is back the first delivery comes",
            };
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>The notify rows of the results table.</summary>
    static void AddNotifyRows(List<(string Scenario, string Metric, string Value)> table, JsonObject n)
    {
        var label = $"notifications: {n["ratePerSecond"]} events/s across {n["channels"]} webhook channels";
        table.Add((label, $"committed → delivered p50 / p99 / max ms ({n["steadyEvents"]} events in {n["steadySeconds"]} s)", n["committedToDeliveredMs"]!.ToJsonString()));
        table.Add((label, $"backlog after a {n["outageSeconds"]} s outage: events / drain s / events per s", $"{n["backlog"]} / {n["drainSeconds"]} / {n["drainEventsPerSecond"]}"));
        table.Add((label, "receiver back → first delivery s / → backlog empty s (events per s)", $"{n["receiverUpToFirstDeliverySeconds"]} / {n["receiverUpToBacklogEmptySeconds"]} ({n["drainEventsPerSecondFromReceiverUp"]})"));
        table.Add((label, "lost / duplicates / order breaks / bad signatures", $"{n["lost"]} / {n["duplicates"]} / {n["orderBreaks"]} / {n["badSignatures"]}"));
        if (n["siem"] is JsonObject s) table.Add((label, "siem stream: lines / duplicates / chain problems / unrecomputable", $"{s["lines"]} / {s["duplicates"]} / {s["problems"]} / {s["unrecomputable"]}"));
    }

    const string ChannelsPath = $"apis/controlplane.io/v1alpha1/namespaces/{NotifyNamespace}/notificationchannels";

    static async Task CreateChannelAsync(BenchEnv env, string name, string type, string url, string secret, JsonObject? selector, string[]? events)
    {
        var secretBody = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Secret",
            ["metadata"] = new JsonObject { ["name"] = name + "-signing", ["namespace"] = NotifyNamespace },
            ["stringData"] = new JsonObject { ["current"] = secret },
        };
        await env.Api.SendAsync(HttpMethod.Post, $"api/v1/namespaces/{NotifyNamespace}/secrets", secretBody.ToJsonString(), "application/json", CancellationToken.None);
        var spec = new JsonObject
        {
            ["type"] = type,
            ["url"] = url,
            ["signingSecretRef"] = new JsonObject { ["name"] = name + "-signing" },
            ["maxConsecutiveFailures"] = 1000,
        };
        if (selector is not null) spec["workspaceSelector"] = selector;
        if (events is not null) spec["events"] = new JsonArray([.. events.Select(e => (JsonNode)e)]);
        var channel = new JsonObject
        {
            ["apiVersion"] = "controlplane.io/v1alpha1",
            ["kind"] = "NotificationChannel",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = NotifyNamespace },
            ["spec"] = spec,
        };
        await env.Api.SendAsync(HttpMethod.Post, ChannelsPath, channel.ToJsonString(), "application/json", CancellationToken.None);
    }

    /// <summary>
    /// Open loop at <see cref="NotifyRate"/> for <paramref name="seconds"/>: event k is due at k/rate whatever the previous
    /// appends took (a late one is sent at once); the commit time is taken when the append returns.
    /// </summary>
    static async Task<List<Committed>> ProduceAsync(SystemDatabase database, List<Workspace> workspaces, int firstSeq, int seconds)
    {
        var total = NotifyRate * seconds;
        var committed = new List<Committed>(total);
        var start = Stopwatch.StartNew();
        for (var k = 0; k < total; k++)
        {
            var wait = TimeSpan.FromSeconds((double)k / NotifyRate) - start.Elapsed;
            if (wait > TimeSpan.Zero) await Task.Delay(wait);
            var seq = firstSeq + k;
            var channel = seq % workspaces.Count;
            var ws = workspaces[channel];
            await database.AppendAuditAsync(new AuditEntry("bench@example.com", "backup.failed", "Backup", $"{ws.Metadata.Name}/nightly-{seq}", ws.Spec.Tenant,
                new JsonObject { ["benchSeq"] = seq, ["message"] = "pg_dump exited with status 1" }, "warning"), CancellationToken.None);
            committed.Add(new Committed(seq, channel, Stopwatch.GetTimestamp()));
        }

        return committed;
    }

    /// <summary>Waits until every event has arrived at least once, or the deadline; true when all did.</summary>
    static async Task<bool> WaitDeliveredAsync(NotifyReceiver receiver, List<Committed> events, TimeSpan deadline)
    {
        var all = await WaitUntilOrFalseAsync(() => events.All(c => receiver.FirstArrival(c.Seq) is not null), deadline, "every event delivered");
        if (!all) Console.WriteLine($"  notify: {events.Count(c => receiver.FirstArrival(c.Seq) is null)} of {events.Count} events never arrived");
        return all;
    }

    /// <summary>A deadline passed is a result here (reported as lost or incomplete), not a crash of the whole run.</summary>
    static async Task<bool> WaitUntilOrFalseAsync(Func<bool> condition, TimeSpan deadline, string what)
    {
        try
        {
            await Net.WaitUntilAsync(() => Task.FromResult(condition()), deadline, what);
            return true;
        }
        catch (TimeoutException e)
        {
            Console.WriteLine($"  notify: {e.Message}");
            return false;
        }
    }

    /// <summary>
    /// The receiver: POST /c/{channel} (webhook bodies) and POST /siem (JSON lines), on 127.0.0.1. Every delivery's
    /// X-ControlPlane-Signature (t=&lt;unix&gt;,v1=&lt;hex&gt;[,v1=…], HMAC-SHA256 over "t.body") is checked against the
    /// channel's secret, independently of the operator's code; a delivery that fails it is answered 401 and not
    /// counted. The first arrival of each idempotency key is kept; later ones are duplicates.
    /// </summary>
    sealed class NotifyReceiver : IAsyncDisposable
    {
        static readonly TimeSpan ReplayWindow = TimeSpan.FromMinutes(5);

        readonly WebApplication app;
        readonly string[] secrets;
        readonly ConcurrentDictionary<string, int> arrivalsByKey = new(StringComparer.Ordinal);
        readonly ConcurrentDictionary<int, long> firstArrivalBySeq = new();
        readonly ConcurrentDictionary<int, ConcurrentQueue<int>> orderByChannel = new();
        readonly SiemStreamVerifier siem = new();
        readonly Lock siemLock = new();
        long duplicates;
        long badSignatures;
        long refusedWhileDown;
        int siemBenchRows;

        NotifyReceiver(WebApplication app, string[] secrets)
        {
            this.app = app;
            this.secrets = secrets;
        }

        public string BaseUrl { get; private set; } = "";

        public string SiemSecret { get; } = NewSecret();

        /// <summary>While true every connection is aborted: to the sender, the receiver is down.</summary>
        public volatile bool Down;

        public long Duplicates => Interlocked.Read(ref duplicates);

        public long BadSignatures => Interlocked.Read(ref badSignatures);

        public long RefusedWhileDown => Interlocked.Read(ref refusedWhileDown);

        public int SiemBenchRows => Volatile.Read(ref siemBenchRows);

        public string Secret(int channel) => secrets[channel];

        public long? FirstArrival(int seq) => firstArrivalBySeq.TryGetValue(seq, out var at) ? at : null;

        static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

        public static async Task<NotifyReceiver> StartAsync(int channels)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var receiver = new NotifyReceiver(app, [.. Enumerable.Range(0, channels).Select(_ => NewSecret())]);
            app.MapPost("/c/{channel:int}", (HttpContext context, int channel) => receiver.WebhookAsync(context, channel));
            app.MapPost("/siem", receiver.SiemAsync);
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            receiver.BaseUrl = address.TrimEnd('/') + "/";
            return receiver;
        }

        async Task<byte[]?> ReadSignedAsync(HttpContext context, string secret)
        {
            if (Down)
            {
                Interlocked.Increment(ref refusedWhileDown);
                context.Abort();
                return null;
            }

            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            var body = buffer.ToArray();
            if (!SignatureValid(context.Request.Headers["X-ControlPlane-Signature"].ToString(), body, secret))
            {
                Interlocked.Increment(ref badSignatures);
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return null;
            }

            return body;
        }

        async Task WebhookAsync(HttpContext context, int channel)
        {
            if (channel < 0 || channel >= secrets.Length)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            var at = Stopwatch.GetTimestamp();
            var body = await ReadSignedAsync(context, secrets[channel]);
            if (body is null) return;
            var key = context.Request.Headers["Idempotency-Key"].ToString();
            var seq = (int?)JsonNode.Parse(body)?["details"]?["benchSeq"];
            if (key.Length == 0 || seq is null)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            if (arrivalsByKey.AddOrUpdate(key, 1, (_, n) => n + 1) > 1)
            {
                Interlocked.Increment(ref duplicates);
            }
            else
            {
                firstArrivalBySeq.TryAdd(seq.Value, at);
                orderByChannel.GetOrAdd(channel, _ => new ConcurrentQueue<int>()).Enqueue(seq.Value);
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        }

        async Task SiemAsync(HttpContext context)
        {
            var body = await ReadSignedAsync(context, SiemSecret);
            if (body is null) return;
            foreach (var line in Encoding.UTF8.GetString(body).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                lock (siemLock)
                {
                    var outcome = siem.Accept(line);
                    if (outcome != SiemLineOutcome.Duplicate && line.Contains("\"benchSeq\"", StringComparison.Ordinal)) Interlocked.Increment(ref siemBenchRows);
                }
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        }

        public SiemStreamReport SiemReport()
        {
            lock (siemLock) return siem.Report();
        }

        /// <summary>First arrivals per channel that came after a later event of the same channel (each channel's events are produced in seq order).</summary>
        public int OrderBreaks() => orderByChannel.Values.Sum(q =>
        {
            var breaks = 0;
            var max = -1;
            foreach (var seq in q)
            {
                if (seq < max) breaks++;
                max = Math.Max(max, seq);
            }

            return breaks;
        });

        /// <summary>The receiver's check (docs: t within the replay window, any v1 equal in constant time to HMAC-SHA256(secret, "t.body")).</summary>
        static bool SignatureValid(string header, byte[] body, string secret)
        {
            long? t = null;
            var candidates = new List<byte[]>();
            foreach (var part in header.Split(','))
            {
                var kv = part.Split('=', 2);
                if (kv.Length != 2) continue;
                if (kv[0] == "t" && long.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ts)) t = ts;
                else if (kv[0] == "v1") candidates.Add(Encoding.ASCII.GetBytes(kv[1]));
            }

            if (t is null || Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - t.Value) > ReplayWindow.TotalSeconds) return false;
            var signed = Encoding.UTF8.GetBytes(t.Value.ToString(CultureInfo.InvariantCulture) + ".").Concat(body).ToArray();
            var expected = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed)));
            return candidates.Any(c => CryptographicOperations.FixedTimeEquals(c, expected));
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
