using System.Net;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

[Collection(ClusterCollection.Name)]
public sealed class WorkspaceTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    static readonly ResourceType RoleBindings = WorkspaceReconciler.RoleBindings;
    static readonly ResourceType Secrets = WorkspaceReconciler.Secrets;
    static readonly ResourceType ConfigMaps = WorkspaceReconciler.ConfigMaps;

    Task<Workspace> CreateWorkspaceAsync(string name, string tenant, Action<WorkspaceSpec>? edit = null) => cluster.CreateWorkspaceAsync(name, tenant, edit);

    Task<Workspace?> GetWorkspaceAsync(string name) => cluster.GetWorkspaceAsync(name);

    Task<Workspace> WaitForWorkspaceAsync(string name, Func<Workspace, bool> condition, string what, TimeSpan? timeout = null) =>
        cluster.WaitForWorkspaceAsync(name, condition, what, timeout);

    static bool IsReady(Workspace w) => ClusterFixture.IsReady(w);

    static V1Condition? Condition(Workspace w, string type) => ClusterFixture.Condition(w, type);

    async Task<(string Tenant, string Workspace)> ReadyWorkspaceAsync(Action<TenantSpec>? tenantEdit = null, Action<WorkspaceSpec>? wsEdit = null)
    {
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant, edit: tenantEdit);
        var ws = Unique(tenant);
        await CreateWorkspaceAsync(ws, tenant, wsEdit);
        await WaitForWorkspaceAsync(ws, IsReady, "Ready");
        return (tenant, ws);
    }

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
        var result = await cluster.Api.CreateAsync(type, null, review, CancellationToken.None);
        return result.Status.Allowed;
    }

    static string SecretValue(V1Secret s, string key) => Encoding.UTF8.GetString(s.Data[key]);

    static async Task<bool> CanLoginAsync(V1Secret credentials, string? database = null)
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = SecretValue(credentials, "host"), Port = int.Parse(SecretValue(credentials, "port"), System.Globalization.CultureInfo.InvariantCulture),
            Username = SecretValue(credentials, "username"), Password = SecretValue(credentials, "password"),
            Database = database ?? SecretValue(credentials, "database"), Pooling = false, Timeout = 5,
        };
        try
        {
            await using var conn = new NpgsqlConnection(b.ConnectionString);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT 1", conn);
            return (int)(await cmd.ExecuteScalarAsync())! == 1;
        }
        catch (PostgresException e) when (e.SqlState is "28P01" or "42501" or "28000")
        {
            return false;
        }
    }

    [Fact]
    public async Task Workspace_ConvergesNamespaceRbacQuotaNetworkSettingsAndDatabase()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, name) = await ReadyWorkspaceAsync(
            t => t.Owners = [new Subject { Kind = "User", Name = "alice@example.com" }],
            w =>
            {
                w.Members = [new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" }, new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" }];
                w.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("4"), Memory = new ResourceQuantity("8Gi"), Pods = 20 };
                w.Database = new WorkspaceDatabase { Extensions = ["pgcrypto"] };
            });
        var ws = (await GetWorkspaceAsync(name))!;
        foreach (var type in new[] { "NamespaceReady", "AccessReady", "QuotaReady", "NetworkReady", "DatabaseReady", "Ready" })
        {
            Assert.Equal("True", Condition(ws, type)?.Status);
        }

        var ns = await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None);
        Assert.Equal(tenant, ns.Metadata.Labels["controlplane.io/tenant"]);
        Assert.Equal(name, ns.Metadata.Labels["controlplane.io/workspace"]);
        Assert.Equal("eu", ns.Metadata.Labels["controlplane.io/region"]);
        Assert.Equal("dev", ns.Metadata.Labels["controlplane.io/environment"]);

        var bindings = await cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, name, null, 100, null, CancellationToken.None);
        Assert.Equal(3, bindings.Items.Count);
        Assert.Contains(bindings.Items, b => b.RoleRef.Name == "controlplane:workspace:operator" && b.Subjects.Single().Name == "bob@example.com");
        Assert.Contains(bindings.Items, b => b.RoleRef.Name == "controlplane:workspace:approver" && b.Subjects.Single().Name == "carol@example.com");
        Assert.Contains(bindings.Items, b => b.RoleRef.Name == "controlplane:workspace:workspace-admin" && b.Subjects.Single().Name == "alice@example.com");

        var quota = await cluster.Api.GetAsync<V1ResourceQuota>(WorkspaceReconciler.Quotas, name, "controlplane-quota", CancellationToken.None);
        Assert.Equal("4", quota.Spec.Hard["requests.cpu"].CanonicalizeString());
        Assert.Equal("8Gi", quota.Spec.Hard["limits.memory"].CanonicalizeString());
        Assert.Equal("20", quota.Spec.Hard["pods"].CanonicalizeString());
        Assert.NotNull(await cluster.Api.GetAsync<V1LimitRange>(WorkspaceReconciler.LimitRanges, name, "controlplane-limits", CancellationToken.None));
        var policy = await cluster.Api.GetAsync<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, name, "controlplane-default-deny", CancellationToken.None);
        Assert.Equal(["Ingress", "Egress"], policy.Spec.PolicyTypes);
        Assert.Null(policy.Spec.Ingress);
        Assert.All(policy.Spec.Egress.Single().Ports, p => Assert.Equal("53", p.Port.Value));
        var settings = await cluster.Api.GetAsync<V1ConfigMap>(ConfigMaps, name, "controlplane-workspace", CancellationToken.None);
        Assert.Equal("eu", settings.Data["region"]);
        Assert.Equal("metadataOnly", settings.Data["dataMode"]);
        Assert.Equal("dev", settings.Data["environment"]);

        Assert.Equal(RegionDatabases.DatabaseName(name), ws.Status!.Database!.Name);
        var secret = await cluster.Api.GetAsync<V1Secret>(Secrets, name, ws.Status.Database.SecretName!, CancellationToken.None);
        foreach (var key in new[] { "host", "port", "database", "username", "password", "uri" }) Assert.True(secret.Data.ContainsKey(key), key);
        Assert.True(await CanLoginAsync(secret));
        var b = new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString()) { Database = ws.Status.Database.Name, Pooling = false };
        await using (var conn = new NpgsqlConnection(b.ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'", conn);
            Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
        }

        var row = await op.Runtime.Database.GetWorkspaceAsync(name, CancellationToken.None);
        Assert.Equal("ready", row!.ProvisioningState);
        Assert.Contains("bob@example.com", row.MembersJson);
        Assert.DoesNotContain(SecretValue(secret, "password"), string.Join("\n", ws.Status.Conditions!.Select(c => c.Message)));
    }

    [Fact]
    public async Task TheTenantsApprovedEgress_OpensEveryWorkspacesDefaultDeny_AndFollowsTheTenantsEdits()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, name) = await ReadyWorkspaceAsync(t => t.Network = new TenantNetwork { ApprovedEgressCIDRs = ["198.51.100.0/24"] });
        async Task<List<string>> ApprovedEgressAsync()
        {
            var policy = await cluster.Api.GetAsync<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, name, "controlplane-default-deny", CancellationToken.None);
            Assert.Null(policy.Spec.Ingress);
            return policy.Spec.Egress.SelectMany(r => r.To).Where(p => p.IpBlock is not null).Select(p => p.IpBlock.Cidr).ToList();
        }

        Assert.Equal(["198.51.100.0/24"], await ApprovedEgressAsync());
        Assert.Contains("198.51.100.0/24", Condition((await GetWorkspaceAsync(name))!, "NetworkReady")!.Message);

        // Merge patches: the operator writes the tenant's status meanwhile (a replace of a stale copy would conflict).
        await cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant, """{"spec":{"network":{"approvedEgressCIDRs":["203.0.113.8/29","198.51.100.0/24"]}}}""",
            PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await ApprovedEgressAsync()).Count == 2, TimeSpan.FromSeconds(30), "the tenant's new approved egress in the policy");
        Assert.Equal(["198.51.100.0/24", "203.0.113.8/29"], await ApprovedEgressAsync());

        await cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant, """{"spec":{"network":null}}""", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await ApprovedEgressAsync()).Count == 0, TimeSpan.FromSeconds(30), "approved egress withdrawn from the policy");
    }

    [Fact]
    public async Task Members_CanDoTheirRolesActions_InTheirWorkspaceOnly()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, mine) = await ReadyWorkspaceAsync(
            t => t.Owners = [new Subject { Kind = "User", Name = "alice@example.com" }],
            w => w.Members =
            [
                new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" },
                new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
                new WorkspaceMember { Kind = "User", Name = "dave@example.com", Role = "Auditor" },
                new WorkspaceMember { Kind = "User", Name = "erin@example.com", Role = "IntegrationAdmin" },
            ]);
        var (_, theirs) = await ReadyWorkspaceAsync();

        // Operator: workloads and rollouts, not secrets or approvals.
        Assert.True(await CanAsync("bob@example.com", "create", "deployments", mine, "apps"));
        Assert.True(await CanAsync("bob@example.com", "create", "rollouts", mine, "controlplane.io"));
        Assert.False(await CanAsync("bob@example.com", "get", "secrets", mine));
        Assert.False(await CanAsync("bob@example.com", "create", "approvals", mine, "controlplane.io"));
        // Approver: reads all but secrets, creates approvals.
        Assert.True(await CanAsync("carol@example.com", "create", "approvals", mine, "controlplane.io"));
        Assert.True(await CanAsync("carol@example.com", "list", "deployments", mine, "apps"));
        Assert.False(await CanAsync("carol@example.com", "create", "deployments", mine, "apps"));
        Assert.False(await CanAsync("carol@example.com", "list", "secrets", mine));
        // Auditor: reads all but secrets, writes nothing.
        Assert.True(await CanAsync("dave@example.com", "list", "exposures", mine, "controlplane.io"));
        Assert.False(await CanAsync("dave@example.com", "create", "approvals", mine, "controlplane.io"));
        Assert.False(await CanAsync("dave@example.com", "get", "secrets", mine));
        // IntegrationAdmin: secrets and config maps.
        Assert.True(await CanAsync("erin@example.com", "create", "secrets", mine));
        Assert.False(await CanAsync("erin@example.com", "create", "deployments", mine, "apps"));
        // Tenant owner: WorkspaceAdmin.
        Assert.True(await CanAsync("alice@example.com", "get", "secrets", mine));
        Assert.True(await CanAsync("alice@example.com", "delete", "exposures", mine, "controlplane.io"));
        // Nothing in another tenant's workspace, nothing cluster-wide.
        foreach (var user in new[] { "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com" })
        {
            Assert.False(await CanAsync(user, "list", "deployments", theirs, "apps"), $"{user} in {theirs}");
            Assert.False(await CanAsync(user, "list", "configmaps", theirs), $"{user} in {theirs}");
        }

        // And for real, with bob's own token against the API server.
        using var bob = new KubeApi(cluster.Plane.ClientConfigFor(cluster.Plane.Users["bob"]));
        var cm = new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "app-settings" }, Data = new Dictionary<string, string> { ["a"] = "b" } };
        await bob.CreateAsync(ConfigMaps, mine, cm, CancellationToken.None);
        var denied = await Assert.ThrowsAsync<KubeApiException>(() => bob.CreateAsync(ConfigMaps, theirs, cm, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
    }

    [Fact]
    public async Task RemovingAMember_RemovesExactlyThatBinding()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync(wsEdit: w => w.Members =
        [
            new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
        ]);
        var before = await cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, name, null, 100, null, CancellationToken.None);
        var carols = before.Items.Single(b => b.Subjects.Single().Name == "carol@example.com");

        await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name, w => w.Spec.Members = [new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" }]);
        await Net.WaitUntilAsync(async () =>
            (await cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, name, null, 100, null, CancellationToken.None)).Items.Count == 1,
            TimeSpan.FromSeconds(30), "carol's binding removed");
        var after = await cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, name, null, 100, null, CancellationToken.None);
        var remaining = Assert.Single(after.Items);
        Assert.Equal("bob@example.com", remaining.Subjects.Single().Name);
        Assert.Equal(before.Items.Single(b => b.Subjects.Single().Name == "bob@example.com").Metadata.Uid, remaining.Metadata.Uid);
        Assert.DoesNotContain(after.Items, b => b.Metadata.Name == carols.Metadata.Name);
        Assert.False(await CanAsync("carol@example.com", "create", "approvals", name, "controlplane.io"));
    }

    [Fact]
    public async Task WorkspaceDatabase_AcceptsItsOwnCredentials_AndRefusesAnotherWorkspaces()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, a) = await ReadyWorkspaceAsync();
        var (_, b) = await ReadyWorkspaceAsync();
        var secretA = await cluster.Api.GetAsync<V1Secret>(Secrets, a, a + "-db", CancellationToken.None);
        Assert.True(await CanLoginAsync(secretA));
        Assert.False(await CanLoginAsync(secretA, database: RegionDatabases.DatabaseName(b)));
    }

    [Fact]
    public async Task TenantQuota_IsAnAggregate_TheWorkspaceAtTheLimitGetsWhatRemains()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("q");
        await cluster.CreateTenantAsync(tenant, edit: s => s.Quota = new TenantQuota { Cpu = new ResourceQuantity("10"), MaxWorkspaces = 2 });
        var first = Unique(tenant);
        await CreateWorkspaceAsync(first, tenant, w => w.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("6") });
        await WaitForWorkspaceAsync(first, IsReady, "Ready");
        var second = Unique(tenant);
        await CreateWorkspaceAsync(second, tenant, w => w.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("6") });
        var capped = await WaitForWorkspaceAsync(second, w => Condition(w, "QuotaReady")?.Reason == "QuotaExceeded", "QuotaExceeded");
        var message = Condition(capped, "QuotaReady")!.Message;
        Assert.Contains("spec.quota.cpu", message);
        Assert.Contains("requested 6", message);
        Assert.Contains("granted 4", message);
        Assert.Equal("False", Condition(capped, "Ready")!.Status);
        await Net.WaitUntilAsync(async () =>
        {
            var q = await cluster.Api.TryGetAsync<V1ResourceQuota>(WorkspaceReconciler.Quotas, second, "controlplane-quota", CancellationToken.None);
            return q?.Spec.Hard["requests.cpu"].CanonicalizeString() == "4";
        }, TimeSpan.FromSeconds(30), "second workspace's quota capped at what remains");
        await cluster.WaitForTenantAsync(tenant, t => t.Status?.Usage?.Cpu?.CanonicalizeString() == "10" && t.Status.Workspaces == 2, "usage is the granted sum");

        var third = Unique(tenant);
        await CreateWorkspaceAsync(third, tenant);
        var over = await WaitForWorkspaceAsync(third, w => Condition(w, "QuotaReady")?.Reason == "MaxWorkspacesExceeded", "MaxWorkspacesExceeded");
        Assert.Contains("maxWorkspaces", Condition(over, "QuotaReady")!.Message);
        Assert.Null(await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, third, CancellationToken.None));

        // Freeing room: the first workspace shrinks, the second gets all it asked for.
        await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, first, w => w.Spec.Quota!.Cpu = new ResourceQuantity("4"));
        await WaitForWorkspaceAsync(second, w => Condition(w, "QuotaReady")?.Status == "True" && IsReady(w), "quota granted in full");
    }

    [Fact]
    public async Task SuspendedTenant_GetsNoNewWorkspace()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("susp");
        await cluster.CreateTenantAsync(tenant, edit: s => s.Suspended = true);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant);
        var ws = await WaitForWorkspaceAsync(name, w => Condition(w, "Ready")?.Reason == "TenantSuspended", "TenantSuspended");
        Assert.Equal(WorkspacePhase.Failed, ws.Status!.Phase);
        Assert.Null(await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None));
    }

    [Fact]
    public async Task RegionMismatch_AndUnknownTenant_ProvisionNothing_AndWriteASecurityAuditEvent()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("pin");
        await cluster.CreateTenantAsync(tenant);
        var mismatch = Unique(tenant);
        await CreateWorkspaceAsync(mismatch, tenant, w => w.Region = "us");
        var ws = await WaitForWorkspaceAsync(mismatch, w => Condition(w, "Ready")?.Reason == "RegionMismatch", "RegionMismatch");
        Assert.Contains("spec.region", Condition(ws, "Ready")!.Message);
        var orphan = Unique("orphan");
        await CreateWorkspaceAsync(orphan, "no-such-tenant");
        var lost = await WaitForWorkspaceAsync(orphan, w => Condition(w, "Ready")?.Reason == "TenantNotFound", "TenantNotFound");
        Assert.Contains("spec.tenant", Condition(lost, "Ready")!.Message);

        foreach (var name in new[] { mismatch, orphan })
        {
            Assert.Null(await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None));
            Assert.False(await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", RegionDatabases.DatabaseName(name), CancellationToken.None));
            Assert.False(await op.Runtime.RegionDatabases.DatabaseExistsAsync("us", RegionDatabases.DatabaseName(name), CancellationToken.None));
            await using var ds = cluster.Postgres.DataSourceFor();
            await using var cmd = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE object_name = $1 AND severity = 'security' AND action = 'workspace.refused'");
            cmd.Parameters.AddWithValue(name);
            Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
        }
    }

    [Fact]
    public async Task ChangingTheTenant_IsRefusedByTheReconciler_UntilSetBack()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, name) = await ReadyWorkspaceAsync();
        var other = Unique("other");
        await cluster.CreateTenantAsync(other);
        await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name, w => w.Spec.Tenant = other);
        var refused = await WaitForWorkspaceAsync(name, w => Condition(w, "Ready")?.Reason == "ImmutableFieldChanged", "ImmutableFieldChanged");
        Assert.Contains("spec.tenant", Condition(refused, "Ready")!.Message);
        var ns = await cluster.Api.GetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None);
        Assert.Equal(tenant, ns.Metadata.Labels["controlplane.io/tenant"]);

        await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name, w => w.Spec.Tenant = tenant);
        await WaitForWorkspaceAsync(name, IsReady, "Ready again");
    }

    [Fact]
    public async Task PasswordRotation_ByAnnotation_AndAMissingSecret_ResetTheRolePassword()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync();
        var original = await cluster.Api.GetAsync<V1Secret>(Secrets, name, name + "-db", CancellationToken.None);

        await cluster.Api.PatchAsync<V1Secret>(Secrets, name, name + "-db", """{"metadata":{"annotations":{"controlplane.io/rotate":"true"}}}""", PatchTypes.Merge, CancellationToken.None);
        V1Secret rotated = original;
        await Net.WaitUntilAsync(async () =>
        {
            rotated = await cluster.Api.GetAsync<V1Secret>(Secrets, name, name + "-db", CancellationToken.None);
            return SecretValue(rotated, "password") != SecretValue(original, "password") && rotated.Metadata.Annotations?.ContainsKey("controlplane.io/rotate") != true;
        }, TimeSpan.FromSeconds(30), "password rotated and annotation removed");
        Assert.True(await CanLoginAsync(rotated));
        Assert.False(await CanLoginAsync(original));

        // A crash between the database and the Secret looks like a missing Secret: the password is reset.
        await cluster.Api.DeleteAsync(Secrets, name, name + "-db", CancellationToken.None);
        V1Secret? recreated = null;
        await Net.WaitUntilAsync(async () =>
        {
            recreated = await cluster.Api.TryGetAsync<V1Secret>(Secrets, name, name + "-db", CancellationToken.None);
            return recreated is not null;
        }, TimeSpan.FromSeconds(30), "secret recreated");
        Assert.True(await CanLoginAsync(recreated!));
        Assert.False(await CanLoginAsync(rotated));
    }

    [Fact]
    public async Task ProviderKey_IsValidated_StoredEncrypted_Rotated_AndTheOldOnePurgedAfterTheGrace()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (tenant, name) = await ReadyWorkspaceAsync();
        var key1 = "sk-proj-" + Guid.NewGuid().ToString("N");
        var secret = new V1Secret
        {
            ApiVersion = "v1", Kind = "Secret", Metadata = new V1ObjectMeta { Name = "openai-key", NamespaceProperty = name },
            Data = new Dictionary<string, byte[]> { ["apiKey"] = Encoding.UTF8.GetBytes(key1) },
        };
        await cluster.Api.CreateAsync(Secrets, name, secret, CancellationToken.None);
        await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name,
            w => w.Spec.ProviderKeys = [new ProviderKey { Provider = "openai", SecretRef = new SecretKeyReference { Name = "openai-key", Key = "apiKey" } }]);
        var ws = await WaitForWorkspaceAsync(name, w => IsReady(w) && w.Status?.ProviderKeys?.Count == 1, "key stored");
        var first = ws.Status!.ProviderKeys!.Single();
        Assert.Equal(KeyVault.Fingerprint(key1), first.Fingerprint);
        Assert.NotNull(first.ValidatedAt);
        Assert.Null(first.RotatedAt);
        Assert.Equal(key1, await op.Runtime.Database.ReadActiveProviderKeyAsync(op.Runtime.Vault!, name, "openai", CancellationToken.None));
        await using (var ds = cluster.Postgres.DataSourceFor())
        await using (var cmd = ds.CreateCommand("SELECT ciphertext FROM controlplane.provider_keys WHERE workspace = $1"))
        {
            cmd.Parameters.AddWithValue(name);
            var ciphertext = (byte[])(await cmd.ExecuteScalarAsync())!;
            Assert.DoesNotContain(key1, Encoding.UTF8.GetString(ciphertext));
        }

        // Rotate: the new key is active at once; the old one is kept for the grace period, then purged.
        var key2 = "sk-proj-" + Guid.NewGuid().ToString("N");
        secret.Data["apiKey"] = Encoding.UTF8.GetBytes(key2);
        await cluster.Api.ReplaceAsync(Secrets, name, "openai-key", secret, CancellationToken.None);
        ws = await WaitForWorkspaceAsync(name, w => w.Status?.ProviderKeys?.Single().Fingerprint == KeyVault.Fingerprint(key2), "rotated key active");
        Assert.NotNull(ws.Status!.ProviderKeys!.Single().RotatedAt);
        Assert.Equal(key2, await op.Runtime.Database.ReadActiveProviderKeyAsync(op.Runtime.Vault!, name, "openai", CancellationToken.None));
        var keys = await op.Runtime.Database.GetProviderKeysAsync(name, CancellationToken.None);
        Assert.Contains(keys, k => k.Fingerprint == first.Fingerprint && k.RetiredAt is not null);
        await Net.WaitUntilAsync(async () => (await op.Runtime.Database.GetProviderKeysAsync(name, CancellationToken.None)).Count == 1,
            TimeSpan.FromSeconds(30), "old key purged after the grace period");

        // An invalid key: a condition naming the field, nothing stored, the value nowhere.
        const string bogus = "hello-this-is-not-a-key";
        secret.Data["apiKey"] = Encoding.UTF8.GetBytes(bogus);
        await cluster.Api.ReplaceAsync(Secrets, name, "openai-key", secret, CancellationToken.None);
        ws = await WaitForWorkspaceAsync(name, w => Condition(w, "ProviderKeysReady")?.Reason == "InvalidProviderKey", "invalid key refused");
        Assert.Contains("spec.providerKeys[0]", Condition(ws, "ProviderKeysReady")!.Message);
        Assert.Equal(key2, await op.Runtime.Database.ReadActiveProviderKeyAsync(op.Runtime.Vault!, name, "openai", CancellationToken.None));

        var everything = KubernetesJson.Serialize(ws) + KubernetesJson.Serialize(
            await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, "default", null, 1000, null, CancellationToken.None));
        foreach (var value in new[] { key1, key2, bogus }) Assert.DoesNotContain(value, everything);
        await using (var ds = cluster.Postgres.DataSourceFor())
        await using (var cmd = ds.CreateCommand("SELECT string_agg(details::text, ' ') FROM controlplane.audit_events"))
        {
            var audit = (string)(await cmd.ExecuteScalarAsync())!;
            foreach (var value in new[] { key1, key2, bogus }) Assert.DoesNotContain(value, audit);
        }
    }

    [Fact]
    public async Task Drift_AChildDeletedOrEditedByHand_IsRestoredWithAnEvent()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync(wsEdit: w => w.Members = [new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" }]);
        var binding = (await cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, name, null, 10, null, CancellationToken.None)).Items.Single();

        await cluster.Api.DeleteAsync(RoleBindings, name, binding.Metadata.Name, CancellationToken.None);
        await cluster.Api.DeleteAsync(WorkspaceReconciler.NetworkPolicies, name, "controlplane-default-deny", CancellationToken.None);
        await cluster.Api.PatchAsync<V1ConfigMap>(ConfigMaps, name, "controlplane-workspace", """{"data":{"region":"us"}}""", PatchTypes.Merge, CancellationToken.None);

        await Net.WaitUntilAsync(async () =>
            await cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, name, binding.Metadata.Name, CancellationToken.None) is not null
            && await cluster.Api.TryGetAsync<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, name, "controlplane-default-deny", CancellationToken.None) is not null
            && (await cluster.Api.GetAsync<V1ConfigMap>(ConfigMaps, name, "controlplane-workspace", CancellationToken.None)).Data["region"] == "eu",
            TimeSpan.FromSeconds(60), "children restored");
        await Net.WaitUntilAsync(async () =>
            (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, "default", null, 1000, null, CancellationToken.None)).Items
                .Any(e => e.InvolvedObject.Name == name && e.Reason == "DriftRepaired"),
            TimeSpan.FromSeconds(60), "DriftRepaired event");
    }

    [Theory]
    [InlineData("Delete")]
    [InlineData("Retain")]
    public async Task Deletion_RemovesChildren_AndTheDatabaseOnlyWithDeletePolicy(string policy)
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync(wsEdit: w => w.Database = new WorkspaceDatabase { DeletionPolicy = policy });
        var dbName = RegionDatabases.DatabaseName(name);
        Assert.True(await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", dbName, CancellationToken.None));
        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetWorkspaceAsync(name) is null, TimeSpan.FromSeconds(60), "workspace deleted");
        Assert.Null(await cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None));
        Assert.Equal(policy == "Retain", await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", dbName, CancellationToken.None));
        var row = await op.Runtime.Database.GetWorkspaceAsync(name, CancellationToken.None);
        Assert.Equal("deleted", row!.ProvisioningState);
        Assert.NotNull(row.DeletedAt);
    }

    [Fact]
    public async Task DeletionWithPostgresDown_WaitsAndSaysSo_ThenCompletes()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync(wsEdit: w => w.Database = new WorkspaceDatabase { DeletionPolicy = "Delete" });
        await cluster.Postgres.StopServerAsync();
        try
        {
            await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
            var waiting = await WaitForWorkspaceAsync(name, w => Condition(w, "DatabaseReady")?.Message.Contains("Deletion waits") == true && w.Status?.Phase == WorkspacePhase.Terminating,
                "deletion waiting for Postgres", TimeSpan.FromSeconds(60));
            Assert.Equal("DatabaseUnavailable", Condition(waiting, "DatabaseReady")!.Reason);
        }
        finally
        {
            await cluster.Postgres.StartServerAsync();
        }

        await Net.WaitUntilAsync(async () => await GetWorkspaceAsync(name) is null, TimeSpan.FromSeconds(60), "workspace deleted after Postgres came back");
        Assert.False(await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", RegionDatabases.DatabaseName(name), CancellationToken.None));
    }

    [Fact]
    public async Task WorkspaceWithoutADatabase_IsRecordedOnce_ReadyWithOneAuditEvent_AndWithADatabase_IntentFirst()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, plain) = await ReadyWorkspaceAsync(wsEdit: s => s.Database = new WorkspaceDatabase { Enabled = false });
        var (_, withDb) = await ReadyWorkspaceAsync();
        async Task<List<string>> AuditsAsync(string name)
        {
            await using var ds = cluster.Postgres.DataSourceFor();
            await using var cmd = ds.CreateCommand("SELECT action || ':' || coalesce(details->>'state', '') FROM controlplane.audit_events WHERE object_name = $1 AND kind = 'Workspace' ORDER BY id");
            cmd.Parameters.AddWithValue(name);
            var result = new List<string>();
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync()) result.Add(reader.GetString(0));
            return result;
        }

        // Nothing is made outside Kubernetes: one write, in the state the pass reached.
        Assert.Equal(["workspace.created:ready"], await AuditsAsync(plain));
        Assert.Equal("ready", (await op.Runtime.Database.GetWorkspaceAsync(plain, CancellationToken.None))!.ProvisioningState);
        // A database is made on the region's server: the row records the intent before it.
        var withDbAudits = await AuditsAsync(withDb);
        Assert.Equal("workspace.created:creating", withDbAudits[0]);
        Assert.Contains("workspace.ready:ready", withDbAudits);
    }

    [Fact]
    public async Task DataModeChange_IsAudited()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync();
        await cluster.Api.EditAsync<Workspace>(ClusterFixture.Workspaces, null, name, w => w.Spec.DataMode = "full");
        await WaitForWorkspaceAsync(name, IsReady, "Ready after the change");
        await Net.WaitUntilAsync(async () =>
        {
            await using var ds = cluster.Postgres.DataSourceFor();
            await using var cmd = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE object_name = $1 AND action = 'workspace.dataModeChanged'");
            cmd.Parameters.AddWithValue(name);
            return (long)(await cmd.ExecuteScalarAsync())! == 1;
        }, TimeSpan.FromSeconds(60), "dataModeChanged audited");
        var settings = await cluster.Api.GetAsync<V1ConfigMap>(ConfigMaps, name, "controlplane-workspace", CancellationToken.None);
        Assert.Equal("full", settings.Data["dataMode"]);
    }

    [Fact]
    public async Task UnchangedWorkspace_ReconcilesWithZeroWrites_ToTheApiServerAndToPostgres()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var (_, name) = await ReadyWorkspaceAsync(
            t => t.Owners = [new Subject { Kind = "User", Name = "alice@example.com" }],
            w =>
            {
                w.Members = [new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" }];
                w.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1"), Memory = new ResourceQuantity("1Gi"), Storage = new ResourceQuantity("10Gi"), Pods = 5 };
                w.Database = new WorkspaceDatabase { Extensions = ["pgcrypto"] };
            });
        await op.WaitUntilIdleAsync();
        var counts = () => (Api: op.Requests.Writes, Db: op.Runtime.Database.Writes, Regions: op.Runtime.RegionDatabases.Writes);
        var before = counts();
        var done = () => op.Runtime.Metrics.ReconcileTotal.WithLabels("workspace", "success").Value;
        var reconciled = done();
        var total = op.Runtime.InformerOf<Workspace>()!.Keys.Count();
        op.Runtime.ResyncAll();
        await Net.WaitUntilAsync(() => Task.FromResult(done() >= reconciled + total && op.Runtime.IsIdle), TimeSpan.FromSeconds(60), "all workspaces reconciled again");
        Assert.Equal(before, counts());
        output.WriteLine($"{total} workspaces reconciled without change: 0 writes; requests: " +
            string.Join(", ", op.Requests.Snapshot().Select(kv => $"{kv.Key}={kv.Value}")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NewWorkspace_ConvergesInOneReconcile_EchoesOfItsOwnWritesAndQuotaUsageQueueNothing_OthersChangesDo(bool database)
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        await op.WaitUntilLeaderAndSyncedAsync();
        var reconciles = new System.Collections.Concurrent.ConcurrentQueue<string>();
        op.Runtime.Reconciled += (controller, key, _) =>
        {
            if (controller == "workspace") reconciles.Enqueue(key);
        };
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant, w =>
        {
            w.Members = [new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" }];
            w.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("1"), Memory = new ResourceQuantity("1Gi"), Pods = 5 };
            w.Database = new WorkspaceDatabase { Enabled = database };
        });
        await WaitForWorkspaceAsync(name, IsReady, "Ready");

        await op.WaitUntilIdleAsync();

        // A quota's usage is written by kube-controller-manager and quota admission (on every pod):
        // not our write, and nothing the operator reads. Write it as they do, and wait until the
        // operator's cache has that version.
        var quota = await cluster.Api.GetAsync<V1ResourceQuota>(WorkspaceReconciler.Quotas, name, WorkspaceResources.QuotaName, CancellationToken.None);
        quota.Status = new V1ResourceQuotaStatus { Hard = quota.Spec.Hard, Used = quota.Spec.Hard.ToDictionary(kv => kv.Key, _ => new ResourceQuantity("0")) };
        quota = await cluster.Api.ReplaceAsync(WorkspaceReconciler.Quotas, name, quota.Metadata.Name, quota, CancellationToken.None, "status");
        var quotas = op.Runtime.InformerOf<V1ResourceQuota>()!;
        await Net.WaitUntilAsync(() => Task.FromResult(quotas.Get($"{name}/{WorkspaceResources.QuotaName}")?.Metadata.ResourceVersion == quota.Metadata.ResourceVersion),
            TimeSpan.FromSeconds(60), "quota usage cached");
        await op.WaitUntilIdleAsync();
        Assert.Equal(1, reconciles.Count(k => k == name));

        // Anyone else's change is still seen at once.
        await cluster.Api.PatchAsync<V1ConfigMap>(ConfigMaps, name, "controlplane-workspace", """{"data":{"region":"us"}}""", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await cluster.Api.GetAsync<V1ConfigMap>(ConfigMaps, name, "controlplane-workspace", CancellationToken.None)).Data["region"] == "eu",
            TimeSpan.FromSeconds(60), "settings restored");
        await op.WaitUntilIdleAsync();
        Assert.Equal(2, reconciles.Count(k => k == name));
    }
}
