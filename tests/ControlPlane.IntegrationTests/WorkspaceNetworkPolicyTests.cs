using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// WorkspaceNetworkPolicy on the real API server and Postgres, with no admission webhooks (what
/// slips past admission is bounded again at reconcile): rendering, tenant bounds that shrink, drift,
/// garbage collection with its owner, objects it must not adopt, and zero writes when nothing changed.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class WorkspaceNetworkPolicyTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    static readonly ResourceType Policies = WorkspaceNetworkPolicyReconciler.Type;
    static readonly ResourceType NetworkPolicies = WorkspaceReconciler.NetworkPolicies;

    /// <summary>A tenant with network allowlists and two Ready workspaces of it (no databases: nothing here needs one).</summary>
    async Task<(string Tenant, string Own, string Peer)> TenantWithTwoWorkspacesAsync()
    {
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant, edit: t => t.Network = new TenantNetwork { AllowedIngressCIDRs = ["203.0.113.0/24"], ApprovedEgressCIDRs = ["198.51.100.0/24"] });
        var own = Unique(tenant);
        var peer = Unique(tenant);
        foreach (var ws in new[] { own, peer }) await cluster.CreateWorkspaceAsync(ws, tenant, w => w.Database = new WorkspaceDatabase { Enabled = false });
        foreach (var ws in new[] { own, peer }) await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        return (tenant, own, peer);
    }

    static WorkspaceNetworkPolicy NewPolicy(string name, string? peerWorkspace, string ingressCidr = "203.0.113.0/25")
    {
        var policy = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = name } };
        policy.Spec.PodSelector = new LabelSelector { MatchLabels = new() { ["app"] = "api" } };
        var from = new List<Peer> { new() { Cidr = ingressCidr }, new() { PodSelector = new LabelSelector { MatchLabels = new() { ["role"] = "web" } } } };
        if (peerWorkspace is not null) from.Insert(0, new Peer { Workspace = peerWorkspace });
        policy.Spec.Ingress = [new IngressRule { From = from, Ports = [new NetworkPort { Port = 8080 }] }];
        policy.Spec.Egress = [new EgressRule { To = [new Peer { Cidr = "198.51.100.10/32" }], Ports = [new NetworkPort { Port = 443 }] }];
        return policy;
    }

    Task<WorkspaceNetworkPolicy> CreateAsync(string ns, WorkspaceNetworkPolicy policy) => cluster.Api.CreateAsync(Policies, ns, policy, CancellationToken.None);

    async Task<WorkspaceNetworkPolicy> WaitForAsync(string ns, string name, Func<WorkspaceNetworkPolicy, bool> condition, string what)
    {
        WorkspaceNetworkPolicy? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<WorkspaceNetworkPolicy>(Policies, ns, name, CancellationToken.None);
                return last is not null && last.Status?.ObservedGeneration == last.Metadata.Generation && condition(last);
            }, TimeSpan.FromSeconds(30), $"policy {ns}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (conditions: {string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? [])})");
        }

        return last!;
    }

    static V1Condition? Condition(WorkspaceNetworkPolicy p, string type) => p.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    static bool IsReady(WorkspaceNetworkPolicy p) => Condition(p, "Ready")?.Status == "True";

    Task<V1NetworkPolicy?> GetNetworkPolicyAsync(string ns, string name) => cluster.Api.TryGetAsync<V1NetworkPolicy>(NetworkPolicies, ns, name, CancellationToken.None);

    async Task<long> AuditCountAsync(string objectName, string action, string severity)
    {
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var cmd = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'WorkspaceNetworkPolicy' AND object_name = $1 AND action = $2 AND severity = $3");
        cmd.Parameters.AddWithValue(objectName);
        cmd.Parameters.AddWithValue(action);
        cmd.Parameters.AddWithValue(severity);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    Task WaitForEventAsync(string ns, string involved, string type, string reason, string? contains = null) =>
        Net.WaitUntilAsync(async () => (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, ns, null, 500, null, CancellationToken.None)).Items
            .Any(e => e.InvolvedObject.Name == involved && e.Type == type && e.Reason == reason && (contains is null || e.Message.Contains(contains, StringComparison.Ordinal))),
            TimeSpan.FromSeconds(60), $"{type} event {reason} on {involved}");

    [Fact]
    public async Task ASelectorTheApiServerWouldRefuse_ThatSlippedPastAdmission_RendersNothing_AndStatusNamesTheField()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, own, _) = await TenantWithTwoWorkspacesAsync();
        var policy = NewPolicy("bad", null);
        policy.Spec.Ingress![0].From![1].PodSelector = new LabelSelector { MatchExpressions = [new LabelSelectorRequirement { Key = "bad key!", Operator = "In" }] };
        await CreateAsync(own, policy);

        var refused = await WaitForAsync(own, "bad", p => Condition(p, "Ready")?.Reason == "InvalidSelector", "InvalidSelector");
        var message = Condition(refused, "Ready")!.Message;
        Assert.Contains("spec.ingress[0].from[1].podSelector.matchExpressions[0].key: \"bad key!\" is not a label key", message);
        Assert.Contains("spec.ingress[0].from[1].podSelector.matchExpressions[0].values: operator In needs at least one value", message);
        Assert.Null(refused.Status!.RenderedPolicies);
        Assert.Null(await GetNetworkPolicyAsync(own, "bad-ingress"));
        Assert.Null(await GetNetworkPolicyAsync(own, "bad-egress"));
    }

    [Fact]
    public async Task Peers_RenderToOwnedNetworkPolicies_BesideTheDefaultDeny_AndGoWithThePolicy()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, own, peer) = await TenantWithTwoWorkspacesAsync();
        var created = await CreateAsync(own, NewPolicy("api", peer));
        var ready = await WaitForAsync(own, "api", IsReady, "Ready");
        Assert.Equal(["api-egress", "api-ingress"], ready.Status!.RenderedPolicies);
        Assert.Equal(2, ready.Status.PolicyCount); // kubectl's POLICIES column
        Assert.Equal("False", Condition(ready, "Degraded")?.Status);
        Assert.All(ready.Status.Conditions!, c => Assert.Equal(ready.Metadata.Generation, c.ObservedGeneration));

        var ingress = (await GetNetworkPolicyAsync(own, "api-ingress"))!;
        var owner = Assert.Single(ingress.Metadata.OwnerReferences);
        Assert.Equal((true, "WorkspaceNetworkPolicy", created.Metadata.Uid), (owner.Controller == true, owner.Kind, owner.Uid));
        Assert.Equal("api", ingress.Spec.PodSelector.MatchLabels["app"]);
        var from = Assert.Single(ingress.Spec.Ingress).FromProperty;
        Assert.Equal(new Dictionary<string, string> { ["controlplane.io/workspace"] = peer, ["controlplane.io/tenant"] = tenant }, from[0].NamespaceSelector.MatchLabels);
        Assert.Equal("203.0.113.0/25", from[1].IpBlock.Cidr);
        Assert.Equal("web", from[2].PodSelector.MatchLabels["role"]);
        Assert.Equal(8080, int.Parse(Assert.Single(ingress.Spec.Ingress[0].Ports).Port.Value, System.Globalization.CultureInfo.InvariantCulture));
        var egress = (await GetNetworkPolicyAsync(own, "api-egress"))!;
        Assert.Equal("198.51.100.10/32", Assert.Single(Assert.Single(egress.Spec.Egress).To).IpBlock.Cidr);
        // The workspace's baseline stays.
        Assert.NotNull(await GetNetworkPolicyAsync(own, WorkspaceResources.NetworkPolicyName));
        await WaitForEventAsync(own, "api", "Normal", "Rendered");

        // Editing the spec re-renders: dropping the egress rule removes its policy.
        await cluster.Api.EditAsync<WorkspaceNetworkPolicy>(Policies, own, "api", p => p.Spec.Egress = null);
        await WaitForAsync(own, "api", p => IsReady(p) && p.Status!.RenderedPolicies!.SequenceEqual(["api-ingress"]), "egress policy removed from status");
        Assert.Null(await GetNetworkPolicyAsync(own, "api-egress"));

        // Deleting the policy deletes what it owns (the garbage collector follows the controller ownerReference; the
        // kube-controller-manager's collector is slow on a loaded machine: it once took over 30 s here).
        await cluster.Api.DeleteAsync(Policies, own, "api", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetNetworkPolicyAsync(own, "api-ingress") is null, TimeSpan.FromSeconds(120), "rendered policy garbage-collected");
        Assert.NotNull(await GetNetworkPolicyAsync(own, WorkspaceResources.NetworkPolicyName));
    }

    [Fact]
    public async Task ShrinkingTheTenantsAllowlist_RemovesTheRuleAtOnce_Degraded_WarningEvent_AndSecurityAudit()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, own, peer) = await TenantWithTwoWorkspacesAsync();
        await CreateAsync(own, NewPolicy("api", peer));
        await WaitForAsync(own, "api", IsReady, "Ready");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant,
            """{"spec":{"network":{"allowedIngressCIDRs":["192.0.2.0/24"],"approvedEgressCIDRs":[]}}}""", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await GetNetworkPolicyAsync(own, "api-ingress"))!.Spec.Ingress[0].FromProperty.All(p => p.IpBlock is null)
                                             && await GetNetworkPolicyAsync(own, "api-egress") is null,
            TimeSpan.FromSeconds(60), "rules outside the shrunk allowlist removed");
        output.WriteLine($"allowlist shrink to rule removed: {clock.ElapsedMilliseconds} ms");

        var degraded = await WaitForAsync(own, "api", p => Condition(p, "Degraded")?.Status == "True", "Degraded");
        var message = Condition(degraded, "Degraded")!.Message;
        Assert.Contains("spec.ingress[0].from[1].cidr: 203.0.113.0/25 is outside tenant", message);
        Assert.Contains("spec.egress[0]: not rendered", message);
        Assert.Equal(("False", "RulesDropped"), (Condition(degraded, "Ready")!.Status, Condition(degraded, "Ready")!.Reason));
        Assert.Equal(["api-ingress"], degraded.Status!.RenderedPolicies);
        // The workspace peer and the pod selector stay in force.
        Assert.Equal(2, (await GetNetworkPolicyAsync(own, "api-ingress"))!.Spec.Ingress[0].FromProperty.Count);
        await WaitForEventAsync(own, "api", "Warning", "RulesDropped", "203.0.113.0/25");
        Assert.Equal(1, await AuditCountAsync($"{own}/api", WorkspaceNetworkPolicyReconciler.RulesDroppedAction, "security"));

        // Widened again: rendered again, not degraded, nothing more audited.
        await cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant,
            """{"spec":{"network":{"allowedIngressCIDRs":["203.0.113.0/24"],"approvedEgressCIDRs":["198.51.100.0/24"]}}}""", PatchTypes.Merge, CancellationToken.None);
        var restored = await WaitForAsync(own, "api", p => IsReady(p) && Condition(p, "Degraded")?.Status == "False", "Ready again");
        Assert.Equal(["api-egress", "api-ingress"], restored.Status!.RenderedPolicies);
        Assert.Equal(1, await AuditCountAsync($"{own}/api", WorkspaceNetworkPolicyReconciler.RulesDroppedAction, "security"));
    }

    [Fact]
    public async Task WithPostgresDown_AShrunkAllowlistStillRemovesTheRuleAtOnce_AndTheAuditFollowsWhenItIsBack()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, own, peer) = await TenantWithTwoWorkspacesAsync();
        await CreateAsync(own, NewPolicy("api", peer));
        await WaitForAsync(own, "api", IsReady, "Ready");

        await cluster.Postgres.StopServerAsync();
        try
        {
            await cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant,
                """{"spec":{"network":{"allowedIngressCIDRs":["192.0.2.0/24"]}}}""", PatchTypes.Merge, CancellationToken.None);
            await Net.WaitUntilAsync(async () => (await GetNetworkPolicyAsync(own, "api-ingress"))!.Spec.Ingress[0].FromProperty.All(p => p.IpBlock is null),
                TimeSpan.FromSeconds(60), "rule removed while the system of record is down");
            var waiting = await WaitForAsync(own, "api", p => Condition(p, "Ready")?.Reason == "DatabaseUnavailable", "Ready=False/DatabaseUnavailable");
            Assert.Contains("were removed, but recording it failed", Condition(waiting, "Ready")!.Message);
            Assert.DoesNotContain(cluster.Postgres.Password, Condition(waiting, "Ready")!.Message);
        }
        finally
        {
            await cluster.Postgres.StartServerAsync();
        }

        await WaitForAsync(own, "api", p => Condition(p, "Degraded")?.Status == "True" && Condition(p, "Ready")?.Reason == "RulesDropped", "Degraded once recorded");
        Assert.Equal(1, await AuditCountAsync($"{own}/api", WorkspaceNetworkPolicyReconciler.RulesDroppedAction, "security"));
    }

    [Fact]
    public async Task APeerOfAnotherTenant_ThatSlippedPastAdmission_IsDroppedAtReconcile_AndReported()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, own, _) = await TenantWithTwoWorkspacesAsync();
        var other = Unique("t");
        await cluster.CreateTenantAsync(other);
        var theirs = Unique(other);
        await cluster.CreateWorkspaceAsync(theirs, other, w => w.Database = new WorkspaceDatabase { Enabled = false });
        await cluster.WaitForWorkspaceAsync(theirs, ClusterFixture.IsReady, "Ready");

        // No webhook in this fixture: the API server stores what admission would refuse.
        var policy = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = "from-them" } };
        policy.Spec.Ingress = [new IngressRule { From = [new Peer { Workspace = theirs }] }, new IngressRule { From = [] }];
        await CreateAsync(own, policy);
        var degraded = await WaitForAsync(own, "from-them", p => Condition(p, "Degraded")?.Status == "True", "Degraded");
        Assert.Contains($"spec.ingress[0].from[0].workspace: \"{theirs}\" is not a workspace of tenant", Condition(degraded, "Degraded")!.Message);
        Assert.Contains("spec.ingress[1].from: names no peer", Condition(degraded, "Degraded")!.Message);
        Assert.Null(degraded.Status!.RenderedPolicies);
        Assert.Null(await GetNetworkPolicyAsync(own, "from-them-ingress"));
        Assert.Equal(1, await AuditCountAsync($"{own}/from-them", WorkspaceNetworkPolicyReconciler.RulesDroppedAction, "security"));
        await WaitForEventAsync(own, "from-them", "Warning", "RulesDropped", theirs);
    }

    [Fact]
    public async Task APeerWorkspaceThatIsDeleted_LeavesTheRenderedPolicy()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, own, peer) = await TenantWithTwoWorkspacesAsync();
        await CreateAsync(own, NewPolicy("api", peer));
        await WaitForAsync(own, "api", IsReady, "Ready");

        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, peer, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.GetWorkspaceAsync(peer) is null, TimeSpan.FromSeconds(60), "peer workspace deleted");
        var degraded = await WaitForAsync(own, "api", p => Condition(p, "Degraded")?.Status == "True", "Degraded");
        Assert.Contains($"spec.ingress[0].from[0].workspace: \"{peer}\" is not a workspace of tenant", Condition(degraded, "Degraded")!.Message);
        Assert.DoesNotContain((await GetNetworkPolicyAsync(own, "api-ingress"))!.Spec.Ingress[0].FromProperty, p => p.NamespaceSelector is not null);
        Assert.Equal(1, await AuditCountAsync($"{own}/api", WorkspaceNetworkPolicyReconciler.RulesDroppedAction, "security"));
    }

    [Fact]
    public async Task ARenderedPolicy_EditedOrDeletedByHand_IsRepaired()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, own, peer) = await TenantWithTwoWorkspacesAsync();
        await CreateAsync(own, NewPolicy("api", peer));
        await WaitForAsync(own, "api", IsReady, "Ready");
        var rendered = (await GetNetworkPolicyAsync(own, "api-ingress"))!;

        // The cluster admin opens it to everyone.
        await cluster.Api.PatchAsync<V1NetworkPolicy>(NetworkPolicies, own, "api-ingress", """{"spec":{"ingress":[{}]}}""", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => KubernetesJson.Serialize((await GetNetworkPolicyAsync(own, "api-ingress"))!.Spec) == KubernetesJson.Serialize(rendered.Spec),
            TimeSpan.FromSeconds(60), "hand edit reverted");
        await WaitForEventAsync(own, "api", "Normal", "DriftRepaired", "changed by hand");

        await cluster.Api.DeleteAsync(NetworkPolicies, own, "api-egress", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetNetworkPolicyAsync(own, "api-egress") is not null, TimeSpan.FromSeconds(60), "deleted policy recreated");
        await WaitForEventAsync(own, "api", "Normal", "DriftRepaired", "missing, recreated");
    }

    [Fact]
    public async Task ANetworkPolicyMadeBySomeoneElse_WithTheRenderedName_IsNeverAdopted()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, own, peer) = await TenantWithTwoWorkspacesAsync();
        var foreign = await cluster.Api.CreateAsync(NetworkPolicies, own, new V1NetworkPolicy
        {
            Metadata = new V1ObjectMeta { Name = "api-ingress", Labels = new Dictionary<string, string> { [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue } },
            Spec = new V1NetworkPolicySpec { PodSelector = new V1LabelSelector(), PolicyTypes = ["Ingress"] },
        }, CancellationToken.None);
        await CreateAsync(own, NewPolicy("api", peer));
        var refused = await WaitForAsync(own, "api", p => Condition(p, "Ready")?.Reason == "PolicyConflict", "PolicyConflict");
        Assert.Contains("api-ingress already exists and was not created for WorkspaceNetworkPolicy api: it is not adopted", Condition(refused, "Ready")!.Message);
        Assert.Equal(["api-egress"], refused.Status!.RenderedPolicies);
        await WaitForEventAsync(own, "api", "Warning", "PolicyConflict");
        var after = (await GetNetworkPolicyAsync(own, "api-ingress"))!;
        Assert.Equal(foreign.Metadata.ResourceVersion, after.Metadata.ResourceVersion);
        Assert.Null(after.Metadata.OwnerReferences);

        // Deleting the policy never takes the foreign object with it.
        await cluster.Api.DeleteAsync(Policies, own, "api", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetNetworkPolicyAsync(own, "api-egress") is null, TimeSpan.FromSeconds(120), "own policy garbage-collected");
        Assert.NotNull(await GetNetworkPolicyAsync(own, "api-ingress"));
    }

    [Fact]
    public async Task UnchangedPolicies_ReconcileWithZeroWrites_ToTheApiServerAndToPostgres()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, own, peer) = await TenantWithTwoWorkspacesAsync();
        await CreateAsync(own, NewPolicy("api", peer));
        await WaitForAsync(own, "api", IsReady, "Ready");
        // One degraded too: its audit event and Warning are not repeated.
        await CreateAsync(own, NewPolicy("wide", peer, ingressCidr: "10.0.0.0/8"));
        await WaitForAsync(own, "wide", p => Condition(p, "Degraded")?.Status == "True", "Degraded");
        await op.WaitUntilIdleAsync();

        var counts = () => (Api: op.Requests.Writes, Db: op.Runtime.Database.Writes);
        var before = counts();
        // Policies other tests left behind count too, whatever their outcome.
        var done = () => op.Runtime.Metrics.ReconcileTotal.WithLabels("workspacenetworkpolicy", "success").Value
                         + op.Runtime.Metrics.ReconcileTotal.WithLabels("workspacenetworkpolicy", "terminal").Value;
        var reconciled = done();
        var total = op.Runtime.InformerOf<WorkspaceNetworkPolicy>()!.Keys.Count();
        op.Runtime.ResyncAll();
        await Net.WaitUntilAsync(() => Task.FromResult(done() >= reconciled + total && op.Runtime.IsIdle), TimeSpan.FromSeconds(60), "every policy reconciled again");
        Assert.Equal(before, counts());
        output.WriteLine($"{total} policies reconciled without change: 0 writes (tenant {tenant})");
    }
}
