using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Rollouts on real parts: kube-apiserver, kube-controller-manager's Deployment and ReplicaSet
/// controllers, the node stand-in reporting pods (crash-looping for a bad image), Postgres for the
/// audit trail, and a real Prometheus (Debian's package) scraping a traffic target whose request
/// counters the test sets, so the successRate gate evaluates real PromQL. The operator runs as its
/// ServiceAccount under config/rbac/operator.yaml.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RolloutTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    const string Old = "registry.example/orders:1.0.0";

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    TestOperator Start(LocalPrometheus? prometheus = null) => TestOperator.Start(cluster, Unique("lease"), output, o =>
    {
        o.Prometheus = new PrometheusOptions { Url = prometheus?.Url, Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromSeconds(5) };
    });

    /// <summary>The success ratio over the last 10 s per ring, as a team would write it ({{namespaces}}: the ring's namespaces).</summary>
    const string SuccessRateQuery =
        "sum(rate(http_requests_total{namespace=~\"{{namespaces}}\",code!~\"5..\"}[10s])) / sum(rate(http_requests_total{namespace=~\"{{namespaces}}\"}[10s]))";

    /// <summary>A real Prometheus scraping a traffic target (which serves nothing yet).</summary>
    static async Task<(LocalPrometheus Prometheus, TrafficTarget Traffic)> PrometheusAsync()
    {
        var traffic = TrafficTarget.Start();
        return (await LocalPrometheus.StartAsync(Path.GetTempPath(), [traffic.Address]), traffic);
    }

    /// <summary>The namespaces serve 1000 requests/s with 0.1% errors; returns once Prometheus has a success rate for each.</summary>
    static async Task ServeTrafficAsync(LocalPrometheus prometheus, TrafficTarget traffic, IReadOnlyList<string> namespaces)
    {
        foreach (var ns in namespaces) traffic.SetTraffic(ns, 1000, 0.001);
        foreach (var ns in namespaces)
        {
            await Net.WaitUntilAsync(async () => await prometheus.QueryAsync(RolloutResources.Query(SuccessRateQuery, [ns])!) is > 0.99,
                TimeSpan.FromSeconds(30), $"prometheus has a success rate for {ns}");
        }
    }

    /// <summary>A tenant with Ready workspaces (labelled, with their environment), each running Deployment "orders" on the old image.</summary>
    async Task<(string Tenant, List<string> Workspaces)> TenantAsync(params (string Ring, string Environment)[] workspaces)
    {
        var tenant = Unique("ro");
        await cluster.CreateTenantAsync(tenant);
        var names = new List<string>();
        foreach (var (ring, environment) in workspaces)
        {
            var ws = new Workspace { Metadata = new V1ObjectMeta { Name = Unique(tenant), Labels = new Dictionary<string, string> { ["controlplane.io/ring"] = ring } } };
            ws.Spec.Tenant = tenant;
            ws.Spec.Environment = environment;
            ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
            ws.Spec.Members =
            [
                new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
                new WorkspaceMember { Kind = "User", Name = "erin@example.com", Role = "Approver" },
            ];
            await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
            names.Add(ws.Metadata.Name);
        }

        foreach (var name in names)
        {
            await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
            await Deployments.CreateAsync(cluster.Api, name, "orders", Old);
        }

        foreach (var name in names) await Deployments.WaitAsync(cluster.Api, name, "orders", Deployments.IsRolledOut, "rolled out on the old image");
        return (tenant, names);
    }

    static Rollout NewRollout(string image, params Ring[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("orders") },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = image }] },
            Rings = [.. rings],
            Gates = new RolloutGates { ProgressDeadline = "60s", MaxIncidents = 0 },
        },
    };

    /// <summary>
    /// Created by the admin. This API server has no webhook: the stamps it would write (creator and
    /// groups) are written here, since the operator acts only with its requester's rights.
    /// </summary>
    Task<Rollout> CreateAsync(string ns, Rollout r) => cluster.Api.CreateAsync(Rollouts, ns, StampedBy(r, cluster.Plane.Admin), CancellationToken.None);

    static T StampedBy<T>(T o, TestUser user) where T : k8s.IKubernetesObject<V1ObjectMeta>
    {
        o.Metadata.Annotations ??= new Dictionary<string, string>();
        o.Metadata.Annotations[ApiGroup.CreatedByAnnotation] = user.Name;
        o.Metadata.Annotations[ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(null, user.Name, user.Groups);
        return o;
    }

    Task<Rollout> PatchSpecAsync(string ns, string name, string specJson) =>
        cluster.Api.PatchAsync<Rollout>(Rollouts, ns, name, "{\"spec\":" + specJson + "}", PatchTypes.Merge, CancellationToken.None);

    async Task<Rollout> WaitAsync(string ns, string name, Func<Rollout, bool> condition, string what, TimeSpan? timeout = null)
    {
        Rollout? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<Rollout>(Rollouts, ns, name, CancellationToken.None);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(60), $"rollout {ns}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (phase {last?.Status?.Phase}, ring {last?.Status?.CurrentRing}, rings {string.Join(", ", last?.Status?.Rings?.Select(r => $"{r.Name}={r.Phase}") ?? [])}, conditions: " +
                                       $"{string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? [])})");
        }

        return last!;
    }

    static string? RingPhase(Rollout r, string ring) => r.Status?.Rings?.FirstOrDefault(x => x.Name == ring)?.Phase?.ToString();

    static V1Condition? Condition(Rollout r, string type) => r.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    async Task<string> ImageAsync(string ns) => Deployments.ImageOf(await Deployments.GetAsync(cluster.Api, ns, "orders"));

    async Task<bool> AuditedAsync(TestOperator op, Rollout r, string action, string reason, long? generation = null) =>
        await op.Runtime.Database.AuditExistsAsync("Rollout", $"{r.Metadata.NamespaceProperty}/{r.Metadata.Name}", action, reason, generation ?? r.Metadata.Generation, CancellationToken.None);

    [Fact]
    public async Task TwoRings_RollOutRingByRing_AndAnIdleSoak_MakesZeroWrites()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync(("lab", "dev"), ("canary", "dev"), ("canary", "dev"));
        const string New = "registry.example/orders:2.0.0";
        var rollout = await CreateAsync(ws[0], NewRollout(New,
            new Ring { Name = "ring-0-lab", Workspaces = [ws[0]], Soak = "3s" },
            new Ring { Name = "ring-1-canary", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "canary" } }, Soak = "30s" }));
        var name = rollout.Metadata.Name;

        // Ring 0 rolls out and soaks while ring 1 is untouched.
        var soaking = await WaitAsync(ws[0], name, r => RingPhase(r, "ring-0-lab") == "Soaking", "ring 0 soaking");
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "ring soaking (Paused=False is its normal state)");
        Assert.Equal(New, await ImageAsync(ws[0]));
        Assert.Equal(Old, await ImageAsync(ws[1]));
        Assert.Equal(Old, await ImageAsync(ws[2]));
        Assert.Equal(ws[0], Assert.Single(soaking.Status!.Previous!).Namespace);
        Assert.Equal(Old, soaking.Status.Previous![0].Containers.Single().Image);

        // Then ring 1 (both canary workspaces, by selector), soaking 30 s: idle in soak, a resync writes nothing.
        var ring1 = await WaitAsync(ws[0], name, r => RingPhase(r, "ring-1-canary") == "Soaking", "ring 1 soaking");
        Assert.Equal("Succeeded", RingPhase(ring1, "ring-0-lab"));
        Assert.Equal(new[] { ws[1], ws[2] }.Order(StringComparer.Ordinal), ring1.Status!.Rings![1].Workspaces!.Order(StringComparer.Ordinal));
        foreach (var n in ws) Assert.Equal(New, await ImageAsync(n));
        Assert.Equal(3, ring1.Status.Previous!.Count);
        Assert.Equal(RolloutPhase.Progressing, ring1.Status.Phase);
        Assert.Equal("ring-1-canary", ring1.Status.CurrentRing);
        Assert.Equal("1/2", ring1.Status.Progress); // kubectl's RINGS column, in the same write as the rings
        Assert.True(await AuditedAsync(op, ring1, "rollout.ring-promoted", "ring-0-lab"));

        var controller = op.Runtime.Controllers.Single(c => c.Name == "rollout");
        var apiWrites = op.Requests.Writes();
        var dbWrites = op.Runtime.Database.Writes;
        var reconciled = 0;
        void Count(string c, string key, string result)
        {
            if (c == "rollout" && key == $"{ws[0]}/{name}") Interlocked.Increment(ref reconciled);
        }

        op.Runtime.Reconciled += Count;
        controller.ResyncNow();
        await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconciled) >= 1), TimeSpan.FromSeconds(60), "the soaking rollout reconciled again");
        controller.ResyncNow();
        await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconciled) >= 2), TimeSpan.FromSeconds(60), "the soaking rollout reconciled a second time");
        op.Runtime.Reconciled -= Count;
        Assert.Equal(apiWrites, op.Requests.Writes());
        Assert.Equal(dbWrites, op.Runtime.Database.Writes);
        output.WriteLine($"idle in soak: {reconciled} reconciles, 0 API writes, 0 Postgres writes");

        // Shorten nothing: the soak ends on its own (counted from status.rings[].rolledOutAt).
        var done = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded", TimeSpan.FromSeconds(90));
        Assert.Equal("True", Condition(done, "Ready")!.Status);
        Assert.Equal("False", Condition(done, "Progressing")!.Status);
        Assert.All(done.Status!.Rings!, r => Assert.Equal("Succeeded", r.Phase?.ToString()));
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "succeeded");
        Assert.Equal("2/2", done.Status.Progress);
        Assert.True(await AuditedAsync(op, done, "rollout.ring-promoted", "ring-1-canary"));
        // Completion is audited (a rollout.completed notification's source row).
        Assert.True(await AuditedAsync(op, done, "rollout.completed", "succeeded"));
        foreach (var n in ws) await Deployments.WaitAsync(cluster.Api, n, "orders", Deployments.IsRolledOut, "rolled out on the new image");
    }

    [Fact]
    public async Task ThreeRings_LabCanaryProd_WithTheSuccessRateGate_Succeed()
    {
        var (prometheus, traffic) = await PrometheusAsync();
        await using var _p = prometheus;
        await using var _t = traffic;
        await using var op = Start(prometheus);
        var (_, ws) = await TenantAsync(("lab", "dev"), ("canary", "dev"), ("canary", "dev"), ("prod", "dev"));
        await ServeTrafficAsync(prometheus, traffic, ws);
        const string New = "registry.example/orders:9.0.0";
        var spec = NewRollout(New,
            new Ring { Name = "ring-0-lab", Workspaces = [ws[0]], Soak = "2s" },
            new Ring { Name = "ring-1-canary", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "canary" } }, Soak = "2s" },
            new Ring { Name = "ring-2-prod", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "prod" } }, Soak = "2s" });
        spec.Spec.Gates!.SuccessRate = new SuccessRateGate { Query = SuccessRateQuery, Threshold = 0.98 };
        var rollout = await CreateAsync(ws[0], spec);
        var name = rollout.Metadata.Name;

        // Ring by ring: while ring 1 is in flight, prod still runs the old version.
        await WaitAsync(ws[0], name, r => RingPhase(r, "ring-1-canary") is "Progressing" or "Soaking", "ring 1 in flight");
        Assert.Equal(Old, await ImageAsync(ws[3]));

        var done = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded", TimeSpan.FromSeconds(120));
        Assert.Equal("True", Condition(done, "Ready")!.Status);
        Assert.Null(done.Status!.Rollback);
        Assert.Equal(new[] { "ring-0-lab", "ring-1-canary", "ring-2-prod" }, done.Status.Rings!.Select(r => r.Name));
        foreach (var ring in done.Status.Rings!)
        {
            output.WriteLine($"{ring.Name}: {string.Join(",", ring.Workspaces ?? [])} started {ring.StartedAt:O} rolled out {ring.RolledOutAt:O} completed {ring.CompletedAt:O} success rate {ring.SuccessRate}");
            Assert.Equal("Succeeded", ring.Phase?.ToString());
            Assert.InRange(ring.SuccessRate!.Value, 0.998, 1.0);
            Assert.True((ring.CompletedAt!.Value - ring.RolledOutAt!.Value).TotalSeconds >= 2, $"{ring.Name} soaked 2 s");
            Assert.True(await AuditedAsync(op, done, "rollout.ring-promoted", ring.Name));
        }

        // Rings in order: each started after the one before completed.
        var rings = done.Status.Rings!;
        for (var i = 1; i < rings.Count; i++) Assert.True(rings[i].StartedAt >= rings[i - 1].CompletedAt, $"{rings[i].Name} started after {rings[i - 1].Name} completed");
        Assert.Equal(new[] { ws[1], ws[2] }.Order(StringComparer.Ordinal), rings[1].Workspaces!.Order(StringComparer.Ordinal));
        Assert.Equal([ws[3]], rings[2].Workspaces);
        Assert.Equal(4, done.Status.Previous!.Count);
        Assert.All(done.Status.Previous!, p => Assert.Equal(Old, p.Containers.Single().Image));
        foreach (var n in ws) await Deployments.WaitAsync(cluster.Api, n, "orders", d => Deployments.IsRolledOut(d) && Deployments.ImageOf(d) == New, "rolled out on the new image");
        // Each ring's gate asked Prometheus about that ring's namespaces only.
        Assert.Contains(prometheus.Queries(), q => q.Contains($"namespace=~\"{ws[3]}\"", StringComparison.Ordinal));
        Assert.Contains(prometheus.Queries(), q => q.Contains($"namespace=~\"{string.Join('|', rings[1].Workspaces!)}\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnOperatorRestartedMidSoak_ResumesTheSoakFromStatus_NotFromTheStart()
    {
        Rollout soaking;
        string name;
        List<string> ws;
        await using (var first = Start())
        {
            (_, ws) = await TenantAsync(("lab", "dev"), ("canary", "dev"));
            var rollout = await CreateAsync(ws[0], NewRollout("registry.example/orders:8.0.0",
                new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "12s" }, new Ring { Name = "ring-1", Workspaces = [ws[1]] }));
            name = rollout.Metadata.Name;
            soaking = await WaitAsync(ws[0], name, r => RingPhase(r, "ring-0") == "Soaking", "ring 0 soaking");
            await first.StopAsync();
        }

        // The soak was counted from status.rings[0].rolledOutAt; a new operator (another leader) takes over.
        // Down for 8 of the 12 s: a soak restarted from memory would end 20 s after the rollout, not 12.
        var rolledOutAt = soaking.Status!.Rings![0].RolledOutAt!.Value;
        await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow >= rolledOutAt.AddSeconds(8)), TimeSpan.FromSeconds(30), "8 s of the soak passed with no operator");
        await using var second = Start();
        var done = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded under the second operator");
        var ring0 = done.Status!.Rings![0];
        Assert.Equal(soaking.Status!.Rings![0].RolledOutAt, ring0.RolledOutAt);
        var soaked = ring0.CompletedAt!.Value - ring0.RolledOutAt!.Value;
        output.WriteLine($"soak of 12 s across a restart: completed {soaked.TotalSeconds:0.0} s after rollout");
        Assert.InRange(soaked.TotalSeconds, 12, 17);
    }

    [Fact]
    public async Task ABadImage_CaughtInRing1_RollsBackRings0And1_Within30s_AndRing2IsUntouched()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync(("lab", "dev"), ("canary", "dev"), ("prod", "dev"));
        var bad = "registry.example/orders:2.0.1-" + Guid.NewGuid().ToString("N")[..6];
        var rollout = await CreateAsync(ws[0], NewRollout(bad,
            new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "1s" },
            new Ring { Name = "ring-1", Workspaces = [ws[1]], Soak = "2m" },
            new Ring { Name = "ring-2", Workspaces = [ws[2]], Soak = "0s" }));
        var name = rollout.Metadata.Name;
        await WaitAsync(ws[0], name, r => RingPhase(r, "ring-1") is "Progressing" or "Soaking", "ring 1 started");

        // The version turns out bad in ring 1: its containers crash-loop (restarts climb).
        cluster.Node.MarkBad(bad);
        var rolledBack = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.RolledBack, "rolled back");
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "rolled back after a crash loop");
        var record = rolledBack.Status!.Rollback!;
        output.WriteLine($"breach observable {record.BreachObservableAt:O}, rollback issued {record.IssuedAt:O}: {record.SecondsToIssue} s; incidents {record.Value}");
        Assert.Equal("incidents", record.Gate);
        Assert.Equal("ring-1", record.Ring);
        Assert.NotNull(record.SecondsToIssue);
        Assert.InRange(record.SecondsToIssue!.Value, 0, 30);
        Assert.Equal("RolledBack", RingPhase(rolledBack, "ring-1"));
        Assert.Equal("Pending", RingPhase(rolledBack, "ring-2"));
        Assert.Equal(new[] { ws[0], ws[1] }.Order(StringComparer.Ordinal), record.Namespaces!.Order(StringComparer.Ordinal));
        Assert.Equal(Old, await ImageAsync(ws[0]));
        Assert.Equal(Old, await ImageAsync(ws[1]));
        var untouched = await Deployments.GetAsync(cluster.Api, ws[2], "orders");
        Assert.Equal(Old, Deployments.ImageOf(untouched));
        Assert.Equal(1, untouched.Metadata.Generation);
        Assert.True(await AuditedAsync(op, rolledBack, "rollout.rolled-back", "incidents"));
        foreach (var n in ws.Take(2)) await Deployments.WaitAsync(cluster.Api, n, "orders", Deployments.IsRolledOut, "rolled back and healthy again");
    }

    [Fact]
    public async Task Paused_TakesNoStep_UntilResumed_AndAbort_RollsBack()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync(("lab", "dev"), ("canary", "dev"));
        const string New = "registry.example/orders:3.0.0";
        var spec = NewRollout(New, new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "0s" }, new Ring { Name = "ring-1", Workspaces = [ws[1]], Soak = "5m" });
        spec.Spec.Paused = true;
        var rollout = await CreateAsync(ws[0], spec);
        var name = rollout.Metadata.Name;
        var paused = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Paused, "Paused");
        Assert.Equal("True", Condition(paused, "Paused")!.Status);
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "spec.paused before a ring");
        Assert.Equal(Old, await ImageAsync(ws[0]));
        Assert.True(await AuditedAsync(op, paused, "rollout.paused", "paused"));

        var resumed = await PatchSpecAsync(ws[0], name, "{\"paused\":false}");
        var soaking = await WaitAsync(ws[0], name, r => RingPhase(r, "ring-1") == "Soaking", "ring 1 soaking after resume");
        Assert.Equal("False", Condition(soaking, "Paused")!.Status);
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "ring soaking (Paused=False is its normal state)");
        Assert.True(await AuditedAsync(op, soaking, "rollout.resumed", "resumed", resumed.Metadata.Generation));
        Assert.Equal(New, await ImageAsync(ws[1]));

        await PatchSpecAsync(ws[0], name, "{\"abort\":true}");
        var aborted = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.RolledBack, "aborted and rolled back");
        Assert.Equal("abort", aborted.Status!.Rollback!.Gate);
        Assert.Equal("Aborted", Condition(aborted, "Progressing")!.Reason);
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "aborted (spec.abort)");
        Assert.Equal(Old, await ImageAsync(ws[0]));
        Assert.Equal(Old, await ImageAsync(ws[1]));
        Assert.True(await AuditedAsync(op, aborted, "rollout.aborted", "abort"));
    }

    [Fact]
    public async Task AProdRing_RequiringApproval_WaitsForTwoApprovers()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync(("lab", "dev"), ("prod", "prod"));
        const string New = "registry.example/orders:4.0.0";
        var rollout = await CreateAsync(ws[0], NewRollout(New,
            new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "0s" },
            new Ring { Name = "ring-2-prod", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "prod" } }, RequiresApproval = true }));
        var name = rollout.Metadata.Name;
        var waiting = await WaitAsync(ws[0], name, r => RingPhase(r, "ring-2-prod") == "AwaitingApproval", "prod ring awaiting approval");
        Assert.Equal(RolloutPhase.Paused, waiting.Status!.Phase);
        Assert.Equal("AwaitingApproval", Condition(waiting, "Paused")!.Reason);
        await LiveHealth.AssertAsync(cluster.Api, Rollouts, ws[0], name, "ring awaiting approval");
        Assert.Equal(New, await ImageAsync(ws[0]));
        Assert.Equal(Old, await ImageAsync(ws[1]));

        // The ring's wait is audited once (approval.requested, with the ring and who may approve); a resync asks nothing again.
        var key = $"{ws[0]}/{name}";
        var ask = await ApprovalAskRows.OneAsync(cluster.Postgres.ConnectionString(), "Rollout", key, "rollout.approval-requested");
        Assert.Equal(("ring-2-prod", "ring-2-prod", "start"), ((string?)ask["reason"], (string?)ask["ring"], (string?)ask["step"]));
        Assert.Equal(2, (int)ask["approvers"]!["required"]!);
        Assert.Equal(2, (int)ask["approvers"]!["stillNeeded"]!);
        await op.ResyncWritesNothingAsync($"rollout {key}");
        Assert.Single(await ApprovalAskRows.DetailsAsync(cluster.Postgres.ConnectionString(), "Rollout", key, "rollout.approval-requested"));

        Approval ApprovalBy(string who) => new()
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr") },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "Rollout", Name = name }, Decision = "approve", Approver = who,
                TargetGeneration = rollout.Metadata.Generation, TargetUID = rollout.Metadata.Uid,
            },
        };

        await cluster.Api.CreateAsync(Approvals, ws[0], ApprovalBy("carol@example.com"), CancellationToken.None);
        await WaitAsync(ws[0], name, r => Condition(r, "Paused")?.Message.Contains("1 of 2", StringComparison.Ordinal) == true, "one of two approvals counted");
        Assert.Equal(Old, await ImageAsync(ws[1]));

        await cluster.Api.CreateAsync(Approvals, ws[0], ApprovalBy("erin@example.com"), CancellationToken.None);
        await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded after the second approval");
        Assert.Equal(New, await ImageAsync(ws[1]));
        // The decision (approval.decided), once; the one ask stays the one.
        var decided = await ApprovalAskRows.OneAsync(cluster.Postgres.ConnectionString(), "Rollout", key, "rollout.approved");
        Assert.Equal("ring-2-prod", (string?)decided["ring"]);
        Assert.Equal(["carol@example.com", "erin@example.com"], decided["approvers"]!.AsArray().Select(a => (string)a!).Order(StringComparer.Ordinal));
        Assert.Single(await ApprovalAskRows.DetailsAsync(cluster.Postgres.ConnectionString(), "Rollout", key, "rollout.approval-requested"));
    }

    [Fact]
    public async Task AnApprovedProdRing_PausedAndResumed_ProceedsWithoutNewApprovals_ButAnImageChangeNeedsNewOnes()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync(("lab", "dev"), ("prod", "prod"));
        var prodRing = new Ring { Name = "ring-2-prod", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "prod" } }, RequiresApproval = true };
        const string New = "registry.example/orders:4.1.0";
        var rollout = await CreateAsync(ws[0], NewRollout(New, new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "0s" }, prodRing));
        var name = rollout.Metadata.Name;
        await WaitAsync(ws[0], name, r => RingPhase(r, "ring-2-prod") == "AwaitingApproval", "prod ring awaiting approval");

        // As the webhook stamps them (no webhook in this collection): approver, UID, generation and the content hash of what was reviewed.
        Approval ApprovalOf(Rollout reviewed, string who) => new()
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.TargetContentHashAnnotation] = ApprovalPolicy.ContentHash(reviewed) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "Rollout", Name = reviewed.Metadata.Name }, Decision = "approve", Approver = who,
                TargetGeneration = reviewed.Metadata.Generation, TargetUID = reviewed.Metadata.Uid,
            },
        };

        var generation = rollout.Metadata.Generation!.Value;
        await cluster.Api.CreateAsync(Approvals, ws[0], ApprovalOf(rollout, "carol@example.com"), CancellationToken.None);
        await WaitAsync(ws[0], name, r => Condition(r, "Paused")?.Message.Contains($"1 of 2 approval(s) for generation {generation}", StringComparison.Ordinal) == true, "one of two approvals counted");

        // Paused to look at a graph, then resumed: two new generations, the same content under review.
        await PatchSpecAsync(ws[0], name, "{\"paused\":true}");
        await WaitAsync(ws[0], name, r => r.Status?.ObservedGeneration == generation + 1 && Condition(r, "Paused")?.Reason == "Paused", "paused by spec.paused");
        await PatchSpecAsync(ws[0], name, "{\"paused\":false}");
        await WaitAsync(ws[0], name, r => Condition(r, "Paused")?.Message.Contains($"1 of 2 approval(s) for generation {generation + 2}", StringComparison.Ordinal) == true,
            "carol's approval of the paused generation still counts after resume");
        Assert.Equal(Old, await ImageAsync(ws[1]));

        // erin reviewed the same content before the pause: her approval of it completes the two.
        await cluster.Api.CreateAsync(Approvals, ws[0], ApprovalOf(rollout, "erin@example.com"), CancellationToken.None);
        await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded without new approvals");
        Assert.Equal(New, await ImageAsync(ws[1]));

        // A new version, approved by one, then its image changed: that approval is stale, the ring waits for new ones.
        const string Next = "registry.example/orders:4.2.0";
        var next = await CreateAsync(ws[0], NewRollout(Next, new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "0s" }, prodRing));
        await WaitAsync(ws[0], next.Metadata.Name, r => RingPhase(r, "ring-2-prod") == "AwaitingApproval", "next prod ring awaiting approval");
        await cluster.Api.CreateAsync(Approvals, ws[0], ApprovalOf(next, "carol@example.com"), CancellationToken.None);
        await WaitAsync(ws[0], next.Metadata.Name, r => Condition(r, "Paused")?.Message.Contains("1 of 2 approval(s)", StringComparison.Ordinal) == true, "one of two approvals of the next version");
        await PatchSpecAsync(ws[0], next.Metadata.Name, "{\"target\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.example/orders:6.6.6\"}]}}");
        await cluster.Api.CreateAsync(Approvals, ws[0], ApprovalOf(next, "erin@example.com"), CancellationToken.None);
        var stale = await WaitAsync(ws[0], next.Metadata.Name, r => r.Status?.ObservedGeneration == next.Metadata.Generation + 1
            && Condition(r, "Paused")?.Message.Contains($"0 of 2 approval(s) for generation {next.Metadata.Generation + 1}", StringComparison.Ordinal) == true, "approvals of the old image stale");
        Assert.NotEqual(RolloutPhase.Succeeded, stale.Status!.Phase);
        Assert.Equal(New, await ImageAsync(ws[1]));
    }

    [Fact]
    public async Task ARingNamingAnotherTenantsWorkspace_IsDroppedAtReconcile()
    {
        await using var op = Start();
        var (_, mine) = await TenantAsync(("lab", "dev"));
        var (_, theirs) = await TenantAsync(("lab", "dev"));
        const string New = "registry.example/orders:5.0.0";
        // No webhook in this collection: as if admission were bypassed, the reconciler is the last line.
        var rollout = await CreateAsync(mine[0], NewRollout(New, new Ring { Name = "ring-0", Workspaces = [mine[0], theirs[0]], Soak = "0s" }));
        var done = await WaitAsync(mine[0], rollout.Metadata.Name, r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded on its own workspace only");
        Assert.Equal([mine[0]], done.Status!.Rings![0].Workspaces);
        Assert.DoesNotContain(done.Status.Previous!, p => p.Namespace == theirs[0]);
        var foreign = await Deployments.GetAsync(cluster.Api, theirs[0], "orders");
        Assert.Equal(Old, Deployments.ImageOf(foreign));
        Assert.Equal(1, foreign.Metadata.Generation);
        var events = await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, mine[0], null, 500, null, CancellationToken.None);
        Assert.Contains(events.Items, e => e.InvolvedObject.Name == rollout.Metadata.Name && e.Message.Contains($"{theirs[0]} (not a workspace of tenant", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ASecondRollout_OfTheSameDeployment_WaitsForTheFirst()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync(("lab", "dev"));
        var first = await CreateAsync(ws[0], NewRollout("registry.example/orders:6.0.0", new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "10m" }));
        await WaitAsync(ws[0], first.Metadata.Name, r => RingPhase(r, "ring-0") == "Soaking", "first soaking");
        var second = await CreateAsync(ws[0], NewRollout("registry.example/orders:6.1.0", new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "0s" }));
        var waiting = await WaitAsync(ws[0], second.Metadata.Name, r => Condition(r, "Progressing")?.Reason == "WaitingForRollout", "second waiting");
        Assert.Equal(RolloutPhase.Pending, waiting.Status!.Phase);
        Assert.Contains(first.Metadata.Name, Condition(waiting, "Progressing")!.Message);
        Assert.Equal("registry.example/orders:6.0.0", await ImageAsync(ws[0]));

        await PatchSpecAsync(ws[0], first.Metadata.Name, "{\"abort\":true}");
        await WaitAsync(ws[0], second.Metadata.Name, r => r.Status?.Phase == RolloutPhase.Succeeded, "second Succeeded once the first finished");
        Assert.Equal("registry.example/orders:6.1.0", await ImageAsync(ws[0]));
        // The second recorded what it found (the first's rollback), not the first's version.
        var second2 = await cluster.Api.GetAsync<Rollout>(Rollouts, ws[0], second.Metadata.Name, CancellationToken.None);
        Assert.Equal(Old, second2.Status!.Previous!.Single().Containers.Single().Image);
    }

    [Fact]
    public async Task SuccessRateGate_PrometheusDownPauses_AndABreachRollsBack()
    {
        var (prometheus, traffic) = await PrometheusAsync();
        await using var _p = prometheus;
        await using var _t = traffic;
        await using var op = Start(prometheus);
        var (_, ws) = await TenantAsync(("lab", "dev"), ("canary", "dev"));
        await ServeTrafficAsync(prometheus, traffic, ws);
        var spec = NewRollout("registry.example/orders:7.0.0", new Ring { Name = "ring-0", Workspaces = [ws[0]], Soak = "5m" }, new Ring { Name = "ring-1", Workspaces = [ws[1]] });
        spec.Spec.Gates!.SuccessRate = new SuccessRateGate { Query = SuccessRateQuery, Threshold = 0.98 };
        var rollout = await CreateAsync(ws[0], spec);
        var name = rollout.Metadata.Name;
        var soaking = await WaitAsync(ws[0], name, r => RingPhase(r, "ring-0") == "Soaking" && r.Status!.Rings![0].SuccessRate is not null, "ring 0 soaking with a success rate");
        output.WriteLine($"ring 0 success rate from Prometheus: {soaking.Status!.Rings![0].SuccessRate}");
        Assert.InRange(soaking.Status!.Rings![0].SuccessRate!.Value, 0.998, 1.0);
        // The query Prometheus answered was templated with ring 0's namespace only (the closing quote: nothing else in the alternation).
        Assert.Contains(prometheus.Queries(), q => q.Contains($"namespace=~\"{ws[0]}\"", StringComparison.Ordinal));

        // Prometheus down: the ring holds (Paused, with the reason), nothing is rolled back.
        await prometheus.StopAsync();
        var held = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.Paused && Condition(r, "Paused")?.Reason == "MetricsUnavailable", "paused: metrics unavailable");
        Assert.Contains("Prometheus", Condition(held, "Paused")!.Message);
        Assert.Equal("registry.example/orders:7.0.0", await ImageAsync(ws[0]));

        // Back up while half of ring 0's requests fail: the ratio Prometheus computes drops below the threshold, rolled back.
        traffic.SetTraffic(ws[0], 1000, 0.5);
        await prometheus.ResumeAsync();
        var rolledBack = await WaitAsync(ws[0], name, r => r.Status?.Phase == RolloutPhase.RolledBack, "rolled back on the success rate");
        var record = rolledBack.Status!.Rollback!;
        output.WriteLine($"breach: success rate {record.Value} (limit {record.Limit}), rollback issued {record.SecondsToIssue} s after");
        Assert.Equal("successRate", record.Gate);
        Assert.InRange(double.Parse(record.Value!, System.Globalization.CultureInfo.InvariantCulture), 0.45, 0.98);
        Assert.InRange(record.SecondsToIssue!.Value, 0, 30);
        Assert.Equal(Old, await ImageAsync(ws[0]));
        Assert.Equal(Old, await ImageAsync(ws[1]));
    }

    [Fact]
    public async Task ASuccessRateQuery_ReadingAnotherTenantsSeries_IsNeverRun_WhenAdmissionWasBypassed()
    {
        var (prometheus, traffic) = await PrometheusAsync();
        await using var _p = prometheus;
        await using var _t = traffic;
        await using var op = Start(prometheus);
        var (_, mine) = await TenantAsync(("lab", "dev"));
        var (_, theirs) = await TenantAsync(("lab", "dev"));
        await ServeTrafficAsync(prometheus, traffic, [mine[0], theirs[0]]);
        // Their success ratio through my ring's gate: status.rings[].successRate (or a rollback record) would carry their numbers.
        var leak = $"sum(rate(http_requests_total{{namespace=\"{theirs[0]}\",code!~\"5..\"}}[10s])) / sum(rate(http_requests_total{{namespace=\"{theirs[0]}\"}}[10s]))";
        var spec = NewRollout("registry.example/orders:7.7.7", new Ring { Name = "ring-0", Workspaces = [mine[0]], Soak = "30s" });
        spec.Spec.Gates!.SuccessRate = new SuccessRateGate { Query = leak, Threshold = 0.1 };
        // No webhook in this collection: as if admission were bypassed, the reconciler re-checks the query.
        var rollout = await CreateAsync(mine[0], spec);
        var failed = await WaitAsync(mine[0], rollout.Metadata.Name, r => r.Status?.Phase == RolloutPhase.Failed, "Failed: the query reads outside the ring");
        Assert.Equal("InvalidSpec", Condition(failed, "Ready")!.Reason);
        Assert.Contains("spec.gates.successRate.query: the selector at offset", Condition(failed, "Ready")!.Message);
        Assert.All(failed.Status!.Rings!, r => Assert.Null(r.SuccessRate));
        Assert.Null(failed.Status.Rollback);
        Assert.DoesNotContain(prometheus.Queries(), q => q.Contains($"namespace=\"{theirs[0]}\"", StringComparison.Ordinal));
        Assert.Equal(Old, await ImageAsync(mine[0]));
    }
}
