using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Bench;

/// <summary>
/// The delegation expirer's bound: many approved AccessRequests whose grants end within the same
/// second or two, timed from each recorded status.expiresAt to the deletion of its RoleBinding (seen
/// on a watch), and what those grants cost while nothing expires.
/// </summary>
public static partial class Program
{
    static readonly int NExpiry = Env("BENCH_N_EXPIRY", 1000);
    static readonly int ExpiryWorkspaces = Env("BENCH_EXPIRY_WORKSPACES", 4);
    static readonly int ExpiryIdleSeconds = Env("BENCH_EXPIRY_IDLE_SECONDS", 65);
    static readonly int ExpirySpreadMs = Env("BENCH_EXPIRY_SPREAD_MS", 1000);

    static readonly ResourceType AccessRequestType = ResourceType.For<AccessRequest>(true);
    static readonly ResourceType RoleBindingType = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);

    /// <summary>
    /// NExpiry requests (spread over ExpiryWorkspaces workspaces) are requested, approved and granted
    /// for an hour through the in-process operator. Idle: a window of ExpiryIdleSeconds (more than two
    /// resyncs) with every grant in force, counting API and Postgres writes (must be 0). Then every
    /// grant's recorded times are moved, as the operator would have recorded them had it granted all
    /// at once, so that they fall due within ExpirySpreadMs of each other about 30 s later
    /// (status.grantedAt/expiresAt, the Ready message naming the time, the binding's expires-at
    /// annotation), and the controller resyncs so its requeues follow the recorded times. A watch of the
    /// bench's own sees each binding's deletion; Postgres gives each access.expired row's time.
    /// </summary>
    static async Task<JsonObject> ExpiryAsync(BenchEnv env)
    {
        await using var op = RunningOperator.Start(env);
        await op.WaitSyncedAsync();
        await CreateTenantsAsync(env, 10);
        var workspaces = new List<Workspace>();
        for (var i = 0; i < ExpiryWorkspaces; i++)
        {
            var ws = NewWorkspace(i, db: false);
            await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
            workspaces.Add(ws);
        }

        foreach (var ws in workspaces)
        {
            await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ws.Metadata.Name, CancellationToken.None)).Status?.Phase == WorkspacePhase.Ready,
                TimeSpan.FromMinutes(1), "workspace Ready");
        }

        // Requested and approved as the webhook would have stamped them (no webhook runs here).
        var granting = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, NExpiry), new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency }, async (i, ct) =>
        {
            var w = i % ExpiryWorkspaces;
            var ns = workspaces[w].Metadata.Name;
            var request = await env.Api.CreateAsync(AccessRequestType, ns, new AccessRequest
            {
                Metadata = new V1ObjectMeta
                {
                    Name = $"grant-{i:0000}",
                    Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = $"dev{w}@example.com" },
                },
                Spec = new AccessRequestSpec { Role = "Operator", Duration = "1h", Justification = "Benchmark grant: investigate the nightly batch job's failures" },
            }, ct);
            await env.Api.CreateAsync(ApprovalType, ns, new Approval
            {
                Metadata = new V1ObjectMeta
                {
                    Name = $"grant-{i:0000}-lead",
                    Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) },
                },
                Spec = new ApprovalSpec
                {
                    Target = new ApprovalTarget { Kind = AccessRequest.KubeKind, Name = request.Metadata.Name },
                    Approver = $"lead{w % 10}@example.com", TargetUID = request.Metadata.Uid, TargetGeneration = request.Metadata.Generation,
                },
            }, ct);
        });
        var requests = op.Runtime.InformerOf<AccessRequest>()!;
        var operatorBindings = op.Runtime.InformerOf<V1RoleBinding>()!;
        bool IsGrant(V1RoleBinding b) => b.Metadata.Labels?.ContainsKey(AccessRequestResources.RequestLabel) == true;
        await Net.WaitUntilAsync(() => Task.FromResult(requests.List().Count(r => r.Status?.Phase == AccessRequestPhase.Active) == NExpiry
                && operatorBindings.List().Count(IsGrant) == NExpiry),
            TimeSpan.FromMinutes(15), $"{NExpiry} grants Active with their RoleBindings");
        var grantSeconds = granting.Elapsed.TotalSeconds;
        Console.WriteLine($"  expiry: {NExpiry} grants Active {grantSeconds:0.0} s after the first request");

        // ---- idle: every grant in force, nothing due ------------------------------------------------
        await WaitForNoWritesAsync(op, TimeSpan.FromSeconds(5));
        var controller = op.Runtime.Controllers.Single(c => c.Name == "accessrequest");
        var reconciles = 0;
        void Count(string c, string key, string result)
        {
            if (c == "accessrequest") Interlocked.Increment(ref reconciles);
        }

        op.Runtime.Reconciled += Count;
        var idleBefore = (Api: op.Runtime.Requests.Writes, Db: op.Runtime.Database.Writes);
        await Task.Delay(TimeSpan.FromSeconds(ExpiryIdleSeconds));
        var idle = new JsonObject
        {
            ["seconds"] = ExpiryIdleSeconds,
            ["apiWrites"] = op.Runtime.Requests.Writes - idleBefore.Api,
            ["postgresWrites"] = op.Runtime.Database.Writes - idleBefore.Db,
            ["accessRequestReconciles"] = Volatile.Read(ref reconciles),
        };
        Console.WriteLine($"  expiry: idle {ExpiryIdleSeconds} s with {NExpiry} grants in force: {idle.ToJsonString()}");

        // ---- the bench's own watch of the grants' bindings --------------------------------------------
        using var watchApi = env.Plane.NewApi();
        var watcher = new Informer<V1RoleBinding>(watchApi, RoleBindingType, new OperatorMetrics(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
            new InformerOptions { LabelSelector = AccessRequestResources.RequestLabel, IndexByNamespace = false });
        var deletedAt = new ConcurrentDictionary<string, DateTime>();
        watcher.AddHandler(e =>
        {
            if (e.Type == InformerEventType.Deleted) deletedAt.TryAdd($"{e.Object.Metadata.NamespaceProperty}/{e.Object.Metadata.Labels[AccessRequestResources.RequestLabel]}", DateTime.UtcNow);
        });
        using var stopWatcher = new CancellationTokenSource();
        var watching = Task.Run(() => watcher.RunAsync(stopWatcher.Token));
        await watcher.WaitForSyncAsync(CancellationToken.None);

        // ---- all grants due within the spread, ~30 s from now ------------------------------------------
        // Whole milliseconds: the recorded times round-trip exactly (microseconds on the wire).
        var now = DateTime.UtcNow;
        var dueFrom = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, DateTimeKind.Utc).AddSeconds(30);
        var due = new ConcurrentDictionary<string, DateTime>();
        var rewriting = Stopwatch.StartNew();
        var all = requests.List().ToList();
        await Parallel.ForEachAsync(all, new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency }, async (r, ct) =>
        {
            var i = int.Parse(r.Metadata.Name["grant-".Length..], CultureInfo.InvariantCulture);
            var expires = dueFrom.AddMilliseconds((double)i * ExpirySpreadMs / NExpiry);
            var granted = expires.AddHours(-1);
            var oldExpiry = r.Status!.ExpiresAt!.Value.ToUniversalTime();
            var conditions = r.Status.Conditions!.Select(c => new V1Condition
            {
                Type = c.Type, Status = c.Status, Reason = c.Reason, LastTransitionTime = c.LastTransitionTime, ObservedGeneration = c.ObservedGeneration,
                Message = c.Message.Replace($"{oldExpiry:u}", $"{expires:u}", StringComparison.Ordinal),
            }).ToList();
            var status = new JsonObject
            {
                ["grantedAt"] = Iso(granted),
                ["expiresAt"] = Iso(expires),
                ["conditions"] = JsonNode.Parse(k8s.KubernetesJson.Serialize(conditions)),
            };
            await env.Api.PatchAsync<AccessRequest>(AccessRequestType, r.Metadata.NamespaceProperty, r.Metadata.Name, new JsonObject { ["status"] = status }.ToJsonString(), PatchTypes.Merge, ct, "status");
            var annotation = new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [AccessRequestResources.ExpiresAtAnnotation] = expires.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) } } };
            await env.Api.PatchAsync<V1RoleBinding>(RoleBindingType, r.Metadata.NamespaceProperty, AccessRequestPlan.BindingName(r.Metadata.Name), annotation.ToJsonString(), PatchTypes.Merge, ct);
            due[$"{r.Metadata.NamespaceProperty}/{r.Metadata.Name}"] = expires;
        });

        // A status-only change enqueues nothing: one resync, as the grant's own pass would, requeues each at its recorded time.
        await Net.WaitUntilAsync(() => Task.FromResult(requests.List().All(r => r.Status?.ExpiresAt?.ToUniversalTime() == due[$"{r.Metadata.NamespaceProperty}/{r.Metadata.Name}"])),
            TimeSpan.FromMinutes(1), "the operator's cache holds the moved times");
        var reconciledBefore = Volatile.Read(ref reconciles);
        var writesBeforeResync = op.Runtime.Requests.Writes;
        controller.ResyncNow();
        await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconciles) - reconciledBefore >= NExpiry), TimeSpan.FromMinutes(2), "every grant reconciled at its moved time");
        var resyncWrites = op.Runtime.Requests.Writes - writesBeforeResync;
        var margin = (dueFrom - DateTime.UtcNow).TotalSeconds;
        Console.WriteLine($"  expiry: times moved in {rewriting.Elapsed.TotalSeconds:0.0} s; the resync wrote {resyncWrites}; first grant due in {margin:0.0} s");
        if (margin < 2) throw new InvalidOperationException($"the grants came due {-margin:0.0} s before the bench was ready: raise the 30 s lead");
        op.Runtime.Reconciled -= Count;

        var metricsBefore = await Percentiles.ExportAsync(op.Runtime.Metrics.Registry);
        var writesBefore = (Api: op.Runtime.Requests.Snapshot(), Db: op.Runtime.Database.Writes);
        var cpuBefore = ProcessCpu.Snapshot();
        await Net.WaitUntilAsync(() => Task.FromResult(deletedAt.Count >= NExpiry), TimeSpan.FromMinutes(10), $"{NExpiry} grant bindings deleted");
        await Net.WaitUntilAsync(() => Task.FromResult(requests.List().Count(r => r.Status?.Phase == AccessRequestPhase.Expired) == NExpiry),
            TimeSpan.FromMinutes(10), $"{NExpiry} requests Expired");
        var cpu = ProcessCpu.Delta(cpuBefore, ProcessCpu.Snapshot());
        await WaitForNoWritesAsync(op, TimeSpan.FromSeconds(3));
        var writesAfter = (Api: op.Runtime.Requests.Snapshot(), Db: op.Runtime.Database.Writes);
        var metricsAfter = await Percentiles.ExportAsync(op.Runtime.Metrics.Registry);
        await stopWatcher.CancelAsync();
        try
        {
            await watching;
        }
        catch (OperationCanceledException)
        {
        }

        var bindingLag = due.Select(kv => (deletedAt[kv.Key] - kv.Value).TotalSeconds).ToList();
        var endedLag = requests.List().Select(r => (r.Status!.EndedAt!.Value.ToUniversalTime() - r.Status.ExpiresAt!.Value.ToUniversalTime()).TotalSeconds).ToList();
        var auditLag = new List<double>();
        await using (var ds = NpgsqlDataSource.Create(env.Postgres.ConnectionString()))
        await using (var cmd = ds.CreateCommand("SELECT object_name, occurred_at FROM controlplane.audit_events WHERE kind = 'AccessRequest' AND action = 'access.expired'"))
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                if (due.TryGetValue(reader.GetString(0), out var at)) auditLag.Add((reader.GetFieldValue<DateTime>(1).ToUniversalTime() - at).TotalSeconds);
            }
        }

        JsonArray Quad(IReadOnlyList<double> s) => [Math.Round(Percentiles.Of(s, 0.5), 3), Math.Round(Percentiles.Of(s, 0.95), 3), Math.Round(Percentiles.Of(s, 0.99), 3), Math.Round(s.Max(), 3)];
        var perVerb = new JsonObject();
        foreach (var verb in writesAfter.Api.Keys.Union(writesBefore.Api.Keys).Order())
        {
            var delta = writesAfter.Api.GetValueOrDefault(verb) - writesBefore.Api.GetValueOrDefault(verb);
            if (delta > 0) perVerb[verb] = Math.Round((double)delta / NExpiry, 2);
        }

        const string lagMetric = "controlplane_access_expiry_lag_seconds";
        var lagBuckets = Percentiles.Buckets(metricsBefore, lagMetric, "");
        var result = new JsonObject
        {
            ["grants"] = NExpiry,
            ["workspaces"] = ExpiryWorkspaces,
            ["dueWithinMs"] = ExpirySpreadMs,
            ["grantedAllSeconds"] = Math.Round(grantSeconds, 1),
            ["idle"] = idle,
            ["expiresAtToBindingDeletedSeconds"] = Quad(bindingLag),
            ["expiresAtToAuditRowSeconds"] = auditLag.Count > 0 ? Quad(auditLag) : null,
            ["auditRows"] = auditLag.Count,
            ["expiresAtToEndedAtSeconds"] = Quad(endedLag),
            ["operatorLagMetricSeconds"] = new JsonArray(
                Math.Round(Percentiles.FromHistogram(metricsAfter, lagMetric, "", 0.5, lagBuckets), 3),
                Math.Round(Percentiles.FromHistogram(metricsAfter, lagMetric, "", 0.95, lagBuckets), 3),
                Math.Round(Percentiles.FromHistogram(metricsAfter, lagMetric, "", 0.99, lagBuckets), 3)),
            ["lastBindingDeletedAfterFirstDueSeconds"] = Math.Round((deletedAt.Values.Max() - dueFrom).TotalSeconds, 3),
            ["requestsPerGrantAtExpiry"] = perVerb,
            ["postgresWritesPerGrantAtExpiry"] = Math.Round((double)(writesAfter.Db - writesBefore.Db) / NExpiry, 2),
            ["cpuSecondsByProcessAtExpiry"] = CpuJson(cpu),
            ["reconcilesAtExpiryByController"] = ReconcilesByController(metricsBefore, metricsAfter),
            ["accessRequestReconcileP50P99Ms"] = new JsonArray(
                Math.Round(1000 * Percentiles.FromHistogram(metricsAfter, "controller_runtime_reconcile_time_seconds", "controller=\"accessrequest\"", 0.5,
                    Percentiles.Buckets(metricsBefore, "controller_runtime_reconcile_time_seconds", "controller=\"accessrequest\"")), 1),
                Math.Round(1000 * Percentiles.FromHistogram(metricsAfter, "controller_runtime_reconcile_time_seconds", "controller=\"accessrequest\"", 0.99,
                    Percentiles.Buckets(metricsBefore, "controller_runtime_reconcile_time_seconds", "controller=\"accessrequest\"")), 1)),
            ["note"] = "p50 / p95 / p99 / max; in-process operator, no webhooks (requests and approvals carry the stamps the webhook would write); deletion times from the bench's own watch of the bindings; operatorLagMetricSeconds p50/p95/p99 from the histogram's buckets",
        };
        Console.WriteLine($"  expiry: {result.ToJsonString()}");
        await op.StopAsync();
        return result;
    }

    /// <summary>The scenario on a fresh environment, its result and its table rows.</summary>
    static async Task ExpiryScenarioAsync(string root, JsonObject results, List<(string Scenario, string Metric, string Value)> table)
    {
        await using var env = await BenchEnv.StartAsync(root);
        var expiry = await ExpiryAsync(env);
        results["expiry"] = expiry;
        var label = $"{expiry["grants"]} AccessRequests due within {expiry["dueWithinMs"]} ms";
        table.Add((label, "expiresAt to RoleBinding deleted p50 / p95 / p99 / max s (watch)", expiry["expiresAtToBindingDeletedSeconds"]!.ToJsonString()));
        table.Add((label, "expiresAt to access.expired row p50 / p95 / p99 / max s", expiry["expiresAtToAuditRowSeconds"]?.ToJsonString() ?? "none"));
        table.Add((label, "API requests per grant at expiry; Postgres writes per grant", $"{expiry["requestsPerGrantAtExpiry"]!.ToJsonString()}; {expiry["postgresWritesPerGrantAtExpiry"]}"));
        var idle = expiry["idle"]!;
        table.Add((label, $"idle {idle["seconds"]} s, all in force: API writes / Postgres writes / reconciles", $"{idle["apiWrites"]} / {idle["postgresWrites"]} / {idle["accessRequestReconciles"]}"));
    }

    /// <summary>Reconciles per controller between two scrapes (who else the expiries woke).</summary>
    static JsonObject ReconcilesByController(string before, string after)
    {
        static Dictionary<string, double> Read(string text)
        {
            var counts = new Dictionary<string, double>();
            foreach (var line in text.Split('\n'))
            {
                if (!line.StartsWith("controller_runtime_reconcile_total{", StringComparison.Ordinal)) continue;
                var c = line[(line.IndexOf("controller=\"", StringComparison.Ordinal) + 12)..];
                c = c[..c.IndexOf('"')];
                counts[c] = counts.GetValueOrDefault(c) + double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }

            return counts;
        }

        var (b, a) = (Read(before), Read(after));
        var json = new JsonObject();
        foreach (var (c, n) in a.OrderByDescending(kv => kv.Value - b.GetValueOrDefault(kv.Key)))
        {
            if (n - b.GetValueOrDefault(c) > 0) json[c] = n - b.GetValueOrDefault(c);
        }

        return json;
    }

    static string Iso(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Settled: no API write from the operator for <paramref name="quiet"/>.</summary>
    static Task WaitForNoWritesAsync(RunningOperator op, TimeSpan quiet)
    {
        var (last, since) = (op.Runtime.Requests.Writes, Stopwatch.StartNew());
        return Net.WaitUntilAsync(() =>
        {
            if (op.Runtime.Requests.Writes is var w && w != last) (last, since) = (w, Stopwatch.StartNew());
            return Task.FromResult(since.Elapsed > quiet);
        }, TimeSpan.FromMinutes(5), $"no API write for {quiet.TotalSeconds:0} s");
    }
}
