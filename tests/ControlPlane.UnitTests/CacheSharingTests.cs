using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using Xunit;
using k8s;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Cached built-in objects keep what siblings repeat whole (labels, owner references, quantities) once,
/// read-only; what they are is unchanged, so a child compared against the cache looks the same as before.
/// </summary>
public sealed class CacheSharingTests
{
    static string Fresh(string s) => new(s.AsSpan());

    static V1ObjectMeta Meta(string name, string ns) => new()
    {
        Name = Fresh(name),
        NamespaceProperty = Fresh(ns),
        ResourceVersion = "42",
        Labels = new Dictionary<string, string> { [Fresh("app.kubernetes.io/managed-by")] = Fresh("controlplane"), [Fresh("controlplane.io/workspace")] = Fresh(ns) },
        OwnerReferences = [new V1OwnerReference { ApiVersion = Fresh("controlplane.io/v1alpha1"), Kind = Fresh("Workspace"), Name = Fresh(ns), Uid = Fresh("uid-" + ns), Controller = true }],
    };

    static V1LimitRange Limits(string ns) => new()
    {
        Metadata = Meta("workspace-limits", ns),
        Spec = new V1LimitRangeSpec
        {
            Limits = [new V1LimitRangeItem { Type = Fresh("Container"), DefaultProperty = new Dictionary<string, ResourceQuantity> { [Fresh("cpu")] = new("500m"), [Fresh("memory")] = new("512Mi") } }],
        },
    };

    [Fact]
    public void SiblingsOfAWorkspace_ShareLabelsAndOwner_AndEveryWorkspaceTheNamesAndQuantities()
    {
        var pool = new StringPool();
        var quota = CacheCompaction.Compact(new V1ResourceQuota { Metadata = Meta("workspace-quota", "team-a"), Spec = new() { Hard = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("2") } } }, pool);
        var policy = CacheCompaction.Compact(new V1NetworkPolicy { Metadata = Meta("default-deny", "team-a"), Spec = new V1NetworkPolicySpec { PodSelector = new() } }, pool);
        var otherQuota = CacheCompaction.Compact(new V1ResourceQuota { Metadata = Meta("workspace-quota", "team-b"), Spec = new() { Hard = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("2") } } }, pool);

        Assert.Same(quota.Metadata.Labels, policy.Metadata.Labels);
        Assert.Same(quota.Metadata.OwnerReferences, policy.Metadata.OwnerReferences);
        Assert.NotSame(quota.Metadata.Labels, otherQuota.Metadata.Labels); // another workspace, another label value
        Assert.Same(quota.Metadata.Name, otherQuota.Metadata.Name);
        Assert.Same(quota.Spec.Hard, otherQuota.Spec.Hard);

        var a = CacheCompaction.Compact(Limits("team-a"), pool);
        var b = CacheCompaction.Compact(Limits("team-b"), pool);
        Assert.Same(a.Spec.Limits[0].DefaultProperty, b.Spec.Limits[0].DefaultProperty);
        Assert.Equal("512Mi", b.Spec.Limits[0].DefaultProperty["memory"].ToString());
    }

    [Fact]
    public void ASharedPart_CannotBeChangedThroughOneObject()
    {
        var pool = new StringPool();
        var quota = CacheCompaction.Compact(new V1ResourceQuota { Metadata = Meta("workspace-quota", "team-a") }, pool);
        var policy = CacheCompaction.Compact(new V1NetworkPolicy { Metadata = Meta("default-deny", "team-a") }, pool);

        Assert.Throws<NotSupportedException>(() => quota.Metadata.Labels["x"] = "y");
        Assert.Throws<NotSupportedException>(() => quota.Metadata.OwnerReferences.Add(new V1OwnerReference()));
        Assert.False(policy.Metadata.Labels.ContainsKey("x"));
    }

    [Fact]
    public void ASharedObject_SerializesAsItsOriginal_SoTheApplierSeesNoDifference()
    {
        var original = KubernetesJson.Serialize(Limits("team-a"));
        var pool = new StringPool();
        CacheCompaction.Compact(Limits("team-a"), pool);
        var shared = CacheCompaction.Compact(Limits("team-a"), pool);

        Assert.Equal(original, KubernetesJson.Serialize(shared));
        var desired = Limits("team-a");
        var want = System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(desired))!.AsObject();
        var have = System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(shared))!.AsObject();
        Assert.True(ChildApplier.Matches(want, have, ["spec"]));
    }

    [Fact]
    public void ThePlatformsOwnKinds_KeepTheirOwnParts()
    {
        var pool = new StringPool();
        Workspace Ws() => new() { Metadata = new V1ObjectMeta { Name = Fresh("team-a"), Labels = new Dictionary<string, string> { ["a"] = "b" } } };
        var one = CacheCompaction.Compact(Ws(), pool);
        var two = CacheCompaction.Compact(Ws(), pool);

        Assert.NotSame(one.Metadata.Labels, two.Metadata.Labels);
        one.Metadata.Labels["c"] = "d"; // still a plain dictionary
    }
}
