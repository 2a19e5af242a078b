using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The operator caches the workload kinds it reads (Pods, Deployments, Services) only in workspace
/// namespaces, stripped, and other people's workloads cost it neither cache nor reconciles
/// (issue 29). Real API server; the foreign objects are made straight through the API.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class GovernedCacheTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Namespaces = ResourceType.Namespaces;
    static readonly ResourceType Services = new("", "v1", "services", "Service", true);

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
    public async Task ForeignWorkloads_AreNeitherCachedNorReconciled_WorkspaceOnesAreCachedStripped()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        await op.WaitUntilLeaderAndSyncedAsync();
        var tenant = Unique("gc");
        await cluster.CreateTenantAsync(tenant);
        var ws = Unique(tenant);
        await cluster.CreateWorkspaceAsync(ws, tenant, s => s.Database = new WorkspaceDatabase { Enabled = false });
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");

        // Foreign objects first: the workspace's, made after, are seen after them on the same watch.
        var foreign = await ForeignNamespaceAsync();
        await cluster.Api.CreateAsync(Deployments.Pods, foreign, Pod(foreign, "shop"), CancellationToken.None);
        await cluster.Api.CreateAsync(Services, foreign, Service(foreign, "shop"), CancellationToken.None);
        await Deployments.CreateAsync(cluster.Api, foreign, "shop", "registry.example/shop:1", replicas: 0);
        await cluster.Api.CreateAsync(Deployments.Pods, ws, Pod(ws, "shop"), CancellationToken.None);
        await cluster.Api.CreateAsync(Services, ws, Service(ws, "shop"), CancellationToken.None);
        await Deployments.CreateAsync(cluster.Api, ws, "shop", "registry.example/shop:1", replicas: 0);

        var pods = op.Runtime.InformerOf<V1Pod>()!;
        var services = op.Runtime.InformerOf<V1Service>()!;
        var deployments = op.Runtime.InformerOf<V1Deployment>()!;
        await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ws}/shop") is not null && services.Get($"{ws}/shop") is not null && deployments.Get($"{ws}/shop") is not null),
            TimeSpan.FromSeconds(60), "the workspace's pod, service and deployment cached");
        Assert.Null(pods.Get($"{foreign}/shop"));
        Assert.Null(services.Get($"{foreign}/shop"));
        Assert.Null(deployments.Get($"{foreign}/shop"));
        Assert.DoesNotContain(pods.List(), p => p.Metadata.NamespaceProperty == foreign);
        Assert.True(op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value >= 1, "the foreign pod was seen and dropped");

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
        Assert.Equal("Pending", pod.Status?.Phase);
        var service = services.Get($"{ws}/shop")!;
        Assert.Null(service.Metadata.Annotations);
        Assert.Equal(80, Assert.Single(service.Spec.Ports).Port);
        Assert.Equal("shop", service.Spec.Selector["app"]);
        Assert.Null(service.Spec.ClusterIP);
        var deployment = deployments.Get($"{ws}/shop")!;
        Assert.Equal("registry.example/shop:1", Assert.Single(deployment.Spec.Template.Spec.Containers).Image);
        Assert.Null(Assert.Single(deployment.Spec.Template.Spec.Containers).Resources);

        // Churn of foreign pod status: dropped before a handler sees it, so no reconcile anywhere.
        await op.WaitUntilIdleAsync();
        var reconciles = 0;
        // The controllers that watch these kinds, and anything keyed in the foreign namespace (other tests' leftovers may settle meanwhile).
        void Count(string controller, string key, string result)
        {
            if (controller is "rollout" or "exposure" || key.StartsWith(foreign + "/", StringComparison.Ordinal)) Interlocked.Increment(ref reconciles);
        }
        var droppedBefore = op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value;
        var adds = op.Runtime.Metrics.QueueAdds.WithLabels("rollout").Value + op.Runtime.Metrics.QueueAdds.WithLabels("exposure").Value;
        op.Runtime.Reconciled += Count;
        try
        {
            for (var i = 0; i < 30; i++) await ChurnStatusAsync(foreign, "shop", i);
            await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value >= droppedBefore + 30),
                TimeSpan.FromSeconds(60), "the 30 foreign status updates reached the pod watch");
            // A workspace pod's status change that touches nothing cached is no event either.
            for (var i = 0; i < 5; i++) await ChurnStatusAsync(ws, "shop", i);
            var version = (await cluster.Api.GetAsync<V1Pod>(Deployments.Pods, ws, "shop", CancellationToken.None)).Metadata.ResourceVersion;
            await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ws}/shop")?.Metadata.ResourceVersion == version), TimeSpan.FromSeconds(60),
                "the cache has the workspace pod's last version");
        }
        finally
        {
            op.Runtime.Reconciled -= Count;
        }

        Assert.Equal(adds, op.Runtime.Metrics.QueueAdds.WithLabels("rollout").Value + op.Runtime.Metrics.QueueAdds.WithLabels("exposure").Value);
        Assert.Equal(0, reconciles);
        await cluster.Api.DeleteAsync(Namespaces, null, foreign, CancellationToken.None);
    }

    [Fact]
    public async Task ANamespaceThatJoinsTheScope_HasItsExistingObjectsCached_AndLosesThemWhenItLeaves()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        await op.WaitUntilLeaderAndSyncedAsync();
        var pods = op.Runtime.InformerOf<V1Pod>()!;

        // A pod whose namespace is not (yet) governed, seen on the watch and dropped.
        var ns = await ForeignNamespaceAsync();
        await cluster.Api.CreateAsync(Deployments.Pods, ns, Pod(ns, "early"), CancellationToken.None);
        var dropped = op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value;
        await ChurnStatusAsync(ns, "early", 0);
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.Metrics.OutOfScope.WithLabels("pods").Value > dropped), TimeSpan.FromSeconds(60), "the pod's update dropped");
        Assert.Null(pods.Get($"{ns}/early"));

        // The namespace becomes one the operator governs (its label): the pod it already held is listed in.
        var label = "{\"metadata\":{\"labels\":{\"" + ApiGroup.ManagedByLabel + "\":\"" + ApiGroup.ManagedByValue + "\"}}}";
        await cluster.Api.PatchAsync<V1Namespace>(Namespaces, null, ns, label, PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ns}/early") is not null), TimeSpan.FromSeconds(60), "the early pod cached once its namespace joined");
        Assert.Null(pods.Get($"{ns}/early")!.Metadata.Annotations);

        // And leaves with its namespace.
        var unlabel = "{\"metadata\":{\"labels\":{\"" + ApiGroup.ManagedByLabel + "\":null}}}";
        await cluster.Api.PatchAsync<V1Namespace>(Namespaces, null, ns, unlabel, PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(pods.Get($"{ns}/early") is null), TimeSpan.FromSeconds(60), "the pod evicted once its namespace left");
        await cluster.Api.DeleteAsync(Namespaces, null, ns, CancellationToken.None);
    }
}
