using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;
using OperatorRuntime = ControlPlane.Operator.OperatorRuntime;

namespace ControlPlane.Bench;

/// <summary>
/// `make bench`: convergence against the API server's own floor, idle cost, memory, one change among
/// many, restart, webhook latency, exposure publication and backup/restore against pg_dump, on the
/// same local control plane and Postgres as the tests.
/// </summary>
public static partial class Program
{
    static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var v) ? v : fallback;

    // Five runs: on two shared cores single runs of the floor vary by a third; the median holds.
    static readonly int Runs = Env("BENCH_RUNS", 5);
    static readonly int NWithDb = Env("BENCH_N_DB", 100);
    static readonly int N = Env("BENCH_N", 1000);
    static readonly int NLarge = Env("BENCH_N_LARGE", 5000);
    static readonly int IdleSeconds = Env("BENCH_IDLE_SECONDS", 600);
    static readonly int WebhookSeconds = Env("BENCH_WEBHOOK_SECONDS", 60);
    static readonly int WebhookRps = Env("BENCH_WEBHOOK_RPS", 100);
    // Which parts to run (comma-separated: converge, large, webhook, exposure, backup, rollout, audit, expiry, foreign, notify); all by default.
    const string AllScenarios = "converge,large,webhook,exposure,backup,rollout,audit,expiry,foreign,notify";
    static readonly HashSet<string> Scenarios = [.. (Environment.GetEnvironmentVariable("BENCH_SCENARIOS") ?? AllScenarios).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
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
                ["scenarios"] = string.Join(",", Scenarios), ["idleSeconds"] = IdleSeconds, ["webhookSeconds"] = WebhookSeconds, ["webhookRps"] = WebhookRps, ["nExposures"] = NExposures,
                ["backupScale"] = BackupScale,
                ["postgres"] = "PostgreSQL 15, fsync=off, synchronous_commit=off, full_page_writes=off (benchmark only)",
                ["kubernetes"] = "kube-apiserver 1.20.2 + etcd 3.4 on loopback, watch cache on",
                ["operator"] = "converge, one change and webhook in-process; restart, idle and memory as a child process (dotnet ControlPlane.Operator.dll); leader election off, webhooks off except in the webhook scenario",
            },
        };
        var table = new List<(string Scenario, string Metric, string Value)>();
        try
        {
            foreach (var (n, db) in new[] { (NWithDb, true), (N, false) }.Where(_ => Scenarios.Contains("converge")))
            {
                var label = $"N={n}{(db ? " with databases" : " without databases")}";
                var converge = new List<double>();
                var floor = new List<double>();
                var floorCpuRuns = new List<JsonObject>();
                JsonObject? detail = null;
                for (var run = 0; run < Runs; run++)
                {
                    var keep = run == Runs - 1;
                    await using var env = await BenchEnv.StartAsync(Path.Combine(root, $"c{n}-{run}"));
                    var (seconds, d, op) = await ConvergeAsync(env, n, db, keep);
                    Console.WriteLine($"  converge N={n}: API server work: {string.Join("; ", d["apiServerWork"]!.AsArray().Select(r => r!.GetValue<string>()))}");
                    converge.Add(seconds);
                    detail = d;
                    if (keep && op is not null)
                    {
                        await using (op)
                        {
                            detail["inProcessMemory"] = InProcessMemory(op);
                            if (!db) detail["oneChange"] = await OneChangeAsync(env, op);
                            await op.StopAsync();
                        }

                        // Restart, idle and memory on the operator as its own process.
                        await using var child = ChildOperator.Start(repo, env.Settings(Kek));
                        detail["restart"] = await RestartAsync(child, n);
                        if (!db) detail["idle"] = await IdleAsync(child);
                        detail["memoryAfterConverge"] = await MemoryAsync(child);
                    }

                    await using var floorEnv = await BenchEnv.StartAsync(Path.Combine(root, $"f{n}-{run}"));
                    var (floorSeconds, floorCpu) = await FloorAsync(floorEnv, n, db);
                    floor.Add(floorSeconds);
                    floorCpuRuns.Add(CpuJson(floorCpu));
                    Console.WriteLine($"  run {run + 1}/{Runs} {label}: converge {converge[^1]:0.00} s (CPU s {d["cpuSecondsByProcess"]!.ToJsonString()}), floor {floor[^1]:0.00} s (CPU s {floorCpuRuns[^1].ToJsonString()})");
                }

                var c = Summary.Of(converge);
                var f = Summary.Of(floor);
                var ratio = Summary.Of(converge.Zip(floor, (a, b) => a / b).ToList());
                detail!["convergeSeconds"] = ToJson(c);
                detail["floorSeconds"] = ToJson(f);
                detail["floorCpuSecondsByProcess"] = floorCpuRuns[^1];
                detail["ratio"] = ToJson(ratio);
                results[$"converge_{n}{(db ? "_db" : "")}"] = detail;
                table.Add((label, "converge s (median, min–max)", c.ToString()));
                table.Add((label, "floor s", f.ToString()));
                table.Add((label, "converge / floor", ratio.ToString()));
                table.Add((label, "API requests per workspace", detail["requestsPerWorkspace"]!.ToJsonString()));
                table.Add((label, "Postgres transactions per workspace", detail["postgresTransactionsPerWorkspace"]!.ToString()));
                table.Add((label, "reconciles per workspace", detail["reconcilesPerWorkspace"]!.ToString()));
                table.Add((label, "CPU s by process, converge (last run)", CpuText(detail["cpuSecondsByProcess"]!.AsObject())));
                table.Add((label, "CPU s by process, floor (last run)", CpuText(detail["floorCpuSecondsByProcess"]!.AsObject())));
                table.Add((label, "reconcile p50 / p99 ms", $"{detail["reconcileP50Ms"]} / {detail["reconcileP99Ms"]}"));
                table.Add((label, "queue wait p50 / p99 ms", $"{detail["queueWaitP50Ms"]} / {detail["queueWaitP99Ms"]}"));
                AddChildRows(table, label, detail);
                if (detail["oneChange"] is JsonObject one)
                {
                    table.Add((label, "one change: RoleBinding after ms / workspaces reconciled", $"{one["roleBindingAfterMs"]} / {one["workspacesReconciled"]}"));
                }
            }

            // Idle and memory at the large size, one run.
            if (Scenarios.Contains("large"))
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "large"));
                var (seconds, detail, op) = await ConvergeAsync(env, NLarge, false, keep: true);
                await using (op!)
                {
                    detail["convergeSeconds"] = seconds;
                    detail["inProcessMemory"] = InProcessMemory(op!);
                    await op!.StopAsync();
                }

                await using (var child = ChildOperator.Start(repo, env.Settings(Kek)))
                {
                    detail["restart"] = await RestartAsync(child, NLarge);
                    detail["idle"] = await IdleAsync(child);
                    detail["memoryAfterConverge"] = await MemoryAsync(child);
                    if (await HeapDumpAsync(child, root) is { } dump) detail["heapDump"] = dump;
                }

                // BENCH_RESTARTS=k: k restarts in all over the same converged cluster (timings are noisy on shared cores).
                var more = new JsonArray();
                for (var i = 1; i < Env("BENCH_RESTARTS", 1); i++)
                {
                    await using var again = ChildOperator.Start(repo, env.Settings(Kek));
                    more.Add(await RestartAsync(again, NLarge));
                }

                if (more.Count > 0) detail["moreRestarts"] = more;
                if (await VariantsAsync(repo, env, NLarge) is { } variants) detail["variants"] = variants;
                detail["listFloor"] = await ListFloorAsync(env);

                results[$"large_{NLarge}"] = detail;
                var label = $"N={NLarge} without databases";
                table.Add((label, "converge s (one run)", Summary.Fmt(seconds)));
                table.Add((label, "reconciles per workspace", detail["reconcilesPerWorkspace"]!.ToString()));
                table.Add((label, "CPU s by process, converge", CpuText(detail["cpuSecondsByProcess"]!.AsObject())));
                table.Add((label, "reconcile p50 / p99 ms", $"{detail["reconcileP50Ms"]} / {detail["reconcileP99Ms"]}"));
                AddChildRows(table, label, detail);
            }

            if (Scenarios.Contains("webhook"))
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

            if (Scenarios.Contains("exposure"))
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "exposure"));
                var exposure = await ExposurePublicationAsync(env);
                results["exposure"] = exposure;
                var label = $"{NExposures} Exposures in a prod workspace";
                table.Add((label, "last approval to Ingress p50 / p99 / max ms", exposure["approvalToIngressMs"]!.ToJsonString()));
            }

            if (Scenarios.Contains("backup"))
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "backup"));
                var backup = await BackupAsync(env, Path.Combine(root, "backup"));
                results["backup"] = backup;
                var label = $"backup of a pgbench -s {BackupScale} database ({backup["databaseMB"]} MB)";
                table.Add((label, "backup / floor (pg_dump -Fc to S3) s, best of 3 each, ratio", $"{backup["backupSeconds"]} / {backup["floorSeconds"]}, {backup["ratio"]}"));
                table.Add((label, "runs: backup / floor s; ratio of medians", $"{backup["backupRunsSeconds"]!.ToJsonString()} / {backup["floorRunsSeconds"]!.ToJsonString()}; {backup["ratioOfMedians"]}"));
                table.Add((label, "read-back verification s (part of backup)", $"{backup["verifySeconds"]}"));
                table.Add((label, "restore into a new database s", $"{backup["restoreSeconds"]}"));
                table.Add((label, "backup object MB", $"{backup["backupMB"]}"));
            }

            if (Scenarios.Contains("rollout"))
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "rollout"));
                var rollout = await RolloutAsync(env);
                results["rollout"] = rollout;
                var breach = rollout["breachToRollback"]!;
                table.Add(($"Rollout breach, {breach["runs"]} runs", "breach to rollback issued p50 / p99 / max s (operator, status)", breach["secondsToIssueByOperator"]!.ToJsonString()));
                table.Add(($"Rollout breach, {breach["runs"]} runs", "image marked bad to image restored p50 / p99 / max s (bench)", breach["markedBadToImageRestoredSeconds"]!.ToJsonString()));
                var idle = rollout["idleInSoak"]!;
                var label = $"{idle["rollouts"]} Rollouts idle in soak, {idle["idleSeconds"]} s";
                table.Add((label, "API writes / requests per minute", $"{idle["apiWritesPerMinute"]} / {idle["requestsPerMinute"]}"));
                table.Add((label, "rollout reconciles / CPU s per minute", $"{idle["rolloutReconcilesPerMinute"]} / {idle["cpuSecondsPerMinute"]}"));
            }

            if (Scenarios.Contains("foreign")) await ForeignScenarioAsync(root, repo, results, table);

            if (Scenarios.Contains("audit"))
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "audit"));
                var audit = await AuditAsync(env);
                results["audit"] = audit;
                var label = $"audit API over {audit["rows"]} audit rows";
                table.Add((label, "kubectl get auditevents -n (Table, first page of 500) p50/p95/p99 ms", audit["firstPageTableNamespaceMs"]!.ToJsonString()));
                table.Add((label, "kubectl get auditevents -A (Table, first page of 500) p50/p95/p99 ms", audit["firstPageTableClusterWideMs"]!.ToJsonString()));
                table.Add((label, "list as JSON (first page of 500) p50/p95/p99 ms", audit["firstPageJsonNamespaceMs"]!.ToJsonString()));
                table.Add((label, "watch: commit to event p50/p95/max ms", audit["watchDelayMs"]!.ToJsonString()));
                table.Add((label, "full chain verification (global + tenant) s", $"{audit["fullVerificationSeconds"]}"));
            }

            if (Scenarios.Contains("expiry")) await ExpiryScenarioAsync(Path.Combine(root, "expiry"), results, table);
            if (Scenarios.Contains("notify"))
            {
                await using var env = await BenchEnv.StartAsync(Path.Combine(root, "notify"));
                AddNotifyRows(table, (JsonObject)(results["notify"] = await NotifyAsync(env)));
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
        if (!AllScenarios.Split(',').All(Scenarios.Contains))
        {
            // A partial run (BENCH_SCENARIOS) is for investigation: printed, not kept as a result.
            Console.WriteLine();
            Console.WriteLine(Render(table, results));
            Console.WriteLine(json);
            return 0;
        }

        await File.WriteAllTextAsync(Path.Combine(dir, "latest.json"), json);
        await File.WriteAllTextAsync(Path.Combine(dir, DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + ".json"), json);
        var md = Render(table, results);
        await File.WriteAllTextAsync(Path.Combine(dir, "latest.md"), md);
        Console.WriteLine();
        Console.WriteLine(md);
        if (previous is not null) Console.WriteLine($"previous run for comparison: {Path.GetFileName(previous)}");
        return 0;
    }

    static readonly string Kek = Convert.ToBase64String(new byte[32]);

    /// <summary>Rows measured on the operator as its own process: memory, restart, idle.</summary>
    static void AddChildRows(List<(string Scenario, string Metric, string Value)> table, string label, JsonObject detail)
    {
        if (detail["memoryAfterConverge"] is JsonObject m)
        {
            table.Add((label, "operator process: working set / managed heap MB", $"{m["workingSetMB"]} / {m["managedHeapMB"]}"));
            table.Add((label, "operator process: RSS anonymous / file-backed / peak MB", $"{m["rssAnonMB"]} / {m["rssFileMB"]} / {m["peakWorkingSetMB"]}"));
        }

        if (detail["inProcessMemory"] is JsonObject h)
        {
            table.Add((label, "managed heap after a forced full GC MB (in-process run)", $"{h["managedHeapMB"]}"));
        }

        if (detail["restart"] is JsonObject restart)
        {
            table.Add((label, "restart: ready / all reconciled s, writes API+Postgres", $"{restart["readySeconds"]} / {restart["allReconciledSeconds"]}, {restart["apiWrites"]}+{restart["postgresWrites"]}"));
        }

        if (detail["idle"] is JsonObject idle)
        {
            table.Add((label, $"idle {IdleSeconds}s: API writes / Postgres writes", $"{idle["apiWrites"]} / {idle["postgresWrites"]}"));
            table.Add((label, $"idle {IdleSeconds}s: CPU s / requests / reconciles", $"{idle["cpuSeconds"]} / {idle["requests"]} / {idle["reconciles"]}"));
        }
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

        /// <summary>The operator's options for the in-process runs, bound from the same keys the child process gets.</summary>
        public ControlPlaneOptions Options(string kek)
        {
            var options = new ControlPlaneOptions();
            var settings = Settings(kek).ToDictionary(kv => kv.Key, kv => (string?)kv.Value);
            new ConfigurationBuilder().AddInMemoryCollection(settings).Build()
                .GetSection(ControlPlaneOptions.Section).Bind(options);
            return options;
        }

        /// <summary>The operator's settings as configuration keys (the child process gets them as environment variables).</summary>
        public IReadOnlyDictionary<string, string> Settings(string kek) => new Dictionary<string, string>
        {
            ["ControlPlane:Kubeconfig"] = Plane.KubeconfigPath,
            ["ControlPlane:SystemDatabase"] = Postgres.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = Postgres.RegionConnectionString(),
            ["ControlPlane:Workers"] = Workers.ToString(CultureInfo.InvariantCulture),
            ["ControlPlane:ResyncPeriod"] = Resync.ToString("c", CultureInfo.InvariantCulture),
            ["ControlPlane:KeyEncryptionKey"] = kek,
            ["ControlPlane:LeaderElection:Enabled"] = "false",
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

        public static RunningOperator Start(BenchEnv env, Action<ControlPlaneOptions>? configure = null)
        {
            var loggers = LoggerFactory.Create(b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
            var options = env.Options(Kek);
            configure?.Invoke(options);
            var op = new RunningOperator { Runtime = new OperatorRuntime(options, env.Plane.ClientConfig(), loggers) };
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
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.InformerOf<Tenant>()!.List().Count(t => t.Status?.Phase == TenantPhase.Ready) == 10),
            TimeSpan.FromMinutes(1), "tenants Ready");
        await op.WaitIdleAsync();
        var before = op.Runtime.Requests.Snapshot();
        var metricsBefore = await Percentiles.ExportAsync(op.Runtime.Metrics.Registry);
        var pgBefore = await PostgresTransactionsAsync(env);
        var reconciledBefore = op.Reconciled.Count;

        var serverBefore = await ApiServerWork.ScrapeAsync(env.Api);
        var cpuBefore = ProcessCpu.Snapshot();
        var watch = Stopwatch.StartNew();
        var workspaces = ResourceType.For<Workspace>(false);
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency },
            async (i, ct) => await env.Api.CreateAsync(workspaces, null, NewWorkspace(i, db), ct));
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.InformerOf<Workspace>()!.List().Count(w => w.Status?.Phase == WorkspacePhase.Ready) >= n),
            TimeSpan.FromMinutes(30), $"{n} workspaces Ready");
        var seconds = watch.Elapsed.TotalSeconds;
        var cpu = ProcessCpu.Delta(cpuBefore, ProcessCpu.Snapshot());
        var serverWork = ApiServerWork.Summary(serverBefore, await ApiServerWork.ScrapeAsync(env.Api));
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
            ["reconcilesPerWorkspace"] = Math.Round((double)(op.Reconciled.Count - reconciledBefore) / n, 2),
            ["cpuSecondsByProcess"] = CpuJson(cpu),
            ["apiServerWork"] = new JsonArray([.. serverWork.Select(r => (JsonNode)r)]),
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
    static string CpuText(JsonObject cpu) => string.Join(", ", cpu.Select(kv => $"{kv.Key} {kv.Value}"));

    static JsonObject CpuJson(Dictionary<string, double> cpu)
    {
        var json = new JsonObject();
        foreach (var (process, seconds) in cpu.OrderByDescending(kv => kv.Value)) json[process] = seconds;
        return json;
    }

    static async Task<(double Seconds, Dictionary<string, double> Cpu)> FloorAsync(BenchEnv env, int n, bool db)
    {
        await CreateTenantsAsync(env, n);
        using var api = new KubeApi(env.Plane.ClientConfig(), new RequestMetricsHandler(new OperatorMetrics().RestRequests));
        await using var regions = new RegionDatabases(env.Options(""));
        var tenants = new Dictionary<string, Tenant>();
        for (var t = 0; t < 10; t++) tenants[$"bench-t{t}"] = await api.GetAsync<Tenant>(ResourceType.For<Tenant>(false), null, $"bench-t{t}", CancellationToken.None);
        var endpoint = regions.Endpoint("eu");
        var type = ResourceType.For<Workspace>(false);
        var channel = System.Threading.Channels.Channel.CreateUnbounded<Workspace>();

        var serverBefore = await ApiServerWork.ScrapeAsync(env.Api);
        var cpuBefore = ProcessCpu.Snapshot();
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
                var grant = Quota.AllocateQuota(ws, tenant, [ws]);
                await api.CreateAsync(WorkspaceReconciler.Quotas, ws.Metadata.Name, WorkspaceResources.ResourceQuota(ws, grant)!, ct);
                await api.CreateAsync(WorkspaceReconciler.LimitRanges, ws.Metadata.Name, WorkspaceResources.LimitRange(ws), ct);
                await api.CreateAsync(WorkspaceReconciler.NetworkPolicies, ws.Metadata.Name, WorkspaceResources.DefaultDeny(ws), ct);
                await api.CreateAsync(WorkspaceReconciler.ConfigMaps, ws.Metadata.Name, WorkspaceResources.ConfigMap(ws, tenant), ct);
                if (db)
                {
                    var name = RegionDatabases.DatabaseName(ws.Metadata.Name);
                    var password = RegionDatabases.NewPassword();
                    await regions.EnsureAsync("eu", Guid.NewGuid(), false, name, name, password, password, [], ct);
                    await api.CreateAsync(WorkspaceReconciler.Secrets, ws.Metadata.Name, WorkspaceResources.DatabaseSecret(ws, endpoint.Host, endpoint.Port, name, name, password), ct);
                }

                ws.Status = new WorkspaceStatus { Phase = WorkspacePhase.Ready, Namespace = ws.Metadata.Name, ObservedGeneration = ws.Metadata.Generation };
                await api.ReplaceAsync(type, null, ws.Metadata.Name, ws, ct, "status");
            }
        })).ToList();
        await producer;
        await Task.WhenAll(consumers);
        var seconds = watch.Elapsed.TotalSeconds;
        var cpu = ProcessCpu.Delta(cpuBefore, ProcessCpu.Snapshot());
        Console.WriteLine($"  floor N={n}: API server work: {string.Join("; ", ApiServerWork.Summary(serverBefore, await ApiServerWork.ScrapeAsync(env.Api)))}");
        return (seconds, cpu);
    }

    // ---- 3. idle, 4. memory ---------------------------------------------------------------------

    /// <summary>Nothing changes for the idle window; the operator resyncs every workspace each period.</summary>
    static async Task<JsonObject> IdleAsync(ChildOperator op)
    {
        await op.WaitIdleAsync(TimeSpan.FromMinutes(5));
        var before = await op.ScrapeAsync();
        var cpu = op.CpuTime;
        await Task.Delay(TimeSpan.FromSeconds(IdleSeconds));
        var cpuSeconds = (op.CpuTime - cpu).TotalSeconds;
        var after = await op.ScrapeAsync();
        return new JsonObject
        {
            ["seconds"] = IdleSeconds,
            ["resyncPeriodSeconds"] = Resync.TotalSeconds,
            ["apiWrites"] = after.ApiWrites - before.ApiWrites,
            ["postgresWrites"] = after.PostgresWrites - before.PostgresWrites,
            ["requests"] = after.ApiRequests - before.ApiRequests,
            ["reconciles"] = after.Sum("controller_runtime_reconcile_total") - before.Sum("controller_runtime_reconcile_total"),
            ["cpuSeconds"] = Math.Round(cpuSeconds, 2),
            ["cpuMsPerWorkspaceResync"] = Math.Round(1000 * cpuSeconds / Math.Max(1, after.Sum("controller_runtime_reconcile_total", "controller=\"workspace\"") - before.Sum("controller_runtime_reconcile_total", "controller=\"workspace\"")), 3),
        };
    }

    /// <summary>The operator process's memory as the kernel sees it (what a pod's limit counts), and its managed heap.</summary>
    static async Task<JsonObject> MemoryAsync(ChildOperator op)
    {
        var scrape = await op.ScrapeAsync();
        var rss = op.ResidentMemory();
        return new JsonObject
        {
            ["workingSetMB"] = rss["VmRSS"],
            ["peakWorkingSetMB"] = rss["VmHWM"],
            ["rssAnonMB"] = rss["RssAnon"],
            ["rssFileMB"] = rss["RssFile"],
            ["managedHeapMB"] = Math.Round(scrape.Sum("dotnet_total_memory_bytes") / 1048576.0, 1),
            ["cachedObjects"] = scrape.Sum("controlplane_informer_cached_objects"),
            ["note"] = "operator as its own process (its runtimeconfig: workstation GC, non-concurrent, ConserveMemory=5); read after restart and the idle window",
        };
    }

    /// <summary>The cached state's size in the in-process run: managed heap after a forced, compacting full GC.</summary>
    static JsonObject InProcessMemory(RunningOperator op)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var heap = GC.GetTotalMemory(forceFullCollection: true);
        return new JsonObject
        {
            ["managedHeapMB"] = Math.Round(heap / 1048576.0, 1),
            ["cachedObjects"] = op.Runtime.Informers.Sum(i => i.Count),
            ["note"] = "includes the harness's own small heap",
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

    /// <summary>A new operator process over N converged workspaces: time to ready, to every workspace reconciled, and its writes.</summary>
    static async Task<JsonObject> RestartAsync(ChildOperator op, int n)
    {
        var watch = Stopwatch.StartNew();
        await Net.WaitUntilAsync(op.IsReadyAsync, TimeSpan.FromMinutes(5), "operator ready");
        var ready = watch.Elapsed.TotalSeconds;
        var cpuAtReady = op.CpuTime.TotalSeconds;
        var load = File.ReadAllText("/proc/loadavg").Trim();
        var atReady = await op.ScrapeAsync();
        var gcAtReady = new JsonObject();
        foreach (var gen in new[] { "0", "1", "2" }) gcAtReady["gen" + gen] = atReady.Sum("dotnet_collection_count_total", $"generation=\"{gen}\"");
        await Net.WaitUntilAsync(async () =>
        {
            var m = await op.ScrapeAsync();
            return m.Sum("controller_runtime_reconcile_total", "controller=\"workspace\"") >= n && m.Sum("controlplane_controllers_idle") == 1;
        }, TimeSpan.FromMinutes(10), "every workspace reconciled after restart");
        var all = watch.Elapsed.TotalSeconds;
        var scrape = await op.ScrapeAsync();
        // Where readiness went: each resource's informer start to first complete list, slowest first.
        var sync = new JsonObject();
        foreach (var (resource, seconds) in scrape.Text.Split('\n').Where(l => l.StartsWith("controlplane_informer_sync_seconds{", StringComparison.Ordinal))
                     .Select(l => (l[(l.IndexOf('"') + 1)..l.LastIndexOf('"')], double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
                     .OrderByDescending(x => x.Item2).Take(12))
        {
            sync[resource] = Math.Round(seconds, 2);
        }

        var requests = new JsonObject();
        foreach (var verb in new[] { "get", "list", "watch", "create", "update", "patch", "delete" })
        {
            var count = scrape.Sum("rest_client_requests_total", $"verb=\"{verb}\"");
            if (count > 0) requests[verb] = count;
        }

        return new JsonObject
        {
            ["readySeconds"] = Math.Round(ready, 2),
            ["allReconciledSeconds"] = Math.Round(all, 2),
            ["apiWrites"] = scrape.ApiWrites,
            ["postgresWrites"] = scrape.PostgresWrites,
            ["requests"] = requests,
            ["syncSeconds"] = sync,
            ["operatorCpuSecondsAtReady"] = Math.Round(cpuAtReady, 2),
            ["gcCountsAtReady"] = gcAtReady,
            ["operatorCpuSecondsAtAllReconciled"] = Math.Round(op.CpuTime.TotalSeconds, 2),
            ["peakWorkingSetMBAtAllReconciled"] = op.ResidentMemory()["VmHWM"],
            ["loadAverageAtReady"] = load,
            ["note"] = "from process start; ready = /readyz (caches synced)",
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
                ["ControlPlane:Regions:eu:Database"] = env.Postgres.RegionConnectionString(),
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
            await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ws.Metadata.Name, CancellationToken.None)).Status?.Phase == WorkspacePhase.Ready,
                TimeSpan.FromMinutes(1), "workspace Ready");
            var runtime = (OperatorRuntime)app.Services.GetService(typeof(OperatorRuntime))!;

            var apiserverBefore = await ScrapeApiServerAsync(env);
            var operatorBefore = await Percentiles.ExportAsync(runtime.Metrics.Registry);
            var with = await LoadAsync(env, ws.Metadata.Name);
            var apiserverAfter = await ScrapeApiServerAsync(env);
            var operatorAfter = await Percentiles.ExportAsync(runtime.Metrics.Registry);

            await env.Api.DeleteAsync(ControlPlane.Operator.Admission.WebhookConfigurations.Mutating, null, "controlplane-mutating", CancellationToken.None);
            await env.Api.DeleteAsync(ControlPlane.Operator.Admission.WebhookConfigurations.Validating, null, "controlplane-validating", CancellationToken.None);
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
