using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

public sealed class CacheCompactionTests
{
    // Strings as deserialization makes them: a fresh instance per object.
    static string Fresh(string s) => new(s.AsSpan());

    static V1RoleBinding Binding(string name) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = Fresh("team-a"),
            Labels = new Dictionary<string, string> { [Fresh("app.kubernetes.io/managed-by")] = Fresh("controlplane"), [Fresh("controlplane.io/workspace")] = Fresh("team-a") },
            OwnerReferences = [new V1OwnerReference { ApiVersion = Fresh("controlplane.io/v1alpha1"), Kind = Fresh("Workspace"), Name = Fresh("team-a"), Uid = Fresh("0b8f3c0e-1111-2222-3333-444455556666") }],
            ManagedFields = [new V1ManagedFieldsEntry { Manager = "kubectl" }],
        },
        RoleRef = new V1RoleRef { ApiGroup = Fresh("rbac.authorization.k8s.io"), Kind = Fresh("ClusterRole"), Name = Fresh("controlplane:workspace-operator") },
        Subjects = [new Rbacv1Subject { Kind = Fresh("User"), Name = name + "@example.com", ApiGroup = Fresh("rbac.authorization.k8s.io") }],
    };

    [Fact]
    public void CachedSiblings_ShareTheirRepeatedStrings_AndLoseManagedFields()
    {
        var pool = new StringPool();
        var a = CacheCompaction.Compact(Binding("alice"), pool);
        var b = CacheCompaction.Compact(Binding("bob"), pool);

        Assert.Null(a.Metadata.ManagedFields);
        Assert.Same(a.Metadata.NamespaceProperty, b.Metadata.NamespaceProperty);
        Assert.Same(a.Metadata.Labels.Keys.First(), b.Metadata.Labels.Keys.First());
        Assert.Same(a.Metadata.Labels["controlplane.io/workspace"], b.Metadata.Labels["controlplane.io/workspace"]);
        // The owner's name is the namespace: one string for both, across objects.
        Assert.Same(a.Metadata.NamespaceProperty, b.Metadata.OwnerReferences[0].Name);
        Assert.Same(a.Metadata.OwnerReferences[0].Uid, b.Metadata.OwnerReferences[0].Uid);
        Assert.Same(a.RoleRef.Name, b.RoleRef.Name);
        Assert.Same(a.Subjects[0].Kind, b.Subjects[0].Kind);
        // Values stay what they were.
        Assert.Equal("controlplane", a.Metadata.Labels["app.kubernetes.io/managed-by"]);
        Assert.Equal("bob@example.com", b.Subjects[0].Name);
    }

    [Fact]
    public void QuotaStatus_IsNotCached_ButItsSpecIs()
    {
        var quota = new V1ResourceQuota
        {
            Metadata = new V1ObjectMeta { Name = "workspace-quota", NamespaceProperty = "team-a" },
            Spec = new V1ResourceQuotaSpec { Hard = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("2") } },
            Status = new V1ResourceQuotaStatus { Hard = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("2") }, Used = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("0") } },
        };
        var kept = CacheCompaction.Compact(quota, new StringPool(), dropStatus: true);
        Assert.Null(kept.Status);
        Assert.Equal("2", kept.Spec.Hard["cpu"].ToString());
    }

    [Fact]
    public void Pool_LeavesLongStringsAlone_AndStartsAfreshPastItsCapacity()
    {
        var pool = new StringPool(capacity: 3);
        var longValue = new string('x', StringPool.MaxLength + 1);
        Assert.Same(longValue, pool.Intern(longValue));
        Assert.Equal(0, pool.Count);

        var first = pool.Intern(Fresh("a"));
        Assert.Same(first, pool.Intern(Fresh("a")));
        pool.Intern("b");
        pool.Intern("c");
        Assert.Equal(3, pool.Count);
        pool.Intern("d"); // over capacity: the pool empties, then keeps "d"
        Assert.Equal(1, pool.Count);
        Assert.NotSame(first, pool.Intern(Fresh("a")));
    }
}
