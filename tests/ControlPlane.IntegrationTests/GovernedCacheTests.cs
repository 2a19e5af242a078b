using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The operator lists, watches and caches the workload kinds it reads (Pods, Deployments, Services)
/// only in the namespaces a Rollout or an Exposure reads, stripped; other people's workloads cost it
/// neither a list, a watch event, a cache entry nor a reconcile (issue 29). Real API server; the
/// foreign objects are made straight through the API.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class GovernedCacheTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Namespaces = ResourceType.Namespaces;
    static readonly ResourceType Services = new("", "v1", "services", "Service", true);
    static readonly ResourceType Rollouts = RolloutReconciler.Type;
    static readonly ResourceType Exposures = ExposureReconciler.Type;

    /// <summary>A paused Rollout of Deployment "shop" over <paramref name="ws"/>: it reads its ring's Deployments and Pods, and patches nothing.</summary>
    static Rollout PausedRollout(string name, string ws) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = "shop", Containers = [new ContainerImage { Name = "app", Image = "registry.example/shop:2" }] },
            Rings = [new Ring { Name = "ring-0", Workspaces = [ws], Soak = "0s" }],
            Paused = true,
        },
    };

    /// <summary>A draft Exposure of Service "shop": it reads its namespace's Services, and publishes nothing.</summary>
    static Exposure DraftExposure(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new ExposureSpec
        {
            Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = "shop", Port = 80 }, Path = "/shop", Publish = false,
            RatePlan = new RatePlan { RequestsPerMinute = 600, Burst = 100, MonthlyQuota = 1000000 },
        },
    };

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>A bare pod (no controller, no node) with what a real one carries that no reader needs.</summary>
    static V1Pod Pod(string ns, string name) => new()
    {
        ApiVersion = "v1", Kind = "Pod",
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = ns,
            Labels = new Dictionary<string, string> { ["app"] = "shop" },
            Annotations = new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = new string('x', 2000) },
        },
        Spec = new V1PodSpec
        {
            Containers =
            [
                new V1Container
                {
                    Name = "app", Image = "registry.example/shop:1",
                    Env = [.. Enumerable.Range(0, 20).Select(i => new V1EnvVar { Name = $"VAR_{i}", Value = new string('v', 50) })],
                    Args = ["--serve", "--port=8080"],
                },
            ],
        },
    };

    static V1Service Service(string ns, string name) => new()
    {
        ApiVersion = "v1", Kind = "Service",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Annotations = new Dictionary<string, string> { ["note"] = "tenant's own" } },
        Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = "shop" }, Ports = [new V1ServicePort { Port = 80, TargetPort = 8080 }] },
    };

    async Task<string> ForeignNamespaceAsync(Dictionary<string, string>? labels = null)
    {
        var ns = Unique("foreign");
        await cluster.Api.CreateAsync(Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = ns, Labels = labels } }, CancellationToken.None);
        return ns;
    }

    Task ChurnStatusAsync(string ns, string pod, int i) =>
        cluster.Api.PatchAsync<V1Pod>(Deployments.Pods, ns, pod, $$$"""{"status":{"message":"churn {{{i}}}"}}""", PatchTypes.Merge, CancellationToken.None, "status");

    [Fact]
    public async Task ForeignWorkloads_AreNeverListedNorReconciled_ThoseARolloutOrExposureReadsAreCachedStripped()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        await op.WaitUntilLeaderAndSyncedAsync();
        var tenant = Unique("gc");
        await cluster.CreateTenantAsync(tenant);
        var ws = Unique(tenant);
        await cluster.CreateWorkspaceAsync(ws, tenant, s => s.Database = new WorkspaceDatabase { Enabled = false });
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");

        var foreign = await ForeignNamespaceAsync();
        await cluster.Api.CreateAsync(Deployments.Pods, foreign, Pod(foreign, "shop"), CancellationToken.None);
        await cluster.Api.CreateAsync(Services, foreign, Service(foreign, "shop"), CancellationToken.None);
        await Deployments.CreateAsync(cluster.Api, foreign, "shop", "registry.example/shop:1", replicas: 0);
        await cluster.Api.CreateAsync(Deployments.Pods, ws, Pod(ws, "shop"), CancellationToken.None);
        await cluster.Api.CreateAsync(Services, ws, Service(ws, "shop"), CancellationToken.None);
        await Deployments.CreateAsync(cluster.Api, ws, "shop", "registry.example/shop:1", replicas: 0);

        var pods = op.Runtime.NamespacedInformerOf<V1Pod>()!;
        var services = op.Runtime.NamespacedInformerOf<V1Service>()!;
        var deployments = op.Runtime.NamespacedInformerOf<V1Deployment>()!;
        // Nothing reads the workspace's workloads yet: nothing is listed or watched there either.
        Assert.DoesNotContain(ws, pods.Namespaces);
        Assert.DoesNotContain(ws, services.Namespaces);

        // A Rollout over the workspace holds its Deployments and Pods; an Exposure in it its Services.
        var rollout = Unique("shop");
        await cluster.Api.CreateAsync(Rollouts, ws, PausedRollout(rollout, ws), CancellationToken.None);
        await cluster.Api.CreateAsync(Exposures, ws, DraftExposure("shop"), CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ws}/shop") is not null && services.Get($"{ws}/shop") is not null && deployments.Get($"{ws}/shop") is not null),
            TimeSpan.FromSeconds(60), "the workspace's pod, service and deployment cached");
        Assert.Equal(1, pods.HoldersOf(ws));
        Assert.DoesNotContain(foreign, pods.Namespaces);
        Assert.DoesNotContain(foreign, services.Namespaces);
        Assert.DoesNotContain(foreign, deployments.Namespaces);
        Assert.Null(pods.Get($"{foreign}/shop"));
        Assert.DoesNotContain(pods.List(), p => p.Metadata.NamespaceProperty == foreign);
        Assert.All(pods.List(), p => Assert.Contains(p.Metadata.NamespaceProperty, pods.Namespaces));

        // Stripped: what RolloutResources.View and ExposureResources read, nothing else.
        var pod = pods.Get($"{ws}/shop")!;
        Assert.Null(pod.Metadata.ManagedFields);
        Assert.Null(pod.Metadata.Annotations);
        Assert.Equal("shop", pod.Metadata.Labels["app"]);
        var container = Assert.Single(pod.Spec.Containers);
        Assert.Equal(("app", "registry.example/shop:1"), (container.Name, container.Image));
        Assert.Null(container.Env);
        Assert.Null(container.Args);
        Assert.Null(pod.Spec.Volumes);
        // Pending, or Running once the test environment's node stand-in bound it.
        Assert.Contains(pod.Status?.Phase, new[] { "Pending", "Running" });
        var service = services.Get($"{ws}/shop")!;
        Assert.Null(service.Metadata.Annotations);
        Assert.Equal(80, Assert.Single(service.Spec.Ports).Port);
        Assert.Equal("shop", service.Spec.Selector["app"]);
        Assert.Null(service.Spec.ClusterIP);
        var deployment = deployments.Get($"{ws}/shop")!;
        Assert.Equal("registry.example/shop:1", Assert.Single(deployment.Spec.Template.Spec.Containers).Image);
        Assert.Null(Assert.Single(deployment.Spec.Template.Spec.Containers).Resources);

        // A status forged to name a foreign namespace as a ring's (the status subresource bypasses admission): nothing is read there.
        var forgedReconciles = 0;
        void CountRollout(string controller, string key, string result)
        {
            if (controller == "rollout" && key == $"{ws}/{rollout}") Interlocked.Increment(ref forgedReconciles);
        }
        op.Runtime.Reconciled += CountRollout;
        try
        {
            await cluster.Api.PatchAsync<Rollout>(Rollouts, ws, rollout, $$$"""{"status":{"rings":[{"name":"ring-0","workspaces":["{{{foreign}}}"]}]}}""", PatchTypes.Merge,
                CancellationToken.None, "status");
            // A status change alone queues nothing; a label does (the watch delivers both in order).
            Volatile.Write(ref forgedReconciles, 0);
            await cluster.Api.PatchAsync<Rollout>(Rollouts, ws, rollout, """{"metadata":{"labels":{"touched":"yes"}}}""", PatchTypes.Merge, CancellationToken.None);
            await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref forgedReconciles) > 0), TimeSpan.FromSeconds(60), "the rollout reconciled after its status was forged");
        }
        finally
        {
            op.Runtime.Reconciled -= CountRollout;
        }

        Assert.DoesNotContain(foreign, pods.Namespaces);
        Assert.DoesNotContain(foreign, deployments.Namespaces);

        // Churn of foreign pod status: never even reaches the operator (no watch there), so no reconcile anywhere.
        await op.WaitUntilIdleAsync();
        var reconciles = 0;
        void Count(string controller, string key, string result)
        {
            if (key.StartsWith(foreign + "/", StringComparison.Ordinal)) Interlocked.Increment(ref reconciles);
        }
        var droppedBefore = op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value;
        op.Runtime.Reconciled += Count;
        try
        {
            for (var i = 0; i < 30; i++) await ChurnStatusAsync(foreign, "shop", i);
            // A workspace pod's change arrives on its namespace's watch (the foreign ones, made before it, would have come first on a shared one).
            await cluster.Api.PatchAsync<V1Pod>(Deployments.Pods, ws, "shop", "{\"metadata\":{\"labels\":{\"tier\":\"web\"}}}", PatchTypes.Merge, CancellationToken.None);
            await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ws}/shop")?.Metadata.Labels?.ContainsKey("tier") == true), TimeSpan.FromSeconds(60),
                "the workspace pod's label change cached");
        }
        finally
        {
            op.Runtime.Reconciled -= Count;
        }

        Assert.Equal(droppedBefore, op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value);
        Assert.Equal(0, reconciles);
        Assert.DoesNotContain(foreign, pods.Namespaces);

        // The Rollout gone, its namespace's Deployments and Pods are let go (the Exposure still holds the Services).
        await cluster.Api.DeleteAsync(Rollouts, ws, rollout, CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(!pods.Namespaces.Contains(ws) && !deployments.Namespaces.Contains(ws)), TimeSpan.FromSeconds(60),
            "the workspace no longer watched for pods and deployments");
        Assert.Null(pods.Get($"{ws}/shop"));
        Assert.NotNull(services.Get($"{ws}/shop"));
        await cluster.Api.DeleteAsync(Exposures, ws, "shop", CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(!services.Namespaces.Contains(ws)), TimeSpan.FromSeconds(60), "the workspace no longer watched for services");
        await cluster.Api.DeleteAsync(Namespaces, null, foreign, CancellationToken.None);
    }

    [Fact]
    public async Task ARolloutSeesWhatItsNamespaceHeldBeforeItCame_AndItsLaterChanges()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        await op.WaitUntilLeaderAndSyncedAsync();
        var pods = op.Runtime.NamespacedInformerOf<V1Pod>()!;
        var tenant = Unique("gc");
        await cluster.CreateTenantAsync(tenant);
        var ws = Unique(tenant);
        await cluster.CreateWorkspaceAsync(ws, tenant, s => s.Database = new WorkspaceDatabase { Enabled = false });
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await cluster.Api.CreateAsync(Deployments.Pods, ws, Pod(ws, "early"), CancellationToken.None);
        await Deployments.CreateAsync(cluster.Api, ws, "shop", "registry.example/shop:1", replicas: 0);

        // Two Rollouts over the same namespace share one watch of it.
        var first = Unique("shop");
        var second = Unique("shop");
        await cluster.Api.CreateAsync(Rollouts, ws, PausedRollout(first, ws), CancellationToken.None);
        await cluster.Api.CreateAsync(Rollouts, ws, PausedRollout(second, ws), CancellationToken.None);
        // Held from the moment a reconcile asks; listed (synced) before that reconcile reads it.
        await Net.WaitUntilAsync(() => Task.FromResult(pods.HoldersOf(ws) == 2 && pods.IsSynced(ws)), TimeSpan.FromSeconds(60), "both rollouts hold the namespace, listed");
        Assert.NotNull(pods.Get($"{ws}/early"));

        await cluster.Api.CreateAsync(Deployments.Pods, ws, Pod(ws, "late"), CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ws}/late") is not null), TimeSpan.FromSeconds(60), "a pod made later arrives on the watch");
        // At once (the test environment's node stand-in binds pods, and no kubelet would confirm a graceful delete).
        await cluster.Api.SendAsync(HttpMethod.Delete, Deployments.Pods.ItemPath(ws, "early"), """{"gracePeriodSeconds":0}""", "application/json", CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ws}/early") is null), TimeSpan.FromSeconds(60), "a deleted pod leaves the cache");

        // One goes: the other still holds it.
        await cluster.Api.DeleteAsync(Rollouts, ws, first, CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(pods.HoldersOf(ws) == 1), TimeSpan.FromSeconds(60), "one holder left");
        Assert.NotNull(pods.Get($"{ws}/late"));
        await cluster.Api.DeleteAsync(Rollouts, ws, second, CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(!pods.Namespaces.Contains(ws)), TimeSpan.FromSeconds(60), "no holder left");
        Assert.Null(pods.Get($"{ws}/late"));
    }

    [Fact]
    public async Task ThreeHundredHeldNamespaces_AreAllWatched_AndTheOperatorsOtherRequestsAreNotStarved()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        await op.WaitUntilLeaderAndSyncedAsync();
        var pods = op.Runtime.NamespacedInformerOf<V1Pod>()!;
        // More watches than the operator's main client has connections (256): they ride their own, multiplexed.
        var namespaces = new List<string>();
        for (var i = 0; i < 300; i++) namespaces.Add(await ForeignNamespaceAsync());
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await pods.HoldAsync("test/many", namespaces, deadline.Token);
            Assert.Equal(300, namespaces.Count(pods.IsSynced));

            // Every one is watched: a pod made in the last arrives; and the main client still answers at once.
            await cluster.Api.CreateAsync(Deployments.Pods, namespaces[^1], Pod(namespaces[^1], "last"), CancellationToken.None);
            await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{namespaces[^1]}/last") is not null), TimeSpan.FromSeconds(60), "the pod in the 300th namespace cached");
            var get = System.Diagnostics.Stopwatch.StartNew();
            await op.Runtime.Api.GetAsync<V1Namespace>(Namespaces, null, namespaces[0], deadline.Token);
            output.WriteLine($"GET through the main client with 300 member watches open: {get.ElapsedMilliseconds} ms");
        }
        finally
        {
            pods.Forget("test/many");
            foreach (var ns in namespaces) await cluster.Api.DeleteAsync(Namespaces, null, ns, CancellationToken.None);
        }

        Assert.Empty(pods.Namespaces.Intersect(namespaces));
    }
}
