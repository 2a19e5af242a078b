using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "WorkspaceNetworkPolicy", PluralName = "workspacenetworkpolicies")]
[EntityScope(EntityScope.Namespaced), ShortName("wnp")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Degraded", ".status.conditions[?(@.type==\"Degraded\")].status")]
[PrinterColumn("Policies", ".status.renderedPolicies")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class WorkspaceNetworkPolicy : CustomResource<WorkspaceNetworkPolicySpec, WorkspaceNetworkPolicyStatus>
{
    public WorkspaceNetworkPolicy() => Kind = "WorkspaceNetworkPolicy";
}

public sealed class WorkspaceNetworkPolicySpec
{
    [Description("Pods the policy applies to; empty selects every pod of the workspace.")]
    public LabelSelector? PodSelector { get; set; }

    public List<IngressRule>? Ingress { get; set; }

    public List<EgressRule>? Egress { get; set; }
}

public sealed class IngressRule
{
    public List<Peer>? From { get; set; }

    public List<NetworkPort>? Ports { get; set; }
}

public sealed class EgressRule
{
    public List<Peer>? To { get; set; }

    public List<NetworkPort>? Ports { get; set; }
}

public sealed class Peer
{
    [Pattern(Patterns.DnsLabel)]
    public string? Workspace { get; set; }

    [Pattern(Patterns.Cidr)]
    public string? Cidr { get; set; }

    public LabelSelector? PodSelector { get; set; }
}

public sealed class NetworkPort
{
    [Enum("TCP", "UDP", "SCTP"), Default("TCP")]
    public string Protocol { get; set; } = "TCP";

    [Required, Range(1, 65535)]
    public int Port { get; set; }
}

public sealed class WorkspaceNetworkPolicyStatus : StatusBase
{
    [Description("The networking.k8s.io NetworkPolicies this policy owns.")]
    public List<string>? RenderedPolicies { get; set; }
}
