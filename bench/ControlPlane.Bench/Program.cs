using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Controllers;
using ControlPlane.Operator.Runtime;
using ControlPlane.Operator.Store;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Bench;

/// <summary>
/// `make bench`: convergence against the API server's own floor, idle cost, memory, one change among
/// many, restart and webhook latency, on the same local control plane and Postgres as the tests.
/// </summary>
public static class Program
{
    static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var v) ? v : fallback;

    static readonly int Runs = Env("BENCH_RUNS", 3);
    static readonly int NWithDb = Env("BENCH_N_DB", 100);
    static readonly int N = Env("BENCH_N", 1000);
    static readonly int NLarge = Env("BENCH_N_LARGE", 5000);
    static readonly int IdleSeconds = Env("BENCH_IDLE_SECONDS", 60);
    static readonly int WebhookSeconds = Env("BENCH_WEBHOOK_SECONDS", 60);
    static readonly int WebhookRps = Env("BENCH_WEBHOOK_RPS", 100);
    const int Workers = 8;
    const int ApplyConcurrency = 16;
    static readonly TimeSpan Resync = TimeSpan.FromSeconds(30);

    public static async Task<int> Main()
    {
        var repo = ControlPlane.LocalEnv.Program.FindRepoRoot();
        var root = Path.Combine(Path.GetTempPath(), "controlplane-bench-" + Guid.NewGuid().ToString("N")[..6]);
        var results = new JsonObject
        {
            ["startedAt"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["machine"] = new JsonObject
            {
                ["cores"] = Environment.ProcessorCount,
                ["memoryGiB"] = Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1073741824.0, 1),
                ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
                ["dotnet"] = Environment.Version.ToString(),
            },
            ["settings"] = new JsonObject
            {
                ["runs"] = Runs, ["nWithDatabase"] = NWithDb, ["n"] = N, ["nLarge"] = NLarge, ["operatorWorkers"] = Workers,
                ["applyConcurrency"] = ApplyConcurrency, ["floorConcurrency"] = Workers, ["resyncPeriodSeconds"] = Resync.TotalSeconds,
                ["idleSeconds"] = IdleSeconds, ["webhookSeconds"] = WebhookSeconds, ["webhookRps"] = WebhookRps,
                ["postgres"] = "PostgreSQL 15, fsync=off, synchronous_commit=off, full_page_writes=off (benchmark only)",
                ["kubernetes"] = "kube-apiserver 1.20.2 + etcd 3.4 on loopback, watch cache on",
                ["operator"] = "in-process, leader election off, webhooks off except in the webhook scenario",
            },
        };
        var table = new List<(string Scenario, string Metric, string Value)>();
        try
        {
            foreach (var (n, db) in new[] { (NWithDb, true), (N, false) })
            {
                var label = $"N={n}{(db ? " with databases" : " without databases")}";
                var converge = new List<double>();
                var floor = new List<double>();
                JsonObject? detail = null;
                for (var run = 0; run < Runs; run++)
                {
                    var keep = run == Runs - 1;
                    await using var env = await BenchEnv.StartAsync(Path.Combine(root, $"c{n}-{run}"));
                    var (seconds, d, op) = await ConvergeAsync(env, n, db, keep);
                    converge.Add(seconds);
                    detail = d;
                    if (keep && op is not null)
                    {
                        await using (op)
                        {
                            var memory = Memory(op);
                            detail["memoryAfterConverge"] = memory;
                            if (!db)
                            {
                                detail["idle"] = await IdleAsync(op);
                                detail["oneChange"] = await OneChangeAsync(env, op);
                                await op.StopAsync();
                                detail["restart"] = await RestartAsync(env, n);
                            }
                        }
                    }

                    await using var floorEnv = await BenchEnv.StartAsync(Path.Combine(root, $"f{n}-{run}"));
                    floor.Add(await FloorAsync(floorEnv, n, db));
                    Console.WriteLine($"  run {run + 1}/{Runs} {label}: converge {converge[^1]:0.00} s, floor {floor[^1]:0.00} s");
                }

                var c = Summary.Of(converge);
                var f = Summary.Of(floor);
                var ratio = Summary.Of(converge.Zip(floor, (a, b) => a / b).ToList());
                detail!["convergeSeconds"] = ToJson(c);
                detail["floorSeconds"] = ToJson(f);
                detail["ratio"] = ToJson(ratio);
                results[$"converge_{n}{(db ? "_db" : "")}"] = detail;
                table.Add((label, "converge s (median, min–max)", c.ToString()));
                table.Add((label, "floor s", f.ToString()));
                table.Add((label, "converge / floor", ratio.ToString()));
                table.Add((label, "API requests per workspace", detail["requestsPerWorkspace"]!.ToJsonString()));
                table.Add((label, "Postgres transactions per workspace", detail["postgresTransactionsPerWorkspace"]!.ToString()));
                table.Add((label, "reconcile p50 / p99 ms", $"{detail["reconcileP50Ms"]} / {detail["reconcileP99Ms"]}"));
                table.Add((label, "queue wait p50 / p99 ms", $"{detail["queueWaitP50Ms"]} / {detail["queueWaitP99Ms"]}"));
                if (detail["memoryAfterConverge"] is JsonObject m)
                {
                    table.Add((label, "working set / managed heap MB", $"{m["workingSetMB"]} / {m["managedHeapMB"]}"));
                }

                if (detail["idle"] is JsonObject idle)
                {
                    table.Add((label, $"idle {IdleSeconds}s: API writes / Postgres writes", $"{idle["apiWrites"]} / {idle["postgresWrites"]}"));
                    table.Add((label, $"idle {IdleSeconds}s: CPU s / requests", $"{idle["cpuSeconds"]} / {idle["requests"]}"));
                }

                if (detail["oneChange"] is JsonObject one)
                {
                    table.Add((label, "one change: RoleBinding after ms / workspaces reconciled", $"{one["roleBindingAfterMs"]} / {one["workspacesReconciled"]}"));
                }

                if (detail["restart"] is JsonObject restart)
                {
                    table.Add((label, "restart: ready after s / writes", $"{restart["readySeconds"]} / {restart["apiWrites"]}+{restart["postgresWrites"]}"));
                }
            }

            // Idle and memory at the large size, one run.
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "large"));
                var (seconds, detail, op) = await ConvergeAsync(env, NLarge, false, keep: true);
                await using (op!)
                {
                    detail["convergeSeconds"] = seconds;
                    detail["memoryAfterConverge"] = Memory(op!);
                    detail["idle"] = await IdleAsync(op!);
                }

                results[$"large_{NLarge}"] = detail;
                var label = $"N={NLarge} without databases";
                table.Add((label, "converge s (one run)", Summary.Fmt(seconds)));
                var m = (JsonObject)detail["memoryAfterConverge"]!;
                table.Add((label, "working set / managed heap MB", $"{m["workingSetMB"]} / {m["managedHeapMB"]}"));
                table.Add((label, "GC committed / RSS anonymous / RSS file-backed MB", $"{m["gcCommittedMB"]} / {m["rssAnonMB"]} / {m["rssFileMB"]}"));
                var idle = (JsonObject)detail["idle"]!;
                table.Add((label, $"idle {IdleSeconds}s: API writes / Postgres writes", $"{idle["apiWrites"]} / {idle["postgresWrites"]}"));
                table.Add((label, $"idle {IdleSeconds}s: CPU s / requests", $"{idle["cpuSeconds"]} / {idle["requests"]}"));
            }

            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "webhook"));
                var webhook = await WebhookAsync(env);
                results["webhook"] = webhook;
                var label = $"webhook at {WebhookRps} rps, {WebhookSeconds} s";
                table.Add((label, "dry-run create p50/p95/p99 ms with webhooks", webhook["withWebhooks"]!.ToJsonString()));
                table.Add((label, "dry-run create p50/p95/p99 ms without", webhook["withoutWebhooks"]!.ToJsonString()));
                table.Add((label, "decision p50/p95/p99 ms (operator side)", webhook["decision"]!.ToJsonString()));
                table.Add((label, "API server webhook admission p50/p95/p99 ms", webhook["apiServerAdmission"]!.ToJsonString()));
            }
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        results["finishedAt"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        var dir = Path.Combine(repo, "bench", "results");
        Directory.CreateDirectory(dir);
        var json = results.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        var previous = Directory.GetFiles(dir, "20*.json").Order().LastOrDefault();
        await File.WriteAllTextAsync(Path.Combine(dir, "latest.json"), json);
        await File.WriteAllTextAsync(Path.Combine(dir, DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + ".json"), json);
        var md = Render(table, results);
        await File.WriteAllTextAsync(Path.Combine(dir, "latest.md"), md);
        Console.WriteLine();
        Console.WriteLine(md);
        if (previous is not null) Console.WriteLine($"previous run for comparison: {Path.GetFileName(previous)}");
        return 0;
    }

    static JsonObject ToJson(Summary s) => new() { ["median"] = Math.Round(s.Median, 3), ["min"] = Math.Round(s.Min, 3), ["max"] = Math.Round(s.Max, 3), ["runs"] = s.Runs };

    static string Render(List<(string Scenario, string Metric, string Value)> table, JsonObject results)
    {
        var m = results["machine"]!;
        var lines = new List<string>
        {
            $"Machine: {m["cores"]} cores, {m["memoryGiB"]} GiB, {m["os"]}; .NET {m["dotnet"]}.",
            $"Settings: {results["settings"]!["postgres"]}; operator workers {Workers}, resync {Resync.TotalSeconds:0} s (shortened for the idle window).",
            "",
            "| scenario | metric | value |",
            "| --- | --- | --- |",
        };
        lines.AddRange(table.Select(r => $"| {r.Scenario} | {r.Metric} | {r.Value} |"));
        return string.Join('\n', lines) + "\n";
    }

    // ---- environment ----------------------------------------------------------------------------

    sealed class BenchEnv : IAsyncDisposable
    {
        public required LocalControlPlane Plane { get; init; }
        public required LocalPostgres Postgres { get; init; }
        public required KubeApi Api { get; init; }

        public static async Task<BenchEnv> StartAsync(string root)
        {
            var plane = await LocalControlPlane.StartAsync(Path.Combine(root, "k8s"));
            var pg = await LocalPostgres.StartAsync(root, fsync: false);
            await plane.InstallCrdsAsync();
            await plane.InstallClusterRolesAsync();
            await plane.EnsureNamespaceAsync("controlplane-system");
            return new BenchEnv { Plane = plane, Postgres = pg, Api = plane.NewApi() };
        }

        public ControlPlaneOptions Options(string kek) => new()
        {
            SystemDatabase = Postgres.ConnectionString(),
            Regions = new(StringComparer.OrdinalIgnoreCase) { ["eu"] = new RegionOptions { Database = Postgres.ConnectionString() } },
            Workers = Workers,
            ResyncPeriod = Resync,
            KeyEncryptionKey = kek,
            LeaderElection = new LeaderElectionSettings { Enabled = false },
        };

        public async ValueTask DisposeAsync()
        {
            Api.Dispose();
            await Postgres.DisposeAsync();
            await Plane.DisposeAsync();
        }
    }

    sealed class RunningOperator : IAsyncDisposable
    {
        readonly CancellationTokenSource stop = new();
        readonly ILoggerFactory loggers = LoggerFactory.Create(b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        Task? run;
        public required OperatorRuntime Runtime { get; init; }
        public ConcurrentQueue<string> Reconciled { get; } = new();

        public static RunningOperator Start(BenchEnv env)
        {
            var loggers = LoggerFactory.Create(b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
            var op = new RunningOperator { Runtime = new OperatorRuntime(env.Options(Convert.ToBase64String(new byte[32])), env.Plane.ClientConfig(), loggers) };
            op.Runtime.Reconciled += (controller, key, _) =>
            {
                if (controller == "workspace") op.Reconciled.Enqueue(key);
            };
            op.run = Task.Run(() => op.Runtime.RunAsync(op.stop.Token));
            return op;
        }

        public Task WaitSyncedAsync() => Net.WaitUntilAsync(() => Task.FromResult(Runtime.IsLeader && Runtime.Controllers.Count >= 3
            && Runtime.Informers.All(i => i.HasSynced)), TimeSpan.FromMinutes(5), "operator synced");

        public Task WaitIdleAsync() => Net.WaitUntilAsync(() => Task.FromResult(Runtime.IsIdle), TimeSpan.FromMinutes(5), "operator idle");

        public long ApiWrites => Runtime.Requests.Writes;

        public long PostgresWrites => Runtime.Database.Writes + Runtime.RegionDatabases.Writes;

        public async Task StopAsync()
        {
            if (run is null) return;
            await stop.CancelAsync();
            await run;
            run = null;
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            await Runtime.DisposeAsync();
            loggers.Dispose();
        }
    }

    static async Task CreateTenantsAsync(BenchEnv env, int n)
    {
        for (var t = 0; t < 10; t++)
        {
            var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = $"bench-t{t}" } };
            tenant.Spec.Region = "eu";
            tenant.Spec.Owners = [new Subject { Kind = "Group", Name = $"bench-t{t}-admins" }];
            tenant.Spec.Quota = new TenantQuota { MaxWorkspaces = n, Cpu = new ResourceQuantity(n.ToString(CultureInfo.InvariantCulture)), Memory = new ResourceQuantity($"{n}Gi") };
            await env.Api.CreateAsync(ResourceType.For<Tenant>(false), null, tenant, CancellationToken.None);
        }
    }

    static Workspace NewWorkspace(int i, bool db)
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = $"bench-ws-{i:00000}" } };
        ws.Spec.Tenant = $"bench-t{i % 10}";
        ws.Spec.Members =
        [
            new WorkspaceMember { Kind = "User", Name = $"dev{i}@example.com", Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = $"lead{i % 10}@example.com", Role = "Approver" },
        ];
        ws.Spec.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1"), Memory = new ResourceQuantity("1Gi"), Pods = 10 };
        ws.Spec.Database = new WorkspaceDatabase { Enabled = db };
        return ws;
    }

    static async Task<long> PostgresTransactionsAsync(BenchEnv env)
    {
        await using var ds = NpgsqlDataSource.Create(env.Postgres.ConnectionString());
        // Stats are flushed at transaction end, at most once a second: wait for them to settle.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await using var cmd = ds.CreateCommand("SELECT sum(xact_commit + xact_rollback)::bigint FROM pg_stat_database");
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    // ---- 1. converge ----------------------------------------------------------------------------

    static async Task<(double Seconds, JsonObject Detail, RunningOperator? Operator)> ConvergeAsync(BenchEnv env, int n, bool db, bool keep)
    {
        await CreateTenantsAsync(env, n);
        var op = RunningOperator.Start(env);
        await op.WaitSyncedAsync();
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.InformerOf<Tenant>()!.List().Count(t => t.Status?.Phase == "Ready") == 10),
            TimeSpan.FromMinutes(1), "tenants Ready");
        await op.WaitIdleAsync();
        var before = op.Runtime.Requests.Snapshot();
        var metricsBefore = await Percentiles.ExportAsync(op.Runtime.Metrics.Registry);
        var pgBefore = await PostgresTransactionsAsync(env);

        var watch = Stopwatch.StartNew();
        var workspaces = ResourceType.For<Workspace>(false);
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency },
            async (i, ct) => await env.Api.CreateAsync(workspaces, null, NewWorkspace(i, db), ct));
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.InformerOf<Workspace>()!.List().Count(w => w.Status?.Phase == "Ready") >= n),
            TimeSpan.FromMinutes(30), $"{n} workspaces Ready");
        var seconds = watch.Elapsed.TotalSeconds;
        await op.WaitIdleAsync();

        var after = op.Runtime.Requests.Snapshot();
        var metricsAfter = await Percentiles.ExportAsync(op.Runtime.Metrics.Registry);
        var pgAfter = await PostgresTransactionsAsync(env);
        var perVerb = new JsonObject();
        foreach (var verb in after.Keys.Union(before.Keys).Order())
        {
            var delta = after.GetValueOrDefault(verb) - before.GetValueOrDefault(verb);
            if (delta > 0) perVerb[verb] = Math.Round((double)delta / n, 2);
        }

        double Q(string metric, string filter, double q) =>
            Math.Round(1000 * Percentiles.FromHistogram(metricsAfter, metric, filter, q, Percentiles.Buckets(metricsBefore, metric, filter)), 2);

        var detail = new JsonObject
        {
            ["n"] = n,
            ["databases"] = db,
            ["requestsPerWorkspace"] = perVerb,
            ["postgresTransactionsPerWorkspace"] = Math.Round((double)(pgAfter - pgBefore) / n, 2),
            ["reconcileP50Ms"] = Q("controller_runtime_reconcile_time_seconds", "controller=\"workspace\"", 0.5),
            ["reconcileP99Ms"] = Q("controller_runtime_reconcile_time_seconds", "controller=\"workspace\"", 0.99),
            ["queueWaitP50Ms"] = Q("workqueue_queue_duration_seconds", "name=\"workspace\"", 0.5),
            ["queueWaitP99Ms"] = Q("workqueue_queue_duration_seconds", "name=\"workspace\"", 0.99),
        };
        if (!keep)
        {
            await op.DisposeAsync();
            return (seconds, detail, null);
        }

        return (seconds, detail, op);
    }

    // ---- 2. floor -------------------------------------------------------------------------------

    /// <summary>
    /// The same objects, made by a tight raw client with the operator's concurrency and connection
    /// settings: the workspace CRs as in the converge run, then namespace, role bindings, quota,
    /// limit range, network policy, config map, (database, role and secret), and one status write each.
    /// </summary>
    static async Task<double> FloorAsync(BenchEnv env, int n, bool db)
    {
        await CreateTenantsAsync(env, n);
        using var api = new KubeApi(env.Plane.ClientConfig(), new RequestMetricsHandler(new OperatorMetrics().RestRequests));
        await using var regions = new RegionDatabases(env.Options(""));
        var tenants = new Dictionary<string, Tenant>();
        for (var t = 0; t < 10; t++) tenants[$"bench-t{t}"] = await api.GetAsync<Tenant>(ResourceType.For<Tenant>(false), null, $"bench-t{t}", CancellationToken.None);
        var endpoint = regions.Endpoint("eu");
        var type = ResourceType.For<Workspace>(false);
        var channel = System.Threading.Channels.Channel.CreateUnbounded<Workspace>();

        var watch = Stopwatch.StartNew();
        var producer = Task.Run(async () =>
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency }, async (i, ct) =>
                await channel.Writer.WriteAsync(await env.Api.CreateAsync(type, null, NewWorkspace(i, db), ct), ct));
            channel.Writer.Complete();
        });
        var consumers = Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            await foreach (var ws in channel.Reader.ReadAllAsync())
            {
                var tenant = tenants[ws.Spec.Tenant];
                var ct = CancellationToken.None;
                await api.CreateAsync(ResourceType.Namespaces, null, WorkspaceResources.Namespace(ws, tenant.Metadata.Name, "eu"), ct);
                foreach (var b in WorkspaceResources.RoleBindings(ws, tenant)) await api.CreateAsync(WorkspaceReconciler.RoleBindings, ws.Metadata.Name, b, ct);
                var grant = WorkspaceResources.AllocateQuota(ws, tenant, [ws]);
                await api.CreateAsync(WorkspaceReconciler.Quotas, ws.Metadata.Name, WorkspaceResources.ResourceQuota(ws, grant)!, ct);
                await api.CreateAsync(WorkspaceReconciler.LimitRanges, ws.Metadata.Name, WorkspaceResources.LimitRange(ws), ct);
                await api.CreateAsync(WorkspaceReconciler.NetworkPolicies, ws.Metadata.Name, WorkspaceResources.DefaultDeny(ws), ct);
                await api.CreateAsync(WorkspaceReconciler.ConfigMaps, ws.Metadata.Name, WorkspaceResources.ConfigMap(ws, tenant), ct);
                if (db)
                {
                    var name = RegionDatabases.DatabaseName(ws.Metadata.Name);
                    var password = RegionDatabases.NewPassword();
                    await regions.EnsureAsync("eu", name, name, password, [], ct);
                    await api.CreateAsync(WorkspaceReconciler.Secrets, ws.Metadata.Name, WorkspaceResources.DatabaseSecret(ws, endpoint.Host, endpoint.Port, name, name, password), ct);
                }

                ws.Status = new WorkspaceStatus { Phase = "Ready", Namespace = ws.Metadata.Name, ObservedGeneration = ws.Metadata.Generation };
                await api.ReplaceAsync(type, null, ws.Metadata.Name, ws, ct, "status");
            }
        })).ToList();
        await producer;
        await Task.WhenAll(consumers);
        return watch.Elapsed.TotalSeconds;
    }

    // ---- 3. idle, 4. memory ---------------------------------------------------------------------

    static async Task<JsonObject> IdleAsync(RunningOperator op)
    {
        await op.WaitIdleAsync();
        var proc = Process.GetCurrentProcess();
        var cpu = proc.TotalProcessorTime;
        var (apiWrites, pgWrites) = (op.ApiWrites, op.PostgresWrites);
        var requests = op.Runtime.Requests.Snapshot().Values.Sum();
        var reconciles = op.Reconciled.Count;
        await Task.Delay(TimeSpan.FromSeconds(IdleSeconds));
        proc.Refresh();
        return new JsonObject
        {
            ["seconds"] = IdleSeconds,
            ["resyncPeriodSeconds"] = Resync.TotalSeconds,
            ["apiWrites"] = op.ApiWrites - apiWrites,
            ["postgresWrites"] = op.PostgresWrites - pgWrites,
            ["requests"] = op.Runtime.Requests.Snapshot().Values.Sum() - requests,
            ["reconciles"] = op.Reconciled.Count - reconciles,
            ["cpuSeconds"] = Math.Round((proc.TotalProcessorTime - cpu).TotalSeconds, 2),
        };
    }

    static JsonObject Memory(RunningOperator op)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var heap = GC.GetTotalMemory(forceFullCollection: true);
        var proc = Process.GetCurrentProcess();
        proc.Refresh();
        // Where the working set is: anonymous (heap, GC reserve, native) vs file-backed (mapped assemblies and libraries).
        var status = File.Exists("/proc/self/status") ? File.ReadAllLines("/proc/self/status") : [];
        double Kb(string field) => status.FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal)) is { } line
            ? Math.Round(double.Parse(line.Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024, 1)
            : double.NaN;
        return new JsonObject
        {
            ["workingSetMB"] = Math.Round(proc.WorkingSet64 / 1048576.0, 1),
            ["managedHeapMB"] = Math.Round(heap / 1048576.0, 1),
            ["gcCommittedMB"] = Math.Round(GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0, 1),
            ["rssAnonMB"] = Kb("RssAnon"),
            ["rssFileMB"] = Kb("RssFile"),
            ["cachedObjects"] = op.Runtime.Informers.Sum(i => i.Keys.Count()),
        };
    }

    // ---- 5. one change among N ------------------------------------------------------------------

    static async Task<JsonObject> OneChangeAsync(BenchEnv env, RunningOperator op)
    {
        await op.WaitIdleAsync();
        var target = "bench-ws-00000";
        var reconciledBefore = op.Reconciled.Count;
        var watch = Stopwatch.StartNew();
        await env.Api.PatchAsync<Workspace>(ResourceType.For<Workspace>(false), null, target,
            """{"spec":{"members":[{"kind":"User","name":"dev0@example.com","role":"Operator"},{"kind":"User","name":"lead0@example.com","role":"Approver"},{"kind":"User","name":"new@example.com","role":"Auditor"}]}}""",
            PatchTypes.Merge, CancellationToken.None);
        var bindings = op.Runtime.InformerOf<V1RoleBinding>()!;
        await Net.WaitUntilAsync(() => Task.FromResult(bindings.List().Any(b => b.Metadata.NamespaceProperty == target && b.Subjects.Any(s => s.Name == "new@example.com"))),
            TimeSpan.FromMinutes(1), "new member's RoleBinding");
        var ms = watch.Elapsed.TotalMilliseconds;
        await Task.Delay(TimeSpan.FromSeconds(3));
        await op.WaitIdleAsync();
        var keys = op.Reconciled.Skip(reconciledBefore).ToList();
        return new JsonObject
        {
            ["roleBindingAfterMs"] = Math.Round(ms, 1),
            ["reconciles"] = keys.Count,
            ["workspacesReconciled"] = keys.Distinct().Count(),
        };
    }

    // ---- 7. restart -----------------------------------------------------------------------------

    static async Task<JsonObject> RestartAsync(BenchEnv env, int n)
    {
        var watch = Stopwatch.StartNew();
        await using var op = RunningOperator.Start(env);
        await op.WaitSyncedAsync();
        var synced = watch.Elapsed.TotalSeconds;
        await Net.WaitUntilAsync(() => Task.FromResult(op.Reconciled.Distinct().Count() >= n && op.Runtime.IsIdle), TimeSpan.FromMinutes(10), "every workspace reconciled after restart");
        var ready = watch.Elapsed.TotalSeconds;
        return new JsonObject
        {
            ["syncedSeconds"] = Math.Round(synced, 2),
            ["readySeconds"] = Math.Round(ready, 2),
            ["apiWrites"] = op.ApiWrites,
            ["postgresWrites"] = op.PostgresWrites,
            ["requests"] = JsonSerializer.SerializeToNode(op.Runtime.Requests.Snapshot()),
        };
    }

    // ---- 6. webhook -----------------------------------------------------------------------------

    static async Task<JsonObject> WebhookAsync(BenchEnv env)
    {
        var healthPort = Net.FreePort();
        var webhookPort = Net.FreePort();
        var app = ControlPlane.Operator.Program.BuildApp([], config => Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(config,
            new Dictionary<string, string?>
            {
                ["ControlPlane:Kubeconfig"] = env.Plane.KubeconfigPath,
                ["ControlPlane:SystemDatabase"] = env.Postgres.ConnectionString(),
                ["ControlPlane:Regions:eu:Database"] = env.Postgres.ConnectionString(),
                ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{healthPort}",
                ["ControlPlane:Webhook:BindAddress"] = "127.0.0.1",
                ["ControlPlane:Webhook:Port"] = webhookPort.ToString(CultureInfo.InvariantCulture),
                ["ControlPlane:Webhook:Url"] = $"https://127.0.0.1:{webhookPort}",
                ["ControlPlane:Webhook:ExtraSans:0"] = "127.0.0.1",
                ["Logging:LogLevel:Default"] = "Warning",
            }));
        await app.StartAsync();
        try
        {
            using var http = new HttpClient();
            await Net.WaitUntilAsync(async () => (await http.GetAsync($"http://127.0.0.1:{healthPort}/readyz")).IsSuccessStatusCode, TimeSpan.FromMinutes(1), "operator ready");
            await CreateTenantsAsync(env, 10);
            var ws = NewWorkspace(0, db: false);
            await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
            await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ws.Metadata.Name, CancellationToken.None)).Status?.Phase == "Ready",
                TimeSpan.FromMinutes(1), "workspace Ready");
            var runtime = (OperatorRuntime)app.Services.GetService(typeof(OperatorRuntime))!;

            var apiserverBefore = await ScrapeApiServerAsync(env);
            var operatorBefore = await Percentiles.ExportAsync(runtime.Metrics.Registry);
            var with = await LoadAsync(env, ws.Metadata.Name);
            var apiserverAfter = await ScrapeApiServerAsync(env);
            var operatorAfter = await Percentiles.ExportAsync(runtime.Metrics.Registry);

            await env.Api.DeleteAsync(ControlPlane.Operator.Webhooks.WebhookConfigurations.Mutating, null, "controlplane-mutating", CancellationToken.None);
            await env.Api.DeleteAsync(ControlPlane.Operator.Webhooks.WebhookConfigurations.Validating, null, "controlplane-validating", CancellationToken.None);
            await Task.Delay(TimeSpan.FromSeconds(2)); // the API server's webhook informer catches up
            var without = await LoadAsync(env, ws.Metadata.Name);

            JsonArray Triple(Func<double, double> q) => [Math.Round(q(0.5), 2), Math.Round(q(0.95), 2), Math.Round(q(0.99), 2)];
            var decisionBuckets = Percentiles.Buckets(operatorBefore, "controlplane_webhook_request_duration_seconds", "kind=\"Exposure\"");
            var admissionBuckets = Percentiles.Buckets(apiserverBefore, "apiserver_admission_webhook_admission_duration_seconds", "name=\"");
            return new JsonObject
            {
                ["requests"] = with.Count,
                ["withWebhooks"] = Triple(q => Percentiles.Of(with, q)),
                ["withoutWebhooks"] = Triple(q => Percentiles.Of(without, q)),
                ["decision"] = Triple(q => 1000 * Percentiles.FromHistogram(operatorAfter, "controlplane_webhook_request_duration_seconds", "kind=\"Exposure\"", q, decisionBuckets)),
                ["apiServerAdmission"] = Triple(q => 1000 * Percentiles.FromHistogram(apiserverAfter, "apiserver_admission_webhook_admission_duration_seconds", "name=\"", q, admissionBuckets)),
                ["note"] = "dry-run creates of an Exposure (mutating + validating webhooks, nothing persisted), open loop at a fixed rate; decision = time inside the operator's handler; apiServerAdmission = both webhook calls as the API server timed them",
            };
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    static async Task<string> ScrapeApiServerAsync(BenchEnv env) =>
        await env.Api.SendAsync(HttpMethod.Get, "metrics", null, "text/plain", CancellationToken.None, accept: "text/plain");

    /// <summary>Open loop: a request every 1/rps seconds, whatever the previous ones are doing.</summary>
    static async Task<List<double>> LoadAsync(BenchEnv env, string ns)
    {
        var total = WebhookRps * WebhookSeconds;
        var latencies = new ConcurrentBag<double>();
        var path = $"apis/controlplane.io/v1alpha1/namespaces/{ns}/exposures?dryRun=All";
        var start = Stopwatch.StartNew();
        var tasks = new List<Task>(total);
        for (var i = 0; i < total; i++)
        {
            var due = TimeSpan.FromSeconds((double)i / WebhookRps);
            var wait = due - start.Elapsed;
            if (wait > TimeSpan.Zero) await Task.Delay(wait);
            var body = "{\"apiVersion\":\"controlplane.io/v1alpha1\",\"kind\":\"Exposure\",\"metadata\":{\"name\":\"load-" + i.ToString(CultureInfo.InvariantCulture) +
                       "\"},\"spec\":{\"type\":\"REST\",\"version\":\"v1\",\"backend\":{\"service\":\"orders\",\"port\":8080},\"path\":\"/orders\"}}";
            tasks.Add(Task.Run(async () =>
            {
                var t = Stopwatch.StartNew();
                await env.Api.SendAsync(HttpMethod.Post, path, body, "application/json", CancellationToken.None);
                latencies.Add(t.Elapsed.TotalMilliseconds);
            }));
        }

        await Task.WhenAll(tasks);
        return [.. latencies];
    }
}
