using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl controlplane access` as token users of the local API server, against the running operator and its
/// webhooks: wade (Approver) asks for Operator and cannot approve his own request (the webhook), olga (Approver) approves; the list
/// shows the grant and its time left; revoke ends it; a reject ends a request followed with --wait (exit 3); a
/// non-member is refused by RBAC; bad input is one line.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class PluginAccessTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Requests = ResourceType.For<AccessRequest>(true);
    static readonly ResourceType Reviews = new("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    const string Why = "Restart the stuck payroll export job after the incident";

    string Kubeconfig(string user) => Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-" + user);

    Task<PluginRun> Run(string user, params string[] args) => PluginRunner.RunAsync(Kubeconfig(user), args);

    string Email(string user) => Cluster.Plane.Users[user].Name;

    async Task<bool> AllowedAsync(string user, string verb, string group, string resource, string ns)
    {
        var u = Cluster.Plane.Users[user];
        return (await Cluster.Api.CreateAsync(Reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = u.Name, Groups = [.. u.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Group = group, Resource = resource, NamespaceProperty = ns },
            },
        }, CancellationToken.None)).Status.Allowed;
    }

    async Task<string> WorkspaceAsync()
    {
        var tenant = Unique("pla");
        await Cluster.CreateTenantAsync(tenant);
        var ns = Unique(tenant);
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = ns },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members =
                [
                    new WorkspaceMember { Kind = "User", Name = Email("wade"), Role = "Approver" },
                    new WorkspaceMember { Kind = "User", Name = Email("olga"), Role = "Approver" },
                ],
            },
        }, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ns, ClusterFixture.IsReady, "Ready");
        await Net.WaitUntilAsync(async () => await AllowedAsync("wade", "create", ApiGroup.Group, "accessrequests", ns)
            && await AllowedAsync("olga", "create", ApiGroup.Group, "approvals", ns), Deadline, "the members' RoleBindings in effect");
        return ns;
    }

    Task<AccessRequest> WaitPhaseAsync(string ns, string name, AccessRequestPhase phase) => WaitAsync(ns, name, a => a.Status?.Phase == phase, $"phase {phase}");

    async Task<AccessRequest> WaitAsync(string ns, string name, Func<AccessRequest, bool> condition, string what)
    {
        AccessRequest? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => (last = await Cluster.Api.TryGetAsync<AccessRequest>(Requests, ns, name, CancellationToken.None)) is { } a && condition(a), Deadline, $"{name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last status: {(last?.Status is { } st ? k8s.KubernetesJson.Serialize(st) : "none")}", e);
        }

        return last!;
    }

    [Fact]
    public async Task Request_Approve_List_Revoke_AsTheCallers_NeverApprovedByTheRequester()
    {
        var ns = await WorkspaceAsync();
        var name = Unique("debug");

        var requested = (await Run("wade", "access", "request", ns, "--role", "Operator", "--duration", "2h", "--justification", Why, "--ticket", "OPS-7", "--name", name)).Succeeds();
        Assert.Contains($"accessrequest.controlplane.io/{name} created in {ns}: Operator for 2h as {Email("wade")}", requested.Stdout);
        Assert.Contains($"still needs:  1 approval(s) (of 1) from distinct people holding Approver or WorkspaceAdmin in {ns}, never the requester", requested.Stdout);
        Assert.Contains($"approve with: kubectl controlplane access approve {name} -n {ns}", requested.Stdout);
        var created = await Cluster.Api.GetAsync<AccessRequest>(Requests, ns, name, CancellationToken.None);
        Assert.Equal(("Operator", "2h", "OPS-7"), (created.Spec.Role, created.Spec.Duration, created.Spec.Ticket));

        // The requester's own approval is refused by the webhook (one line), and the request stays Pending.
        (await Run("wade", "access", "approve", name, "-n", ns)).FailsWithOneLine("self-approval is not allowed");
        Assert.Equal(AccessRequestPhase.Pending, (await Cluster.Api.GetAsync<AccessRequest>(Requests, ns, name, CancellationToken.None)).Status?.Phase);

        var approved = (await Run("olga", "access", "approve", name, "-n", ns, "-m", "checked the incident")).Succeeds();
        Assert.Contains("verdict:      counts", approved.Stdout);
        await WaitPhaseAsync(ns, name, AccessRequestPhase.Active);
        await Net.WaitUntilAsync(() => AllowedAsync("wade", "create", "apps", "deployments", ns), Deadline, "wade holds Operator");

        var list = (await Run("wade", "access", "list", "-n", ns)).Succeeds();
        var row = list.Stdout.Split('\n').Single(l => l.Contains(name, StringComparison.Ordinal));
        Assert.Contains("Active", row);
        Assert.Contains(Email("wade"), row);
        Assert.Contains("Operator", row);
        var json = JsonNode.Parse((await Run("wade", "access", "list", "-n", ns, "-o", "json")).Succeeds().Stdout)!.AsArray().Single(n => n!["name"]!.GetValue<string>() == name)!;
        Assert.Equal("Active", json["phase"]!.GetValue<string>());
        Assert.Equal(Email("olga"), json["approvedBy"]!.GetValue<string>());
        Assert.Matches("^(1h[0-9]+m|2h|1h)$", json["remaining"]!.GetValue<string>());

        var revoked = (await Run("wade", "access", "revoke", name, "-n", ns)).Succeeds();
        Assert.Contains($"accessrequest.controlplane.io/{name} revoked (spec.revoke=true)", revoked.Stdout);
        await WaitPhaseAsync(ns, name, AccessRequestPhase.Revoked);
        await Net.WaitUntilAsync(async () => !await AllowedAsync("wade", "create", "apps", "deployments", ns), Deadline, "wade no longer holds Operator");
        Assert.Contains("unchanged (already revoked; phase Revoked)", (await Run("wade", "access", "revoke", name, "-n", ns)).Succeeds().Stdout);
        Assert.Contains("Revoked", (await Run("olga", "access", "list", "-n", ns)).Succeeds().Stdout.Split('\n').Single(l => l.Contains(name, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Request_WithWait_EndsWithExit3_WhenRejected_AndBadInputOrANonMember_GetsOneLine()
    {
        var ns = await WorkspaceAsync();
        var name = Unique("shell");
        var waiting = Run("wade", "access", "request", ns, "--role", "Operator", "--duration", "30m", "--justification", Why, "--name", name, "--wait", "--timeout", "00:03:00");
        await WaitAsync(ns, name, a => a.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        (await Run("olga", "access", "reject", name, "-n", ns, "-m", "not during the freeze")).Succeeds();
        var ended = await waiting;
        Assert.Equal(3, ended.ExitCode);
        Assert.Contains($"accessrequest {name} is Rejected", ended.Stderr);

        (await Run("wade", "access", "request", ns, "--role", "Boss", "--duration", "2h", "--justification", Why)).FailsWithOneLine("'Boss' not recognized. Must be one of: 'WorkspaceAdmin' 'Operator'");
        (await Run("wade", "access", "request", ns, "--role", "Operator", "--duration", "2 hours", "--justification", Why)).FailsWithOneLine("--duration: \"2 hours\" is not a duration");
        (await Run("wade", "access", "request", ns, "--role", "Operator", "--duration", "2h", "--justification", "fix it")).FailsWithOneLine("justification");
        (await Run("wade", "access", "revoke", "nothing-here", "-n", ns)).FailsWithOneLine("AccessRequest \"nothing-here\" not found");
        (await Run("mona", "access", "request", ns, "--role", "Operator", "--duration", "2h", "--justification", Why)).FailsWithOneLine("Forbidden");
    }
}
