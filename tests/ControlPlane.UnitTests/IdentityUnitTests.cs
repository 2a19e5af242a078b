using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Identities the author controls, and names taken first (threats: "Identities the author controls",
/// "Claiming shared names", confusable names): the pure rules admission and the reconcilers share.
/// </summary>
public sealed class IdentityUnitTests
{
    static Workspace Ws(string name, string tenant, params WorkspaceMember[] members) =>
        new() { Metadata = new V1ObjectMeta { Name = name, Uid = "uid-" + name }, Spec = new WorkspaceSpec { Tenant = tenant, Members = [.. members] } };

    static WorkspaceMember Member(string kind, string name, string role = "Operator") => new() { Kind = kind, Name = name, Role = role };

    [Theory]
    [InlineData("bob\u200B@acme.io", "U+200B")]        // zero-width space
    [InlineData("bob\u200D@acme.io", "U+200D")]        // zero-width joiner
    [InlineData("\u202Ebob@acme.io", "U+202E")]        // right-to-left override
    [InlineData("bob@acme.io\u2066", "U+2066")]        // left-to-right isolate
    [InlineData("\uFEFFbob@acme.io", "U+FEFF")]        // byte-order mark
    [InlineData("bob\u2060@acme.io", "U+2060")]        // word joiner
    [InlineData("bob\u00A0smith", "U+00A0")]           // no-break space
    [InlineData("bob\u00AD@acme.io", "U+00AD")]        // soft hyphen
    [InlineData("\u0430lice@acme.io", "Cyrillic and Latin")] // Cyrillic 'а' in a Latin name
    [InlineData("\u03BFps-team", "Greek and Latin")]   // Greek omicron
    [InlineData("\uFF41lice@acme.io", "U+FF41")]       // fullwidth 'ａ'
    [InlineData("\uFB01nance@acme.io", "U+FB01")]      // the ligature 'ﬁ'
    [InlineData("\U0001D41Alice@acme.io", "mathematical")] // mathematical bold 'a'
    [InlineData(" alice@acme.io", "space")]
    public void InvisibleOrConfusableMemberNames_AreRefused_NamingTheField(string name, string rule)
    {
        foreach (var kind in new[] { "User", "Group" })
        {
            var problem = Assert.Single(SpecRules.Members([Member("User", "ok@acme.io"), Member(kind, name)]));
            Assert.StartsWith("spec.members[1].name:", problem);
            Assert.Contains(rule, problem);
            // The message shows an invisible character escaped, never as itself.
            Assert.DoesNotContain("\u200B", problem);
            Assert.DoesNotContain("\u202E", problem);
        }

        var owner = Assert.Single(SpecRules.Owners([new Subject { Kind = "User", Name = "alice@acme.io" }, new Subject { Kind = "User", Name = name }]));
        Assert.StartsWith("spec.owners[1].name:", owner);
    }

    [Theory]
    [InlineData("User", "system:serviceaccount:acme-dev:bot", "{kind: ServiceAccount, name: acme-dev/bot}")]
    [InlineData("User", "system:anonymous", "system identity")]
    [InlineData("Group", "system:serviceaccounts:acme-dev", "system group")]
    [InlineData("Group", "system:serviceaccounts", "system group")]
    [InlineData("Group", "system:authenticated", "system group")]
    public void SystemIdentities_AsMembers_AreRefused_NamingTheField(string kind, string name, string rule)
    {
        var problem = Assert.Single(SpecRules.Members([Member(kind, name, "Approver")]));
        Assert.StartsWith("spec.members[0].name:", problem);
        Assert.Contains(rule, problem);
        Assert.StartsWith("spec.owners[0].name:", Assert.Single(SpecRules.Owners([new Subject { Kind = kind, Name = name }])));
    }

    [Fact]
    public void ServiceAccountMembers_OnlyFromWorkspacesOfTheSameTenant()
    {
        var workspaces = new[] { Ws("acme-ci", "acme"), Ws("ci", "acme"), Ws("acme-dev", "acme") }.ToDictionary(w => w.Metadata.Name);
        var globex = Ws("globex-dev", "globex",
            Member("ServiceAccount", "ci/deployer"),          // ci is acme's: refused
            Member("ServiceAccount", "globex-dev/deployer"),  // its own namespace
            Member("ServiceAccount", "nowhere/deployer"),     // no workspace at all: refused
            Member("User", "bob@globex.io"));
        var refused = WorkspaceMembers.ForeignServiceAccounts(globex, workspaces.GetValueOrDefault);
        Assert.Equal([0, 2], refused.Select(r => r.Index));
        Assert.StartsWith("spec.members[0].name: ServiceAccount \"ci/deployer\"", refused[0].Message);
        Assert.Contains("not a workspace of tenant globex", refused[0].Message);
        Assert.All(refused, r => Assert.False(r.Pending));

        // The reconciler binds none of them, and everyone else.
        var bindings = WorkspaceResources.RoleBindings(globex, new Tenant { Metadata = new V1ObjectMeta { Name = "globex" } }, refused);
        Assert.Equal(["globex-dev/deployer", "bob@globex.io"], bindings.Select(b => b.Subjects[0].NamespaceProperty is { } ns ? $"{ns}/{b.Subjects[0].Name}" : b.Subjects[0].Name).Order().Reverse());

        // acme's own ServiceAccount member: bound once workspace ci holds its namespace, pending until then.
        var acme = Ws("acme-dev", "acme", Member("ServiceAccount", "ci/deployer"));
        Assert.Empty(WorkspaceMembers.ForeignServiceAccounts(acme, workspaces.GetValueOrDefault, _ => true));
        var pending = Assert.Single(WorkspaceMembers.ForeignServiceAccounts(acme, workspaces.GetValueOrDefault, _ => false));
        Assert.True(pending.Pending);
    }

    [Fact]
    public void SelfServiceAdmin_IsNoForeignServiceAccount()
    {
        var workspaces = new[] { Ws("ci", "acme") }.ToDictionary(w => w.Metadata.Name);
        var globex = Ws("globex-dev", "globex", Member("ServiceAccount", "ci/deployer", "WorkspaceAdmin"));
        Assert.True(SelfService.IsWorkspaceAdmin(globex, "system:serviceaccount:ci:deployer", []));
        Assert.False(SelfService.IsWorkspaceAdmin(globex, "system:serviceaccount:ci:deployer", [], workspaces.GetValueOrDefault));
    }

    [Theory]
    [InlineData("istio-system", "istio-*")]
    [InlineData("kyverno", "kyverno")]
    [InlineData("openshift-config", "openshift-*")]
    [InlineData("cattle-system", "cattle-*")]
    [InlineData("kube-anything", "kube-*")]
    [InlineData("default", "default")]
    [InlineData("linkerd-viz", "linkerd-*")]
    [InlineData("cnpg-system", "cnpg-system")]
    [InlineData("capsule-system", "capsule-system")]
    public void PlatformNamespaces_AreReservedByDefault(string name, string pattern)
    {
        var problem = WorkspaceNames.Problem(name, "acme", new ControlPlaneOptions(), isNew: true);
        Assert.NotNull(problem);
        Assert.StartsWith($"metadata.name: \"{name}\" is reserved (matches {pattern}", problem);
    }

    [Fact]
    public void ReservedNamespaces_TakeGlobs_AndTheDefaultsCanBeClearedButNotTheClusters()
    {
        var options = new ControlPlaneOptions { ReservedNamespaces = ["corp-*", "shared"], ReservedNamespaceDefaults = false };
        Assert.Contains("corp-*", WorkspaceNames.Reserved("corp-billing", options));
        Assert.NotNull(WorkspaceNames.Reserved("shared", options));
        Assert.Null(WorkspaceNames.Reserved("sharedx", options));
        Assert.Null(WorkspaceNames.Reserved("kyverno", options)); // the platform cleared the shipped list
        Assert.NotNull(WorkspaceNames.Reserved("kube-system", options));
        Assert.NotNull(WorkspaceNames.Reserved("controlplane-system", options));
        Assert.Null(WorkspaceNames.Reserved("acme-dev", new ControlPlaneOptions()));
        Assert.True(WorkspaceNames.Matches("a*b*c", "aXbYc"));
        Assert.False(WorkspaceNames.Matches("a*b*c", "acb"));
        Assert.False(WorkspaceNames.Matches("ab*ba", "aba"));
    }

    [Fact]
    public void TenantPrefix_AndAllowlist_BindNewWorkspacesOnly()
    {
        var forced = new ControlPlaneOptions { ForceTenantPrefix = true };
        Assert.Contains("must start with its tenant's name", WorkspaceNames.Problem("ci", "acme", forced, isNew: true));
        Assert.NotNull(WorkspaceNames.Problem("acmeci", "acme", forced, isNew: true));
        Assert.Null(WorkspaceNames.Problem("acme-ci", "acme", forced, isNew: true));
        Assert.Null(WorkspaceNames.Problem("ci", "acme", forced, isNew: false)); // provisioned before: keeps its name
        Assert.Null(WorkspaceNames.Problem("ci", "acme", new ControlPlaneOptions(), isNew: true));

        var allowlist = new ControlPlaneOptions { AllowedWorkspaceNames = ["{tenant}-*", "sandbox-*"] };
        Assert.Null(WorkspaceNames.Problem("acme-dev", "acme", allowlist, isNew: true));
        Assert.Null(WorkspaceNames.Problem("sandbox-1", "acme", allowlist, isNew: true));
        Assert.Contains("acme-*, sandbox-*", WorkspaceNames.Problem("globex-dev", "acme", allowlist, isNew: true));
        // Reserved wins over every allowlist.
        Assert.Contains("is reserved", WorkspaceNames.Problem("kube-x", "kube", new ControlPlaneOptions { ForceTenantPrefix = true }, isNew: false));
    }

    [Fact]
    public void UnderTenantPrefixes_ANameUnderALongerTenantsPrefix_IsThatTenants()
    {
        string[] tenants = ["acme", "acme-corp", "globex"];
        var forced = new ControlPlaneOptions { ForceTenantPrefix = true };
        Assert.Contains("the prefix of tenant acme-corp", WorkspaceNames.Problem("acme-corp-prod", "acme", forced, isNew: true, tenants));
        Assert.Null(WorkspaceNames.Problem("acme-corp-prod", "acme-corp", forced, isNew: true, tenants));
        Assert.Null(WorkspaceNames.Problem("acme-dev", "acme", forced, isNew: true, tenants));
        Assert.Null(WorkspaceNames.Problem("acme-corpus", "acme", forced, isNew: true, tenants)); // not under "acme-corp-"
        Assert.Null(WorkspaceNames.Problem("acme-corp-prod", "acme", forced, isNew: false, tenants)); // provisioned before: keeps its name
        var allowlist = new ControlPlaneOptions { AllowedWorkspaceNames = ["{tenant}-*"] };
        Assert.NotNull(WorkspaceNames.Problem("acme-corp-prod", "acme", allowlist, isNew: true, tenants));
        // Without prefix partitioning names are first come, first served among tenants (reserved names aside).
        Assert.Null(WorkspaceNames.Problem("acme-corp-prod", "acme", new ControlPlaneOptions(), isNew: true, tenants));

        // The other way round: tenant acme-corp arriving after acme took acme-corp-prod.
        (string, string)[] held = [("acme-corp-prod", "acme"), ("acme-dev", "acme")];
        Assert.Contains("workspace acme-corp-prod of tenant acme is already under the prefix \"acme-corp-\"", WorkspaceNames.PrefixTakenBy("acme-corp", forced, held));
        Assert.Null(WorkspaceNames.PrefixTakenBy("acme", forced, held));
        Assert.Null(WorkspaceNames.PrefixTakenBy("acme-corp", new ControlPlaneOptions(), held));
    }

    static Approval ApprovalBy(string approver, string? groups = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "apr", NamespaceProperty = "acme-dev",
            Annotations = groups is null ? null : new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = groups },
        },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exposure", Name = "orders" }, Decision = "approve", Approver = approver, TargetGeneration = 1, TargetUID = "x" },
    };

    static readonly Exposure Orders = new()
    {
        Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "acme-dev", Uid = "x", Generation = 1, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "alice@acme.io" } },
    };

    [Fact]
    public void AServiceAccountsApproval_NeverCounts_HoweverItIsBound()
    {
        // Bound as a User named like its username, and through a system group: neither makes it an approver.
        var bindings = new[]
        {
            new V1RoleBinding
            {
                RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName("Approver") },
                Subjects =
                [
                    new Rbacv1Subject { Kind = "User", Name = "system:serviceaccount:acme-dev:bot" },
                    new Rbacv1Subject { Kind = "Group", Name = "system:authenticated" },
                    new Rbacv1Subject { Kind = "User", Name = "carol@acme.io" },
                ],
            },
        };
        Assert.False(ApprovalPolicy.IsApprover("system:serviceaccount:acme-dev:bot", ["system:serviceaccounts", "system:serviceaccounts:acme-dev"], bindings));
        Assert.False(ApprovalPolicy.IsApprover("dave@acme.io", ["system:authenticated"], bindings));
        Assert.True(ApprovalPolicy.IsApprover("carol@acme.io", ["system:authenticated"], bindings));

        // Judged even when the role check says yes (an approval stored past admission).
        var bot = ApprovalPolicy.Judge(ApprovalBy("system:serviceaccount:acme-dev:bot"), Orders, _ => true);
        Assert.False(bot.Counts);
        Assert.Equal("NotAPerson", bot.Reason);
        Assert.Contains("ServiceAccount", bot.Message);
        var renamed = ApprovalPolicy.Judge(ApprovalBy("bot", ApprovalPolicy.FormatGroups(["system:serviceaccounts", "system:authenticated"])), Orders, _ => true);
        Assert.Equal("NotAPerson", renamed.Reason);
        Assert.True(ApprovalPolicy.Judge(ApprovalBy("carol@acme.io", ApprovalPolicy.FormatGroups(["system:authenticated"])), Orders, _ => true).Counts);
        Assert.False(ApprovalPolicy.Evaluate(Orders, "dev", [ApprovalBy("system:serviceaccount:acme-dev:bot")], _ => true).Approved);
    }
    [Fact]
    public void AnApproverWhoCanMintTheAuthoringServiceAccountsToken_IsAnAuthor()
    {
        var byBot = new Exposure
        {
            Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "acme-dev", Uid = "x", Generation = 1, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "system:serviceaccount:acme-dev:ci" } },
        };
        V1RoleBinding Bound(string role, string user) => new()
        {
            RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
            Subjects = [new Rbacv1Subject { Kind = "User", Name = user }],
        };
        var bindings = new[] { Bound("WorkspaceAdmin", "alice@acme.io"), Bound("Operator", "bob@acme.io"), Bound("Approver", "carol@acme.io") };
        IEnumerable<V1RoleBinding> In(string ns) => ns == "acme-dev" ? bindings : [];
        var alice = ApprovalPolicy.Judge(ApprovalBy("alice@acme.io"), byBot, _ => true, In);
        Assert.Equal("SelfApproval", alice.Reason);
        Assert.Contains("can act as system:serviceaccount:acme-dev:ci", alice.Message);
        Assert.Equal("SelfApproval", ApprovalPolicy.Judge(ApprovalBy("bob@acme.io"), byBot, _ => true, In).Reason);
        Assert.True(ApprovalPolicy.Judge(ApprovalBy("carol@acme.io"), byBot, _ => true, In).Counts);
        Assert.True(ApprovalPolicy.Judge(ApprovalBy("bob@acme.io"), Orders, _ => true, In).Counts); // alice's own Exposure: an Operator reviews it
    }
    [Fact]
    public void AnApproverWhoCanMintTheAuthorsTokenThroughAnotherServiceAccount_IsAnAuthor()
    {
        // The bot in acme-dev authored it; ServiceAccount acme-ci/admin is WorkspaceAdmin of acme-dev; carol is WorkspaceAdmin of acme-ci.
        var byBot = new Exposure
        {
            Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "acme-dev", Uid = "x", Generation = 1, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "system:serviceaccount:acme-dev:bot" } },
        };
        V1RoleBinding Bound(string role, string kind, string name, string? ns = null) => new()
        {
            RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
            Subjects = [new Rbacv1Subject { Kind = kind, Name = name, NamespaceProperty = ns }],
        };
        var bindings = new Dictionary<string, V1RoleBinding[]>
        {
            ["acme-dev"] = [Bound("WorkspaceAdmin", "ServiceAccount", "admin", "acme-ci"), Bound("Approver", "User", "carol@acme.io"), Bound("Approver", "User", "erin@acme.io")],
            ["acme-ci"] = [Bound("WorkspaceAdmin", "User", "carol@acme.io"), Bound("Operator", "ServiceAccount", "admin", "acme-dev")],
        };
        IEnumerable<V1RoleBinding> In(string ns) => bindings.GetValueOrDefault(ns) ?? [];
        var carol = ApprovalPolicy.Judge(ApprovalBy("carol@acme.io"), byBot, _ => true, In);
        Assert.Equal("SelfApproval", carol.Reason);
        Assert.Contains("whose ServiceAccount acme-ci/admin holds controlplane:workspace:workspace-admin in namespace acme-dev", carol.Message);
        Assert.True(ApprovalPolicy.Judge(ApprovalBy("erin@acme.io"), byBot, _ => true, In).Counts); // a cycle of namespaces ends
    }

    [Fact]
    public void SystemAndConfusableSubjects_StoredPastAdmission_AreNeverBound()
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" } };
        tenant.Spec.Owners = [new Subject { Kind = "Group", Name = "system:authenticated" }, new Subject { Kind = "User", Name = "alice@acme.io" }];
        var ws = Ws("acme-dev", "acme", Member("Group", "system:serviceaccounts"), Member("User", "\u0430lice@acme.io", "WorkspaceAdmin"), Member("User", "bob@acme.io"));
        var refused = WorkspaceMembers.Refused(ws, _ => null);
        Assert.Equal([0, 1], refused.Select(r => r.Index));
        Assert.StartsWith("spec.members[0].name:", refused[0].Message);
        var subjects = WorkspaceResources.RoleBindings(ws, tenant, refused).Select(b => b.Subjects[0].Name).Order().ToList();
        Assert.Equal(["alice@acme.io", "bob@acme.io"], subjects);
        var selfService = SelfServiceBindings.Bindings(tenant, [ws]);
        Assert.Equal(["alice@acme.io"], selfService.Single(b => b.RoleRef.Name == SelfService.TenantOwnerRole).Subjects.Select(s => s.Name));
        Assert.Null(selfService.Single(b => b.RoleRef.Name == SelfService.MemberManagerRole).Subjects);
    }
}
