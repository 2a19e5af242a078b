using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// What the reconcilers do with input the webhook would have refused (it can be absent, bypassed,
/// or older than a rule): the operator runs here without it, as in WorkspaceTests, so the bad
/// member, quantity or name reaches them. Removals still happen, nothing freezes, failures show in
/// status at the current generation.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReconcileFailureTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    Task<Workspace> CreateWorkspaceAsync(string name, string tenant, Action<WorkspaceSpec>? edit = null) =>
        cluster.CreateWorkspaceAsync(name, tenant, s =>
        {
            s.Database = new WorkspaceDatabase { Enabled = false };
            edit?.Invoke(s);
        });

    Task<Workspace?> GetAsync(string name) => cluster.GetWorkspaceAsync(name);

    Task<Workspace> WaitForAsync(string name, Func<Workspace, bool> condition, string what, TimeSpan? timeout = null) =>
        cluster.WaitForWorkspaceAsync(name, condition, what, timeout);

    static V1Condition? Condition(Workspace w, string type) => ClusterFixture.Condition(w, type);

    static bool IsReady(Workspace w) => ClusterFixture.IsReady(w);

    /// <summary>A condition of the given status and reason, observed at the workspace's current generation.</summary>
    static bool Has(Workspace w, string type, string status, string? reason = null) =>
        Condition(w, type) is { } c && c.Status == status && (reason is null || c.Reason == reason)
        && c.ObservedGeneration == w.Metadata.Generation && w.Status!.ObservedGeneration == w.Metadata.Generation;

    async Task<bool> CanAsync(string user, string verb, string resource, string ns, string group = "")
    {
        var review = new V1SubjectAccessReview
        {
            ApiVersion = "authorization.k8s.io/v1",
            Kind = "SubjectAccessReview",
            Spec = new V1SubjectAccessReviewSpec
            {
                User = user,
                Groups = ["system:authenticated"],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Resource = resource, Group = group, NamespaceProperty = ns },
            },
        };
        var type = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        return (await cluster.Api.CreateAsync(type, null, review, CancellationToken.None)).Status.Allowed;
    }

    async Task<bool> HasEventAsync(string name, string reason) =>
        (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, "default", null, 1000, null, CancellationToken.None)).Items
        .Any(e => e.InvolvedObject.Name == name && e.Reason == reason);

    async Task<long> WorkspaceRowsAsync(string name)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM controlplane.workspaces WHERE name = $1", conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task RemovingAMember_RevokesAccess_EvenWhenAMemberAddedWithItCannotBeBound()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant, s => s.Members =
        [
            new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Auditor" },
        ]);
        var ws = await WaitForAsync(name, IsReady, "Ready");
        Assert.True(await CanAsync("bob@example.com", "create", "deployments", name, "apps"));

        // One update: bob removed, a member that can never become a RoleBinding added.
        // In the workspace's own namespace, so the operator tries it (a ServiceAccount elsewhere is refused before the API server sees it).
        var updated = await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name,
            w => w.Spec.Members = [w.Spec.Members![1], new WorkspaceMember { Kind = "ServiceAccount", Name = $"{name}/Bad_Name", Role = "Operator" }]);

        ws = await WaitForAsync(name, w => Has(w, WorkspaceConditions.AccessReady, "False", "BindingFailed"), "AccessReady=False at the new generation");
        Assert.Equal(updated.Metadata.Generation, ws.Status!.ObservedGeneration);
        var access = Condition(ws, WorkspaceConditions.AccessReady)!.Message;
        Assert.Contains($"{name}/Bad_Name", access);
        Assert.Contains("Invalid value", access); // the API server's own reason
        Assert.True(Has(ws, WorkspaceConditions.Ready, "False"));
        Assert.NotEqual(WorkspacePhase.Ready, ws.Status.Phase);

        // The removed member's binding is gone and the API server denies them; the kept one still works.
        var bindings = await cluster.Api.ListAsync<V1RoleBinding>(WorkspaceReconciler.RoleBindings, name, null, 100, null, CancellationToken.None);
        Assert.DoesNotContain(bindings.Items, b => b.Subjects.Any(s => s.Name == "bob@example.com"));
        await Net.WaitUntilAsync(async () => !await CanAsync("bob@example.com", "create", "deployments", name, "apps"), TimeSpan.FromSeconds(60), "bob denied");
        Assert.True(await CanAsync("carol@example.com", "list", "deployments", name, "apps"));
        await Net.WaitUntilAsync(() => HasEventAsync(name, "BindingFailed"), TimeSpan.FromSeconds(60), "BindingFailed event");
    }

    [Fact]
    public async Task AHugeQuantityStoredWithoutTheWebhook_FreezesNeitherTheTenantNorItsOtherWorkspaces()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant, edit: t => t.Quota = new TenantQuota { Cpu = new ResourceQuantity("8") });
        await cluster.WaitForTenantAsync(tenant, ClusterFixture.IsReady, "Ready");
        var first = Unique(tenant);
        await CreateWorkspaceAsync(first, tenant, s => s.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("2") });
        await WaitForAsync(first, IsReady, "Ready");

        var huge = Unique(tenant);
        await CreateWorkspaceAsync(huge, tenant, s => s.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1e30") });
        var later = Unique(tenant);
        await CreateWorkspaceAsync(later, tenant, s => s.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("2") });

        // The others still converge, and the huge one is refused, counted as nothing.
        await WaitForAsync(later, IsReady, "Ready");
        var refused = await WaitForAsync(huge, w => Has(w, WorkspaceConditions.QuotaReady, "False", "InvalidQuantity"), "QuotaReady=False InvalidQuantity");
        Assert.Contains("spec.quota.cpu", Condition(refused, WorkspaceConditions.QuotaReady)!.Message);
        Assert.True(Has(refused, WorkspaceConditions.Ready, "False"));
        var quota = await cluster.Api.GetAsync<V1ResourceQuota>(WorkspaceReconciler.Quotas, huge, WorkspaceResources.QuotaName, CancellationToken.None);
        Assert.Equal("0", quota.Spec.Hard["requests.cpu"].CanonicalizeString());

        // The tenant is not frozen at a stale Ready: its status is current and names the problem.
        var t = await cluster.WaitForTenantAsync(tenant, x => x.Status?.Workspaces == 3 && x.Status.ObservedGeneration == x.Metadata.Generation
            && ClusterFixture.Condition(x, TenantConditions.Ready) is { Status: "False", Reason: "InvalidQuantity" }, "status current with the invalid quantity shown");
        Assert.Contains(huge, ClusterFixture.Condition(t, TenantConditions.QuotaReady)!.Message);
        Assert.Equal("4", t.Status!.Usage!.Cpu!.CanonicalizeString());
        await Net.WaitUntilAsync(async () => (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, "default", null, 1000, null, CancellationToken.None)).Items
            .Any(e => e.InvolvedObject.Name == tenant && e.Reason == "InvalidQuantity" && e.Type == "Warning"), TimeSpan.FromSeconds(60), "tenant InvalidQuantity event");

        // Fixing the quantity brings everything back.
        await cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, huge, """{"spec":{"quota":{"cpu":"1"}}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitForAsync(huge, IsReady, "Ready once fixed");
        await cluster.WaitForTenantAsync(tenant, ClusterFixture.IsReady, "Ready once fixed");
    }

    [Fact]
    public async Task AWorkspaceNameThatIsNotADnsLabel_IsRefusedBeforeAnythingIsWritten_AndDeletes()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var dotted = "dot." + Unique("ws");
        var tooLong = new string('a', 94) + Guid.NewGuid().ToString("N")[..6];
        foreach (var name in new[] { dotted, tooLong })
        {
            await CreateWorkspaceAsync(name, tenant, s => s.Database = new WorkspaceDatabase { Enabled = true, DeletionPolicy = "Delete" });
        }

        foreach (var name in new[] { dotted, tooLong })
        {
            var ws = await WaitForAsync(name, w => Has(w, WorkspaceConditions.Ready, "False", "InvalidName"), "refused with InvalidName");
            Assert.Contains("metadata.name", Condition(ws, WorkspaceConditions.Ready)!.Message);
            Assert.Equal(WorkspacePhase.Failed, ws.Status!.Phase);
            Assert.Equal(0, await WorkspaceRowsAsync(name));
            Assert.Null(await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name.Length <= 63 ? name : name[..63], CancellationToken.None));
            await Net.WaitUntilAsync(() => HasEventAsync(name, "InvalidName"), TimeSpan.FromSeconds(60), "InvalidName event");
        }

        foreach (var name in new[] { dotted, tooLong })
        {
            await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
            await Net.WaitUntilAsync(async () => await GetAsync(name) is null, TimeSpan.FromSeconds(120), $"workspace {name} deleted");
        }

        // Nothing holds the tenant's deletion either.
        await cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.GetTenantAsync(tenant) is null, TimeSpan.FromSeconds(120), $"tenant {tenant} deleted");
    }

    [Fact]
    public async Task ATerminatingTenant_ShowsTerminating_AndItsNewWorkspaceIsRefusedByTheGate()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var first = Unique(tenant);
        await CreateWorkspaceAsync(first, tenant);
        await WaitForAsync(first, IsReady, "Ready");
        await cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None);
        await cluster.WaitForTenantAsync(tenant, t => t.Status?.Phase == TenantPhase.Terminating, "phase Terminating");

        var late = Unique(tenant);
        await CreateWorkspaceAsync(late, tenant);
        var refused = await WaitForAsync(late, w => Has(w, WorkspaceConditions.Ready, "False", "TenantTerminating"), "refused: tenant terminating");
        Assert.Contains("spec.tenant", Condition(refused, WorkspaceConditions.Ready)!.Message);
        Assert.Equal(0, await WorkspaceRowsAsync(late));
        Assert.Null(await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, late, CancellationToken.None));

        foreach (var name in new[] { late, first }) await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.GetTenantAsync(tenant) is null, TimeSpan.FromSeconds(60), $"tenant {tenant} deleted");
    }

    [Fact]
    public async Task AReconcileThatThrows_ShowsReadyFalseAtTheCurrentGeneration_NotAStaleReady()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant, s => s.Database = new WorkspaceDatabase { Enabled = true });
        var ws = await WaitForAsync(name, IsReady, "Ready");

        // An extension name the region server code refuses by throwing, not by a condition.
        var updated = await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name, w => w.Spec.Database!.Extensions = ["no such; extension"]);
        ws = await WaitForAsync(name, w => Has(w, WorkspaceConditions.Ready, "False"), "Ready=False at the new generation");
        Assert.Equal(updated.Metadata.Generation, ws.Status!.ObservedGeneration);
        var ready = Condition(ws, WorkspaceConditions.Ready)!;
        Assert.Contains("extension", ready.Message);
        if (ready.Reason == ReconcileErrors.Reason)
        {
            await Net.WaitUntilAsync(() => HasEventAsync(name, ReconcileErrors.Reason), TimeSpan.FromSeconds(60), "ReconcileError event");
        }
    }
}
