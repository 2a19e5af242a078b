using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Who may end someone's just-in-time grant (AccessRequest spec.revoke and delete, BreakGlass spec.end): GrantEnders.</summary>
public sealed class GrantEndersUnitTests
{
    const string Wade = "wade@example.com";
    const string Mona = "mona@example.com";

    static JsonObject Obj(string flag, bool? value, string? author = Wade)
    {
        var spec = new JsonObject();
        if (value is { } v) spec[flag] = v;
        var meta = new JsonObject { ["name"] = "g" };
        if (author is not null) meta["annotations"] = new JsonObject { [ApiGroup.CreatedByAnnotation] = author };
        return new JsonObject { ["metadata"] = meta, ["spec"] = spec };
    }

    static V1RoleBinding Binding(string role, string kind, string name) => new()
    {
        RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role), ApiGroup = "rbac.authorization.k8s.io" },
        Subjects = [new Rbacv1Subject { Kind = kind, Name = name }],
    };

    [Theory]
    [InlineData(null, true, true)]
    [InlineData(false, true, true)]
    [InlineData(true, true, false)]
    [InlineData(false, false, false)]
    [InlineData(null, null, false)]
    public void Sets_OnlyFromNotTrueToTrue(bool? before, bool? after, bool sets)
    {
        Assert.Equal(sets, GrantEnders.Sets(GrantEnders.AccessRequest, Obj("revoke", before), Obj("revoke", after)));
        Assert.Equal(sets, GrantEnders.Sets(GrantEnders.BreakGlass, Obj("end", before), Obj("end", after)));
    }

    [Fact]
    public void AuthorOf_ReadsTheStamp()
    {
        Assert.Equal(Wade, GrantEnders.AuthorOf(Obj("revoke", false)));
        Assert.Null(GrantEnders.AuthorOf(Obj("revoke", false, author: null)));
    }

    [Fact]
    public void AnotherMember_IsRefused_NamingTheFieldAndWhoMay()
    {
        var revoke = GrantEnders.Refusal(GrantEnders.AccessRequest, deleting: false, "debug", Mona, Wade, privileged: false, holdsRole: false);
        Assert.Equal($"spec.revoke: {Mona} may not set spec.revoke on AccessRequest debug: only its requester ({Wade}), a WorkspaceAdmin of the workspace, the operator or a cluster admin may end someone's grant", revoke);
        var delete = GrantEnders.Refusal(GrantEnders.AccessRequest, deleting: true, "debug", Mona, Wade, privileged: false, holdsRole: false);
        Assert.StartsWith($"spec.revoke: {Mona} may not delete AccessRequest debug (which ends its grant): only its requester ({Wade})", delete);
        var end = GrantEnders.Refusal(GrantEnders.BreakGlass, deleting: false, "fire", Mona, Wade, privileged: false, holdsRole: false);
        Assert.Equal($"spec.end: {Mona} may not set spec.end on BreakGlass fire: only its invoker ({Wade}), a WorkspaceAdmin, Approver or SecurityReviewer of the workspace, the operator or a cluster admin may end someone's grant", end);
        // No stamp: nobody is the author, so an unstamped object is only ended by a role holder or the privileged.
        Assert.NotNull(GrantEnders.Refusal(GrantEnders.AccessRequest, false, "debug", Mona, null, false, false));
        Assert.NotNull(GrantEnders.Refusal(GrantEnders.AccessRequest, false, "debug", "", "", false, false));
    }

    [Fact]
    public void TheAuthor_ARoleHolder_AndThePrivileged_May()
    {
        foreach (var e in new[] { GrantEnders.AccessRequest, GrantEnders.BreakGlass })
        {
            Assert.Null(GrantEnders.Refusal(e, false, "g", Wade, Wade, privileged: false, holdsRole: false));
            Assert.Null(GrantEnders.Refusal(e, true, "g", Wade, Wade, privileged: false, holdsRole: false));
            Assert.Null(GrantEnders.Refusal(e, false, "g", Mona, Wade, privileged: false, holdsRole: true));
            Assert.Null(GrantEnders.Refusal(e, false, "g", "system:serviceaccount:controlplane:operator", Wade, privileged: true, holdsRole: false));
        }
    }

    [Fact]
    public void TheRoles_WorkspaceAdminForAnAccessRequest_AReviewerForABreakGlass()
    {
        IReadOnlyCollection<string> none = [];
        bool Holds(GrantEnder e, string role) => ApprovalPolicy.HoldsRole(Mona, none, [Binding(role, "User", Mona)], e.Roles);
        Assert.True(Holds(GrantEnders.AccessRequest, "WorkspaceAdmin"));
        foreach (var other in new[] { "Approver", "Auditor", "Operator", "SecurityReviewer", "IntegrationAdmin" }) Assert.False(Holds(GrantEnders.AccessRequest, other));
        foreach (var reviewer in new[] { "WorkspaceAdmin", "Approver", "SecurityReviewer" }) Assert.True(Holds(GrantEnders.BreakGlass, reviewer));
        foreach (var other in new[] { "Auditor", "Operator", "IntegrationAdmin" }) Assert.False(Holds(GrantEnders.BreakGlass, other));
        // Through a group too; never through a system: group.
        Assert.True(ApprovalPolicy.HoldsRole(Mona, ["admins"], [Binding("WorkspaceAdmin", "Group", "admins")], GrantEnders.AccessRequest.Roles));
        Assert.False(ApprovalPolicy.HoldsRole(Mona, ["system:authenticated"], [Binding("WorkspaceAdmin", "Group", "system:authenticated")], GrantEnders.AccessRequest.Roles));
    }
}
