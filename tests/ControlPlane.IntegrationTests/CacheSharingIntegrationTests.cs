using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The running operator's caches of a workspace's children keep what they repeat once (labels, owner
/// reference, quantities; issue 29), and an unchanged workspace still reconciles with zero writes
/// against them: a shared part compares as the object it came from. Real API server.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CacheSharingIntegrationTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    [Fact]
    public async Task ChildrenShareWhatTheyRepeat_AndAResyncStillWritesNothing()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        await op.WaitUntilLeaderAndSyncedAsync();
        var names = new[] { Unique(tenant), Unique(tenant) };
        foreach (var name in names)
        {
            await cluster.CreateWorkspaceAsync(name, tenant, w =>
            {
                w.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1"), Memory = new ResourceQuantity("1Gi"), Pods = 5 };
                w.Database = new WorkspaceDatabase { Enabled = false };
            });
        }

        foreach (var name in names) await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready", TimeSpan.FromMinutes(3));
        await op.WaitUntilIdleAsync();

        var quotas = op.Runtime.InformerOf<V1ResourceQuota>()!;
        var limits = op.Runtime.InformerOf<V1LimitRange>()!;
        var policies = op.Runtime.InformerOf<V1NetworkPolicy>()!;
        V1ResourceQuota? Quota(string ws) => quotas.Get($"{ws}/{WorkspaceResources.QuotaName}");
        await Net.WaitUntilAsync(() => Task.FromResult(names.All(n => Quota(n) is not null && limits.Get($"{n}/{WorkspaceResources.LimitRangeName}") is not null
            && policies.Get($"{n}/{WorkspaceResources.NetworkPolicyName}") is not null)), TimeSpan.FromSeconds(60), "children cached");

        // One workspace's children: one label set, one owner reference list.
        var limit = limits.Get($"{names[0]}/{WorkspaceResources.LimitRangeName}")!;
        var policy = policies.Get($"{names[0]}/{WorkspaceResources.NetworkPolicyName}")!;
        Assert.Same(limit.Metadata.Labels, policy.Metadata.Labels);
        Assert.Same(limit.Metadata.OwnerReferences, policy.Metadata.OwnerReferences);
        Assert.Equal(names[0], limit.Metadata.OwnerReferences.Single().Name);
        // Two workspaces asking the same: one quantity map, one name.
        Assert.Same(Quota(names[0])!.Spec.Hard, Quota(names[1])!.Spec.Hard);
        Assert.Same(Quota(names[0])!.Metadata.Name, Quota(names[1])!.Metadata.Name);
        Assert.Equal("1", Quota(names[0])!.Spec.Hard["requests.cpu"].ToString());

        // Both workspaces reconciled again against the shared parts: nothing of theirs is written (the cluster is shared with
        // other tests' leftovers, whose passes may write, so the check is on these workspaces' own objects, not a global count).
        async Task<List<string>> VersionsAsync()
        {
            var versions = new List<string>();
            foreach (var n in names)
            {
                versions.Add((await cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, n, CancellationToken.None)).Metadata.ResourceVersion);
                versions.Add((await cluster.Api.GetAsync<V1ResourceQuota>(WorkspaceReconciler.Quotas, n, WorkspaceResources.QuotaName, CancellationToken.None)).Metadata.ResourceVersion);
                versions.Add((await cluster.Api.GetAsync<V1LimitRange>(WorkspaceReconciler.LimitRanges, n, WorkspaceResources.LimitRangeName, CancellationToken.None)).Metadata.ResourceVersion);
                versions.Add((await cluster.Api.GetAsync<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, n, WorkspaceResources.NetworkPolicyName, CancellationToken.None)).Metadata.ResourceVersion);
            }

            return versions;
        }

        var before = await VersionsAsync();
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        void Count(string controller, string key, string result)
        {
            if (controller == "workspace" && names.Contains(key)) seen[key] = true;
        }

        op.Runtime.Reconciled += Count;
        try
        {
            op.Runtime.ResyncAll();
            await Net.WaitUntilAsync(() => Task.FromResult(names.All(seen.ContainsKey)), TimeSpan.FromSeconds(60), "both workspaces reconciled again");
        }
        finally
        {
            op.Runtime.Reconciled -= Count;
        }

        // Reconciled is raised when a pass has ended, its writes (if any) made.
        Assert.Equal(before, await VersionsAsync());
    }
}
