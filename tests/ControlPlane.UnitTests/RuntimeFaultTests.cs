using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>Runtime faults that once passed silently: handlers that throw, indexes read mid-update.</summary>
public sealed class RuntimeFaultTests
{
    // Never started: the tests fill the caches by hand, so no request is made.
    static readonly KubeApi Offline = new(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });

    static Informer<T> Cache<T>(ResourceType type) where T : class, IKubernetesObject<V1ObjectMeta> =>
        new(Offline, type, new OperatorMetrics(), NullLogger.Instance);

    [Fact]
    public void SiblingsAffectedBy_AWorkspaceWithoutQuota_UnderATenantWithQuota_DoesNotThrow()
    {
        var workspaces = Cache<Workspace>(WorkspaceReconciler.Type).AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true);
        var tenants = Cache<Tenant>(TenantReconciler.Type);
        tenants.Seed(new Tenant { Metadata = new V1ObjectMeta { Name = "acme" }, Spec = new TenantSpec { Region = "eu", Quota = new TenantQuota { Cpu = new ResourceQuantity("4") } } });
        var noQuota = new Workspace { Metadata = new V1ObjectMeta { Name = "a", Generation = 2 }, Spec = new WorkspaceSpec { Tenant = "acme" } };
        var sibling = new Workspace { Metadata = new V1ObjectMeta { Name = "b" }, Spec = new WorkspaceSpec { Tenant = "acme", Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1") } } };
        workspaces.Seed(noQuota);
        workspaces.Seed(sibling);
        var caches = new WorkspaceCaches(workspaces, tenants, Cache<V1Namespace>(ResourceType.Namespaces), Cache<V1RoleBinding>(WorkspaceReconciler.RoleBindings),
            Cache<V1ResourceQuota>(WorkspaceReconciler.Quotas), Cache<V1LimitRange>(WorkspaceReconciler.LimitRanges), Cache<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies),
            Cache<V1ConfigMap>(WorkspaceReconciler.ConfigMaps), Cache<V1Secret>(WorkspaceReconciler.Secrets), Cache<PartialObjectMetadata>(WorkspaceReconciler.Secrets));
        var options = new ControlPlaneOptions();
        var reconciler = new WorkspaceReconciler(caches, Offline, new SystemDatabase(NpgsqlDataSource.Create("Host=127.0.0.1;Port=1"), NullLogger.Instance),
            new RegionDatabases(options), null, new ObjectWriter(Offline), new ChildApplier(Offline),
            new EventRecorder(Offline, "test", "test", TimeProvider.System, NullLogger<EventRecorder>.Instance), options, TimeProvider.System, NullLogger<WorkspaceReconciler>.Instance);

        // A metadata-only update of a workspace that has no spec.quota (the old code serialized null and threw).
        var updated = new Workspace { Metadata = new V1ObjectMeta { Name = "a", Generation = 2, Labels = new Dictionary<string, string> { ["x"] = "y" } }, Spec = noQuota.Spec };
        Assert.Empty(reconciler.SiblingsAffectedBy(new InformerEvent<Workspace>(InformerEventType.Modified, noQuota, updated)));
        // Gaining a quota frees or takes room: the siblings are decided again.
        var withQuota = new Workspace { Metadata = updated.Metadata, Spec = new WorkspaceSpec { Tenant = "acme", Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("2") } } };
        Assert.Equal(["b"], reconciler.SiblingsAffectedBy(new InformerEvent<Workspace>(InformerEventType.Modified, noQuota, withQuota)));
    }

    [Fact]
    public async Task AnIndexReader_SeesTheOldOrTheNewObject_NeverNeither()
    {
        var workspaces = Cache<Workspace>(WorkspaceReconciler.Type).AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true);
        Workspace Version(int i) => new() { Metadata = new V1ObjectMeta { Name = "only", ResourceVersion = i.ToString(System.Globalization.CultureInfo.InvariantCulture) }, Spec = new WorkspaceSpec { Tenant = "acme" } };
        workspaces.Seed(Version(0));
        using var stop = new CancellationTokenSource();
        var missing = 0;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (workspaces.ByIndex(WorkspaceResources.TenantIndex, "acme").Count != 1) Interlocked.Increment(ref missing);
            }
        });
        for (var i = 1; i < 200_000; i++) workspaces.Seed(Version(i));
        await stop.CancelAsync();
        await reader;
        Assert.Equal(0, missing);
    }
}

/// <summary>A loop of the term that dies fails the runtime: no silent death.</summary>
public sealed class DeadLoopTests
{
    [Fact]
    public async Task ALoopThatDies_FailsTheManager_WithItsName_AndEndsTheTerm()
    {
        var api = new KubeApi(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });
        var manager = new Manager(api, new OperatorMetrics(), new ManagerOptions(), NullLoggerFactory.Instance, TimeProvider.System)
            .Add(b => b.Loop("doomed", async ct =>
            {
                await Task.Yield();
                throw new InvalidOperationException("boom");
            }))
            .Add(b => b.Loop("healthy", ct => Task.Delay(Timeout.Infinite, ct)));
        string? fatal = null;
        manager.Fatal += reason => fatal = reason;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await manager.RunAsync(stop.Token); // returns once the term has ended, not at the 30 s cancellation
        Assert.False(stop.IsCancellationRequested);
        Assert.Contains("doomed died: InvalidOperationException: boom", manager.FatalError);
        Assert.Equal(manager.FatalError, fatal);
        Assert.False(manager.IsLeader);
    }
}

/// <summary>
/// A workspace added (or changing hands) re-queues the workspaces with a ServiceAccount member in its
/// namespace, found through an index: a scan of every workspace per added one made a restart over
/// 5,000 workspaces spend seconds of CPU before the Workspace cache synced (issue 29).
/// </summary>
public sealed class WorkspaceMembersMappingTests
{
    static readonly KubeApi Offline = new(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });

    static Informer<T> Cache<T>(ResourceType type) where T : class, IKubernetesObject<V1ObjectMeta> =>
        new(Offline, type, new OperatorMetrics(), NullLogger.Instance);

    [Fact]
    public void AnAddedWorkspace_MapsToTheWorkspacesWithAServiceAccountMemberInIt_AmongThousands()
    {
        var workspaces = WorkspaceReconciler.Indexed(Cache<Workspace>(WorkspaceReconciler.Type));
        var caches = new WorkspaceCaches(workspaces, Cache<Tenant>(TenantReconciler.Type), Cache<V1Namespace>(ResourceType.Namespaces), Cache<V1RoleBinding>(WorkspaceReconciler.RoleBindings),
            Cache<V1ResourceQuota>(WorkspaceReconciler.Quotas), Cache<V1LimitRange>(WorkspaceReconciler.LimitRanges), Cache<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies),
            Cache<V1ConfigMap>(WorkspaceReconciler.ConfigMaps), Cache<V1Secret>(WorkspaceReconciler.Secrets), Cache<PartialObjectMetadata>(WorkspaceReconciler.Secrets));
        var options = new ControlPlaneOptions();
        var reconciler = new WorkspaceReconciler(caches, Offline, new SystemDatabase(NpgsqlDataSource.Create("Host=127.0.0.1;Port=1"), NullLogger.Instance),
            new RegionDatabases(options), null, new ObjectWriter(Offline), new ChildApplier(Offline),
            new EventRecorder(Offline, "test", "test", TimeProvider.System, NullLogger<EventRecorder>.Instance), options, TimeProvider.System, NullLogger<WorkspaceReconciler>.Instance);
        static Workspace Ws(string name, params WorkspaceMember[] members) =>
            new() { Metadata = new V1ObjectMeta { Name = name }, Spec = new WorkspaceSpec { Tenant = "acme", Members = [.. members] } };
        for (var i = 0; i < 5000; i++) workspaces.Seed(Ws($"ws-{i:0000}", new WorkspaceMember { Kind = "User", Name = $"dev{i}@example.com", Role = "Operator" }));
        workspaces.Seed(Ws("ci", new WorkspaceMember { Kind = "ServiceAccount", Name = "builds/runner", Role = "Operator" }));
        workspaces.Seed(Ws("ci-self", new WorkspaceMember { Kind = "ServiceAccount", Name = "ci-self/runner", Role = "Operator" }));

        var builds = Ws("builds");
        workspaces.Seed(builds);
        Assert.Equal(["ci"], reconciler.MembersInNamespaceOf(new InformerEvent<Workspace>(InformerEventType.Added, null, builds)));
        // A workspace never re-queues itself; one whose namespace no member names re-queues no one.
        Assert.Empty(reconciler.MembersInNamespaceOf(new InformerEvent<Workspace>(InformerEventType.Added, null, workspaces.Get("ci-self")!)));
        Assert.Empty(reconciler.MembersInNamespaceOf(new InformerEvent<Workspace>(InformerEventType.Added, null, workspaces.Get("ws-0001")!)));

        // A member changed from a user to a ServiceAccount moves the workspace into the index.
        var changed = Ws("ws-0002", new WorkspaceMember { Kind = "ServiceAccount", Name = "builds/deployer", Role = "Operator" });
        workspaces.Seed(changed);
        Assert.Equal(["ci", "ws-0002"], reconciler.MembersInNamespaceOf(new InformerEvent<Workspace>(InformerEventType.Added, null, builds)).Order());
    }
}
