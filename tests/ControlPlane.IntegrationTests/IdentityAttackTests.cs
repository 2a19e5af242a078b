using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Identities the author controls and namespaces taken first (issue 22, class 3), attacked as token
/// users through the running operator and its webhooks: a ServiceAccount member in a namespace another
/// tenant can take, a ServiceAccount its author lists as an Approver, platform namespaces squatted.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class IdentityAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType ServiceAccounts = new("", "v1", "serviceaccounts", "ServiceAccount", true);
    static readonly ResourceType Services = new("", "v1", "services", "Service", true);
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    string Alice => Cluster.Plane.Users["alice"].Name;

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    static Workspace NewWorkspace(string name, string tenant, params WorkspaceMember[] members) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new WorkspaceSpec { Tenant = tenant, Database = new WorkspaceDatabase { Enabled = false }, Members = members.Length == 0 ? null : [.. members] },
    };

    /// <summary>A tenant alice owns (so she is WorkspaceAdmin of each of its workspaces).</summary>
    async Task<string> AliceTenantAsync()
    {
        var tenant = Unique("acme");
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Owners = [new Subject { Kind = "User", Name = Alice }]);
        return tenant;
    }

    /// <summary>
    /// What anyone holding a namespace can do: create a ServiceAccount there (as <paramref name="holder"/>)
    /// and get a token for it (a Pod running as it, read through pods/exec; the test asks the TokenRequest
    /// API directly, the local control plane runs no kubelet). Returns a client authenticated as it.
    /// </summary>
    async Task<KubeApi> MintServiceAccountAsync(KubeApi holder, string ns, string name)
    {
        await holder.CreateAsync(ServiceAccounts, ns, new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = name } }, CancellationToken.None);
        var body = """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}""";
        var response = await Cluster.Api.SendAsync(HttpMethod.Post, ServiceAccounts.ItemPath(ns, name, "token"), body, "application/json", CancellationToken.None);
        var config = Cluster.Plane.ClientConfig();
        config.AccessToken = System.Text.Json.Nodes.JsonNode.Parse(response)!["status"]!["token"]!.GetValue<string>();
        return new KubeApi(config);
    }

    async Task<bool> ServiceAccountCanAsync(string ns, string name, string verb, string resource, string inNamespace)
    {
        var review = new V1SubjectAccessReview
        {
            ApiVersion = "authorization.k8s.io/v1",
            Kind = "SubjectAccessReview",
            Spec = new V1SubjectAccessReviewSpec
            {
                User = $"system:serviceaccount:{ns}:{name}",
                Groups = ["system:serviceaccounts", $"system:serviceaccounts:{ns}", "system:authenticated"],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Resource = resource, NamespaceProperty = inNamespace },
            },
        };
        var type = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        return (await Cluster.Api.CreateAsync(type, null, review, CancellationToken.None)).Status.Allowed;
    }

    [Fact]
    public async Task AServiceAccountMemberInAnotherTenantsNamespace_IsRefused_AndItsBindingGoesWhenTheNamespaceChangesHands()
    {
        var globex = Unique("globex");
        await Cluster.CreateTenantAsync(globex);
        var acme = await AliceTenantAsync();
        var ci = Unique("ci");
        var globexDev = globex + "-dev";
        var deployer = new WorkspaceMember { Kind = "ServiceAccount", Name = $"{ci}/deployer", Role = "Operator" };

        // globex lists ci/deployer while no workspace ci exists: refused at admission (even for a platform admin).
        var refused = await Refused(() => Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(globexDev, globex, deployer), CancellationToken.None));
        Assert.Contains("spec.members[0].name", refused.StatusMessage);
        Assert.Contains($"not a workspace of tenant {globex}", refused.StatusMessage);

        // With globex's own workspace ci, the member is globex's and is bound.
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(ci, globex), CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ci, ClusterFixture.IsReady, "Ready");
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(globexDev, globex, deployer), CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(globexDev, ClusterFixture.IsReady, "Ready");
        Assert.True(await ServiceAccountCanAsync(ci, "deployer", "list", "services", globexDev));

        // globex deletes ci; alice (acme's owner) takes the name as soon as the namespace is gone.
        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, ci, CancellationToken.None);
        using var alice = As("alice");
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(ci, acme), CancellationToken.None);
                return true;
            }
            catch (KubeApiException e) when (e.StatusMessage.Contains("already exists", StringComparison.Ordinal))
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), $"alice creates workspace {ci} once globex's is gone");
        await Cluster.WaitForWorkspaceAsync(ci, ClusterFixture.IsReady, "Ready (acme's)");

        // globex-dev's binding for ci/deployer is gone, and the member is named in AccessReady.
        var ws = await Cluster.WaitForWorkspaceAsync(globexDev, w => ClusterFixture.Condition(w, WorkspaceConditions.AccessReady) is { Status: "False", Reason: "MemberRefused" },
            "AccessReady=False MemberRefused");
        var access = ClusterFixture.Condition(ws, WorkspaceConditions.AccessReady)!.Message;
        Assert.Contains("spec.members[0].name", access);
        Assert.Contains($"{ci}/deployer", access);
        var bindings = await Cluster.Api.ListAsync<V1RoleBinding>(WorkspaceReconciler.RoleBindings, globexDev, null, 100, null, CancellationToken.None);
        Assert.DoesNotContain(bindings.Items, b => b.Subjects?.Any(s => s.Kind == "ServiceAccount") == true);

        // alice mints deployer's token in her ci: it reads nothing in globex-dev.
        using var token = await MintServiceAccountAsync(alice, ci, "deployer");
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await token.ListAsync<V1Service>(Services, globexDev, null, 10, null, CancellationToken.None);
                return false;
            }
            catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Forbidden)
            {
                return true;
            }
        }, TimeSpan.FromSeconds(20), "alice's deployer token forbidden in globex-dev");
        Assert.False(await ServiceAccountCanAsync(ci, "deployer", "create", "deployments", globexDev));
    }

    [Fact]
    public async Task PlatformNamespaces_AndNamesWithoutTheTenantPrefix_AreRefused_ForATenantOwner()
    {
        var acme = await AliceTenantAsync();
        using var alice = As("alice");
        foreach (var name in new[] { "istio-system", "kyverno", "openshift-config", "cattle-system" })
        {
            var refused = await Refused(() => alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(name, acme), CancellationToken.None));
            Assert.Contains($"metadata.name: \"{name}\" is reserved", refused.StatusMessage);
        }

        // The platform turns on Capsule-style prefix forcing: "ci" is no longer any tenant's to take.
        var options = fixture.App!.Services.GetRequiredService<ControlPlaneOptions>();
        options.ForceTenantPrefix = true;
        try
        {
            var ci = Unique("ci");
            var refused = await Refused(() => alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(ci, acme), CancellationToken.None));
            Assert.Contains($"metadata.name: \"{ci}\" must start with its tenant's name", refused.StatusMessage);
            var own = acme + "-ci";
            await alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(own, acme), CancellationToken.None);
            await Cluster.WaitForWorkspaceAsync(own, ClusterFixture.IsReady, "Ready");
            await alice.DeleteAsync(ClusterFixture.Workspaces, null, own, CancellationToken.None);
        }
        finally
        {
            options.ForceTenantPrefix = false;
        }
    }

    [Fact]
    public async Task AServiceAccountItsAuthorControls_NeverApprovesTheAuthorsOwnExposure()
    {
        var acme = await AliceTenantAsync();
        var ws = acme + "-dev";
        using var alice = As("alice");
        await alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(ws, acme), CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await alice.CreateAsync(Exposures, ws, new Exposure
        {
            Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new ExposureSpec { Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Path = "/orders" },
        }, CancellationToken.None);

        // alice lists her bot as an Approver under its username, or every ServiceAccount of the namespace as a group: refused.
        static string Members(string kind, string name) =>
            "{\"spec\":{\"members\":" + k8s.KubernetesJson.Serialize(new[] { new WorkspaceMember { Kind = kind, Name = name, Role = "Approver" } }) + "}}";
        var asUser = await Refused(() => alice.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, Members("User", $"system:serviceaccount:{ws}:bot"), PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.members[0].name", asUser.StatusMessage);
        Assert.Contains($"{{kind: ServiceAccount, name: {ws}/bot}}", asUser.StatusMessage);
        var asGroup = await Refused(() => alice.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, Members("Group", $"system:serviceaccounts:{ws}"), PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.members[0].name", asGroup.StatusMessage);

        // As kind ServiceAccount in her own workspace it is a member (RBAC lets it create Approvals), but its approval is no person's.
        await alice.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, Members("ServiceAccount", $"{ws}/bot"), PatchTypes.Merge, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready with the bot bound");
        using var bot = await MintServiceAccountAsync(alice, ws, "bot");
        var exposure = await alice.GetAsync<Exposure>(Exposures, ws, "orders", CancellationToken.None);
        var approval = await Refused(() => bot.CreateAsync(Approvals, ws, new Approval
        {
            Metadata = new V1ObjectMeta { Name = "bot-approves" },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exposure", Name = "orders" }, TargetGeneration = exposure.Metadata.Generation, TargetUID = exposure.Metadata.Uid },
        }, CancellationToken.None));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, approval.StatusCode);
        Assert.Contains($"spec.approver: system:serviceaccount:{ws}:bot is a ServiceAccount", approval.StatusMessage);
        Assert.Contains("approvals are given by people", approval.StatusMessage);
    }
    [Fact]
    public async Task AnExposureAuthoredByTheApproversOwnServiceAccount_IsNotTheirsToApprove()
    {
        // alice owns the tenant (WorkspaceAdmin: she can mint any token in the workspace); carol is only an Approver.
        var acme = await AliceTenantAsync();
        var ws = acme + "-dev";
        using var alice = As("alice");
        await alice.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(ws, acme,
            new WorkspaceMember { Kind = "ServiceAccount", Name = $"{ws}/ci", Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = Cluster.Plane.Users["carol"].Name, Role = "Approver" }), CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");

        // alice's bot writes the Exposure, so alice is not its created-by: she would be its "independent" approver.
        using var bot = await MintServiceAccountAsync(alice, ws, "ci");
        var exposure = await bot.CreateAsync(Exposures, ws, new Exposure
        {
            Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new ExposureSpec { Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Path = "/orders" },
        }, CancellationToken.None);
        Approval For(string name) => new()
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exposure", Name = "orders" }, TargetGeneration = exposure.Metadata.Generation, TargetUID = exposure.Metadata.Uid },
        };
        var refused = await Refused(() => alice.CreateAsync(Approvals, ws, For("alice-approves"), CancellationToken.None));
        Assert.Contains($"can act as system:serviceaccount:{ws}:ci", refused.StatusMessage);
        Assert.Contains("self-approval", refused.StatusMessage);

        // carol cannot mint the bot's token: hers is an independent review.
        using var carol = As("carol");
        await carol.CreateAsync(Approvals, ws, For("carol-approves"), CancellationToken.None);
    }
}
