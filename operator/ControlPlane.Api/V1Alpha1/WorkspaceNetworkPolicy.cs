using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>Network rules for a workspace, bounded by its tenant's allowlists; rendered as NetworkPolicies.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "workspacenetworkpolicies")]
[EntityScope(EntityScope.Namespaced), ShortName("wnp")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Policies", ".status.policyCount", "integer")]
[PrinterColumn("Degraded", ".status.conditions[?(@.type==\"Degraded\")].status", Priority = 1)]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class WorkspaceNetworkPolicy : CustomResource<WorkspaceNetworkPolicySpec, WorkspaceNetworkPolicyStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "WorkspaceNetworkPolicy";

    public WorkspaceNetworkPolicy() => Kind = KubeKind;
}

/// <summary>The traffic allowed beyond the workspace's default deny.</summary>
public sealed class WorkspaceNetworkPolicySpec
{
    [Description("Pods the policy applies to; empty selects every pod of the workspace.")]
    public LabelSelector? PodSelector { get; set; }

    /// <summary>Traffic allowed in to the selected pods; each rule allows from any of its peers on any of its ports. Absent: nothing extra allowed in.</summary>
    public List<IngressRule>? Ingress { get; set; }

    /// <summary>Traffic allowed out of the selected pods; each rule allows to any of its peers on any of its ports. Absent: nothing extra allowed out.</summary>
    public List<EgressRule>? Egress { get; set; }
}

public sealed class IngressRule
{
    /// <summary>Where traffic may come from; at least one peer (a rule without peers is refused).</summary>
    public List<Peer>? From { get; set; }

    /// <summary>The ports traffic may reach; absent: all ports.</summary>
    public List<NetworkPort>? Ports { get; set; }
}

public sealed class EgressRule
{
    /// <summary>Where traffic may go; at least one peer (a rule without peers is refused).</summary>
    public List<Peer>? To { get; set; }

    /// <summary>The ports traffic may go to; absent: all ports.</summary>
    public List<NetworkPort>? Ports { get; set; }
}

public sealed class Peer
{
    /// <summary>Another workspace of the same tenant, by name (its namespace); never another tenant's.</summary>
    [Pattern(Patterns.DnsLabel)]
    public string? Workspace { get; set; }

    /// <summary>An IP range; must lie inside the tenant's spec.network allowlists (allowedIngressCIDRs for ingress, approvedEgressCIDRs for egress).</summary>
    [Pattern(Patterns.Cidr)]
    public string? Cidr { get; set; }

    /// <summary>Pods of this workspace (or of peer workspace, when set) whose labels match.</summary>
    public LabelSelector? PodSelector { get; set; }
}

public sealed class NetworkPort
{
    /// <summary>The transport protocol.</summary>
    [Enum("TCP", "UDP", "SCTP"), Default("TCP")]
    public string Protocol { get; set; } = "TCP";

    /// <summary>The port number.</summary>
    [Required, Range(1, 65535)]
    public int Port { get; set; }
}

/// <summary>The observed state of a WorkspaceNetworkPolicy, written by the operator.</summary>
public sealed class WorkspaceNetworkPolicyStatus : StatusBase
{
    [Description("The networking.k8s.io NetworkPolicies this policy owns.")]
    public List<string>? RenderedPolicies { get; set; }

    /// <summary>How many NetworkPolicies this policy owns (the length of renderedPolicies; what `kubectl get` shows).</summary>
    public int? PolicyCount { get; set; }
}
