using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 22, class 2 ("Exposure hosts are first come, first served"), attacked as token users through
/// the whole operator: alice (WorkspaceAdmin of an acme workspace) goes after globex's hosts, its
/// default domain, platform hosts and wildcards, overlapping prefixes, unsafe backends and paths, and
/// WorkspaceNetworkPolicy selectors the API server would refuse; bob (WorkspaceAdmin of globex) then
/// publishes on his own hosts. carol approves acme's, erin globex's.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class ExposureHostAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType Services = ExposureResources.Services;
    static readonly ResourceType Endpoints = new("", "v1", "endpoints", "Endpoints", true);
    static readonly ResourceType Ingresses = ExposureResources.Ingresses;

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static string Email(string user) => user + "@example.com";

    /// <summary>One side: a tenant delegated *.&lt;domain&gt; and a Ready workspace where <paramref name="admin"/> is WorkspaceAdmin and <paramref name="approver"/> Approver.</summary>
    sealed record Side(string Tenant, string Workspace, string Domain);

    async Task<Side> SideAsync(string name, string admin, string approver, string? inTenant = null, string? domain = null)
    {
        var tenant = inTenant ?? Unique(name);
        domain ??= $"{tenant}.example";
        if (inTenant is null)
        {
            var delegated = $"*.{domain}";
            await Cluster.CreateTenantAsync(tenant, edit: t => t.Exposure = new TenantExposure { AllowedDomains = [delegated] });
        }

        var ws = Unique(tenant);
        await Cluster.CreateWorkspaceAsync(ws, tenant, w =>
        {
            w.Database = new WorkspaceDatabase { Enabled = false };
            w.Members =
            [
                new WorkspaceMember { Kind = "User", Name = Email(admin), Role = "WorkspaceAdmin" },
                new WorkspaceMember { Kind = "User", Name = Email(approver), Role = "Approver" },
            ];
        });
        await Cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        return new Side(tenant, ws, domain);
    }

    static V1Service Service(string name, Action<V1ServiceSpec>? edit = null)
    {
        var spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = name }, Ports = [new V1ServicePort { Port = 8080, Protocol = "TCP" }] };
        edit?.Invoke(spec);
        return new V1Service { ApiVersion = "v1", Kind = "Service", Metadata = new V1ObjectMeta { Name = name }, Spec = spec };
    }

    static Exposure NewExposure(string name, string? host = null, string path = "/orders", string service = "orders") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new ExposureSpec { Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = service, Port = 8080 }, Host = host, Path = path, Publish = true },
    };

    static Approval NewApproval(string target) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exposure", Name = target }, Decision = "approve" },
    };

    static async Task<string> RefusedAsync(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.StatusCode);
        return e.StatusMessage;
    }

    Task<Exposure> WaitForAsync(string ws, string name, Func<Exposure, bool> condition, string what) => ExposureWaits.WaitForAsync(Cluster.Api, ws, name, condition, what);

    static string? ReadyReason(Exposure e) => ExposureWaits.ReadyReason(e);

    [Fact]
    public async Task Acme_CannotPublishOnGlobexsHost_ItsDefaultDomain_PlatformHostsOrWildcards_AndGlobexPublishesOnItsOwn()
    {
        var globex = await SideAsync("globex", "bob", "erin");
        var acme = await SideAsync("acme", "alice", "carol");
        using var alice = As("alice");
        using var bob = As("bob");
        await alice.CreateAsync(Services, acme.Workspace, Service("orders"), CancellationToken.None);

        string[] theirs = [$"api.{globex.Domain}", $"orders.{globex.Workspace}.apps.example.com", "*.apps.example.com", "login.example.com", $"*.{globex.Domain}", "apps.example.com"];
        foreach (var host in theirs)
        {
            var message = await RefusedAsync(() => alice.CreateAsync(Exposures, acme.Workspace, NewExposure(Unique("grab"), host), CancellationToken.None));
            Assert.Contains($"spec.host: \"{host}\"", message);
        }

        // Overlapping prefixes on globex's host are refused too (the host is not acme's to begin with).
        foreach (var path in new[] { "/orders/admin", "/" })
        {
            var message = await RefusedAsync(() => alice.CreateAsync(Exposures, acme.Workspace, NewExposure(Unique("grab"), $"api.{globex.Domain}", path), CancellationToken.None));
            Assert.Contains($"spec.host: \"api.{globex.Domain}\" is not delegated to tenant {acme.Tenant}", message);
        }

        Assert.Empty((await Cluster.Api.ListAsync<Exposure>(Exposures, acme.Workspace, null, 100, null, CancellationToken.None)).Items);

        // An update cannot move an admitted Exposure there either.
        await alice.CreateAsync(Exposures, acme.Workspace, NewExposure("mine", $"api.{acme.Domain}"), CancellationToken.None);
        var moved = await RefusedAsync(() => alice.PatchAsync<Exposure>(Exposures, acme.Workspace, "mine", $$$"""{"spec":{"host":"orders.{{{globex.Workspace}}}.apps.example.com"}}""",
            PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.host: ", moved);

        // globex's own later Exposures, on its default host and its delegated one, are accepted and go live.
        await bob.CreateAsync(Services, globex.Workspace, Service("orders"), CancellationToken.None);
        await bob.CreateAsync(Exposures, globex.Workspace, NewExposure("orders"), CancellationToken.None);
        await bob.CreateAsync(Exposures, globex.Workspace, NewExposure("api", $"api.{globex.Domain}"), CancellationToken.None);
        using var erin = As("erin");
        await erin.CreateAsync(Approvals, globex.Workspace, NewApproval("orders"), CancellationToken.None);
        await WaitForAsync(globex.Workspace, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");
        var ingress = await Cluster.Api.GetAsync<V1Ingress>(Ingresses, globex.Workspace, "orders", CancellationToken.None);
        Assert.Equal($"orders.{globex.Workspace}.apps.example.com", ingress.Spec.Rules.Single().Host);
    }

    [Fact]
    public async Task APathPrefix_OnAHost_BelongsToOneWorkspace_OverlapsAreRefused_AndPSlashIsP()
    {
        var owner = await SideAsync("globex", "bob", "erin");
        var sibling = await SideAsync("globex", "alice", "carol", inTenant: owner.Tenant, domain: owner.Domain);
        using var alice = As("alice");
        using var bob = As("bob");
        var host = $"api.{owner.Domain}";
        await bob.CreateAsync(Exposures, owner.Workspace, NewExposure("orders", host), CancellationToken.None);

        // Another workspace (even of the same tenant) may not nest under, over or onto the prefix.
        foreach (var path in new[] { "/orders/admin", "/", "/orders/" })
        {
            var message = await RefusedAsync(() => alice.CreateAsync(Exposures, sibling.Workspace, NewExposure(Unique("nest"), host, path), CancellationToken.None));
            Assert.Contains(path == "/orders/" ? $"spec.host/spec.path: {host}/orders is already claimed" : $"spec.path: \"{path}\" on host {host} overlaps \"/orders\"", message);
        }

        // /p and /p/ are one route in the owner's workspace too; a nested route of its own is its business.
        var same = await RefusedAsync(() => bob.CreateAsync(Exposures, owner.Workspace, NewExposure("again", host, "/orders/"), CancellationToken.None));
        Assert.Contains("already claimed by Exposure", same);
        await bob.CreateAsync(Exposures, owner.Workspace, NewExposure("admin", host, "/orders/admin"), CancellationToken.None);
        await alice.CreateAsync(Exposures, sibling.Workspace, NewExposure("ordersx", host, "/ordersx"), CancellationToken.None);
    }

    [Fact]
    public async Task UnsafePaths_AreRefusedAtAdmission_NamingSpecPath()
    {
        var acme = await SideAsync("acme", "alice", "carol");
        using var alice = As("alice");
        foreach (var path in new[] { "/x;}location /{return 200 pwned;}#", "/a b", "/a//b", "/a/../admin", "/a/./b", "/a%2F..", "/a\"b" })
        {
            var message = await RefusedAsync(() => alice.CreateAsync(Exposures, acme.Workspace, NewExposure(Unique("inject"), path: path), CancellationToken.None));
            Assert.Contains("spec.path: ", message);
        }

        Assert.Empty((await Cluster.Api.ListAsync<Exposure>(Exposures, acme.Workspace, null, 100, null, CancellationToken.None)).Items);
    }

    [Fact]
    public async Task Backends_OnlyClusterIpServicesWithASelector_AtAdmission_AndAtReconcile_WhereTheIngressIsWithdrawn()
    {
        var acme = await SideAsync("acme", "alice", "carol");
        using var alice = As("alice");
        using var carol = As("carol");
        var ws = acme.Workspace;
        await alice.CreateAsync(Services, ws, Service("apiserver", s =>
        {
            s.Type = "ExternalName";
            s.ExternalName = "kubernetes.default.svc.cluster.local";
            s.Selector = null;
        }), CancellationToken.None);
        await alice.CreateAsync(Services, ws, Service("manual", s => s.Selector = null), CancellationToken.None);
        await alice.CreateAsync(Endpoints, ws, new V1Endpoints
        {
            ApiVersion = "v1", Kind = "Endpoints", Metadata = new V1ObjectMeta { Name = "manual" },
            Subsets = [new V1EndpointSubset { Addresses = [new V1EndpointAddress { Ip = "10.96.0.1" }], Ports = [new Corev1EndpointPort { Port = 443 }] }],
        }, CancellationToken.None);

        var external = await RefusedAsync(() => alice.CreateAsync(Exposures, ws, NewExposure("external", service: "apiserver"), CancellationToken.None));
        Assert.Contains("spec.backend.service: Service apiserver in namespace " + ws + " is of type ExternalName", external);
        var manual = await RefusedAsync(() => alice.CreateAsync(Exposures, ws, NewExposure("manual", path: "/manual", service: "manual"), CancellationToken.None));
        Assert.Contains("spec.backend.service: Service manual in namespace " + ws + " has no selector", manual);

        // Published on a proper Service, which is then swapped for an ExternalName one: the Ingress comes down.
        await alice.CreateAsync(Services, ws, Service("orders"), CancellationToken.None);
        await alice.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");
        Assert.NotNull(await Cluster.Api.TryGetAsync<V1Ingress>(Ingresses, ws, "orders", CancellationToken.None));
        await alice.DeleteAsync(Services, ws, "orders", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<V1Service>(Services, ws, "orders", CancellationToken.None) is null, TimeSpan.FromSeconds(60), "service gone");
        await alice.CreateAsync(Services, ws, Service("orders", s =>
        {
            s.Type = "ExternalName";
            s.ExternalName = "kubernetes.default.svc.cluster.local";
            s.Selector = null;
        }), CancellationToken.None);
        var refused = await WaitForAsync(ws, "orders", e => ReadyReason(e) == "BackendRefused", "BackendRefused");
        Assert.Contains("spec.backend.service: Service orders", refused.Status!.Conditions!.Single(c => c.Type == ExposureConditions.Ready).Message);
        Assert.Null(refused.Status.PublishedGeneration);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<V1Ingress>(Ingresses, ws, "orders", CancellationToken.None) is null, TimeSpan.FromSeconds(60), "ingress withdrawn");
    }

    [Fact]
    public async Task ADelegationThatShrinks_TakesTheLiveExposureDown_AndDelegationsAreExclusive_AndNotTheOwnersToWiden()
    {
        var acme = await SideAsync("acme", "alice", "carol");
        using var alice = As("alice");
        using var carol = As("carol");
        var ws = acme.Workspace;
        var host = $"api.{acme.Domain}";
        await alice.CreateAsync(Services, ws, Service("orders"), CancellationToken.None);
        await alice.CreateAsync(Exposures, ws, NewExposure("orders", host), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");

        // Another tenant cannot be delegated an overlapping domain.
        var other = Unique("globex");
        var overlap = await RefusedAsync(() => Cluster.CreateTenantAsync(other, edit: t => t.Exposure = new TenantExposure { AllowedDomains = ["ok." + other + ".example", host] }));
        Assert.Contains($"spec.exposure.allowedDomains[1]: \"{host}\" overlaps \"*.{acme.Domain}\", delegated to tenant {acme.Tenant}", overlap);
        var platform = await RefusedAsync(() => Cluster.CreateTenantAsync(other, edit: t => t.Exposure = new TenantExposure { AllowedDomains = ["*.example.com"] }));
        Assert.Contains("spec.exposure.allowedDomains[0]: \"*.example.com\" reaches into the platform's default domain", platform);

        // A tenant owner (olga: no cluster-wide role, only what owning the tenant gives) cannot widen the delegation: owners may only read their Tenant.
        using var olga = As("olga");
        await Cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, acme.Tenant, $$$"""{"spec":{"owners":[{"kind":"User","name":"{{{Email("olga")}}}"}]}}""",
            PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                return await olga.GetAsync<Tenant>(ClusterFixture.Tenants, null, acme.Tenant, CancellationToken.None) is not null;
            }
            catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Forbidden)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "olga reads her tenant as its owner");
        var widen = await Assert.ThrowsAsync<KubeApiException>(() => olga.PatchAsync<Tenant>(ClusterFixture.Tenants, null, acme.Tenant,
            """{"spec":{"exposure":{"allowedDomains":["*.example"]}}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, widen.StatusCode);

        // The platform withdraws the delegation: the approved, live Exposure comes down and says why.
        await Cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, acme.Tenant, """{"spec":{"exposure":{"allowedDomains":[]}}}""", PatchTypes.Merge, CancellationToken.None);
        var down = await WaitForAsync(ws, "orders", e => ReadyReason(e) == "HostNotDelegated", "HostNotDelegated");
        Assert.Null(down.Status!.PublishedGeneration);
        Assert.Contains($"spec.host: \"{host}\" is not delegated to tenant {acme.Tenant}", down.Status.Conditions!.Single(c => c.Type == ExposureConditions.Ready).Message);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<V1Ingress>(Ingresses, ws, "orders", CancellationToken.None) is null, TimeSpan.FromSeconds(60), "ingress withdrawn");
    }

    [Fact]
    public async Task NetworkPolicySelectors_TheApiServerWouldRefuse_AreRefusedAtAdmission_NamingTheField()
    {
        var acme = await SideAsync("acme", "alice", "carol");
        using var alice = As("alice");
        var policies = WorkspaceNetworkPolicyReconciler.Type;
        WorkspaceNetworkPolicy Policy(LabelSelector top, LabelSelector peer)
        {
            var p = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = Unique("np") } };
            p.Spec.PodSelector = top;
            p.Spec.Ingress = [new IngressRule { From = [new Peer { PodSelector = peer }], Ports = [new NetworkPort { Port = 8080 }] }];
            return p;
        }

        var ok = new LabelSelector { MatchLabels = new() { ["app"] = "orders" } };
        var message = await RefusedAsync(() => alice.CreateAsync(policies, acme.Workspace, Policy(
            new LabelSelector { MatchLabels = new() { ["bad key!"] = "x", ["app"] = "not a value" } },
            new LabelSelector
            {
                MatchExpressions =
                [
                    new LabelSelectorRequirement { Key = "tier", Operator = "In" },
                    new LabelSelectorRequirement { Key = "zone", Operator = "Exists", Values = ["a"] },
                    new LabelSelectorRequirement { Key = "a/b/c", Operator = "NotIn", Values = ["x y"] },
                ],
            }), CancellationToken.None));
        Assert.Contains("spec.podSelector.matchLabels: key \"bad key!\" is not a label key", message);
        Assert.Contains("spec.podSelector.matchLabels[app]: \"not a value\" is not a label value", message);
        Assert.Contains("spec.ingress[0].from[0].podSelector.matchExpressions[0].values: operator In needs at least one value", message);
        Assert.Contains("spec.ingress[0].from[0].podSelector.matchExpressions[1].values: operator Exists takes no values", message);
        Assert.Contains("spec.ingress[0].from[0].podSelector.matchExpressions[2].key: \"a/b/c\" is not a label key", message);
        Assert.Contains("spec.ingress[0].from[0].podSelector.matchExpressions[2].values[0]: \"x y\" is not a label value", message);

        // A well-formed one passes.
        await alice.CreateAsync(policies, acme.Workspace, Policy(ok, ok), CancellationToken.None);
    }

    [Fact]
    public async Task AnExposureNameLongerThanALabelValue_IsRefusedAtAdmission_NamingTheField()
    {
        // Its name labels the Ingress (controlplane.io/exposure): 64+ characters would be admitted, then refused by the API server every pass.
        var acme = await SideAsync("acme", "alice", "carol");
        using var alice = As("alice");
        await alice.CreateAsync(Services, acme.Workspace, Service("orders"), CancellationToken.None);
        var longName = "orders-" + new string('a', 60);
        var message = await RefusedAsync(() => alice.CreateAsync(Exposures, acme.Workspace, NewExposure(longName, $"api.{acme.Domain}"), CancellationToken.None));
        Assert.Contains($"metadata.name: {longName.Length} characters, at most 63", message);

        // 63 characters is a label value: admitted.
        await alice.CreateAsync(Exposures, acme.Workspace, NewExposure(longName[..63], $"api.{acme.Domain}"), CancellationToken.None);
    }
}
