using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The pure parts of self-service: who is bound, who is named, what a WorkspaceAdmin changed.</summary>
public sealed class SelfServiceUnitTests
{
    static Workspace Ws(string name, string tenant, params WorkspaceMember[] members) =>
        new() { Metadata = new V1ObjectMeta { Name = name }, Spec = new WorkspaceSpec { Tenant = tenant, Members = [.. members] } };

    static WorkspaceMember Member(string kind, string name, string role) => new() { Kind = kind, Name = name, Role = role };

    [Fact]
    public void Bindings_NameTheOwners_AndOnlyTheWorkspaceAdminsOfTheTenantsOwnWorkspaces()
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme", Uid = "u1" } };
        tenant.Spec.Owners = [new Subject { Kind = "User", Name = "alice" }, new Subject { Kind = "Group", Name = "acme-platform" }];
        var bindings = SelfServiceBindings.Bindings(tenant,
        [
            Ws("a", "acme", Member("User", "bob", "WorkspaceAdmin"), Member("User", "carol", "Operator")),
            // A ServiceAccount in one of the tenant's workspaces is bound; one in a namespace the tenant does not hold (ci) is not.
            Ws("b", "acme", Member("User", "bob", "WorkspaceAdmin"), Member("ServiceAccount", "a/deployer", "WorkspaceAdmin"), Member("ServiceAccount", "ci/deployer", "WorkspaceAdmin")),
            Ws("x", "globex", Member("User", "mallory", "WorkspaceAdmin")),
        ]);
        var owners = bindings.Single(b => b.RoleRef.Name == SelfService.TenantOwnerRole);
        Assert.Equal(["Group/acme-platform", "User/alice"], owners.Subjects.Select(s => $"{s.Kind}/{s.Name}"));
        var admins = bindings.Single(b => b.RoleRef.Name == SelfService.MemberManagerRole);
        Assert.Equal(["ServiceAccount/a/deployer", "User/bob"], admins.Subjects.Select(s => $"{s.Kind}/{s.NamespaceProperty}{(s.NamespaceProperty is null ? "" : "/")}{s.Name}"));
        Assert.All(bindings, b => Assert.Equal("u1", b.Metadata.OwnerReferences.Single().Uid));

        // Nobody to bind: no subjects at all (the API server's form), so an idle reconcile matches it.
        Assert.All(SelfServiceBindings.Bindings(new Tenant { Metadata = new V1ObjectMeta { Name = "empty" } }, []), b => Assert.Null(b.Subjects));
    }

    [Fact]
    public void Names_MatchUsersGroupsAndServiceAccounts_AsTheApiServerAuthenticatesThem()
    {
        Assert.True(SelfService.Names("User", "alice", "alice", []));
        Assert.False(SelfService.Names("User", "alice", "alice2", ["alice"]));
        Assert.True(SelfService.Names("Group", "ops", "bob", ["ops"]));
        Assert.True(SelfService.Names("ServiceAccount", "ci/deployer", "system:serviceaccount:ci:deployer", []));
        Assert.False(SelfService.Names("ServiceAccount", "ci/deployer", "ci/deployer", []));
    }

    [Fact]
    public void ChangesBesidesMembers_NamesEveryOtherField_AndIgnoresTheMembersThemselves()
    {
        var before = JsonNode.Parse("""{"metadata":{"labels":{"a":"1"}},"spec":{"tenant":"acme","environment":"dev","members":[]}}""")!.AsObject();
        var onlyMembers = JsonNode.Parse("""{"metadata":{"labels":{"a":"1"}},"spec":{"tenant":"acme","environment":"dev","members":[{"kind":"User","name":"x","role":"Auditor"}]}}""")!.AsObject();
        Assert.Empty(SelfService.ChangesBesidesMembers(before, onlyMembers));
        var more = JsonNode.Parse("""{"metadata":{"labels":{"a":"2"}},"spec":{"tenant":"acme","environment":"prod","quota":{"pods":5},"members":[]}}""")!.AsObject();
        Assert.Equal(["spec.environment", "spec.quota", "metadata.labels"], SelfService.ChangesBesidesMembers(before, more));
    }

    [Fact]
    public void MemberDiff_ListsWhatWasAddedAndRemoved_ARoleChangeAsBoth()
    {
        var (added, removed) = SelfService.MemberDiff(
            [Member("User", "a", "Operator"), Member("User", "b", "Auditor")],
            [Member("User", "a", "WorkspaceAdmin"), Member("User", "b", "Auditor"), Member("Group", "g", "Approver")]);
        Assert.Equal(["Group/g:Approver", "User/a:WorkspaceAdmin"], added);
        Assert.Equal(["User/a:Operator"], removed);
    }
}
