using ControlPlane.Operator;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>RoleBindings in workspace namespaces are a governed kind: only the operator, cluster admins and the cluster's own controllers write them.</summary>
public sealed class GovernedRoleBindingUnitTests
{
    const string OperatorSa = "system:serviceaccount:controlplane-system:controlplane-operator";

    static IAdmissionHandler Handler() =>
        KindRegistry.Kinds.Single(k => k.Group == "rbac.authorization.k8s.io" && k.Kind == "RoleBinding")
            .Admission(new AdmissionDependencies(null!, new AdmissionSettings(new ControlPlaneOptions(), new HashSet<string> { OperatorSa })));

    static AdmissionRequest Request(string operation, string user, params string[] groups) => new()
    {
        Uid = "u1", Operation = operation, Name = "mona-admin", Namespace = "acme-dev",
        Kind = new GroupVersionKind { Group = "rbac.authorization.k8s.io", Version = "v1", Kind = "RoleBinding" },
        UserInfo = new AdmissionUserInfo { Username = user, Groups = [.. groups] },
    };

    [Theory]
    [InlineData("CREATE")]
    [InlineData("UPDATE")]
    [InlineData("DELETE")]
    public async Task AMember_IsRefused_NamingTheRuleAndWhatToDoInstead(string operation)
    {
        var problems = await Handler().ValidateAsync(Request(operation, "mona@example.com", "system:authenticated"), CancellationToken.None);
        var problem = Assert.Single(problems);
        Assert.Equal($"RoleBinding objects in workspace namespace acme-dev are managed by the operator only (mona@example.com may not {operation.ToLowerInvariant()} them): "
            + "grant standing access through the Workspace's spec.members, or time-bound access through an AccessRequest", problem);
    }

    [Theory]
    [InlineData(OperatorSa, "system:serviceaccounts")]
    [InlineData("admin", "system:masters")]
    [InlineData("system:kube-controller-manager", "system:authenticated")]
    [InlineData("system:serviceaccount:kube-system:generic-garbage-collector", "system:serviceaccounts")]
    [InlineData("system:serviceaccount:kube-system:namespace-controller", "system:serviceaccounts")]
    public async Task TheOperator_ClusterAdmins_AndTheClustersControllers_MayWriteThem(string user, string group)
    {
        foreach (var op in new[] { "CREATE", "UPDATE", "DELETE" }) Assert.Empty(await Handler().ValidateAsync(Request(op, user, group), CancellationToken.None));
    }

    [Fact]
    public void TheGovernedWebhook_CoversRoleBindings_InWorkspaceNamespacesOnly_FailingClosed()
    {
        var governed = WebhookConfigurations.ValidatingConfiguration(new WebhookOptions(), "ca").Webhooks.Single(w => w.Name == "governed.controlplane.io");
        var rule = governed.Rules.Single(r => r.ApiGroups.Contains("rbac.authorization.k8s.io"));
        Assert.Equal(["rolebindings"], rule.Resources);
        Assert.Equal(["*"], rule.ApiVersions);
        Assert.Equal(["CREATE", "UPDATE", "DELETE"], rule.Operations);
        Assert.Equal("Fail", governed.FailurePolicy);
        var selector = Assert.Single(governed.NamespaceSelector.MatchExpressions);
        Assert.Equal(("controlplane.io/workspace", "Exists"), (selector.Key, selector.OperatorProperty));
    }
}
