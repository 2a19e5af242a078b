using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

public sealed class QuotaLedgerTests
{
    static Informer<Workspace> NewInformer()
    {
        // Never started: the tests fill the cache by hand, so no request is made.
        var api = new KubeApi(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });
        return new Informer<Workspace>(api, WorkspaceReconciler.Type, new OperatorMetrics(), NullLogger.Instance)
            .AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true);
    }

    static Workspace Ws(string name, string tenant, string cpu, int second, string rv = "1") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, ResourceVersion = rv, CreationTimestamp = new DateTime(2026, 1, 1, 0, 0, second, DateTimeKind.Utc) },
        Spec = new WorkspaceSpec { Tenant = tenant, Quota = new WorkspaceQuota { Cpu = new ResourceQuantity(cpu) } },
    };

    static Tenant Tenant(string name, string cpu, string rv = "1") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, ResourceVersion = rv },
        Spec = new TenantSpec { Region = "eu", Quota = new TenantQuota { Cpu = new ResourceQuantity(cpu) } },
    };

    [Fact]
    public void IndexVersion_ChangesOnlyForTheBucketThatChanged_AndNeverRepeats()
    {
        var informer = NewInformer();
        Assert.Equal(0, informer.IndexVersion(WorkspaceResources.TenantIndex, "acme"));
        informer.Seed(Ws("a", "acme", "1", 0));
        informer.Seed(Ws("z", "other", "1", 0));
        var afterAdd = informer.IndexVersion(WorkspaceResources.TenantIndex, "acme");
        var other = informer.IndexVersion(WorkspaceResources.TenantIndex, "other");
        Assert.NotEqual(0, afterAdd);

        informer.Seed(Ws("a", "acme", "2", 0, rv: "2"));
        var afterUpdate = informer.IndexVersion(WorkspaceResources.TenantIndex, "acme");
        Assert.NotEqual(afterAdd, afterUpdate);
        Assert.Equal(other, informer.IndexVersion(WorkspaceResources.TenantIndex, "other"));

        informer.Evict(Ws("a", "acme", "2", 0));
        Assert.Equal(0, informer.IndexVersion(WorkspaceResources.TenantIndex, "acme"));
        informer.Seed(Ws("a", "acme", "1", 0, rv: "3"));
        var back = informer.IndexVersion(WorkspaceResources.TenantIndex, "acme");
        Assert.NotEqual(afterAdd, back);
        Assert.NotEqual(afterUpdate, back);
    }

    [Fact]
    public void InformerWithoutANamespaceIndex_StillAnswersByNamespace_AndRefusesVersionsOfUnversionedIndexes()
    {
        var api = new KubeApi(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });
        var bindings = new Informer<V1RoleBinding>(api, WorkspaceReconciler.RoleBindings, new OperatorMetrics(), NullLogger.Instance,
            new InformerOptions { IndexByNamespace = false });
        bindings.Seed(new V1RoleBinding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "team-a" } });
        bindings.Seed(new V1RoleBinding { Metadata = new V1ObjectMeta { Name = "b", NamespaceProperty = "team-b" } });
        Assert.Equal("a", Assert.Single(bindings.InNamespace("team-a")).Metadata.Name);
        Assert.Throws<InvalidOperationException>(() => NewInformer().IndexVersion(Informer<Workspace>.NamespaceIndex, "x"));
    }

    [Fact]
    public void Ledger_DecidesATenantOnce_UntilATenantOrSiblingChanges_AndAgreesWithAllocateQuota()
    {
        var informer = NewInformer();
        var ledger = new QuotaLedger(informer);
        var acme = Tenant("acme", "10");
        var all = Enumerable.Range(0, 50).Select(i => Ws($"w{i:00}", "acme", "300m", i)).ToList();
        foreach (var w in all) informer.Seed(w);

        foreach (var w in all)
        {
            var expected = Quota.AllocateQuota(w, acme, all);
            var got = ledger.GrantFor(w, acme);
            Assert.Equal(expected.Exceeded, got.Exceeded);
            Assert.Equal(expected.Granted["cpu"].CanonicalizeString(), got.Granted["cpu"].CanonicalizeString());
        }

        Assert.Equal(1, ledger.Decisions);
        Assert.True(ledger.GrantFor(all[49], acme).Exceeded); // 50 × 300m > 10

        // A sibling gives room back: the last one now fits, decided afresh once.
        var smaller = Ws("w00", "acme", "100m", 0, rv: "2");
        informer.Seed(smaller);
        all[0] = smaller;
        var last = ledger.GrantFor(all[49], acme);
        Assert.Equal(2, ledger.Decisions);
        Assert.Equal(Quota.AllocateQuota(all[49], acme, all).Granted["cpu"].CanonicalizeString(), last.Granted["cpu"].CanonicalizeString());

        // The tenant itself changes.
        var bigger = Tenant("acme", "100", rv: "2");
        Assert.False(ledger.GrantFor(all[49], bigger).Exceeded);
        Assert.Equal(3, ledger.Decisions);
    }

    [Fact]
    public void Ledger_DecidesACopyTheCacheDoesNotHaveOnItsOwn()
    {
        var informer = NewInformer();
        var ledger = new QuotaLedger(informer);
        var acme = Tenant("acme", "1");
        informer.Seed(Ws("a", "acme", "1", 0));
        informer.Seed(Ws("b", "acme", "500m", 1));
        // The reconciler holds a newer "b" (asks for less) than the cache: the grant follows that copy.
        var newer = Ws("b", "acme", "0", 1, rv: "9");
        var grant = ledger.GrantFor(newer, acme);
        Assert.False(grant.Exceeded);
        Assert.Equal(0, ledger.Decisions);
    }

    [Fact]
    public void Ledger_WhenEveryoneFits_GrantsEveryFullAsk_ExactlyAsAllocateAllDoes()
    {
        var informer = NewInformer();
        var ledger = new QuotaLedger(informer);
        var acme = Tenant("acme", "100");
        acme.Spec.Quota!.Memory = new ResourceQuantity("100Gi");
        string[] cpus = ["1", "500m", "1500m", "2000m", "0.25", "1.5"];
        string[] memories = ["1Gi", "512Mi", "1536Mi", "2G", "1000M", "0.5Gi"];
        var all = cpus.Select((cpu, i) =>
        {
            var w = Ws($"w{i}", "acme", cpu, i);
            w.Spec.Quota!.Memory = new ResourceQuantity(memories[i]);
            return w;
        }).ToList();
        foreach (var w in all) informer.Seed(w);

        var decided = Quota.AllocateAll(acme, all);
        foreach (var w in all)
        {
            var got = ledger.GrantFor(w, acme);
            Assert.False(got.Exceeded);
            Assert.Equal(decided[w.Metadata.Name].Granted.Keys.Order(), got.Granted.Keys.Order());
            foreach (var (field, quantity) in decided[w.Metadata.Name].Granted)
            {
                Assert.Equal(quantity.CanonicalizeString(), got.Granted[field].CanonicalizeString());
            }
        }

        Assert.Equal(1, ledger.Decisions);
    }
}
