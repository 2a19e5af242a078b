using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using k8s.Models;

namespace ControlPlane.Bench;

/// <summary>
/// Scenario `foreign` (issue 29): the platform's workspaces on a cluster full of other people's
/// workloads. Pods and Deployments in non-workspace namespaces are made straight through the API (no
/// kubelet: pods stay Pending), then their status churns through the status subresource while the
/// operator, as its own process, is measured: memory, CPU per second of churn, and reconciles (none
/// may come from a foreign object).
/// </summary>
public static partial class Program
{
    static readonly int ForeignWorkspaces = Env("BENCH_FOREIGN_WORKSPACES", 5000);
    static readonly int ForeignNamespaces = Env("BENCH_FOREIGN_NAMESPACES", 500);
    static readonly int ForeignPods = Env("BENCH_FOREIGN_PODS", 50_000);
    static readonly int ForeignDeployments = Env("BENCH_FOREIGN_DEPLOYMENTS", 5000);
    static readonly int ForeignChurnRps = Env("BENCH_FOREIGN_CHURN_RPS", 200);
    static readonly int ForeignChurnSeconds = Env("BENCH_FOREIGN_CHURN_SECONDS", 60);
    static readonly int ForeignCreateConcurrency = Env("BENCH_FOREIGN_CONCURRENCY", 24);

    static readonly ResourceType PodType = new("", "v1", "pods", "Pod", true);

    /// <summary>Runs the scenario on a fresh environment and adds its rows.</summary>
    static async Task ForeignScenarioAsync(string root, string repo, JsonObject results, List<(string Scenario, string Metric, string Value)> table)
    {
        await using var env = await BenchEnv.StartAsync(Path.Combine(root, "foreign"));
        var foreign = await ForeignAsync(env, repo);
        results["foreign"] = foreign;
        var label = $"{ForeignWorkspaces} workspaces + {ForeignPods} foreign Pods, {ForeignDeployments} Deployments in {ForeignNamespaces} namespaces";
        var churn = foreign["churn"]!;
        var restart = foreign["restart"]!;
        table.Add((label, "operator: converge s (own process) / peak working set MB during converge", $"{foreign["convergeSeconds"]} / {foreign["convergePeakWorkingSetMB"]}"));
        table.Add((label, "restart: ready / all reconciled s, writes API+Postgres", $"{restart["readySeconds"]} / {restart["allReconciledSeconds"]}, {restart["apiWrites"]}+{restart["postgresWrites"]}"));
        table.Add((label, "after restart: working set / peak / managed heap MB", $"{foreign["steady"]!["workingSetMB"]} / {foreign["steady"]!["peakWorkingSetMB"]} / {foreign["steady"]!["managedHeapMB"]}"));
        table.Add((label, $"churn {churn["achievedRps"]}/s for {churn["seconds"]} s: operator CPU % of a core (quiet window before)",
            $"{churn["cpuPercentOfCore"]} ({churn["quietCpuPercentOfCore"]})"));
        table.Add((label, "churn: reconciles / queue adds caused (must be 0)", $"{churn["reconciles"]} / {churn["queueAdds"]}"));
        table.Add((label, "after churn: working set / peak / managed heap MB", $"{churn["workingSetMB"]} / {churn["peakWorkingSetMB"]} / {churn["managedHeapMB"]}"));
    }

    /// <summary>A foreign pod of a plausible size: what a real one carries (env, resources, probes, volumes, annotations).</summary>
    static V1Pod ForeignPod(string ns, int i) => new()
    {
        ApiVersion = "v1", Kind = "Pod",
        Metadata = new V1ObjectMeta
        {
            Name = $"web-{i:00000}", NamespaceProperty = ns,
            Labels = new Dictionary<string, string> { ["app"] = $"web-{i % 10}", ["team"] = "other", ["pod-template-hash"] = "5d8f7c9b4" },
            Annotations = new Dictionary<string, string> { ["prometheus.io/scrape"] = "true", ["prometheus.io/port"] = "9090", ["checksum/config"] = new string('c', 64) },
        },
        Spec = new V1PodSpec
        {
            Containers =
            [
                new V1Container
                {
                    Name = "web", Image = "registry.example/other/web:3.14.1",
                    Args = ["--port=8080", "--metrics-port=9090", "--log-level=info"],
                    Env = [.. Enumerable.Range(0, 8).Select(e => new V1EnvVar { Name = $"SETTING_{e}", Value = $"value-{e}-{new string('x', 24)}" })],
                    Ports = [new V1ContainerPort { ContainerPort = 8080, Name = "http" }, new V1ContainerPort { ContainerPort = 9090, Name = "metrics" }],
                    Resources = new V1ResourceRequirements
                    {
                        Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("50m"), ["memory"] = new("64Mi") },
                        Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m"), ["memory"] = new("256Mi") },
                    },
                    ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = 8080 }, PeriodSeconds = 5 },
                    VolumeMounts = [new V1VolumeMount { Name = "config", MountPath = "/etc/web" }],
                },
            ],
            Volumes = [new V1Volume { Name = "config", ConfigMap = new V1ConfigMapVolumeSource { Name = "web-config" } }],
        },
    };

    static V1Deployment ForeignDeployment(string ns, int i) => new()
    {
        ApiVersion = "apps/v1", Kind = "Deployment",
        Metadata = new V1ObjectMeta { Name = $"api-{i:0000}", NamespaceProperty = ns, Labels = new Dictionary<string, string> { ["team"] = "other" } },
        Spec = new V1DeploymentSpec
        {
            // No replicas: kube-controller-manager makes a ReplicaSet but no pods (the foreign pods are counted apart).
            Replicas = 0,
            Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = $"api-{i}" } },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = $"api-{i}" } },
                Spec = ForeignPod(ns, i).Spec,
            },
        },
    };

    static async Task<JsonObject> ForeignAsync(BenchEnv env, string repo)
    {
        var load = new JsonObject { ["loadAverageAtStart"] = LoadAverage() };

        // 1. The foreign load, made concurrently (bounded) straight through the API.
        var watch = Stopwatch.StartNew();
        var namespaces = Enumerable.Range(0, ForeignNamespaces).Select(i => $"other-{i:000}").ToList();
        await Parallel.ForEachAsync(namespaces, new ParallelOptions { MaxDegreeOfParallelism = ForeignCreateConcurrency }, async (ns, ct) =>
            await env.Api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = ns, Labels = new Dictionary<string, string> { ["team"] = "other" } } }, ct));
        await Parallel.ForEachAsync(Enumerable.Range(0, ForeignDeployments), new ParallelOptions { MaxDegreeOfParallelism = ForeignCreateConcurrency }, async (i, ct) =>
            await env.Api.CreateAsync(DeploymentType, namespaces[i % namespaces.Count], ForeignDeployment(namespaces[i % namespaces.Count], i), ct));
        await Parallel.ForEachAsync(Enumerable.Range(0, ForeignPods), new ParallelOptions { MaxDegreeOfParallelism = ForeignCreateConcurrency }, async (i, ct) =>
            await env.Api.CreateAsync(PodType, namespaces[i % namespaces.Count], ForeignPod(namespaces[i % namespaces.Count], i), ct));
        load["createSeconds"] = Math.Round(watch.Elapsed.TotalSeconds, 1);
        Console.WriteLine($"  foreign: {ForeignPods} pods, {ForeignDeployments} deployments in {ForeignNamespaces} namespaces made in {load["createSeconds"]} s");

        // 2. The operator as its own process converges the workspaces among them. Resync is long here:
        // every reconcile in the churn window is then one an event caused.
        var settings = new Dictionary<string, string>(env.Settings(Kek)) { ["ControlPlane:ResyncPeriod"] = TimeSpan.FromHours(10).ToString("c", CultureInfo.InvariantCulture) };
        await CreateTenantsAsync(env, ForeignWorkspaces);
        var workspaces = new Informer<Workspace>(env.Api, ResourceType.For<Workspace>(false), new OperatorMetrics(), NullLogger.Instance);
        using var stopWatching = new CancellationTokenSource();
        var watching = Task.Run(() => workspaces.RunAsync(stopWatching.Token));
        try
        {
            await using (var first = ChildOperator.Start(repo, settings))
            {
                await Net.WaitUntilAsync(first.IsReadyAsync, TimeSpan.FromMinutes(5), "operator ready");
                watch.Restart();
                await Parallel.ForEachAsync(Enumerable.Range(0, ForeignWorkspaces), new ParallelOptions { MaxDegreeOfParallelism = ApplyConcurrency },
                    async (i, ct) => await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, NewWorkspace(i, db: false), ct));
                await Net.WaitUntilAsync(() => Task.FromResult(workspaces.List().Count(w => w.Status?.Phase == WorkspacePhase.Ready) >= ForeignWorkspaces),
                    TimeSpan.FromMinutes(40), $"{ForeignWorkspaces} workspaces Ready");
                load["convergeSeconds"] = Math.Round(watch.Elapsed.TotalSeconds, 1);
                await first.WaitIdleAsync(TimeSpan.FromMinutes(5));
                load["convergePeakWorkingSetMB"] = first.ResidentMemory()["VmHWM"];
            }

            // 3. Restart over everything: the lists of the cluster's pods and deployments are where a cache of everything peaks.
            await using var op = ChildOperator.Start(repo, settings);
            load["restart"] = await RestartAsync(op, ForeignWorkspaces);
            await op.WaitIdleAsync(TimeSpan.FromMinutes(5));
            load["steady"] = await MemoryAsync(op);

            // 4. A quiet window, then the churn window of the same length. First a pause: after a start the
            // runtime still compiles hot code at its higher tier and collects the restart's garbage.
            await Task.Delay(TimeSpan.FromSeconds(30));
            var quietCpu = await CpuOverAsync(op, TimeSpan.FromSeconds(ForeignChurnSeconds));
            var before = await op.ScrapeAsync();
            var cpu = op.CpuTime;
            var churn = await ChurnAsync(env, namespaces, TimeSpan.FromSeconds(ForeignChurnSeconds));
            var cpuSeconds = (op.CpuTime - cpu).TotalSeconds;
            // Events still in flight reach the operator after the last request: let them land.
            await Task.Delay(TimeSpan.FromSeconds(5));
            var after = await op.ScrapeAsync();
            var memory = await MemoryAsync(op);
            load["churn"] = new JsonObject
            {
                ["seconds"] = Math.Round(churn.Seconds, 1),
                ["updates"] = churn.Updates,
                ["failed"] = churn.Failed,
                ["achievedRps"] = Math.Round(churn.Updates / churn.Seconds, 1),
                ["cpuSeconds"] = Math.Round(cpuSeconds, 3),
                ["cpuPercentOfCore"] = Math.Round(100 * cpuSeconds / churn.Seconds, 2),
                ["quietCpuSeconds"] = Math.Round(quietCpu, 3),
                ["quietCpuPercentOfCore"] = Math.Round(100 * quietCpu / ForeignChurnSeconds, 2),
                ["reconciles"] = after.Sum("controller_runtime_reconcile_total") - before.Sum("controller_runtime_reconcile_total"),
                ["queueAdds"] = after.Sum("workqueue_adds_total") - before.Sum("workqueue_adds_total"),
                ["apiRequests"] = after.ApiRequests - before.ApiRequests,
                ["droppedOutOfScope"] = after.Sum("controlplane_informer_out_of_scope_total") - before.Sum("controlplane_informer_out_of_scope_total"),
                ["workingSetMB"] = memory["workingSetMB"]!.GetValue<double>(),
                ["peakWorkingSetMB"] = memory["peakWorkingSetMB"]!.GetValue<double>(),
                ["managedHeapMB"] = memory["managedHeapMB"]!.GetValue<double>(),
                ["cachedObjects"] = memory["cachedObjects"]!.GetValue<double>(),
                ["loadAverage"] = LoadAverage(),
            };
            Console.WriteLine($"  foreign: churn {load["churn"]!.ToJsonString()}");
        }
        finally
        {
            await stopWatching.CancelAsync();
            await watching;
        }

        return load;
    }

    static async Task<double> CpuOverAsync(ChildOperator op, TimeSpan window)
    {
        var cpu = op.CpuTime;
        await Task.Delay(window);
        return (op.CpuTime - cpu).TotalSeconds;
    }

    /// <summary>Open loop: a status update of a random foreign pod every 1/rps seconds (at most 64 in flight), through the status subresource.</summary>
    static async Task<(double Seconds, int Updates, int Failed)> ChurnAsync(BenchEnv env, IReadOnlyList<string> namespaces, TimeSpan window)
    {
        var random = new Random(29);
        var updates = 0;
        var failed = 0;
        using var inFlight = new SemaphoreSlim(64);
        var tasks = new List<Task>();
        var interval = TimeSpan.FromSeconds(1.0 / ForeignChurnRps);
        var watch = Stopwatch.StartNew();
        for (var n = 0; watch.Elapsed < window; n++)
        {
            var due = interval * n;
            if (due > watch.Elapsed) await Task.Delay(due - watch.Elapsed);
            await inFlight.WaitAsync();
            var i = random.Next(ForeignPods);
            var ns = namespaces[i % namespaces.Count];
            var ready = n % 2 == 0 ? "True" : "False";
            var at = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var patch = "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"" + ready + "\",\"lastTransitionTime\":\"" + at + "\"}],\"message\":\"churn " + n + "\"}}";
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    await env.Api.PatchAsync<V1Pod>(PodType, ns, $"web-{i:00000}", patch, PatchTypes.StrategicMerge, CancellationToken.None, "status");
                    Interlocked.Increment(ref updates);
                }
                catch (KubeApiException)
                {
                    Interlocked.Increment(ref failed);
                }
                finally
                {
                    inFlight.Release();
                }
            }));
        }

        await Task.WhenAll(tasks);
        return (watch.Elapsed.TotalSeconds, updates, failed);
    }

    static string LoadAverage() => File.ReadAllText("/proc/loadavg").Trim();
}
