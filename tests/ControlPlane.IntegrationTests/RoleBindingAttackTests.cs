using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// RoleBindings in a workspace namespace are the operator's alone (the governed webhook): a WorkspaceAdmin
/// (mona, a token user with no cluster-wide rights) cannot grant herself or anyone the built-in admin
/// ClusterRole there: RBAC refuses first (every workspace role only reads RoleBindings), and when a cluster
/// admin has given her RoleBinding rights anyway, the webhook refuses, naming the rule, as it refuses editing,
/// relabelling or deleting the operator's own bindings. A cluster admin (system:masters) may, as for every
/// governed kind. The operator's own bindings still come and go: a member added to the Workspace and an
/// approved AccessRequest get theirs, a revoked request loses it.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class RoleBindingAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);
    static readonly ResourceType ClusterRoles = new("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false);
    static readonly ResourceType Reviews = new("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
    static readonly ResourceType Requests = ResourceType.For<AccessRequest>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    async Task<bool> AllowedAsync(string user, string verb, string group, string resource, string ns, string? name = null)
    {
        var u = Cluster.Plane.Users[user];
        return (await Cluster.Api.CreateAsync(Reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = u.Name, Groups = [.. u.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Group = group, Resource = resource, NamespaceProperty = ns, Name = name },
            },
        }, CancellationToken.None)).Status.Allowed;
    }

    Task WaitForAccessAsync(string user, string verb, string group, string resource, string ns, bool allowed = true, string? name = null) =>
        Net.WaitUntilAsync(async () => await AllowedAsync(user, verb, group, resource, ns, name) == allowed, Deadline,
            $"{user} {(allowed ? "may" : "may not")} {verb} {resource} in {ns}");

    static V1RoleBinding AdminBinding(string name, string subject, Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = "admin" },
        Subjects = [new Rbacv1Subject { Kind = "User", Name = subject, ApiGroup = "rbac.authorization.k8s.io" }],
    };

    static void NamesTheRule(KubeApiException refused, string ns)
    {
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains($"RoleBinding objects in workspace namespace {ns} are managed by the operator only", refused.StatusMessage);
        Assert.Contains("spec.members", refused.StatusMessage);
        Assert.Contains("AccessRequest", refused.StatusMessage);
    }

    [Fact]
    public async Task AWorkspaceAdmin_CannotGrantTheAdminClusterRoleByHand_ByRbacOrElseByTheWebhook_AndCannotTouchTheOperatorsBindings()
    {
        var tenant = Unique("rbt");
        await Cluster.CreateTenantAsync(tenant);
        var ns = Unique(tenant);
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = ns },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members = [new WorkspaceMember { Kind = "User", Name = Email("mona"), Role = "WorkspaceAdmin" }],
            },
        }, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ns, ClusterFixture.IsReady, "Ready");
        await WaitForAccessAsync("mona", "list", "rbac.authorization.k8s.io", "rolebindings", ns);
        using var mona = As("mona");

        // RBAC first: a WorkspaceAdmin only reads RoleBindings.
        await Refused(() => mona.CreateAsync(RoleBindings, ns, AdminBinding("mona-admin", Email("mona")), CancellationToken.None), HttpStatusCode.Forbidden);

        // A cluster admin (system:masters) may write RoleBindings in a workspace namespace, as every governed kind: here one that gives
        // mona RoleBinding rights and `bind` on the admin ClusterRole in this namespace, so RBAC would let her grant admin.
        var writer = Unique("rolebinding-writer");
        await Cluster.Api.CreateAsync(ClusterRoles, null, new V1ClusterRole
        {
            Metadata = new V1ObjectMeta { Name = writer },
            Rules =
            [
                new V1PolicyRule { ApiGroups = ["rbac.authorization.k8s.io"], Resources = ["rolebindings"], Verbs = ["*"] },
                new V1PolicyRule { ApiGroups = ["rbac.authorization.k8s.io"], Resources = ["clusterroles"], Verbs = ["bind"], ResourceNames = ["admin", WorkspaceRoles.ClusterRoleName("Approver")] },
            ],
        }, CancellationToken.None);
        try
        {
            await Cluster.Api.CreateAsync(RoleBindings, ns, new V1RoleBinding
            {
                Metadata = new V1ObjectMeta { Name = writer },
                RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = writer },
                Subjects = [new Rbacv1Subject { Kind = "User", Name = Email("mona"), ApiGroup = "rbac.authorization.k8s.io" }],
            }, CancellationToken.None);
            await WaitForAccessAsync("mona", "create", "rbac.authorization.k8s.io", "rolebindings", ns);
            await WaitForAccessAsync("mona", "bind", "rbac.authorization.k8s.io", "clusterroles", ns, name: "admin");

            // Now what refuses is the webhook, naming the rule: admin for herself, for another user, or a binding dressed as the operator's
            // (its managed-by label is what the operator's RoleBinding cache, and so the approval judge, selects on).
            NamesTheRule(await Refused(() => mona.CreateAsync(RoleBindings, ns, AdminBinding("mona-admin", Email("mona")), CancellationToken.None)), ns);
            NamesTheRule(await Refused(() => mona.CreateAsync(RoleBindings, ns, AdminBinding("wade-admin", Email("wade")), CancellationToken.None)), ns);
            var dressed = AdminBinding("controlplane-member-approver-forged", Email("wade"), new Dictionary<string, string> { ["app.kubernetes.io/managed-by"] = "controlplane" });
            dressed.RoleRef.Name = WorkspaceRoles.ClusterRoleName("Approver");
            NamesTheRule(await Refused(() => mona.CreateAsync(RoleBindings, ns, dressed, CancellationToken.None)), ns);

            // The operator's own binding of her membership: neither widened (another subject), nor deleted.
            var own = (await Cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, ns, "controlplane.io/binding=member", 10, null, CancellationToken.None)).Items.Single();
            const string addWade = """{"subjects":[{"kind":"User","name":"wade@example.com","apiGroup":"rbac.authorization.k8s.io"},{"kind":"User","name":"mona@example.com","apiGroup":"rbac.authorization.k8s.io"}]}""";
            NamesTheRule(await Refused(() => mona.PatchAsync<V1RoleBinding>(RoleBindings, ns, own.Metadata.Name, addWade, PatchTypes.Merge, CancellationToken.None)), ns);
            NamesTheRule(await Refused(() => mona.DeleteAsync(RoleBindings, ns, own.Metadata.Name, CancellationToken.None)), ns);
            // Nor the cluster admin's binding that gave her the rights (deleting is refused as for every governed kind).
            NamesTheRule(await Refused(() => mona.DeleteAsync(RoleBindings, ns, writer, CancellationToken.None)), ns);

            Assert.Equal(own.Metadata.ResourceVersion, (await Cluster.Api.GetAsync<V1RoleBinding>(RoleBindings, ns, own.Metadata.Name, CancellationToken.None)).Metadata.ResourceVersion);
            var names = (await Cluster.Api.ListAsync<V1RoleBinding>(RoleBindings, ns, null, 100, null, CancellationToken.None)).Items.Select(b => b.Metadata.Name).ToList();
            Assert.DoesNotContain("mona-admin", names);
            Assert.DoesNotContain("wade-admin", names);
            Assert.DoesNotContain("controlplane-member-approver-forged", names);
            Assert.False(await AllowedAsync("wade", "get", "", "pods", ns));
        }
        finally
        {
            // The cluster admin may delete what it made by hand.
            await Cluster.Api.DeleteAsync(RoleBindings, ns, writer, CancellationToken.None);
            await Cluster.Api.DeleteAsync(ClusterRoles, null, writer, CancellationToken.None);
        }
    }

    [Fact]
    public async Task TheOperatorsOwnBindings_StillComeAndGo_ForMembersAndAccessRequests()
    {
        var tenant = Unique("rbo");
        await Cluster.CreateTenantAsync(tenant);
        var ns = Unique(tenant);
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = ns },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members = [new WorkspaceMember { Kind = "User", Name = Email("olga"), Role = "Approver" }],
            },
        }, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ns, ClusterFixture.IsReady, "Ready");

        // A member added to the Workspace gets the operator's RoleBinding (the webhook lets the operator's identity through).
        const string addWade = """{"spec":{"members":[{"kind":"User","name":"olga@example.com","role":"Approver"},{"kind":"User","name":"wade@example.com","role":"Auditor"}]}}""";
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ns, addWade, PatchTypes.Merge, CancellationToken.None);
        await WaitForAccessAsync("wade", "create", ApiGroup.Group, "accessrequests", ns);
        Assert.False(await AllowedAsync("wade", "create", "apps", "deployments", ns));

        // An approved AccessRequest gets its RoleBinding, and a revoked one loses it (the operator's delete passes too).
        using var wade = As("wade");
        using var olga = As("olga");
        var request = Unique("debug");
        await wade.CreateAsync(Requests, ns, new AccessRequest
        {
            Metadata = new V1ObjectMeta { Name = request },
            Spec = new AccessRequestSpec { Role = "Operator", Duration = "1h", Justification = "Restart the stuck payroll export job after the incident" },
        }, CancellationToken.None);
        await olga.CreateAsync(Approvals, ns, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr") },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = AccessRequest.KubeKind, Name = request } },
        }, CancellationToken.None);
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns);
        Assert.NotNull(await Cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, ns, "controlplane-access-" + request, CancellationToken.None));

        await wade.PatchAsync<AccessRequest>(Requests, ns, request, """{"spec":{"revoke":true}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns, allowed: false);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, ns, "controlplane-access-" + request, CancellationToken.None) is null,
            Deadline, "the revoked grant's RoleBinding deleted by the operator");
    }
}
