using ControlPlane.LocalEnv;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The test environment's real parts for rollouts: kube-controller-manager runs Deployments and
/// ReplicaSets, and the node stand-in binds their pods and reports them ready, or crash-looping for
/// an image marked bad.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NodeStandInTests(ClusterFixture cluster)
{
    [Fact]
    public async Task ADeployment_RollsOut_AndABadImage_CrashLoops()
    {
        var ns = "standin-" + Guid.NewGuid().ToString("N")[..6];
        await cluster.Plane.EnsureNamespaceAsync(ns);
        await Deployments.CreateAsync(cluster.Api, ns, "web", "registry.example/web:1.0.0");
        await Deployments.WaitAsync(cluster.Api, ns, "web", Deployments.IsRolledOut, "rolled out");
        var pods = await Deployments.PodsAsync(cluster.Api, ns, "web");
        Assert.All(pods, p => Assert.Equal(NodeStandIn.NodeName, p.Spec.NodeName));

        const string bad = "registry.example/web:1.0.1-broken";
        cluster.Node.MarkBad(bad);
        await cluster.Api.PatchAsync<V1Deployment>(Deployments.Type, ns, "web",
            """{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/web:1.0.1-broken"}]}}}}""",
            "application/strategic-merge-patch+json", CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Deployments.PodsAsync(cluster.Api, ns, "web"))
                .Any(p => p.Spec.Containers[0].Image == bad && p.Status?.ContainerStatuses?.Any(c => c.RestartCount >= 2 && !c.Ready) == true),
            TimeSpan.FromSeconds(30), "a pod of the bad image crash-looping with climbing restarts");
        var d = await Deployments.GetAsync(cluster.Api, ns, "web");
        Assert.False(Deployments.IsRolledOut(d));
    }
}
