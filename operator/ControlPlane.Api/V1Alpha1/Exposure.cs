using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>An API of the workspace published through the edge, live only once approved.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "exposures")]
[EntityScope(EntityScope.Namespaced)]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Endpoint", ".status.endpoint")]
[PrinterColumn("Type", ".spec.type")]
[PrinterColumn("Live", ".status.publishedGeneration", "integer")]
[PrinterColumn("Version", ".spec.version", Priority = 1)]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Exposure : CustomResource<ExposureSpec, ExposureStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Exposure";

    public Exposure() => Kind = KubeKind;
}

/// <summary>The API to publish and how.</summary>
public sealed class ExposureSpec
{
    /// <summary>The API style published: REST, GraphQL or Realtime (WebSocket).</summary>
    [Required, Enum("REST", "GraphQL", "Realtime")]
    public string Type { get; set; } = "REST";

    /// <summary>The API version published, such as v1 or v2beta.</summary>
    [Required, Pattern("^v[0-9]+([a-z0-9.-]*)$")]
    public string Version { get; set; } = "v1";

    /// <summary>The Service in this workspace the published API routes to.</summary>
    [Required]
    public ExposureBackend Backend { get; set; } = new();

    /// <summary>The host name served; absent: the region's default host for the workspace.</summary>
    [Pattern(@"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    public string? Host { get; set; }

    /// <summary>The path prefix served.</summary>
    [Pattern("^/.*$"), Default("/")]
    public string Path { get; set; } = "/";

    /// <summary>Rate limits applied at the edge.</summary>
    public RatePlan? RatePlan { get; set; }

    [Default(false)]
    [Description("false keeps the exposure a draft.")]
    public bool Publish { get; set; }
}

public sealed class ExposureBackend
{
    /// <summary>The Service's name, in the Exposure's namespace; it must exist and expose port.</summary>
    [Required, Pattern(Patterns.DnsLabel)]
    public string Service { get; set; } = "";

    /// <summary>The Service port traffic is sent to.</summary>
    [Required, Range(1, 65535)]
    public int Port { get; set; }
}

public sealed class RatePlan
{
    /// <summary>Sustained requests per minute per client.</summary>
    [Range(1, 1000000000)]
    public int? RequestsPerMinute { get; set; }

    /// <summary>Requests allowed above the sustained rate in a burst.</summary>
    [Range(0, 1000000000)]
    public int? Burst { get; set; }

    /// <summary>Requests per calendar month per client; absent: unlimited.</summary>
    [Range(0, 1e15)]
    public long? MonthlyQuota { get; set; }
}

/// <summary>The observed state of an Exposure: what is live, and the approvals that count.</summary>
public sealed class ExposureStatus : StatusBase
{
    /// <summary>Draft while spec.publish is false; PendingApproval until the current generation is approved; Published; Rejected when an approver rejected it.</summary>
    [JsonConverter(typeof(PhaseConverter<ExposurePhase>))]
    public ExposurePhase? Phase { get; set; }

    [Description("The approvals that count for the current generation (approver and when).")]
    public List<ApprovalRecord>? Approvals { get; set; }

    [Description("The generation whose configuration is live. An edit stays unpublished until it is approved.")]
    public long? PublishedGeneration { get; set; }

    [Description("The URL the published generation is served at.")]
    public string? Endpoint { get; set; }

    [Description("The spec of publishedGeneration, as approved: what the Ingress serves until a newer generation is approved. Written only by the operator, and checked against the system of record before it is rendered again.")]
    public ExposureSpec? PublishedSpec { get; set; }
}

public sealed class ApprovalRecord
{
    /// <summary>Who approved, as the admission webhook stamped it.</summary>
    [Required]
    public string Approver { get; set; } = "";

    /// <summary>When the approval was given.</summary>
    [DateTimeFormat]
    public DateTime? At { get; set; }
}
