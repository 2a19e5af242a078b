using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

public sealed class OwnWritesTests
{
    static readonly ResourceType Maps = WorkspaceReconciler.ConfigMaps;

    static V1ObjectMeta Meta(string rv, string name = "settings") => new() { Name = name, NamespaceProperty = "team-a", ResourceVersion = rv };

    static string Response(string rv) => """{"metadata":{"name":"settings","namespace":"team-a","resourceVersion":"RV"}}""".Replace("RV", rv, StringComparison.Ordinal);

    [Fact]
    public async Task EchoAfterTheResponse_IsOursOnce_AndAnotherWritersLaterChangeIsNot()
    {
        var writes = new OwnWrites();
        await writes.TrackAsync(Maps, "team-a", "settings", () => Task.FromResult(Response("10")));

        Assert.False(writes.IsEcho(Maps, Meta("9")));
        Assert.Equal(0, writes.Count); // a version other than ours ends the wait for an echo

        await writes.TrackAsync(Maps, "team-a", "settings", () => Task.FromResult(Response("11")));
        Assert.True(writes.IsEcho(Maps, Meta("11")));
        Assert.False(writes.IsEcho(Maps, Meta("11")));
        Assert.False(writes.IsEcho(Maps, Meta("12")));
        Assert.False(writes.IsEcho(Maps, Meta("11", name: "other")));
    }

    [Fact]
    public async Task EchoBeforeTheResponse_IsTheFirstEventWhileTheWriteIsInFlight_OnlyThatOne()
    {
        var writes = new OwnWrites();
        var respond = new TaskCompletionSource<string>();
        var write = writes.TrackAsync(Maps, "team-a", "settings", () => respond.Task);

        Assert.True(writes.IsEcho(Maps, Meta("20")));   // the watch was faster than the response
        Assert.False(writes.IsEcho(Maps, Meta("21")));  // a second event is somebody else's
        respond.SetResult(Response("20"));
        await write;
        Assert.Equal(0, writes.Count);
        Assert.False(writes.IsEcho(Maps, Meta("20")));
    }

    [Fact]
    public async Task EventTakenWhileInFlight_ThatWasNotOurVersion_FailsTheWriteAsAConflict_SoTheReconcileRunsAgain()
    {
        // Our write was a no-op on the server (same version back, no event), and somebody else's
        // change arrived before our response: it was taken for our echo, so the reconcile must rerun.
        var writes = new OwnWrites();
        var respond = new TaskCompletionSource<string>();
        var write = writes.TrackAsync(Maps, "team-a", "settings", () => respond.Task);
        Assert.True(writes.IsEcho(Maps, Meta("41")));
        respond.SetResult(Response("40"));
        var conflict = await Assert.ThrowsAsync<KubeApiException>(() => write);
        Assert.True(conflict.IsConflict);
        Assert.Equal(0, writes.Count);
    }

    [Fact]
    public async Task FailedWrite_LeavesNothingToMatch_AndDeletionForgets()
    {
        var writes = new OwnWrites();
        await Assert.ThrowsAsync<KubeApiException>(() => writes.TrackAsync(Maps, "team-a", "settings",
            () => Task.FromException<string>(new KubeApiException(System.Net.HttpStatusCode.Conflict, "Conflict", "the object has been modified"))));
        Assert.Equal(0, writes.Count);
        Assert.False(writes.IsEcho(Maps, Meta("30")));

        await writes.TrackAsync(Maps, "team-a", "settings", () => Task.FromResult(Response("31")));
        writes.Forget(Maps, Meta("31"));
        Assert.False(writes.IsEcho(Maps, Meta("31")));
    }

    [Fact]
    public void QuotaUsageUpdate_IsTheSameAsCached_ASpecChangeIsNot()
    {
        V1ResourceQuota Quota(string rv, string cpu, string used) => CacheCompaction.Compact(new V1ResourceQuota
        {
            Metadata = new V1ObjectMeta { Name = "controlplane-quota", NamespaceProperty = "team-a", ResourceVersion = rv },
            Spec = new V1ResourceQuotaSpec { Hard = new Dictionary<string, ResourceQuantity> { ["requests.cpu"] = new(cpu) } },
            Status = new V1ResourceQuotaStatus { Used = new Dictionary<string, ResourceQuantity> { ["requests.cpu"] = new(used) } },
        }, null, dropStatus: true);

        var first = Quota("1", "2", "0");
        var usage = Quota("2", "2", "500m");
        Assert.True(CacheCompaction.SameAsCached(first, usage, dropsParts: true));
        Assert.Equal("2", usage.Metadata.ResourceVersion); // the cache still takes the new version
        Assert.False(CacheCompaction.SameAsCached(first, Quota("3", "4", "0"), dropsParts: true));
        Assert.False(CacheCompaction.SameAsCached(first, usage, dropsParts: false)); // a cache that keeps status sees the change
    }

    static Workspace Ws(string name, string cpu) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new WorkspaceSpec { Tenant = "acme", Quota = new WorkspaceQuota { Cpu = new ResourceQuantity(cpu) } },
    };

    [Fact]
    public void FitsEveryone_OnlyWhenEveryFullAskAndTheCountFit()
    {
        var tenant = new Tenant
        {
            Metadata = new V1ObjectMeta { Name = "acme" },
            Spec = new TenantSpec { Region = "eu", Quota = new TenantQuota { Cpu = new ResourceQuantity("2"), MaxWorkspaces = 3 } },
        };
        Assert.True(Quota.FitsEveryone(tenant, [Ws("a", "1"), Ws("b", "500m"), Ws("c", "500m")]));
        Assert.False(Quota.FitsEveryone(tenant, [Ws("a", "1"), Ws("b", "1500m")]));
        Assert.False(Quota.FitsEveryone(tenant, [Ws("a", "100m"), Ws("b", "100m"), Ws("c", "100m"), Ws("d", "100m")]));
        // When everyone fits, the one-pass allocation grants every full ask, whatever the order.
        var all = new List<Workspace> { Ws("a", "1"), Ws("b", "500m"), Ws("c", "500m") };
        foreach (var (name, grant) in Quota.AllocateAll(tenant, all))
        {
            Assert.Empty(grant.Shortfalls);
            Assert.Equal(all.Single(w => w.Metadata.Name == name).Spec.Quota!.Cpu!.ToDecimal(), grant.Granted["cpu"].ToDecimal());
        }
    }
}
