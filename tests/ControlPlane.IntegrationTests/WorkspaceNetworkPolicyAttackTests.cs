using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// WorkspaceNetworkPolicy attacked as token users through the whole operator (webhooks and
/// reconcilers): a WorkspaceAdmin of tenant A reaching into tenant B, opening a CIDR its tenant does
/// not allow, and editing the NetworkPolicy the operator rendered, even with a hand-made RoleBinding.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class WorkspaceNetworkPolicyAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static readonly ResourceType Policies = WorkspaceNetworkPolicyReconciler.Type;
    static readonly ResourceType NetworkPolicies = WorkspaceReconciler.NetworkPolicies;

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    /// <summary>A tenant with allowlists and a Ready workspace (no database) where bob is WorkspaceAdmin (who may write network policies).</summary>
    async Task<(string Tenant, string Workspace)> WorkspaceAsync()
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Network = new TenantNetwork { AllowedIngressCIDRs = ["203.0.113.0/24"], ApprovedEgressCIDRs = ["198.51.100.0/24"] });
        var ws = Unique(tenant);
        await Cluster.CreateWorkspaceAsync(ws, tenant, w =>
        {
            w.Database = new WorkspaceDatabase { Enabled = false };
            w.Members = [new WorkspaceMember { Kind = "User", Name = Cluster.Plane.Users["bob"].Name, Role = "WorkspaceAdmin" }];
        });
        await Cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        return (tenant, ws);
    }

    static WorkspaceNetworkPolicy NewPolicy(string name, params Peer[] from)
    {
        var policy = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = name } };
        policy.Spec.Ingress = [new IngressRule { From = [.. from], Ports = [new NetworkPort { Port = 8080 }] }];
        return policy;
    }

    async Task<V1NetworkPolicy> RenderedAsync(string ns, string name)
    {
        V1NetworkPolicy? rendered = null;
        await Net.WaitUntilAsync(async () => (rendered = await Cluster.Api.TryGetAsync<V1NetworkPolicy>(NetworkPolicies, ns, name, CancellationToken.None)) is not null,
            TimeSpan.FromSeconds(30), $"{ns}/{name} rendered");
        return rendered!;
    }

    [Fact]
    public async Task AMemberOfTenantA_CannotPeerWithTenantB_NorOpenACidrOutsideTheAllowlist_OnCreateOrUpdate()
    {
        var (_, mine) = await WorkspaceAsync();
        var (_, theirs) = await WorkspaceAsync();
        using var bob = As("bob");

        var peer = await Refused(() => bob.CreateAsync(Policies, mine, NewPolicy("from-them", new Peer { Workspace = theirs }), CancellationToken.None));
        Assert.Contains($"spec.ingress[0].from[0].workspace: \"{theirs}\" is not a workspace of tenant", peer.StatusMessage);
        var cidr = await Refused(() => bob.CreateAsync(Policies, mine, NewPolicy("from-anywhere", new Peer { Cidr = "0.0.0.0/0" }), CancellationToken.None));
        Assert.Contains("spec.ingress[0].from[0].cidr: 0.0.0.0/0 is outside tenant", cidr.StatusMessage);
        Assert.Contains("spec.network.allowedIngressCIDRs [203.0.113.0/24]", cidr.StatusMessage);
        var open = await Refused(() => bob.CreateAsync(Policies, mine, NewPolicy("from-everyone"), CancellationToken.None));
        Assert.Contains("spec.ingress[0].from: names no peer", open.StatusMessage);

        // An admitted policy cannot be widened afterwards either.
        await bob.CreateAsync(Policies, mine, NewPolicy("api", new Peer { Cidr = "203.0.113.0/25" }), CancellationToken.None);
        await RenderedAsync(mine, "api-ingress");
        // A JSON patch carries no resourceVersion: the operator's status writes cannot turn the refusal into a conflict.
        var widened = await Refused(() => bob.PatchAsync<WorkspaceNetworkPolicy>(Policies, mine, "api",
            $$$"""[{"op":"add","path":"/spec/ingress/0/from/-","value":{"workspace":"{{{theirs}}}"}}]""", PatchTypes.Json, CancellationToken.None));
        Assert.Contains("spec.ingress[0].from[1].workspace", widened.StatusMessage);

        foreach (var name in new[] { "from-them", "from-anywhere", "from-everyone" })
        {
            Assert.Null(await Cluster.Api.TryGetAsync<WorkspaceNetworkPolicy>(Policies, mine, name, CancellationToken.None));
        }

        var rendered = await Cluster.Api.GetAsync<V1NetworkPolicy>(NetworkPolicies, mine, "api-ingress", CancellationToken.None);
        Assert.Equal("203.0.113.0/25", Assert.Single(Assert.Single(rendered.Spec.Ingress).FromProperty).IpBlock.Cidr);
    }

    [Fact]
    public async Task AMember_CannotEditOrDeleteTheRenderedNetworkPolicy_EvenWithAHandMadeRoleBinding()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        await bob.CreateAsync(Policies, ws, NewPolicy("api", new Peer { Cidr = "203.0.113.0/25" }), CancellationToken.None);
        var rendered = await RenderedAsync(ws, "api-ingress");
        const string openToAll = """{"spec":{"ingress":[{}]}}""";

        // The workspace roles grant no write on NetworkPolicies at all.
        var byRbac = await Refused(() => bob.PatchAsync<V1NetworkPolicy>(NetworkPolicies, ws, "api-ingress", openToAll, PatchTypes.Merge, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, byRbac.StatusCode);

        // A RoleBinding added by hand does not reopen them: the governed-kind webhook refuses.
        var editor = Unique("raw-netpol-editor");
        var clusterRoles = new ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false);
        await Cluster.Api.CreateAsync(clusterRoles, null, new V1ClusterRole
        {
            Metadata = new V1ObjectMeta { Name = editor },
            Rules = [new V1PolicyRule { ApiGroups = ["networking.k8s.io"], Resources = ["networkpolicies"], Verbs = ["*"] }],
        }, CancellationToken.None);
        await Cluster.Api.CreateAsync(WorkspaceReconciler.RoleBindings, ws, new V1RoleBinding
        {
            Metadata = new V1ObjectMeta { Name = editor },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = editor },
            Subjects = [new Rbacv1Subject { Kind = "User", Name = Cluster.Plane.Users["bob"].Name, ApiGroup = "rbac.authorization.k8s.io" }],
        }, CancellationToken.None);
        var reviews = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.CreateAsync(reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = Cluster.Plane.Users["bob"].Name,
                ResourceAttributes = new V1ResourceAttributes { Verb = "patch", Group = "networking.k8s.io", Resource = "networkpolicies", NamespaceProperty = ws },
            },
        }, CancellationToken.None)).Status.Allowed, TimeSpan.FromSeconds(60), "the hand-made RoleBinding in effect");

        var edit = await Refused(() => bob.PatchAsync<V1NetworkPolicy>(NetworkPolicies, ws, "api-ingress", openToAll, PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("managed by the operator only", edit.StatusMessage);
        Assert.Contains("WorkspaceNetworkPolicy", edit.StatusMessage);
        var delete = await Refused(() => bob.DeleteAsync(NetworkPolicies, ws, "api-ingress", CancellationToken.None));
        Assert.Contains("managed by the operator only", delete.StatusMessage);

        var after = await Cluster.Api.GetAsync<V1NetworkPolicy>(NetworkPolicies, ws, "api-ingress", CancellationToken.None);
        Assert.Equal(rendered.Metadata.ResourceVersion, after.Metadata.ResourceVersion);
    }
}
