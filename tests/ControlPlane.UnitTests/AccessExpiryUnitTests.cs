using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Prometheus;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The delegation expirer's pure parts (issue 25, item 2): the expiry lag histogram, and which Approvals a
/// RoleBinding's change re-judges (a just-in-time grant's binding no longer re-judges every approval of its namespace).
/// </summary>
public sealed class AccessExpiryUnitTests
{
    const string Ns = "acme-dev";

    static Approval Approval(string name, string approver, string targetKind, string target, params string[] groups) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = Ns,
            Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups(groups) },
        },
        Spec = new ApprovalSpec { Approver = approver, Target = new ApprovalTarget { Kind = targetKind, Name = target } },
    };

    static V1RoleBinding Binding(params (string Kind, string Name)[] subjects) => new()
    {
        Metadata = new V1ObjectMeta { Name = "b", NamespaceProperty = Ns },
        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = "controlplane:workspace:approver" },
        Subjects = subjects.Select(s => new Rbacv1Subject
        {
            Kind = s.Kind, Name = s.Name, ApiGroup = s.Kind == "ServiceAccount" ? null : "rbac.authorization.k8s.io", NamespaceProperty = s.Kind == "ServiceAccount" ? Ns : null,
        }).ToList(),
    };

    static readonly IReadOnlyList<Approval> Approvals =
    [
        Approval("carol-orders", "carol@acme.io", "Exposure", "orders"),
        Approval("dave-orders", "dave@acme.io", "Exposure", "orders"),
        Approval("dave-payments", "dave@acme.io", "Exposure", "payments"),
        Approval("erin-debug", "erin@acme.io", "AccessRequest", "debug", "oncall"),
        Approval("frank-cache", "frank@acme.io", "Exposure", "cache"),
    ];

    [Fact]
    public void AUsersBinding_RejudgesTheirApprovals_AndTheOtherApprovalsOfTheSameTargets_Only()
    {
        // carol approved orders, which dave approved too: both are judged again (the target's count moves); payments and the rest are not.
        Assert.Equal(["acme-dev/carol-orders", "acme-dev/dave-orders"], ApprovalBindingWatch.AffectedBy(Binding(("User", "carol@acme.io")), Approvals).Order());
        // A just-in-time grant to someone who approved nothing here re-judges nothing.
        Assert.Empty(ApprovalBindingWatch.AffectedBy(Binding(("User", "grace@acme.io")), Approvals));
    }

    [Fact]
    public void AGroupsBinding_RejudgesTheApprovalsOfItsMembersAsRecordedAtAdmission()
    {
        Assert.Equal(["acme-dev/erin-debug"], ApprovalBindingWatch.AffectedBy(Binding(("Group", "oncall")), Approvals));
    }

    [Fact]
    public void AServiceAccountOrEmptyBinding_RejudgesTheWholeNamespace_AsBefore()
    {
        // A ServiceAccount can be a link of a token-minting chain (an approver acting as an author): nothing is narrowed.
        Assert.Equal(Approvals.Count, ApprovalBindingWatch.AffectedBy(Binding(("User", "carol@acme.io"), ("ServiceAccount", "deployer")), Approvals).Count());
        Assert.Equal(Approvals.Count, ApprovalBindingWatch.AffectedBy(Binding(), Approvals).Count());
    }

    [Fact]
    public async Task TheExpiryLag_IsObservedFromTheRecordedExpiry_NeverNegative()
    {
        var registry = Metrics.NewCustomRegistry();
        var lag = new AccessExpiryLag(registry);
        // A term's setup creates it again: the same histogram, not a second registration.
        var again = new AccessExpiryLag(registry);
        var expiresAt = new DateTime(2026, 12, 7, 9, 0, 0, DateTimeKind.Utc);
        lag.Observe(expiresAt, expiresAt.AddSeconds(1.5));
        again.Observe(expiresAt, expiresAt.AddSeconds(-1)); // a clock a little behind: counted as no lag
        using var exported = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(exported);
        var text = Encoding.UTF8.GetString(exported.ToArray());
        Assert.Contains($"{AccessExpiryLag.Name}_count 2", text);
        Assert.Contains($"{AccessExpiryLag.Name}_sum 1.5", text);
        Assert.Contains($"{AccessExpiryLag.Name}_bucket{{le=\"1\"}} 1", text);
        Assert.Contains($"{AccessExpiryLag.Name}_bucket{{le=\"2\"}} 2", text);
    }
}
