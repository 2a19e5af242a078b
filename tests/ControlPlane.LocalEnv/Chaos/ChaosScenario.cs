using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using k8s.Models;

namespace ControlPlane.LocalEnv.Chaos;

/// <summary>What one chaos run does: how many workspaces, and how many of each fault.</summary>
public sealed record ChaosSettings
{
    public int Workspaces { get; init; } = 200;
    public int Kills { get; init; } = 20;
    public int ApiServerRestarts { get; init; } = 2;
    public int PostgresRestarts { get; init; } = 1;
    public int EtcdCompactions { get; init; } = 1;

    /// <summary>More SIGKILLs while the workspaces are being deleted (finalizers, database drops).</summary>
    public int DeletionKills { get; init; } = 3;
    public int Seed { get; init; } = Random.Shared.Next();

    /// <summary>A kill "in the middle of work" comes at most this long after the incarnation became leader.</summary>
    public TimeSpan MaxKillDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long convergence (all Ready, operator idle) and deletion may take after the last fault.</summary>
    public TimeSpan ConvergeTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public int Workers { get; init; } = 4;

    /// <summary>`make chaos`: 200 workspaces, 20 kills, 2 API server restarts, 1 Postgres restart, 1 etcd compaction, 3 kills while deleting.</summary>
    public static ChaosSettings Full(int seed) => new() { Seed = seed };

    /// <summary>The run `make test` includes: small enough for a few minutes on two cores.</summary>
    public static ChaosSettings Reduced(int seed) => new()
    {
        Seed = seed, Workspaces = 30, Kills = 5, ApiServerRestarts = 1, PostgresRestarts = 1, EtcdCompactions = 1, DeletionKills = 1,
        MaxKillDelay = TimeSpan.FromSeconds(6), ConvergeTimeout = TimeSpan.FromMinutes(4), Workers = 2,
    };

    /// <summary>CHAOS_SEED replays a run; otherwise a fresh seed (printed, so a failure can be replayed).</summary>
    public static int SeedFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("CHAOS_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : Random.Shared.Next();
}

/// <summary>The outcome: the report (also what chaos/results/latest.json holds) and every invariant that did not hold.</summary>
public sealed record ChaosOutcome(JsonObject Report, IReadOnlyList<string> Violations);

/// <summary>
/// Applies N workspaces with databases at once, then kills the operator (SIGKILL) at seeded random
/// moments and restarts it, restarts the API server and Postgres and compacts etcd in between;
/// afterwards checks that nothing was lost or done twice, deletes everything and checks that
/// nothing is left behind.
/// </summary>
public sealed class ChaosScenario(ChaosEnvironment env, ChaosSettings settings, Action<string> say)
{
    const string Prefix = "chaos";
    static readonly ResourceType Tenants = ResourceType.For<Tenant>(false);
    static readonly ResourceType Workspaces = ResourceType.For<Workspace>(false);
    static readonly string[] SystemNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease", LocalControlPlane.OperatorNamespace];

    readonly Stopwatch clock = new();
    readonly JsonArray timeline = [];
    readonly List<string> violations = [];

    /// <summary>One fault besides the kills, placed on a kill step at a fraction of its wait.</summary>
    sealed record Disruption(string Kind, int Step, double Offset, TimeSpan Down);

    sealed class KillRecord
    {
        public int Index { get; init; }
        public string Mode { get; init; } = "";
        public double DelaySeconds { get; init; }
        public List<string> Faults { get; } = [];
        public double AtSeconds { get; set; }
        public double? LeaderAfterSeconds { get; set; }
        public double? RecoveredAfterSeconds { get; set; }
        public Stopwatch SinceRestart { get; } = new();
    }

    string[] WorkspaceNames => Enumerable.Range(0, settings.Workspaces).Select(i => $"{Prefix}-ws-{i:000}").ToArray();

    int TenantCount => Math.Max(1, (settings.Workspaces + 19) / 20);

    void Say(string what)
    {
        var line = $"[{clock.Elapsed.TotalSeconds,7:0.0}s] {what}";
        lock (timeline) timeline.Add(line);
        say(line);
    }

    public async Task<ChaosOutcome> RunAsync(CancellationToken ct = default)
    {
        clock.Start();
        var rng = new Random(settings.Seed);
        say($"chaos seed {settings.Seed} (CHAOS_SEED={settings.Seed} replays it): {settings.Workspaces} workspaces with databases, {settings.Kills} operator kills, " +
            $"{settings.ApiServerRestarts} API server restarts, {settings.PostgresRestarts} Postgres restarts, {settings.EtcdCompactions} etcd compactions, {settings.DeletionKills} kills while deleting");
        var kills = Enumerable.Range(0, settings.Kills).Select(i =>
        {
            var midWork = rng.NextDouble() < 0.5;
            return new KillRecord
            {
                Index = i + 1,
                Mode = midWork ? "midWork" : "afterRecovery",
                DelaySeconds = Math.Round(rng.NextDouble() * (midWork ? settings.MaxKillDelay.TotalSeconds : 2), 2),
            };
        }).ToList();
        var disruptions = new List<Disruption>();
        void Place(string kind, int count)
        {
            for (var i = 0; i < count; i++)
            {
                disruptions.Add(new Disruption(kind, rng.Next(Math.Max(1, settings.Kills)), rng.NextDouble(), TimeSpan.FromSeconds(0.5 + rng.NextDouble() * 2.5)));
            }
        }

        Place("apiServerRestart", settings.ApiServerRestarts);
        Place("postgresRestart", settings.PostgresRestarts);
        Place("etcdCompaction", settings.EtcdCompactions);
        foreach (var d in disruptions) kills[Math.Min(d.Step, kills.Count - 1)].Faults.Add(d.Kind);
        // Deletion is shorter than convergence: these come sooner after the incarnation leads.
        var deletionDelays = Enumerable.Range(0, settings.DeletionKills).Select(_ => Math.Round(rng.NextDouble() * settings.MaxKillDelay.TotalSeconds / 2, 2)).ToList();

        var kek = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var operatorSettings = new Dictionary<string, string>
        {
            // The operator's own ServiceAccount and the non-superuser region role, as in production.
            ["ControlPlane:Kubeconfig"] = env.OperatorKubeconfig,
            ["ControlPlane:SystemDatabase"] = env.Postgres.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = env.Postgres.RegionConnectionString(),
            ["ControlPlane:KeyEncryptionKey"] = kek,
            ["ControlPlane:Workers"] = settings.Workers.ToString(CultureInfo.InvariantCulture),
            ["ControlPlane:MaxTransientRetryDelay"] = "00:00:02",
            ["ControlPlane:ReconcileTimeout"] = "00:00:30",
            ["ControlPlane:RequestTimeout"] = "00:00:10",
            ["ControlPlane:LeaderElection:Enabled"] = "true",
            ["ControlPlane:LeaderElection:LeaseName"] = "controlplane-chaos",
            ["ControlPlane:LeaderElection:LeaseDuration"] = "00:00:04",
            ["ControlPlane:LeaderElection:RenewDeadline"] = "00:00:03",
            ["ControlPlane:LeaderElection:RetryPeriod"] = "00:00:00.500",
            ["ControlPlane:Webhook:Enabled"] = "false",
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft"] = "Warning",
            ["Logging:LogLevel:System"] = "Warning",
        };
        var operatorLog = Path.Combine(env.Root, "operator.log");
        var report = new JsonObject
        {
            ["startedAt"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["seed"] = settings.Seed,
            ["settings"] = new JsonObject
            {
                ["workspaces"] = settings.Workspaces, ["tenants"] = TenantCount, ["kills"] = settings.Kills, ["apiServerRestarts"] = settings.ApiServerRestarts,
                ["postgresRestarts"] = settings.PostgresRestarts, ["etcdCompactions"] = settings.EtcdCompactions, ["deletionKills"] = settings.DeletionKills,
                ["maxKillDelaySeconds"] = settings.MaxKillDelay.TotalSeconds, ["operatorWorkers"] = settings.Workers,
                ["leaderElection"] = "lease 4 s, renew deadline 3 s, retry 0.5 s",
                ["operator"] = "child process (dotnet ControlPlane.Operator.dll) as its ServiceAccount, region role non-superuser, webhooks off",
                ["machine"] = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
            },
        };

        using var api = env.Plane.NewApi();
        await using var ds = NpgsqlDataSource.Create(env.Postgres.ConnectionString());
        var names = WorkspaceNames;
        await using (var supervisor = new OperatorSupervisor(OperatorProcess.FindDll(env.Repo), operatorSettings, operatorLog))
        {
            try
            {
                await ConvergeUnderFaultsAsync(api, supervisor, kills, disruptions, names, report, ct);
                await CheckConvergedAsync(api, ds, names, report, ct);
                await DeleteAllAsync(api, supervisor, names, deletionDelays, report, ct);
                await CheckNothingLeftAsync(api, ds, names, report, ct);
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or KubeApiException or NpgsqlException or HttpRequestException)
            {
                violations.Add($"{e.GetType().Name}: {e.Message}");
            }
            finally
            {
                report["operator"] = new JsonObject
                {
                    ["incarnations"] = supervisor.Incarnations,
                    ["selfExits"] = new JsonArray([.. supervisor.SelfExits.Select(x => (JsonNode)new JsonObject { ["incarnation"] = x.Incarnation, ["exitCode"] = x.ExitCode })]),
                    ["errorLines"] = supervisor.ErrorLines,
                    ["errors"] = new JsonArray([.. supervisor.Errors.Select(e => (JsonNode)e)]),
                    ["log"] = operatorLog,
                };
            }
        }

        report["kills"] = new JsonArray([.. kills.Select(k => (JsonNode)new JsonObject
        {
            ["index"] = k.Index, ["mode"] = k.Mode, ["delaySeconds"] = k.DelaySeconds, ["atSeconds"] = Math.Round(k.AtSeconds, 2),
            ["otherFaults"] = new JsonArray([.. k.Faults.Select(f => (JsonNode)f)]),
            ["leaderAfterSeconds"] = k.LeaderAfterSeconds is { } l ? Math.Round(l, 2) : null,
            ["recoveredAfterSeconds"] = k.RecoveredAfterSeconds is { } r ? Math.Round(r, 2) : null,
        })]);
        var recovered = kills.Where(k => k.RecoveredAfterSeconds is not null).Select(k => k.RecoveredAfterSeconds!.Value).ToList();
        var leader = kills.Where(k => k.LeaderAfterSeconds is not null).Select(k => k.LeaderAfterSeconds!.Value).ToList();
        // A kill in the same step as a server restart also waits for that server.
        var alone = kills.Where(k => k.RecoveredAfterSeconds is not null && k.Faults.Count == 0).Select(k => k.RecoveredAfterSeconds!.Value).ToList();
        report["recovery"] = new JsonObject
        {
            ["measured"] = recovered.Count,
            ["interruptedByNextKill"] = kills.Count - recovered.Count,
            ["p50Seconds"] = Percentile(recovered, 0.5),
            ["maxSeconds"] = recovered.Count == 0 ? null : Math.Round(recovered.Max(), 2),
            ["killOnlyMeasured"] = alone.Count,
            ["killOnlyP50Seconds"] = Percentile(alone, 0.5),
            ["killOnlyMaxSeconds"] = alone.Count == 0 ? null : Math.Round(alone.Max(), 2),
            ["leaderP50Seconds"] = Percentile(leader, 0.5),
            ["leaderMaxSeconds"] = leader.Count == 0 ? null : Math.Round(leader.Max(), 2),
            ["definition"] = "from the restart after a SIGKILL to the new incarnation leading, caches synced, every workspace reconciled again, " +
                             "its controllers idle and all workspaces Ready; a kill that comes before that is not measured (interrupted). " +
                             "Leader: to the new incarnation holding the lease (the killed one never released it: lease 4 s).",
        };
        report["timeline"] = timeline;
        report["violations"] = new JsonArray([.. violations.Select(v => (JsonNode)v)]);
        report["lostOrDuplicatedWork"] = violations.Count;
        report["finishedAt"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        report["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        say($"recovery after a kill: p50 {report["recovery"]!["p50Seconds"]} s, max {report["recovery"]!["maxSeconds"]} s over {recovered.Count} measured " +
            $"({kills.Count - recovered.Count} interrupted by the next kill; without a server restart in the same step: p50 {report["recovery"]!["killOnlyP50Seconds"]} s, max {report["recovery"]!["killOnlyMaxSeconds"]} s); leader p50 {report["recovery"]!["leaderP50Seconds"]} s, max {report["recovery"]!["leaderMaxSeconds"]} s");
        say(violations.Count == 0 ? "all invariants hold: nothing lost, nothing done twice, nothing left behind" : $"{violations.Count} violations:\n  " + string.Join("\n  ", violations));
        return new ChaosOutcome(report, violations);
    }

    static double? Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return null;
        var sorted = values.Order().ToList();
        return Math.Round(sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))], 2);
    }

    // ---- faults while converging ---------------------------------------------------------------

    async Task ConvergeUnderFaultsAsync(KubeApi api, OperatorSupervisor supervisor, List<KillRecord> kills, List<Disruption> disruptions, string[] names,
        JsonObject report, CancellationToken ct)
    {
        Say("operator started; creating tenants");
        await CreateTenantsAsync(api, ct);
        await WaitAsync(async () => (await api.ListAsync<Tenant>(Tenants, null, null, 500, null, ct)).Items
            .Count(t => t.Metadata.Name.StartsWith(Prefix, StringComparison.Ordinal) && t.Status?.Phase == TenantPhase.Ready) == TenantCount, TimeSpan.FromMinutes(2), "tenants Ready", ct);
        Say($"{TenantCount} tenants Ready; applying {names.Length} workspaces at once");
        var converge = Stopwatch.StartNew();
        var creates = CreateWorkspacesAsync(api, names, ct);
        KillRecord? previous = null;
        for (var step = 0; step < kills.Count; step++)
        {
            var kill = kills[step];
            using var monitor = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var watch = previous is null ? Task.CompletedTask : MonitorAsync(api, supervisor, previous, names.Length, monitor.Token);
            var leading = Stopwatch.StartNew();
            if (kill.Mode == "midWork")
            {
                await WaitAsync(async () => (await supervisor.Current.StateAsync(ct)).Leader, TimeSpan.FromMinutes(2), $"kill {kill.Index}: an incarnation leading", ct);
            }
            else
            {
                await creates;
                var recovered = previous is null
                    ? WaitAsync(() => RecoveredAsync(api, supervisor, names.Length, ct), settings.ConvergeTimeout, $"kill {kill.Index}: recovered", ct)
                    : watch;
                await recovered.WaitAsync(settings.ConvergeTimeout, ct);
            }

            var faults = disruptions.Where(d => Math.Min(d.Step, kills.Count - 1) == step)
                .Select(d => DisruptAsync(d, kill.DelaySeconds, creates, ct)).ToList();
            await Task.Delay(TimeSpan.FromSeconds(kill.DelaySeconds), ct);
            await monitor.CancelAsync();
            await watch.ContinueWith(_ => { }, TaskScheduler.Default);
            kill.AtSeconds = clock.Elapsed.TotalSeconds;
            await supervisor.KillAndRestartAsync();
            kill.SinceRestart.Start();
            Say($"kill {kill.Index}/{kills.Count} ({kill.Mode}, {kill.DelaySeconds:0.00} s): SIGKILL, incarnation {supervisor.Current.Incarnation} started" +
                (previous is null ? "" : $"; previous kill: leader after {Fmt(previous.LeaderAfterSeconds)}, recovered after {Fmt(previous.RecoveredAfterSeconds)}"));
            await Task.WhenAll(faults);
            previous = kill;
        }

        await creates;
        if (previous is not null)
        {
            using var last = CancellationTokenSource.CreateLinkedTokenSource(ct);
            last.CancelAfter(settings.ConvergeTimeout);
            await MonitorAsync(api, supervisor, previous, names.Length, last.Token);
        }

        try
        {
            await WaitAsync(() => RecoveredAsync(api, supervisor, names.Length, ct), settings.ConvergeTimeout, "all workspaces Ready and the operator idle after the faults", ct);
        }
        catch (TimeoutException e)
        {
            violations.Add($"{e.Message}; not Ready: {await NotReadyAsync(api, ct)}");
            throw;
        }

        report["convergeSeconds"] = Math.Round(converge.Elapsed.TotalSeconds, 1);
        Say($"all {names.Length} workspaces Ready, operator idle ({converge.Elapsed.TotalSeconds:0.0} s after the apply); last kill: leader after {Fmt(previous?.LeaderAfterSeconds)}, recovered after {Fmt(previous?.RecoveredAfterSeconds)}");
    }

    static string Fmt(double? seconds) => seconds is { } s ? $"{s:0.0} s" : "-";

    /// <summary>Records when the running incarnation leads and when it has recovered, until cancelled.</summary>
    async Task MonitorAsync(KubeApi api, OperatorSupervisor supervisor, KillRecord kill, int n, CancellationToken ct)
    {
        try
        {
            await WaitAsync(async () => (await supervisor.Current.StateAsync(ct)).Leader, TimeSpan.FromHours(1), "leader", ct, poll: 50);
            kill.LeaderAfterSeconds = kill.SinceRestart.Elapsed.TotalSeconds;
            await WaitAsync(() => RecoveredAsync(api, supervisor, n, ct), TimeSpan.FromHours(1), "recovered", ct, poll: 100);
            kill.RecoveredAfterSeconds = kill.SinceRestart.Elapsed.TotalSeconds;
        }
        catch (OperationCanceledException)
        {
        }
    }

    static async Task<bool> RecoveredAsync(KubeApi api, OperatorSupervisor supervisor, int n, CancellationToken ct)
    {
        var state = await supervisor.Current.StateAsync(ct);
        if (!(state.Leader && state.Ready && state.Idle && state.WorkspaceReconciles >= n)) return false;
        var list = await api.ListAsync<Workspace>(Workspaces, null, null, 1000, null, ct);
        return list.Items.Count(w => w.Metadata.Name.StartsWith(Prefix, StringComparison.Ordinal)) == n && list.Items.All(IsReady)
               && (await supervisor.Current.StateAsync(ct)).Idle;
    }

    static bool IsReady(Workspace w) => w.Status?.Phase == WorkspacePhase.Ready && w.Status.ObservedGeneration == w.Metadata.Generation;

    static async Task<string> NotReadyAsync(KubeApi api, CancellationToken ct)
    {
        try
        {
            var list = await api.ListAsync<Workspace>(Workspaces, null, null, 1000, null, ct);
            return string.Join("; ", list.Items.Where(w => !IsReady(w)).Take(10).Select(w =>
                $"{w.Metadata.Name} {w.Status?.Phase} " + string.Join(",", w.Status?.Conditions?.Where(c => c.Status != "True").Select(c => $"{c.Type}={c.Reason}: {c.Message}") ?? [])));
        }
        catch (Exception e) when (e is HttpRequestException or KubeApiException or TaskCanceledException)
        {
            return $"(could not list: {e.Message})";
        }
    }

    async Task DisruptAsync(Disruption d, double window, Task creates, CancellationToken ct)
    {
        // Creates go first: the faults are for the operator, not for the harness's own requests.
        await creates;
        await Task.Delay(TimeSpan.FromSeconds(d.Offset * window), ct);
        switch (d.Kind)
        {
            case "apiServerRestart":
                Say($"API server stopping ({d.Down.TotalSeconds:0.0} s down)");
                await env.Plane.StopApiServerAsync();
                await Task.Delay(d.Down, ct);
                await env.Plane.StartApiServerAsync();
                Say("API server ready again");
                break;
            case "postgresRestart":
                Say($"Postgres stopping ({d.Down.TotalSeconds:0.0} s down)");
                await env.Postgres.StopServerAsync();
                await Task.Delay(d.Down, ct);
                await env.Postgres.StartServerAsync();
                Say("Postgres up again");
                break;
            case "etcdCompaction":
                var revision = await env.Plane.CompactEtcdAsync();
                Say($"etcd compacted at revision {revision}");
                break;
        }
    }

    static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken ct, int poll = 250)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is HttpRequestException or KubeApiException or IOException or TaskCanceledException or NpgsqlException && !ct.IsCancellationRequested)
            {
                // a server being restarted: ask again
            }

            if (deadline.Elapsed > timeout) throw new TimeoutException($"{what}: not true after {timeout.TotalSeconds:0} s");
            await Task.Delay(poll, ct);
        }
    }

    async Task CreateTenantsAsync(KubeApi api, CancellationToken ct)
    {
        var perTenant = (settings.Workspaces + TenantCount - 1) / TenantCount;
        for (var t = 0; t < TenantCount; t++)
        {
            var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = $"{Prefix}-t{t}" } };
            tenant.Spec.Region = "eu";
            tenant.Spec.DisplayName = $"Chaos tenant {t}";
            // Room for every workspace it gets, so no refusal is mistaken for lost work.
            tenant.Spec.Quota = new TenantQuota
            {
                MaxWorkspaces = perTenant * 2,
                Cpu = new ResourceQuantity((perTenant * 2).ToString(CultureInfo.InvariantCulture)),
                Memory = new ResourceQuantity($"{perTenant * 2}Gi"),
            };
            await api.CreateAsync(Tenants, null, tenant, ct);
        }
    }

    Task CreateWorkspacesAsync(KubeApi api, string[] names, CancellationToken ct) =>
        Parallel.ForEachAsync(names.Select((name, i) => (name, i)), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct }, async (x, token) =>
        {
            var ws = new Workspace { Metadata = new V1ObjectMeta { Name = x.name } };
            ws.Spec.Tenant = $"{Prefix}-t{x.i % TenantCount}";
            ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = $"dev{x.i}@example.com", Role = "Operator" }];
            ws.Spec.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1"), Memory = new ResourceQuantity("1Gi"), Pods = 10 };
            ws.Spec.Database = new WorkspaceDatabase { Enabled = true, DeletionPolicy = "Delete" };
            await api.CreateAsync(Workspaces, null, ws, token);
        });

    // ---- checks ---------------------------------------------------------------------------------

    void Expect(bool holds, string violation)
    {
        if (holds) return;
        violations.Add(violation);
        Say("VIOLATION " + violation);
    }

    static string Diff(IEnumerable<string> expected, IEnumerable<string> actual)
    {
        var e = expected.ToHashSet();
        var a = actual.ToList();
        var missing = e.Except(a).Order().Take(10).ToList();
        var extra = a.Where(x => !e.Contains(x)).Order().Take(10).ToList();
        var twice = a.GroupBy(x => x).Where(g => g.Count() > 1).Select(g => $"{g.Key}×{g.Count()}").Take(10).ToList();
        return $"missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}], twice [{string.Join(", ", twice)}]";
    }

    static async Task<List<T>> QueryAsync<T>(NpgsqlDataSource ds, string sql, Func<NpgsqlDataReader, T> read, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var result = new List<T>();
        while (await reader.ReadAsync(ct)) result.Add(read(reader));
        return result;
    }

    sealed record Allocation(string Workspace, string Name, string State, bool Provisioned);

    static Task<List<Allocation>> AllocationsAsync(NpgsqlDataSource ds, CancellationToken ct) => QueryAsync(ds,
        "SELECT workspace, name, state, provisioned FROM controlplane.workspace_databases",
        r => new Allocation(r.GetString(0), r.GetString(1), r.GetString(2), r.GetBoolean(3)), ct);

    // Every workspace database and role on the server: the allocated names start ws_ (RegionDatabases.DatabaseName).
    static Task<List<string>> ServerDatabasesAsync(NpgsqlDataSource ds, CancellationToken ct) =>
        QueryAsync(ds, @"SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'ws\_%'", r => r.GetString(0), ct);

    static Task<List<string>> ServerRolesAsync(NpgsqlDataSource ds, CancellationToken ct) =>
        QueryAsync(ds, @"SELECT rolname FROM pg_catalog.pg_roles WHERE rolname LIKE 'ws\_%'", r => r.GetString(0), ct);

    static Task<List<string>> LiveWorkspaceRowsAsync(NpgsqlDataSource ds, CancellationToken ct) =>
        QueryAsync(ds, "SELECT name FROM controlplane.workspaces WHERE deleted_at IS NULL", r => r.GetString(0), ct);

    async Task<List<string>> WorkspaceNamespacesAsync(KubeApi api, CancellationToken ct) =>
        (await api.ListAsync<V1Namespace>(ResourceType.Namespaces, null, null, 5000, null, ct)).Items
        .Select(n => n.Metadata.Name).Where(n => !SystemNamespaces.Contains(n)).ToList();

    static async Task<List<V1Secret>> ManagedSecretsAsync(KubeApi api, CancellationToken ct) =>
        [.. (await api.ListAsync<V1Secret>(ResourceType.Secrets, null, WorkspaceResources.ManagedSelector, 5000, null, ct)).Items];

    /// <summary>(workspace, action) → how many audit events; and the chain.</summary>
    async Task<Dictionary<(string Object, string Action), int>> AuditAsync(NpgsqlDataSource ds, JsonObject into, CancellationToken ct)
    {
        var broken = await new SystemDatabase(ds, NullLogger.Instance).VerifyAuditChainAsync(ct);
        Expect(broken is null, $"the audit chain does not verify from event {broken}");
        var counts = (await QueryAsync(ds, "SELECT kind, object_name, action, count(*)::int FROM controlplane.audit_events GROUP BY 1, 2, 3",
            r => (Kind: r.GetString(0), Object: r.GetString(1), Action: r.GetString(2), Count: r.GetInt32(3)), ct)).ToList();
        var byAction = new JsonObject();
        foreach (var g in counts.GroupBy(c => $"{c.Kind}/{c.Action}").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            byAction[g.Key] = new JsonObject { ["events"] = g.Sum(c => c.Count), ["objects"] = g.Count(), ["maxPerObject"] = g.Max(c => c.Count) };
        }

        into["auditChainVerifies"] = broken is null;
        into["auditEvents"] = counts.Sum(c => c.Count);
        into["auditActions"] = byAction;
        return counts.ToDictionary(c => ($"{c.Kind}/{c.Object}", c.Action), c => c.Count);
    }

    void ExpectOncePerWorkspace(Dictionary<(string Object, string Action), int> audit, string[] names, params string[] actions)
    {
        foreach (var action in actions)
        {
            var wrong = names.Select(n => (n, c: audit.GetValueOrDefault(($"Workspace/{n}", action)))).Where(x => x.c != 1).ToList();
            Expect(wrong.Count == 0, $"{action}: recorded {string.Join(", ", wrong.Take(10).Select(x => $"{x.c}× for {x.n}"))} (expected exactly once per workspace; {wrong.Count} workspaces wrong)");
        }
    }

    async Task CheckConvergedAsync(KubeApi api, NpgsqlDataSource ds, string[] names, JsonObject report, CancellationToken ct)
    {
        var checks = new JsonObject();
        var list = (await api.ListAsync<Workspace>(Workspaces, null, null, 1000, null, ct)).Items;
        Expect(list.Count == names.Length && list.All(IsReady), $"workspaces Ready: {list.Count(IsReady)} of {names.Length} ({list.Count} exist)");
        checks["workspacesReady"] = list.Count(IsReady);

        var rows = await LiveWorkspaceRowsAsync(ds, ct);
        Expect(rows.Order().SequenceEqual(names.Order()), $"controlplane.workspaces rows without deleted_at: {rows.Count}, {Diff(names, rows)}");
        checks["workspaceRows"] = rows.Count;

        var allocations = await AllocationsAsync(ds, ct);
        Expect(allocations.Select(a => a.Workspace).Order().SequenceEqual(names.Order()) && allocations.All(a => a.State == "active" && a.Provisioned),
            $"controlplane.workspace_databases: {allocations.Count} rows, {allocations.Count(a => a.State == "active" && a.Provisioned)} active and provisioned, {Diff(names, allocations.Select(a => a.Workspace))}");
        checks["databaseAllocations"] = allocations.Count;
        var allocated = allocations.Where(a => a.State == "active").Select(a => a.Name).ToList();
        var statusNames = list.Select(w => w.Status?.Database?.Name ?? "").ToList();
        Expect(statusNames.Order().SequenceEqual(allocated.Order()), $"status.database.name vs the allocations: {Diff(allocated, statusNames)}");

        var databases = await ServerDatabasesAsync(ds, ct);
        var roles = await ServerRolesAsync(ds, ct);
        Expect(databases.Order().SequenceEqual(allocated.Order()), $"databases on the server: {databases.Count}, {Diff(allocated, databases)}");
        Expect(roles.Order().SequenceEqual(allocated.Order()), $"roles on the server: {roles.Count}, {Diff(allocated, roles)}");
        checks["serverDatabases"] = databases.Count;
        checks["serverRoles"] = roles.Count;

        var namespaces = await WorkspaceNamespacesAsync(api, ct);
        Expect(namespaces.Order().SequenceEqual(names.Order()), $"namespaces: {namespaces.Count}, {Diff(names, namespaces)}");
        checks["namespaces"] = namespaces.Count;

        var secrets = await ManagedSecretsAsync(api, ct);
        var secretKeys = secrets.Select(s => $"{s.Metadata.NamespaceProperty}/{s.Metadata.Name}").ToList();
        var expectedSecrets = names.Select(n => $"{n}/{n}-db").ToList();
        Expect(secretKeys.Order().SequenceEqual(expectedSecrets.Order()), $"database Secrets: {secrets.Count}, {Diff(expectedSecrets, secretKeys)}");
        checks["secrets"] = secrets.Count;

        // Every Secret's credentials log in to its own database: no password reset was lost between Postgres and the Secret.
        var loginFailures = new List<string>();
        foreach (var s in secrets)
        {
            if (!await CanLoginAsync(s, ct)) loginFailures.Add(s.Metadata.NamespaceProperty);
        }

        Expect(loginFailures.Count == 0, $"Secrets whose credentials do not log in: {loginFailures.Count} [{string.Join(", ", loginFailures.Take(10))}]");
        checks["secretsThatLogIn"] = secrets.Count - loginFailures.Count;

        var audit = await AuditAsync(ds, checks, ct);
        ExpectOncePerWorkspace(audit, names, "workspace.created", "workspace.databaseAllocated", "workspace.databaseProvisioned");
        var twiceTenant = Enumerable.Range(0, TenantCount).Select(t => $"Tenant/{Prefix}-t{t}").Where(t => audit.GetValueOrDefault((t, "tenant.created")) != 1).ToList();
        Expect(twiceTenant.Count == 0, $"tenant.created not exactly once for [{string.Join(", ", twiceTenant)}]");
        report["afterConvergence"] = checks;
        Say($"converged: {checks.ToJsonString()}");
    }

    static async Task<bool> CanLoginAsync(V1Secret secret, CancellationToken ct)
    {
        string Value(string key) => Encoding.UTF8.GetString(secret.Data[key]);
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = Value("host"), Port = int.Parse(Value("port"), CultureInfo.InvariantCulture), Username = Value("username"), Password = Value("password"),
            Database = Value("database"), Pooling = false, Timeout = 10,
        };
        try
        {
            await using var conn = new NpgsqlConnection(b.ConnectionString);
            await conn.OpenAsync(ct);
            return true;
        }
        catch (PostgresException)
        {
            return false;
        }
    }

    async Task DeleteAllAsync(KubeApi api, OperatorSupervisor supervisor, string[] names, List<double> killDelays, JsonObject report, CancellationToken ct)
    {
        Say($"deleting all {names.Length} workspaces (deletionPolicy Delete)");
        var watch = Stopwatch.StartNew();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct }, async (name, token) =>
        {
            try
            {
                await api.DeleteAsync(Workspaces, null, name, token);
            }
            catch (KubeApiException e) when (e.IsNotFound)
            {
            }
        });
        var deletionKills = new JsonArray();
        report["deletionKills"] = deletionKills;
        try
        {
            foreach (var (delay, i) in killDelays.Select((d, i) => (d, i + 1)))
            {
                await WaitAsync(async () => (await supervisor.Current.StateAsync(ct)).Leader, TimeSpan.FromMinutes(2), $"deletion kill {i}: an incarnation leading", ct);
                await Task.Delay(TimeSpan.FromSeconds(delay), ct);
                var left = (await api.ListAsync<Workspace>(Workspaces, null, null, 1000, null, ct)).Items.Count;
                if (left == 0) break;
                await supervisor.KillAndRestartAsync();
                deletionKills.Add(new JsonObject { ["index"] = i, ["delaySeconds"] = delay, ["atSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 2), ["workspacesLeft"] = left });
                Say($"deletion kill {i}/{killDelays.Count} ({delay:0.00} s after leading, {left} workspaces left): SIGKILL, incarnation {supervisor.Current.Incarnation} started");
            }

            await WaitAsync(async () => (await api.ListAsync<Workspace>(Workspaces, null, null, 1000, null, ct)).Items.Count == 0, settings.ConvergeTimeout, "every workspace deleted", ct);
            // Namespaces are removed by kube-controller-manager once their content is gone.
            await WaitAsync(async () => (await WorkspaceNamespacesAsync(api, ct)).Count == 0, settings.ConvergeTimeout, "every workspace namespace gone", ct);
            await WaitAsync(async () => (await supervisor.Current.StateAsync(ct)).Idle, TimeSpan.FromMinutes(2), "operator idle after the deletion", ct);
        }
        catch (TimeoutException e)
        {
            violations.Add($"{e.Message}; left: {await NotReadyAsync(api, ct)}");
        }

        report["deleteSeconds"] = Math.Round(watch.Elapsed.TotalSeconds, 1);
        Say($"deleted in {watch.Elapsed.TotalSeconds:0.0} s");
    }

    async Task CheckNothingLeftAsync(KubeApi api, NpgsqlDataSource ds, string[] names, JsonObject report, CancellationToken ct)
    {
        var checks = new JsonObject();
        var workspaces = (await api.ListAsync<Workspace>(Workspaces, null, null, 1000, null, ct)).Items.Select(w => w.Metadata.Name).ToList();
        Expect(workspaces.Count == 0, $"workspaces left: {workspaces.Count} [{string.Join(", ", workspaces.Take(10))}]");
        var namespaces = await WorkspaceNamespacesAsync(api, ct);
        Expect(namespaces.Count == 0, $"namespaces left: {namespaces.Count} [{string.Join(", ", namespaces.Take(10))}]");
        var secrets = await ManagedSecretsAsync(api, ct);
        Expect(secrets.Count == 0, $"Secrets left: {secrets.Count} [{string.Join(", ", secrets.Take(10).Select(s => $"{s.Metadata.NamespaceProperty}/{s.Metadata.Name}"))}]");
        var databases = await ServerDatabasesAsync(ds, ct);
        Expect(databases.Count == 0, $"databases left on the server: {databases.Count} [{string.Join(", ", databases.Take(10))}]");
        var roles = await ServerRolesAsync(ds, ct);
        Expect(roles.Count == 0, $"roles left on the server: {roles.Count} [{string.Join(", ", roles.Take(10))}]");
        var rows = await LiveWorkspaceRowsAsync(ds, ct);
        Expect(rows.Count == 0, $"controlplane.workspaces rows without deleted_at: {rows.Count} [{string.Join(", ", rows.Take(10))}]");
        var allocations = await AllocationsAsync(ds, ct);
        var live = allocations.Where(a => a.State != "dropped").ToList();
        Expect(live.Count == 0, $"allocations not dropped: {live.Count} [{string.Join(", ", live.Take(10).Select(a => $"{a.Workspace}:{a.State}"))}]");
        Expect(allocations.Select(a => a.Workspace).Order().SequenceEqual(names.Order()), $"allocations over the whole run: {allocations.Count}, {Diff(names, allocations.Select(a => a.Workspace))}");
        checks["workspaces"] = workspaces.Count;
        checks["namespaces"] = namespaces.Count;
        checks["secrets"] = secrets.Count;
        checks["serverDatabases"] = databases.Count;
        checks["serverRoles"] = roles.Count;
        checks["workspaceRowsWithoutDeletedAt"] = rows.Count;
        checks["allocationsNotDropped"] = live.Count;
        var audit = await AuditAsync(ds, checks, ct);
        ExpectOncePerWorkspace(audit, names, "workspace.created", "workspace.databaseAllocated", "workspace.databaseProvisioned", "workspace.deleted", "workspace.databaseDropped");
        report["afterDeletion"] = checks;
        Say($"after deletion: {checks.ToJsonString()}");
    }
}
