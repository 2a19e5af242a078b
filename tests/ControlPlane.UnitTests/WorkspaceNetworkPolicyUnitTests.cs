using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>The desired-state function of WorkspaceNetworkPolicy: rendering, tenant bounds, and what is dropped.</summary>
public sealed class WorkspaceNetworkPolicyUnitTests
{
    static readonly HashSet<string> AcmeWorkspaces = ["acme-dev", "acme-prod"];

    static TenantNetworkBounds Bounds(string[]? ingress = null, string[]? egress = null) =>
        new("acme", ingress ?? ["203.0.113.0/24"], egress ?? ["198.51.100.0/24"], AcmeWorkspaces.Contains);

    static WorkspaceNetworkPolicy Policy(Action<WorkspaceNetworkPolicySpec> edit)
    {
        var p = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = "api", NamespaceProperty = "acme-dev", Uid = "uid-1", Generation = 3 } };
        p.Spec.PodSelector = new LabelSelector { MatchLabels = new() { ["app"] = "api" } };
        edit(p.Spec);
        return p;
    }

    static WorkspaceNetworkPolicy Full() => Policy(s =>
    {
        s.Ingress =
        [
            new IngressRule
            {
                From = [new Peer { Workspace = "acme-prod" }, new Peer { Cidr = "203.0.113.0/25" }, new Peer { PodSelector = new LabelSelector { MatchLabels = new() { ["role"] = "web" } } }],
                Ports = [new NetworkPort { Protocol = "TCP", Port = 8080 }],
            },
        ];
        s.Egress = [new EgressRule { To = [new Peer { Cidr = "198.51.100.10/32" }], Ports = [new NetworkPort { Port = 443 }] }];
    });

    [Fact]
    public void Peers_RenderToNamespaceSelectorIpBlockAndPodSelector_InOneIngressAndOneEgressPolicy_OwnedByThePolicy()
    {
        var plan = WorkspaceNetworkPolicyResources.Desired(Full(), Bounds());
        Assert.Empty(plan.Dropped);
        Assert.Equal(["api-ingress", "api-egress"], plan.Policies.Select(p => p.Metadata.Name));
        var ingress = plan.Policies[0];
        Assert.Equal("acme-dev", ingress.Metadata.NamespaceProperty);
        Assert.Equal(["Ingress"], ingress.Spec.PolicyTypes);
        Assert.Equal("api", ingress.Spec.PodSelector.MatchLabels["app"]);
        var owner = Assert.Single(ingress.Metadata.OwnerReferences);
        Assert.True(owner.Controller);
        Assert.Equal(("WorkspaceNetworkPolicy", "api", "uid-1"), (owner.Kind, owner.Name, owner.Uid));
        Assert.Equal("controlplane", ingress.Metadata.Labels[ApiGroup.ManagedByLabel]);

        var from = Assert.Single(ingress.Spec.Ingress).FromProperty;
        Assert.Equal(3, from.Count);
        // A workspace peer matches only the namespace the operator labelled for that workspace of this tenant.
        Assert.Equal(new Dictionary<string, string> { ["controlplane.io/workspace"] = "acme-prod", ["controlplane.io/tenant"] = "acme" }, from[0].NamespaceSelector.MatchLabels);
        Assert.Null(from[0].PodSelector);
        Assert.Equal("203.0.113.0/25", from[1].IpBlock.Cidr);
        Assert.Null(from[1].NamespaceSelector);
        Assert.Equal("web", from[2].PodSelector.MatchLabels["role"]);
        Assert.Null(from[2].NamespaceSelector);
        var port = Assert.Single(ingress.Spec.Ingress[0].Ports);
        Assert.Equal(("TCP", "8080"), (port.Protocol, port.Port.Value));

        var egress = plan.Policies[1];
        Assert.Equal(["Egress"], egress.Spec.PolicyTypes);
        Assert.Equal("198.51.100.10/32", Assert.Single(Assert.Single(egress.Spec.Egress).To).IpBlock.Cidr);
    }

    [Fact]
    public void AShrunkAllowlist_DropsThePeersOutsideIt_AndARuleLeftWithoutPeers_IsNeverRenderedOpen()
    {
        var plan = WorkspaceNetworkPolicyResources.Desired(Full(), Bounds(ingress: ["203.0.113.0/26"], egress: []));
        // The ingress CIDR no longer fits; the other ingress peers stay.
        var ingress = Assert.Single(plan.Policies);
        Assert.Equal("api-ingress", ingress.Metadata.Name);
        Assert.Equal(2, ingress.Spec.Ingress[0].FromProperty.Count);
        Assert.DoesNotContain(ingress.Spec.Ingress[0].FromProperty, p => p.IpBlock is not null);
        // The egress rule lost its only peer: no egress policy at all (an empty "to" would allow everything).
        Assert.Contains("spec.ingress[0].from[1].cidr: 203.0.113.0/25 is outside tenant acme's spec.network.allowedIngressCIDRs [203.0.113.0/26]", plan.Dropped);
        Assert.Contains("spec.egress[0].to[0].cidr: 198.51.100.10/32 is outside tenant acme's spec.network.approvedEgressCIDRs []", plan.Dropped);
        Assert.Contains("spec.egress[0]: not rendered: none of its peers is allowed", plan.Dropped);
    }

    [Fact]
    public void AWorkspaceOfAnotherTenant_OrAMissingOne_IsDropped_NeverSelected()
    {
        var policy = Policy(s => s.Ingress = [new IngressRule { From = [new Peer { Workspace = "globex-prod" }, new Peer { Workspace = "acme-prod" }] }]);
        var plan = WorkspaceNetworkPolicyResources.Desired(policy, Bounds());
        Assert.Equal(["spec.ingress[0].from[0].workspace: \"globex-prod\" is not a workspace of tenant acme"], plan.Dropped);
        var peer = Assert.Single(Assert.Single(plan.Policies).Spec.Ingress[0].FromProperty);
        Assert.Equal("acme-prod", peer.NamespaceSelector.MatchLabels["controlplane.io/workspace"]);
    }

    [Fact]
    public void RulesWithoutPeers_AndMalformedPeers_AreRefusedAtAdmission_AndDroppedAtReconcile()
    {
        var policy = Policy(s =>
        {
            s.Ingress = [new IngressRule { Ports = [new NetworkPort { Port = 80 }] }, new IngressRule { From = [new Peer()] }];
            s.Egress = [new EgressRule { To = [new Peer { Cidr = "198.51.100.0/24", PodSelector = new LabelSelector() }] }];
        });
        var problems = WorkspaceNetworkPolicyResources.OutOfBounds(policy.Spec, Bounds());
        Assert.Equal(3, problems.Count);
        Assert.StartsWith("spec.ingress[0].from: names no peer", problems[0]);
        Assert.Equal("spec.ingress[1].from[0]: names no workspace, cidr or podSelector", problems[1]);
        Assert.StartsWith("spec.egress[0].to[0]: sets cidr and podSelector", problems[2]);
        var plan = WorkspaceNetworkPolicyResources.Desired(policy, Bounds());
        Assert.Empty(plan.Policies);
        Assert.Equal(problems.Count + 2, plan.Dropped.Count); // plus "not rendered" for the two rules that had peers
    }

    [Fact]
    public void AnUnparsableCidr_IsNamedAsSuch()
    {
        var policy = Policy(s => s.Egress = [new EgressRule { To = [new Peer { Cidr = "198.51.100.0/33" }] }]);
        Assert.Equal(["spec.egress[0].to[0].cidr: \"198.51.100.0/33\" is not a CIDR (e.g. 203.0.113.0/24)"], WorkspaceNetworkPolicyResources.OutOfBounds(policy.Spec, Bounds()));
    }

    [Theory]
    [InlineData("10.0.0.5/24", "10.0.0.0/24", true)]
    [InlineData("10.1.2.0/24", "10.0.0.0/8", true)]
    [InlineData("10.0.0.0/8", "10.0.0.0/8", true)]
    [InlineData("10.0.0.0/7", "10.0.0.0/8", false)]
    [InlineData("11.0.0.0/24", "10.0.0.0/8", false)]
    [InlineData("2001:db8::/64", "2001:db8::/32", true)]
    [InlineData("2001:db8::/64", "10.0.0.0/8", false)]
    [InlineData("not-a-cidr", "0.0.0.0/0", false)]
    public void CidrWithin_NeedsTheSameFamily_AndAPrefixAtLeastAsLong(string cidr, string allowed, bool within) =>
        Assert.Equal(within, WorkspaceNetworkPolicyResources.CidrWithin(cidr, [allowed]));

    [Fact]
    public void TheRenderedSpec_IsStable_SoAnUnchangedPolicyComparesEqual()
    {
        var a = KubernetesJson.Serialize(WorkspaceNetworkPolicyResources.Desired(Full(), Bounds()).Policies);
        var b = KubernetesJson.Serialize(WorkspaceNetworkPolicyResources.Desired(Full(), Bounds()).Policies);
        Assert.Equal(a, b);
        Assert.Null(WorkspaceNetworkPolicyResources.NameProblem(new string('a', WorkspaceNetworkPolicyResources.MaxNameLength)));
        Assert.Contains("metadata.name", WorkspaceNetworkPolicyResources.NameProblem(new string('a', WorkspaceNetworkPolicyResources.MaxNameLength + 1)));
    }
}
