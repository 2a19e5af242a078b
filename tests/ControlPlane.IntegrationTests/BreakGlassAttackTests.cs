using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// BreakGlass through the whole operator, as token users through the webhook. wade, mona and olga have no cluster-wide
/// rights: what they may do comes from workspace members and the tenant's break-glass policy; bob may write every
/// ControlPlane object anywhere (the fixture), so what refuses him is the webhook. A named invoker is granted at once
/// (the API server grants the emergency role) and the grant ends on spec.end; refused: an invoker the policy does not
/// name, a forged invoker or policy match, a wrong role, a duration over the maximum, a second invocation, edits after
/// creation, the invoker's own review (directly and through a group), a non-reviewer's review, break-glass where the
/// tenant declares no policy, and another tenant's workspace (RBAC). A group named by the policy lets its members invoke.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class BreakGlassAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType BreakGlasses = ResourceType.For<BreakGlass>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);

    static Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null) => Grants.Refused(action, status);

    /// <summary>A tenant (with this break-glass policy, or none) with one Ready dev workspace whose members are given.</summary>
    Task<string> WorkspaceAsync(TenantBreakGlassPolicy? policy, params (string Kind, string Name, string Role)[] members) =>
        Cluster.GrantWorkspaceAsync("bga", s => s.AccessPolicy = policy is null ? null : new TenantAccessPolicy { BreakGlass = policy }, members);

    Task<bool> AllowedAsync(string user, string verb, string group, string resource, string ns) => Cluster.AllowedAsync(user, verb, group, resource, ns);

    Task WaitForAccessAsync(string user, string verb, string group, string resource, string ns, bool allowed = true) =>
        Cluster.WaitForAccessAsync(user, verb, group, resource, ns, allowed);

    static BreakGlass NewBreakGlass(string name, string role = "Operator", string duration = "30m") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new BreakGlassSpec { Role = role, Duration = duration, Justification = "Payments are down and the batch pods need a restart", Incident = "INC-4711" },
    };

    static Approval NewReview(string target) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("review") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = BreakGlass.KubeKind, Name = target } },
    };

    Task<BreakGlass> WaitAsync(string ns, string name, Func<BreakGlass, bool> condition, string what) =>
        Cluster.WaitForObjectAsync(BreakGlasses, ns, name, condition, what);

    async Task<List<string>> AuditActionsAsync(string key)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'BreakGlass' AND object_name = $1 AND severity = 'security' ORDER BY id", conn);
        cmd.Parameters.AddWithValue(key);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    Task<V1RoleBinding?> BindingAsync(string ns, string name) =>
        Cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, ns, "controlplane-breakglass-" + name, CancellationToken.None);

    [Fact]
    public async Task ANamedInvoker_IsGrantedAtOnce_NothingStretchesIt_OneAtATime_ReviewedByAnotherNeverByTheInvoker()
    {
        // wade is named by user; olga is a member the policy does not name; the group self-service-users (wade, mona, olga) holds Approver.
        var policy = new TenantBreakGlassPolicy { Role = "Operator", MaxDuration = "1h", Invokers = new BreakGlassInvokers { Users = [Email("wade")] } };
        var ns = await WorkspaceAsync(policy, ("User", Email("wade"), "Auditor"), ("User", Email("olga"), "Auditor"), ("Group", "self-service-users", "Approver"));
        await WaitForAccessAsync("wade", "create", ApiGroup.Group, "breakglasses", ns);
        using var wade = As("wade");
        using var olga = As("olga");
        using var mona = As("mona");
        using var bob = As("bob");
        Assert.False(await AllowedAsync("wade", "create", "apps", "deployments", ns));

        // A member the policy does not name: refused, naming the policy field.
        var unnamed = await Refused(() => olga.CreateAsync(BreakGlasses, ns, NewBreakGlass("olga"), CancellationToken.None));
        Assert.Contains($"spec.accessPolicy.breakGlass.invokers: {Email("olga")} is named neither as a user nor through a group", unnamed.StatusMessage);
        // Another role than the declared one, longer than the maximum: refused, naming the field.
        var role = await Refused(() => wade.CreateAsync(BreakGlasses, ns, NewBreakGlass("admin", role: "WorkspaceAdmin"), CancellationToken.None));
        Assert.Contains("spec.role: \"WorkspaceAdmin\" is not the emergency role the tenant declares in spec.accessPolicy.breakGlass.role (Operator)", role.StatusMessage);
        var tooLong = await Refused(() => wade.CreateAsync(BreakGlasses, ns, NewBreakGlass("long", duration: "2h"), CancellationToken.None));
        Assert.Contains("spec.duration: 2h is beyond the maximum 1h", tooLong.StatusMessage);

        // Forged invoker and policy match: the stamps are the API server's word, whatever wade writes.
        var forged = NewBreakGlass("fire");
        forged.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = Email("mona"), [ApiGroup.BreakGlassInvokerMatchAnnotation] = "group:platform-admins",
        };
        var created = await wade.CreateAsync(BreakGlasses, ns, forged, CancellationToken.None);
        Assert.Equal(Email("wade"), created.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        Assert.Equal("user:" + Email("wade"), created.Metadata.Annotations[ApiGroup.BreakGlassInvokerMatchAnnotation]);

        // Granted at once: no approval first; the API server grants the emergency role.
        var active = await WaitAsync(ns, "fire", b => b.Status?.Phase == BreakGlassPhase.Active, "Active");
        Assert.Equal(Email("wade"), active.Status!.Invoker);
        // The grant's times are recorded in status before its binding is made: wait for the binding.
        V1RoleBinding? binding = null;
        await Net.WaitUntilAsync(async () => (binding = await BindingAsync(ns, "fire")) is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding");
        Assert.Equal(("User", Email("wade"), "controlplane:workspace:operator"), (binding!.Subjects.Single().Kind, binding.Subjects.Single().Name, binding.RoleRef.Name));
        Assert.Equal(active.Metadata.Uid, binding.Metadata.OwnerReferences.Single().Uid);
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns);

        // Nothing stretches it: role, duration, justification and incident are immutable; the stamped match cannot be changed.
        foreach (var (field, value) in new[] { ("duration", "\"1h\""), ("role", "\"WorkspaceAdmin\""), ("incident", "\"INC-1\"") })
        {
            var edit = await Refused(() => wade.PatchAsync<BreakGlass>(BreakGlasses, ns, "fire", $"{{\"spec\":{{\"{field}\":{value}}}}}", PatchTypes.Merge, CancellationToken.None));
            Assert.Contains($"spec.{field}: field is immutable", edit.StatusMessage);
        }

        var rematched = await wade.PatchAsync<BreakGlass>(BreakGlasses, ns, "fire",
            $"{{\"metadata\":{{\"annotations\":{{\"{ApiGroup.BreakGlassInvokerMatchAnnotation}\":\"group:platform-admins\"}}}}}}", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal("user:" + Email("wade"), rematched.Metadata.Annotations[ApiGroup.BreakGlassInvokerMatchAnnotation]);

        // A second invocation while one is active: refused.
        var second = await Refused(() => wade.CreateAsync(BreakGlasses, ns, NewBreakGlass("again"), CancellationToken.None));
        Assert.Contains($"BreakGlass fire is already active in workspace {ns}", second.StatusMessage);

        // The review: never the invoker (he holds Approver through the group), never someone without a reviewer role.
        var self = await Refused(() => wade.CreateAsync(Approvals, ns, NewReview("fire"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("wade")} created BreakGlass fire; self-approval is not allowed", self.StatusMessage);
        var stranger = await Refused(() => bob.CreateAsync(Approvals, ns, NewReview("fire"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("bob")} holds none of Approver, WorkspaceAdmin or SecurityReviewer in workspace {ns}", stranger.StatusMessage);
        await mona.CreateAsync(Approvals, ns, NewReview("fire"), CancellationToken.None);
        var reviewed = await WaitAsync(ns, "fire", b => b.Status?.Conditions?.Any(c => c is { Type: BreakGlassConditions.Reviewed, Status: "True" }) == true, "Reviewed");
        Assert.Equal(Email("mona"), reviewed.Status!.ReviewedBy);

        // The invoker ends it: the binding goes, the API server no longer grants the role; it cannot be un-ended.
        await wade.PatchAsync<BreakGlass>(BreakGlasses, ns, "fire", "{\"spec\":{\"end\":true}}", PatchTypes.Merge, CancellationToken.None);
        await WaitAsync(ns, "fire", b => b.Status?.Phase == BreakGlassPhase.Ended, "Ended");
        Assert.Null(await BindingAsync(ns, "fire"));
        await WaitForAccessAsync("wade", "create", "apps", "deployments", ns, allowed: false);
        var unend = await Refused(() => wade.PatchAsync<BreakGlass>(BreakGlasses, ns, "fire", "{\"spec\":{\"end\":false}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.end: an ended grant stays ended", unend.StatusMessage);
        // Only a WorkspaceAdmin deletes a BreakGlass: the invocation stays visible.
        await Refused(() => wade.DeleteAsync(BreakGlasses, ns, "fire", CancellationToken.None), HttpStatusCode.Forbidden);
        Assert.Equal(["breakglass.invoked", "breakglass.reviewed", "breakglass.ended"], await AuditActionsAsync($"{ns}/fire"));
    }

    [Fact]
    public async Task WithoutAPolicyItIsDisabled_AnotherTenantsWorkspaceIsClosed_AndANamedGroupLetsItsMembersInvoke()
    {
        var disabled = await WorkspaceAsync(null, ("User", Email("wade"), "Operator"));
        var grouped = await WorkspaceAsync(new TenantBreakGlassPolicy { Role = "Auditor", Invokers = new BreakGlassInvokers { Groups = ["self-service-users"] } },
            ("User", Email("mona"), "Approver"), ("User", Email("olga"), "Auditor"));
        await WaitForAccessAsync("wade", "create", ApiGroup.Group, "breakglasses", disabled);
        await WaitForAccessAsync("olga", "update", ApiGroup.Group, "breakglasses", grouped);
        await WaitForAccessAsync("mona", "create", ApiGroup.Group, "breakglasses", grouped);
        using var wade = As("wade");
        using var mona = As("mona");

        var off = await Refused(() => wade.CreateAsync(BreakGlasses, disabled, NewBreakGlass("fire"), CancellationToken.None));
        Assert.Contains("spec.accessPolicy.breakGlass: tenant", off.StatusMessage);
        Assert.Contains("break-glass is disabled", off.StatusMessage);

        // wade is no member of the other tenant's workspace: RBAC refuses him before any policy is read.
        await Refused(() => wade.CreateAsync(BreakGlasses, grouped, NewBreakGlass("intruder", role: "Auditor"), CancellationToken.None), HttpStatusCode.Forbidden);

        // mona is named through her group: the webhook, which alone sees groups, stamps which entry matched.
        var created = await mona.CreateAsync(BreakGlasses, grouped, NewBreakGlass("fire", role: "Auditor", duration: "10m"), CancellationToken.None);
        Assert.Equal("group:self-service-users", created.Metadata.Annotations[ApiGroup.BreakGlassInvokerMatchAnnotation]);
        var active = await WaitAsync(grouped, "fire", b => b.Status?.Phase == BreakGlassPhase.Active, "Active");
        Assert.Equal(Email("mona"), active.Status!.Invoker);
        await Net.WaitUntilAsync(async () => await BindingAsync(grouped, "fire") is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding");

        // olga, an Auditor here (RBAC lets her update BreakGlasses), holds no reviewer role: she may not end mona's break-glass.
        using var olga = As("olga");
        var endByOther = await Refused(() => olga.PatchAsync<BreakGlass>(BreakGlasses, grouped, "fire", "{\"spec\":{\"end\":true}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains($"spec.end: {Email("olga")} may not set spec.end on BreakGlass fire: only its invoker ({Email("mona")}), a WorkspaceAdmin, Approver or SecurityReviewer of the workspace", endByOther.StatusMessage);
        Assert.NotNull(await BindingAsync(grouped, "fire"));
        Assert.Equal(["breakglass.invoked"], await AuditActionsAsync($"{grouped}/fire"));
    }
}
