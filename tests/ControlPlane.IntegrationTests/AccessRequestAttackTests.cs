using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// AccessRequests through the whole operator, as token users through the webhook. wade, mona and olga have no
/// cluster-wide rights: what they may do comes from workspace members (and, for wade, from the grant); bob may
/// write every ControlPlane object anywhere (the fixture), so what refuses him is the webhook. A request goes
/// Pending -> Active (a RoleBinding owned by it, its expiry recorded in status and on the binding, the API server
/// grants the role) -> Expired (binding deleted at the recorded time, access.expired audited), and cannot be
/// replayed; self-approval (directly and as a member of an approving group), another tenant's approver, a role
/// above the tenant's maximum, a forged requester, another tenant's workspace and a widened grant are refused.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class AccessRequestAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType Requests = ResourceType.For<AccessRequest>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);

    static Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null) => Grants.Refused(action, status);

    /// <summary>A tenant with one Ready dev workspace whose members are given (kind, name, role).</summary>
    Task<string> WorkspaceAsync(params (string Kind, string Name, string Role)[] members) => Cluster.GrantWorkspaceAsync("acr", null, members);

    Task<bool> AllowedAsync(string user, string verb, string group, string resource, string ns) => Cluster.AllowedAsync(user, verb, group, resource, ns);

    Task WaitForAccessAsync(string user, string verb, string group, string resource, string ns, bool allowed = true) =>
        Cluster.WaitForAccessAsync(user, verb, group, resource, ns, allowed);

    static AccessRequest NewRequest(string name, string role = "Operator", string duration = "2h") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new AccessRequestSpec { Role = role, Duration = duration, Justification = "Investigate the failing payment batch job in its logs", Ticket = "OPS-1234" },
    };

    static Approval NewApproval(string request) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = AccessRequest.KubeKind, Name = request } },
    };

    Task<AccessRequest> WaitRequestAsync(string ns, string name, Func<AccessRequest, bool> condition, string what, TimeSpan? timeout = null) =>
        Cluster.WaitForObjectAsync(Requests, ns, name, condition, what, timeout);

    async Task<List<string>> AuditActionsAsync(string objectName)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = $1 AND object_name = $2 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(AccessRequest.KubeKind);
        cmd.Parameters.AddWithValue(objectName);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    Task<V1RoleBinding?> BindingAsync(string ns, string request) =>
        Cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, ns, "controlplane-access-" + request, CancellationToken.None);

    [Fact]
    public async Task ARequest_GoesPendingActiveExpired_ApprovedByAnotherApprover_NeverByTheRequesterDirectlyOrThroughAGroup_AndIsNotReplayed()
    {
        // wade is an Auditor and, through the group self-service-users, an Approver (as are mona and olga): the group makes
        // him an approver of others' requests, never of his own.
        var ns = await WorkspaceAsync(("User", Email("wade"), "Auditor"), ("Group", "self-service-users", "Approver"));
        await WaitForAccessAsync("wade", "create", ApiGroup.Group, "accessrequests", ns);
        using var wade = As("wade");
        using var mona = As("mona");
        using var bob = As("bob");
        Assert.False(await AllowedAsync("wade", "create", "apps", "deployments", ns));

        // Above the tenant's maximum (default Operator) and beyond its longest grant (default 8h): refused, naming the field.
        var tooHigh = await Refused(() => wade.CreateAsync(Requests, ns, NewRequest("admin", role: "WorkspaceAdmin"), CancellationToken.None));
        Assert.Contains("spec.role: WorkspaceAdmin is above the tenant's spec.accessPolicy.maxRole (Operator)", tooHigh.StatusMessage);
        var tooLong = await Refused(() => wade.CreateAsync(Requests, ns, NewRequest("long", duration: "9h"), CancellationToken.None));
        Assert.Contains("spec.duration: 9h is beyond the tenant's spec.accessPolicy.maxDuration (8h)", tooLong.StatusMessage);

        // Forging the requester: the stamp is the API server's word, whatever wade writes.
        var forged = NewRequest("debug", duration: "25s");
        forged.Metadata.Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = Email("mona") };
        var created = await wade.CreateAsync(Requests, ns, forged, CancellationToken.None);
        Assert.Equal(Email("wade"), created.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        var pending = await WaitRequestAsync(ns, "debug", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        Assert.Equal(Email("wade"), pending.Status!.Requester);
        Assert.Null(await BindingAsync(ns, "debug"));

        // Self-approval, with the Approver role held through a group: refused naming spec.approver.
        var self = await Refused(() => wade.CreateAsync(Approvals, ns, NewApproval("debug"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("wade")} created AccessRequest debug; self-approval is not allowed", self.StatusMessage);
        // Another tenant's approver (bob may write Approvals anywhere; he holds no role here).
        var stranger = await Refused(() => bob.CreateAsync(Approvals, ns, NewApproval("debug"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("bob")} holds neither the Approver nor the WorkspaceAdmin role in workspace {ns}", stranger.StatusMessage);
        Assert.Equal(AccessRequestPhase.Pending, (await Cluster.Api.GetAsync<AccessRequest>(Requests, ns, "debug", CancellationToken.None)).Status!.Phase);

        // mona approves: Active, a RoleBinding owned by the request with its recorded expiry, and the API server grants the role.
        await mona.CreateAsync(Approvals, ns, NewApproval("debug"), CancellationToken.None);
        var active = await WaitRequestAsync(ns, "debug", r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
        Assert.Equal(Email("mona"), active.Status!.ApprovedBy);
        Assert.Equal(active.Status.GrantedAt!.Value.AddSeconds(25), active.Status.ExpiresAt);
        // The status records the grant's times before the binding is created (and the operator's own create passes the governed webhook): wait for it.
        V1RoleBinding? binding = null;
        await Net.WaitUntilAsync(async () => (binding = await BindingAsync(ns, "debug")) is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding");
        Assert.Equal(("User", Email("wade")), (binding!.Subjects.Single().Kind, binding.Subjects.Single().Name));
        Assert.Equal("controlplane:workspace:operator", binding.RoleRef.Name);
        Assert.Equal(active.Metadata.Uid, binding.Metadata.OwnerReferences.Single().Uid);
        Assert.Equal(active.Status.ExpiresAt!.Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            binding.Metadata.Annotations[AccessRequestResources.ExpiresAtAnnotation]);
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns);

        // Nothing stretches the grant: duration and role are immutable.
        var stretched = await Refused(() => wade.PatchAsync<AccessRequest>(Requests, ns, "debug", "{\"spec\":{\"duration\":\"8h\"}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.duration: field is immutable", stretched.StatusMessage);
        var widened = await Refused(() => wade.PatchAsync<AccessRequest>(Requests, ns, "debug", "{\"spec\":{\"role\":\"WorkspaceAdmin\"}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.role: field is immutable", widened.StatusMessage);

        // At the recorded expiry the binding goes and the API server no longer grants the role.
        var expired = await WaitRequestAsync(ns, "debug", r => r.Status?.Phase == AccessRequestPhase.Expired, "Expired", TimeSpan.FromSeconds(120));
        Assert.Null(await BindingAsync(ns, "debug"));
        Assert.True(expired.Status!.EndedAt >= expired.Status.ExpiresAt);
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns, allowed: false);
        Assert.Contains(expired.Status.Conditions!, c => c is { Type: "Stalled", Status: "True", Reason: AccessRequestReasons.Expired });
        Assert.Equal(["access.requested", "access.granted", "access.expired"], await AuditActionsAsync($"{ns}/debug"));

        // Replaying it: another approval of the expired request is refused (and would grant nothing: the plan keeps it Expired).
        using var olga = As("olga");
        var replay = await Refused(() => olga.CreateAsync(Approvals, ns, NewApproval("debug"), CancellationToken.None));
        Assert.Contains($"spec.target: AccessRequest {ns}/debug is Expired: an ended request is never granted again", replay.StatusMessage);
        await fixture.Runtime.ReconciledAgainAsync("accessrequest", ns, "debug");
        Assert.Equal(AccessRequestPhase.Expired, (await Cluster.Api.GetAsync<AccessRequest>(Requests, ns, "debug", CancellationToken.None)).Status!.Phase);
        Assert.Null(await BindingAsync(ns, "debug"));
        Assert.False(await AllowedAsync("wade", "create", "apps", "deployments", ns));
    }

    [Fact]
    public async Task RevokeAndDeletion_EndAGrantEarly_Audited_AndAnotherTenantsWorkspaceIsClosed()
    {
        var ns = await WorkspaceAsync(("User", Email("wade"), "Auditor"), ("User", Email("mona"), "Approver"));
        await WaitForAccessAsync("wade", "create", ApiGroup.Group, "accessrequests", ns);
        using var wade = As("wade");
        using var mona = As("mona");
        using var olga = As("olga");

        // olga is no member here: RBAC refuses her request in another tenant's workspace.
        await Refused(() => olga.CreateAsync(Requests, ns, NewRequest("intruder"), CancellationToken.None), HttpStatusCode.Forbidden);

        foreach (var name in new[] { "revoked", "deleted" })
        {
            await wade.CreateAsync(Requests, ns, NewRequest(name), CancellationToken.None);
            await WaitRequestAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
            await mona.CreateAsync(Approvals, ns, NewApproval(name), CancellationToken.None);
            await WaitRequestAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
            await Net.WaitUntilAsync(async () => await BindingAsync(ns, name) is not null, TimeSpan.FromSeconds(60), $"{name}: the grant's RoleBinding");
        }

        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns);

        // Another member (mona, an Approver: RBAC lets every member update and delete requests) may not end wade's grant,
        // by spec.revoke or by deleting it: the refusal names the field and who may.
        foreach (var (who, api) in new[] { ("mona", mona) })
        {
            var revokeByOther = await Refused(() => api.PatchAsync<AccessRequest>(Requests, ns, "revoked", "{\"spec\":{\"revoke\":true}}", PatchTypes.Merge, CancellationToken.None));
            Assert.Contains($"spec.revoke: {Email(who)} may not set spec.revoke on AccessRequest revoked: only its requester ({Email("wade")}), a WorkspaceAdmin of the workspace", revokeByOther.StatusMessage);
            var deleteByOther = await Refused(() => api.DeleteAsync(Requests, ns, "deleted", CancellationToken.None));
            Assert.Contains($"spec.revoke: {Email(who)} may not delete AccessRequest deleted (which ends its grant)", deleteByOther.StatusMessage);
        }

        Assert.Equal(AccessRequestPhase.Active, (await Cluster.Api.GetAsync<AccessRequest>(Requests, ns, "revoked", CancellationToken.None)).Status!.Phase);
        Assert.NotNull(await BindingAsync(ns, "revoked"));

        // spec.revoke: the requester ends it early; it cannot be un-revoked.
        await wade.PatchAsync<AccessRequest>(Requests, ns, "revoked", "{\"spec\":{\"revoke\":true}}", PatchTypes.Merge, CancellationToken.None);
        var revoked = await WaitRequestAsync(ns, "revoked", r => r.Status?.Phase == AccessRequestPhase.Revoked, "Revoked");
        Assert.NotNull(revoked.Status!.EndedAt);
        Assert.Null(await BindingAsync(ns, "revoked"));
        var unrevoke = await Refused(() => wade.PatchAsync<AccessRequest>(Requests, ns, "revoked", "{\"spec\":{\"revoke\":false}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.revoke: an ended grant stays ended", unrevoke.StatusMessage);
        Assert.Equal(["access.requested", "access.granted", "access.revoked"], await AuditActionsAsync($"{ns}/revoked"));

        // Deleting an active request ends its grant, audited, before it goes.
        await wade.DeleteAsync(Requests, ns, "deleted", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<AccessRequest>(Requests, ns, "deleted", CancellationToken.None) is null,
            TimeSpan.FromSeconds(90), "the deleted request is gone");
        Assert.Null(await BindingAsync(ns, "deleted"));
        Assert.Equal(["access.requested", "access.granted", "access.revoked"], await AuditActionsAsync($"{ns}/deleted"));
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns, allowed: false);
    }
}
