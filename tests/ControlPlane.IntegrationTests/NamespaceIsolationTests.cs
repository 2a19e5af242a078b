using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The reconciler's side of tenant isolation, with no admission webhook in front (as if it were
/// bypassed or down): it never adopts a namespace it did not create, never deletes one, never
/// binds anyone inside a reserved namespace; and what `make install` applies is what the tests run on.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NamespaceIsolationTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<Workspace> WorkspaceAsync(string name, string tenant)
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = "mallory@example.com", Role = "WorkspaceAdmin" }];
        return await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
    }

    async Task<Workspace> WaitForWorkspaceAsync(string name, Func<Workspace, bool> condition, string what)
    {
        Workspace? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None);
                return last is not null && condition(last);
            }, TimeSpan.FromSeconds(30), $"workspace {name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (conditions: {string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? [])})");
        }

        return last!;
    }

    static string? ReadyReason(Workspace w) => w.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Reason;

    async Task<int> BindingsIn(string ns) =>
        (await cluster.Api.ListAsync<V1RoleBinding>(WorkspaceReconciler.RoleBindings, ns, null, 500, null, CancellationToken.None)).Items.Count;

    [Fact]
    public async Task AForeignNamespace_IsNeitherAdoptedNorDeleted_ByAWorkspaceOfTheSameName()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);

        // Someone else's namespace (Argo CD's, say) with data in it.
        var name = Unique("argocd");
        await cluster.Api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = name } }, CancellationToken.None);
        await cluster.Api.CreateAsync(WorkspaceReconciler.ConfigMaps, name,
            new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "argocd-cm" }, Data = new Dictionary<string, string> { ["url"] = "https://argo.example" } }, CancellationToken.None);

        await WorkspaceAsync(name, tenant);
        var refused = await WaitForWorkspaceAsync(name, w => ReadyReason(w) == "NamespaceConflict", "NamespaceConflict");
        var condition = refused.Status!.Conditions!.Single(c => c.Type == WorkspaceConditions.NamespaceReady);
        Assert.Equal("False", condition.Status);
        Assert.Contains("metadata.name", condition.Message);
        Assert.Equal(0, await BindingsIn(name)); // nobody was made admin of the foreign namespace
        var ns = await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None);
        Assert.Null(ns.Metadata.OwnerReferences);
        Assert.False(ns.Metadata.Labels?.ContainsKey(ApiGroup.TenantLabel) ?? false);

        // Deleting the workspace leaves the namespace and its data alone.
        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None) is null,
            TimeSpan.FromSeconds(120), "workspace gone");
        ns = await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None);
        Assert.Null(ns.Metadata.DeletionTimestamp);
        Assert.NotNull(await cluster.Api.TryGetAsync<V1ConfigMap>(WorkspaceReconciler.ConfigMaps, name, "argocd-cm", CancellationToken.None));
    }

    [Fact]
    public async Task ANamespaceForgedToLookOurs_IsNotAdoptedEither()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        // Labels are easy to copy; the controlling owner reference (the workspace's UID) is not.
        var name = Unique("forged");
        await cluster.Api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Labels = new Dictionary<string, string> { [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue, [ApiGroup.WorkspaceLabel] = name },
            },
        }, CancellationToken.None);
        await WorkspaceAsync(name, tenant);
        await WaitForWorkspaceAsync(name, w => ReadyReason(w) == "NamespaceConflict", "NamespaceConflict");
        Assert.Equal(0, await BindingsIn(name));
        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None) is null,
            TimeSpan.FromSeconds(120), "workspace gone");
        Assert.Null((await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None)).Metadata.DeletionTimestamp);
    }

    [Fact]
    public async Task ReservedNamespaces_AreRefused_AndNothingIsBoundInThem()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var before = await BindingsIn("kube-system");
        foreach (var name in new[] { "kube-system", "default" })
        {
            await WorkspaceAsync(name, tenant);
            var refused = await WaitForWorkspaceAsync(name, w => ReadyReason(w) == "ReservedName", "ReservedName");
            Assert.Contains("reserved", refused.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        }

        Assert.Equal(before, await BindingsIn("kube-system"));
        var policies = await cluster.Api.ListAsync<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, "kube-system", null, 100, null, CancellationToken.None);
        Assert.Empty(policies.Items);
        foreach (var name in new[] { "kube-system", "default" })
        {
            await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
            await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None) is null,
                TimeSpan.FromSeconds(120), $"workspace {name} gone");
        }

        Assert.Null((await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, "kube-system", CancellationToken.None)).Metadata.DeletionTimestamp);
        Assert.Null((await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, "default", CancellationToken.None)).Metadata.DeletionTimestamp);
    }

    [Fact]
    public async Task MakeInstall_CreatesAllFiveWorkspaceRoles_SoAMemberCanWork()
    {
        // The tests install config/rbac/ with kubectl, as `make install` does: a manifest that kubectl
        // reads as fewer objects than WorkspaceRoles makes fails here.
        var roles = new ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false);
        foreach (var role in WorkspaceRoles.Roles)
        {
            Assert.NotNull(await cluster.Api.TryGetAsync<V1ClusterRole>(roles, null, WorkspaceRoles.ClusterRoleName(role), CancellationToken.None));
        }

        var text = await File.ReadAllTextAsync(Path.Combine(Program.FindRepoRoot(), "config", "rbac", "workspace-roles.yaml"));
        Assert.Equal(WorkspaceRoles.RenderYaml(), text); // `make manifests` is current
    }

    [Fact]
    public async Task TheOperatorsOwnRole_GrantsNoEscalationOrWildcards_AndItRunsUnderIt()
    {
        var manifest = await File.ReadAllTextAsync(Path.Combine(Program.FindRepoRoot(), "config", "rbac", "operator.yaml"));
        var rules = k8s.KubernetesYaml.LoadAllFromString(manifest)
            .SelectMany(o => o switch { V1ClusterRole c => c.Rules, V1Role r => r.Rules, _ => [] }).ToList();
        Assert.NotEmpty(rules);
        foreach (var rule in rules)
        {
            Assert.DoesNotContain("escalate", rule.Verbs);
            Assert.DoesNotContain("impersonate", rule.Verbs);
            Assert.DoesNotContain("*", rule.Verbs);
            Assert.DoesNotContain("*", rule.Resources);
        }
        // The test operators authenticate as the ServiceAccount that manifest binds, not as an admin.
        Assert.Equal("system:serviceaccount:controlplane-system:controlplane-operator",
            ControlPlane.Operator.Admission.OperatorIdentity.SubjectOf(cluster.OperatorClientConfig().AccessToken));
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await WorkspaceAsync(name, tenant);
        await WaitForWorkspaceAsync(name, w => w.Status?.Phase == WorkspacePhase.Ready, "Ready under the operator's own RBAC");
    }

    [Fact]
    public async Task DefaultDeny_AllowsDnsToKubeSystem_SelectedByALabelKubeSystemCarries()
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = "any", Uid = "u" } };
        var peer = WorkspaceResources.DefaultDeny(ws).Spec.Egress.Single().To.Single();
        var kubeSystem = await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, "kube-system", CancellationToken.None);
        Assert.All(peer.NamespaceSelector.MatchLabels, kv => Assert.Equal(kv.Value, (kubeSystem.Metadata.Labels?.TryGetValue(kv.Key, out var v) == true ? v : null)));
    }
}
