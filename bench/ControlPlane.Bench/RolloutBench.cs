using System.Diagnostics;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Bench;

/// <summary>Rollouts: time from a breach to the rollback issued, and what 100 Rollouts idle in soak cost.</summary>
public static partial class Program
{
    static readonly int RolloutBreachRuns = Env("BENCH_ROLLOUT_BREACH_RUNS", 20);
    static readonly int NRollouts = Env("BENCH_N_ROLLOUTS", 100);
    static readonly int RolloutIdleSeconds = Env("BENCH_ROLLOUT_IDLE_SECONDS", 120);

    static readonly ResourceType RolloutType = ResourceType.For<Rollout>(true);
    static readonly ResourceType DeploymentType = new("apps", "v1", "deployments", "Deployment", true);
    static readonly string[] WriteVerbs = ["create", "update", "patch", "delete", "deletecollection"];
    const string RolloutOldImage = "registry.example/orders:1.0.0";

    /// <summary>Both Rollout measurements on one environment (kube-controller-manager runs Deployments, the node stand-in their pods).</summary>
    static async Task<JsonObject> RolloutAsync(BenchEnv env)
    {
        await using var node = await NodeStandIn.StartAsync(env.Plane.NewApi());
        await using var op = RunningOperator.Start(env);
        await op.WaitSyncedAsync();
        await CreateTenantsAsync(env, 100);
        var workspaces = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var ws = NewWorkspace(i, db: false);
            // Room for ten Deployments rolling out at once (each pod requests 10m, 16Mi).
            ws.Spec.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1"), Memory = new ResourceQuantity("2Gi"), Pods = 40 };
            await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
            workspaces.Add(ws.Metadata.Name);
        }

        foreach (var ns in workspaces)
        {
            await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ns, CancellationToken.None)).Status?.Phase == WorkspacePhase.Ready,
                TimeSpan.FromMinutes(1), "workspace Ready");
        }

        return new JsonObject
        {
            ["breachToRollback"] = await BreachToRollbackAsync(env, node, workspaces[0]),
            ["idleInSoak"] = await IdleInSoakAsync(env, op, workspaces),
        };
    }

    /// <summary>
    /// One ring soaking a new version; the node stand-in then reports its pods crash-looping (the
    /// incidents gate). Timed by the operator (status.rollback.secondsToIssue: from the first restart
    /// reported to the rollback patch) and by the bench (from marking the image bad to the
    /// Deployment's image restored, as read from the API server). One run at a time.
    /// </summary>
    static async Task<JsonObject> BreachToRollbackAsync(BenchEnv env, NodeStandIn node, string ns)
    {
        var byOperator = new List<double>();
        var byBench = new List<double>();
        for (var run = 0; run < RolloutBreachRuns; run++)
        {
            var deployment = $"breach-{run:00}";
            await env.Api.CreateAsync(DeploymentType, ns, BenchDeployment(deployment, RolloutOldImage, replicas: 1), CancellationToken.None);
            await WaitDeploymentAsync(env, ns, deployment, RolloutOldImage);
            var bad = $"registry.example/orders:2.0.0-bench{run:00}-{Guid.NewGuid().ToString("N")[..6]}";
            var rollout = await env.Api.CreateAsync(RolloutType, ns, BenchRollout($"breach-{run:00}", deployment, bad, ns, "10m"), CancellationToken.None);
            await WaitRolloutAsync(env, ns, rollout.Metadata.Name, r => r.Status?.Rings?[0].Phase == RingPhase.Soaking, "soaking");
            var watch = Stopwatch.StartNew();
            node.MarkBad(bad);
            while (ImageOf(await env.Api.GetAsync<V1Deployment>(DeploymentType, ns, deployment, CancellationToken.None)) != RolloutOldImage)
            {
                if (watch.Elapsed > TimeSpan.FromMinutes(2)) throw new TimeoutException($"no rollback of {ns}/{deployment}");
                await Task.Delay(TimeSpan.FromMilliseconds(5));
            }

            byBench.Add(watch.Elapsed.TotalSeconds);
            var done = await WaitRolloutAsync(env, ns, rollout.Metadata.Name, r => r.Status?.Phase == RolloutPhase.RolledBack, "rolled back");
            byOperator.Add(done.Status!.Rollback!.SecondsToIssue ?? double.NaN);
            await env.Api.DeleteAsync(DeploymentType, ns, deployment, CancellationToken.None);
            Console.WriteLine($"  rollout breach run {run + 1}/{RolloutBreachRuns}: gate {done.Status.Rollback.Gate}, operator {byOperator[^1]:0.000} s, bench {byBench[^1]:0.000} s");
        }

        return new JsonObject
        {
            ["runs"] = RolloutBreachRuns,
            ["secondsToIssueByOperator"] = new JsonArray(Math.Round(Percentiles.Of(byOperator, 0.5), 3), Math.Round(Percentiles.Of(byOperator, 0.99), 3), Math.Round(byOperator.Max(), 3)),
            ["markedBadToImageRestoredSeconds"] = new JsonArray(Math.Round(Percentiles.Of(byBench, 0.5), 3), Math.Round(Percentiles.Of(byBench, 0.99), 3), Math.Round(byBench.Max(), 3)),
            ["note"] = "p50 / p99 / max; incidents gate (pods crash-looping, restarts reported by the node stand-in every second); operator: status.rollback.secondsToIssue (from the restart's timestamp, second precision, to the rollback); bench: from marking the image bad to a GET showing the old image",
        };
    }

    /// <summary>
    /// NRollouts Rollouts (ten Deployments in each of ten workspaces) all soaking for an hour; then a
    /// window with nothing changing: API writes (must be 0), requests, reconciles, CPU.
    /// </summary>
    static async Task<JsonObject> IdleInSoakAsync(BenchEnv env, RunningOperator op, IReadOnlyList<string> workspaces)
    {
        var names = new List<(string Ns, string Name)>();
        for (var i = 0; i < NRollouts; i++)
        {
            var ns = workspaces[i % workspaces.Count];
            var deployment = $"soak-{i:000}";
            await env.Api.CreateAsync(DeploymentType, ns, BenchDeployment(deployment, RolloutOldImage, replicas: 1), CancellationToken.None);
            names.Add((ns, deployment));
        }

        var started = Stopwatch.StartNew();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency }, async (n, ct) =>
            await env.Api.CreateAsync(RolloutType, n.Ns, BenchRollout(n.Name, n.Name, "registry.example/orders:2.0.0", n.Ns, "1h"), ct));
        await Net.WaitUntilAsync(async () =>
        {
            var soaking = 0;
            foreach (var ns in workspaces)
            {
                var list = await env.Api.ListAsync<Rollout>(RolloutType, ns, null, 500, null, CancellationToken.None);
                soaking += list.Items.Count(r => r.Metadata.Name.StartsWith("soak-", StringComparison.Ordinal) && r.Status?.Rings?[0].Phase == RingPhase.Soaking);
            }

            return soaking == NRollouts;
        }, TimeSpan.FromMinutes(10), $"{NRollouts} rollouts soaking");
        var toSoak = started.Elapsed.TotalSeconds;
        // Not op.WaitIdleAsync: every soaking Rollout keeps a delayed requeue (its soak's end) queued.
        // Settled: no API write for 5 s (the last ring rolled out and its status written).
        long WritesNow() => WriteVerbs.Sum(v => op.Runtime.Requests.Snapshot().GetValueOrDefault(v));
        var (lastWrites, quiet) = (WritesNow(), Stopwatch.StartNew());
        await Net.WaitUntilAsync(() =>
        {
            if (WritesNow() is var w && w != lastWrites) (lastWrites, quiet) = (w, Stopwatch.StartNew());
            return Task.FromResult(quiet.Elapsed > TimeSpan.FromSeconds(5));
        }, TimeSpan.FromMinutes(5), "no API write for 5 s");

        var reconciles = 0;
        void Count(string controller, string key, string result)
        {
            if (controller == "rollout") Interlocked.Increment(ref reconciles);
        }

        op.Runtime.Reconciled += Count;
        var before = op.Runtime.Requests.Snapshot();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        await Task.Delay(TimeSpan.FromSeconds(RolloutIdleSeconds));
        var after = op.Runtime.Requests.Snapshot();
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        op.Runtime.Reconciled -= Count;
        long Delta(string verb) => after.GetValueOrDefault(verb) - before.GetValueOrDefault(verb);
        var writes = WriteVerbs.Sum(Delta);
        var requests = after.Keys.Union(before.Keys).Sum(Delta);
        var minutes = RolloutIdleSeconds / 60.0;
        Console.WriteLine($"  {NRollouts} rollouts idle in soak for {RolloutIdleSeconds} s: {writes} API writes, {requests} requests, {reconciles} rollout reconciles, {cpu:0.00} CPU s (bench process)");
        return new JsonObject
        {
            ["rollouts"] = NRollouts,
            ["secondsUntilAllSoaking"] = Math.Round(toSoak, 1),
            ["idleSeconds"] = RolloutIdleSeconds,
            ["apiWritesPerMinute"] = Math.Round(writes / minutes, 2),
            ["requestsPerMinute"] = Math.Round(requests / minutes, 2),
            ["rolloutReconcilesPerMinute"] = Math.Round(reconciles / minutes, 1),
            ["cpuSecondsPerMinute"] = Math.Round(cpu / minutes, 2),
            ["note"] = $"in-process operator (CPU of the bench process, which also runs the node stand-in); resync {Resync.TotalSeconds:0} s",
        };
    }

    static string ImageOf(V1Deployment d) => d.Spec.Template.Spec.Containers.Single().Image;

    static async Task WaitDeploymentAsync(BenchEnv env, string ns, string name, string image) =>
        await Net.WaitUntilAsync(async () =>
        {
            var d = await env.Api.GetAsync<V1Deployment>(DeploymentType, ns, name, CancellationToken.None);
            return ImageOf(d) == image && d.Status?.ObservedGeneration >= d.Metadata.Generation && d.Status.AvailableReplicas == d.Spec.Replicas && d.Status.UpdatedReplicas == d.Spec.Replicas;
        }, TimeSpan.FromMinutes(2), $"deployment {ns}/{name} rolled out");

    static async Task<Rollout> WaitRolloutAsync(BenchEnv env, string ns, string name, Func<Rollout, bool> condition, string what)
    {
        Rollout? last = null;
        await Net.WaitUntilAsync(async () =>
        {
            last = await env.Api.GetAsync<Rollout>(RolloutType, ns, name, CancellationToken.None);
            return condition(last);
        }, TimeSpan.FromMinutes(2), $"rollout {ns}/{name} {what}");
        return last!;
    }

    static Rollout BenchRollout(string name, string deployment, string image, string ns, string soak) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = deployment, Containers = [new ContainerImage { Name = "app", Image = image }] },
            Rings = [new Ring { Name = "ring-0", Workspaces = [ns], Soak = soak }],
            Gates = new RolloutGates { ProgressDeadline = "2m", MaxIncidents = 0 },
            AutoRollback = true,
        },
    };

    static V1Deployment BenchDeployment(string name, string image, int replicas) => new()
    {
        ApiVersion = "apps/v1", Kind = "Deployment",
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1DeploymentSpec
        {
            Replicas = replicas,
            Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = name } },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                Spec = new V1PodSpec
                {
                    Containers =
                    [
                        new V1Container
                        {
                            Name = "app", Image = image,
                            Resources = new V1ResourceRequirements
                            {
                                Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("10m"), ["memory"] = new("16Mi") },
                                Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("10m"), ["memory"] = new("16Mi") },
                            },
                        },
                    ],
                },
            },
        },
    };
}
