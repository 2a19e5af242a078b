using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The reconciler never trusts admission alone with a workspace's environment: here there is no
/// webhook (as when it is down or bypassed), and a prod workspace lowered to dev stays prod for the
/// operator, and its deletion keeps the namespace until a platform administrator lifts the guard.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class EnvironmentReconcileTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<string?> NamespaceLabelAsync(string name) =>
        (await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None))?.Metadata.Labels?.TryGetValue(ApiGroup.EnvironmentLabel, out var v) == true ? v : null;

    [Fact]
    public async Task AProdWorkspaceLoweredPastAdmission_StaysProd_AndItsDeletionWaitsForTheGuard()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("envr");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await cluster.CreateWorkspaceAsync(name, tenant, s =>
        {
            s.Environment = "prod";
            s.Database = new WorkspaceDatabase { Enabled = false };
        });
        await cluster.WaitForWorkspaceAsync(name, w => ClusterFixture.IsReady(w) && w.Status!.Environment == "prod", "Ready, recorded prod");

        // Lowered with no webhook in the way: the operator keeps applying prod (status, namespace label, settings).
        var lowered = await cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, name, "{\"spec\":{\"environment\":\"dev\"}}", PatchTypes.Merge, CancellationToken.None);
        var seen = await cluster.WaitForWorkspaceAsync(name, w => ClusterFixture.IsReady(w) && w.Status!.ObservedGeneration == lowered.Metadata.Generation, "the lowered spec reconciled");
        Assert.Equal(("dev", "prod"), (seen.Spec.Environment, seen.Status!.Environment));
        Assert.Equal("prod", await NamespaceLabelAsync(name));
        var settings = await cluster.Api.GetAsync<V1ConfigMap>(WorkspaceReconciler.ConfigMaps, name, WorkspaceResources.ConfigMapName, CancellationToken.None);
        Assert.Equal("prod", settings.Data["environment"]);

        // Deleted: the namespace (and database) stay, the reason is in status, until the guard is lifted.
        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        var held = await cluster.WaitForWorkspaceAsync(name, w => ClusterFixture.Condition(w, "Ready")?.Reason == "DeletionGuarded", "deletion held");
        Assert.Contains(ApiGroup.AllowDeleteAnnotation, ClusterFixture.Condition(held, "Ready")!.Message);
        var ns = await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None);
        Assert.Null(ns.Metadata.DeletionTimestamp);

        await cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, name,
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.AllowDeleteAnnotation + "\":\"true\"}}}", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.GetWorkspaceAsync(name) is null, TimeSpan.FromSeconds(60), "deleted once the guard is lifted");
    }
}
