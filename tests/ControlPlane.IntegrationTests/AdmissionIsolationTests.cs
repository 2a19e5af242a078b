using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Tenant isolation at admission, attacked as token users of the local API server through the real
/// webhooks: no workspace over an existing or reserved namespace, no unconfigured region, no raw
/// Ingress/NetworkPolicy/quota writes in a workspace namespace even with a hand-made RoleBinding,
/// and no reference that leaves the tenant or the workspace's own database.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class AdmissionIsolationTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static readonly ResourceType Ingresses = new("networking.k8s.io", "v1", "ingresses", "Ingress", true);
    static readonly ResourceType NetworkPolicies = new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true);
    static readonly ResourceType Quotas = new("", "v1", "resourcequotas", "ResourceQuota", true);
    static readonly ResourceType ClusterRoles = new("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false);
    static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    /// <summary>A tenant and a Ready workspace (no database) where bob is Operator.</summary>
    async Task<(string Tenant, Workspace Workspace)> WorkspaceAsync()
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = Unique(tenant) } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = Cluster.Plane.Users["bob"].Name, Role = "Operator" }];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        Workspace? ready = null;
        await Net.WaitUntilAsync(async () =>
        {
            ready = await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, ws.Metadata.Name, CancellationToken.None);
            return ready?.Status?.Phase == WorkspacePhase.Ready;
        }, TimeSpan.FromSeconds(30), $"workspace {ws.Metadata.Name} Ready");
        return (tenant, ready!);
    }

    static Workspace NewWorkspace(string name, string tenant)
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        return ws;
    }

    [Fact]
    public async Task AWorkspaceOverAnExistingOrReservedNamespace_IsRefused_NamingTheField()
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant);
        var existing = Unique("argocd");
        await Cluster.Api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = existing } }, CancellationToken.None);
        using var alice = As("alice"); // any user allowed to create workspaces
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(existing, tenant), CancellationToken.None);
                await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, existing, CancellationToken.None); // the cache had not seen it yet
                return false;
            }
            catch (KubeApiException e) when (e.StatusMessage.Contains("already exists", StringComparison.Ordinal))
            {
                Assert.Contains("metadata.name", e.StatusMessage);
                return true;
            }
        }, TimeSpan.FromSeconds(20), "workspace over an existing namespace refused");

        foreach (var reserved in new[] { "kube-system", "kube-anything", "default", "controlplane-system", "argocd" })
        {
            var refused = await Refused(() => alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(reserved, tenant), CancellationToken.None));
            Assert.Contains("metadata.name", refused.StatusMessage);
            Assert.Contains("reserved", refused.StatusMessage);
        }
    }

    [Fact]
    public async Task AnExtensionOutsideTheRegionsAllowlist_IsRefusedAtAdmission_NamingTheEntry()
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant);
        var ws = NewWorkspace(Unique(tenant), tenant);
        ws.Spec.Database = new WorkspaceDatabase { Extensions = ["pgcrypto", "plpython3u"] };
        using var alice = As("alice");
        var refused = await Refused(() => alice.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None));
        Assert.Contains("spec.database.extensions[1]: \"plpython3u\" is not in region eu's allowlist", refused.StatusMessage);
    }

    [Fact]
    public async Task ATenantInAnUnconfiguredRegion_IsRefused_ListingTheRegionsThatExist()
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = Unique("mars") } };
        tenant.Spec.Region = "mars";
        var refused = await Refused(() => Cluster.Api.CreateAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None));
        Assert.Contains("spec.region: \"mars\" is not a configured region (configured: eu, us)", refused.StatusMessage);
    }

    [Fact]
    public async Task Members_CannotWriteIngressesNetworkPoliciesOrQuotas_EvenWithAHandMadeRoleBinding()
    {
        var (_, ws) = await WorkspaceAsync();
        var ns = ws.Metadata.Name;
        using var bob = As("bob");
        var ingress = new V1Ingress
        {
            Metadata = new V1ObjectMeta { Name = "raw" },
            Spec = new V1IngressSpec { DefaultBackend = new V1IngressBackend { Service = new V1IngressServiceBackend { Name = "orders", Port = new V1ServiceBackendPort { Number = 80 } } } },
        };

        // The workspace roles grant no write on them at all.
        var byRbac = await Refused(() => bob.CreateAsync(Ingresses, ns, ingress, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, byRbac.StatusCode);

        // A RoleBinding someone adds by hand does not reopen them: the webhook refuses.
        var editor = Unique("raw-network-editor");
        await Cluster.Api.CreateAsync(ClusterRoles, null, new V1ClusterRole
        {
            Metadata = new V1ObjectMeta { Name = editor },
            Rules =
            [
                new V1PolicyRule { ApiGroups = ["networking.k8s.io"], Resources = ["ingresses", "networkpolicies"], Verbs = ["*"] },
                new V1PolicyRule { ApiGroups = [""], Resources = ["resourcequotas", "limitranges"], Verbs = ["*"] },
            ],
        }, CancellationToken.None);
        await Cluster.Api.CreateAsync(RoleBindings, ns, new V1RoleBinding
        {
            Metadata = new V1ObjectMeta { Name = editor },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = editor },
            Subjects = [new Rbacv1Subject { Kind = "User", Name = Cluster.Plane.Users["bob"].Name, ApiGroup = "rbac.authorization.k8s.io" }],
        }, CancellationToken.None);

        // RBAC takes the new binding in a moment later: wait until it grants the write, so what refuses is the webhook.
        var reviews = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.CreateAsync(reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = Cluster.Plane.Users["bob"].Name,
                ResourceAttributes = new V1ResourceAttributes { Verb = "create", Group = "networking.k8s.io", Resource = "ingresses", NamespaceProperty = ns },
            },
        }, CancellationToken.None)).Status.Allowed, TimeSpan.FromSeconds(60), "the hand-made RoleBinding in effect");
        var raw = await Refused(() => bob.CreateAsync(Ingresses, ns, ingress, CancellationToken.None));
        Assert.Contains("managed by the operator only", raw.StatusMessage);
        Assert.Contains("Exposure", raw.StatusMessage);
        var open = await Refused(() => bob.DeleteAsync(NetworkPolicies, ns, "controlplane-default-deny", CancellationToken.None));
        Assert.Contains("WorkspaceNetworkPolicy", open.StatusMessage);
        var allowAll = new V1NetworkPolicy
        {
            Metadata = new V1ObjectMeta { Name = "allow-all" },
            Spec = new V1NetworkPolicySpec { PodSelector = new V1LabelSelector(), Ingress = [new V1NetworkPolicyIngressRule()] },
        };
        await Refused(() => bob.CreateAsync(NetworkPolicies, ns, allowAll, CancellationToken.None));
        var quota = new V1ResourceQuota { Metadata = new V1ObjectMeta { Name = "more" }, Spec = new V1ResourceQuotaSpec { Hard = new Dictionary<string, ResourceQuantity> { ["pods"] = new("1000") } } };
        var bigger = await Refused(() => bob.CreateAsync(Quotas, ns, quota, CancellationToken.None));
        Assert.Contains("spec.quota", bigger.StatusMessage);

        // Nothing changed: the default-deny policy is still there.
        Assert.NotNull(await Cluster.Api.TryGetAsync<V1NetworkPolicy>(NetworkPolicies, ns, "controlplane-default-deny", CancellationToken.None));
        Assert.Null(await Cluster.Api.TryGetAsync<V1Ingress>(Ingresses, ns, "raw", CancellationToken.None));
    }

    [Fact]
    public async Task References_ThatLeaveTheTenantOrTheWorkspacesDatabase_AreRefused()
    {
        var (_, mine) = await WorkspaceAsync();
        var (_, theirs) = await WorkspaceAsync();
        using var bob = As("bob");
        var ns = mine.Metadata.Name;

        var policy = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = "from-them" } };
        policy.Spec.Ingress = [new IngressRule { From = [new Peer { Workspace = theirs.Metadata.Name }] }];
        var peer = await Refused(() => bob.CreateAsync(ResourceType.For<WorkspaceNetworkPolicy>(true), ns, policy, CancellationToken.None));
        Assert.Contains("spec.ingress[0].from[0].workspace", peer.StatusMessage);

        var rollout = new Rollout { Metadata = new V1ObjectMeta { Name = "orders" } };
        rollout.Spec.Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "registry.example/orders:2.1.0" }] };
        rollout.Spec.Rings = [new Ring { Name = "ring-0", Workspaces = [ns, theirs.Metadata.Name], Soak = "10m" }];
        var ring = await Refused(() => bob.CreateAsync(ResourceType.For<Rollout>(true), ns, rollout, CancellationToken.None));
        Assert.Contains("spec.rings[0].workspaces[1]", ring.StatusMessage);
        rollout.Spec.Rings = [new Ring { Name = "ring-0", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/tenant"] = theirs.Spec.Tenant } }, Soak = "10m" }];
        var selector = await Refused(() => bob.CreateAsync(ResourceType.For<Rollout>(true), ns, rollout, CancellationToken.None));
        Assert.Contains("spec.rings[0].selector", selector.StatusMessage);

        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "nightly" } };
        plan.Spec.Schedule = "0 2 * * *";
        plan.Spec.Database = "ws_" + theirs.Metadata.Name.Replace('-', '_');
        plan.Spec.Storage = new BackupStorage { S3 = new S3Storage { Endpoint = "http://127.0.0.1:9", Bucket = "backups", CredentialsSecret = new LocalObjectReference { Name = "s3" } } };
        var backup = await Refused(() => bob.CreateAsync(ResourceType.For<BackupPlan>(true), ns, plan, CancellationToken.None));
        Assert.True(backup.StatusMessage.Contains("spec.database: ", StringComparison.Ordinal), backup.StatusMessage);

        var restore = new Restore { Metadata = new V1ObjectMeta { Name = "back" } };
        restore.Spec.BackupPlan = "nightly";
        restore.Spec.Backup = "b-1";
        restore.Spec.Into = new RestoreTarget { Database = "ws_" + theirs.Metadata.Name.Replace('-', '_') };
        var into = await Refused(() => bob.CreateAsync(ResourceType.For<Restore>(true), ns, restore, CancellationToken.None));
        Assert.Contains("spec.into.database", into.StatusMessage);
    }
    [Fact]
    public async Task TheWebhookPort_AnswersOnlyTheApiServer()
    {
        var url = $"https://127.0.0.1:{fixture.WebhookPort}/validate";
        const string review = """
            {"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"probe","kind":{"group":"controlplane.io","version":"v1alpha1","kind":"Tenant"},
             "operation":"CREATE","userInfo":{"username":"mallory"},"object":{"metadata":{"name":"probe"},"spec":{"region":"eu"}}}}
            """;

        // No client certificate: the TLS handshake fails, so nothing about tenants or access is answered.
        using (var anyone = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }))
        {
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => anyone.PostAsync(url, new StringContent(review, System.Text.Encoding.UTF8, "application/json")));
        }

        // A client certificate from another CA is refused too.
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=kube-apiserver-webhook-client", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var forged = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        handler.ClientCertificates.Add(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(forged.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx), null));
        using var impostor = new HttpClient(handler);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => impostor.PostAsync(url, new StringContent(review, System.Text.Encoding.UTF8, "application/json")));

        // Another listener's port with a Host header naming the webhook's: never the webhook (the Host a client writes does
        // not choose the listener). The plain-HTTP health port and the audit API's port (any client certificate, or none).
        using (var plain = new HttpClient())
        {
            var viaHealth = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{fixture.HealthPort}/validate")
            {
                Content = new StringContent(review, System.Text.Encoding.UTF8, "application/json"),
            };
            viaHealth.Headers.Host = $"127.0.0.1:{fixture.WebhookPort}";
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await plain.SendAsync(viaHealth)).StatusCode);
        }

        using (var anyone = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }))
        {
            var viaAudit = new HttpRequestMessage(HttpMethod.Post, $"https://{fixture.AuditAddress}:{fixture.AuditPort}/validate")
            {
                Content = new StringContent(review, System.Text.Encoding.UTF8, "application/json"),
            };
            viaAudit.Headers.Host = $"127.0.0.1:{fixture.WebhookPort}";
            Assert.NotEqual(System.Net.HttpStatusCode.OK, (await anyone.SendAsync(viaAudit)).StatusCode);

            // The audit API answers on its own port whatever port the Host names (the aggregator addresses the Service's):
            // discovery without the front proxy's certificate is 401, not 404.
            var discovery = new HttpRequestMessage(HttpMethod.Get, $"https://{fixture.AuditAddress}:{fixture.AuditPort}/apis/audit.controlplane.io/v1alpha1");
            discovery.Headers.Host = "controlplane-webhook.controlplane-system.svc:8443";
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anyone.SendAsync(discovery)).StatusCode);
        }

        // The API server, presenting its client certificate, is answered (every admission in these tests goes that way).
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant);
        Assert.NotNull(await Cluster.GetTenantAsync(tenant));

        // The shipped NetworkPolicy for the operator's pods is a valid object.
        await Cluster.Plane.KubectlAsync(CancellationToken.None, "apply", "--dry-run=server", "-f",
            Path.Combine(ControlPlane.LocalEnv.Program.FindRepoRoot(), "config", "network"));
    }
}
