using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "Exposure", PluralName = "exposures")]
[EntityScope(EntityScope.Namespaced), ShortName("exp")]
[PrinterColumn("Type", ".spec.type")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Live", ".status.publishedGeneration", "integer")]
[PrinterColumn("Endpoint", ".status.endpoint")]
[PrinterColumn("Version", ".spec.version", Priority = 1)]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Exposure : CustomResource<ExposureSpec, ExposureStatus>
{
    public Exposure() => Kind = "Exposure";
}

public sealed class ExposureSpec
{
    [Required, Enum("REST", "GraphQL", "Realtime")]
    public string Type { get; set; } = "REST";

    [Required, Pattern("^v[0-9]+([a-z0-9.-]*)$")]
    public string Version { get; set; } = "v1";

    [Required]
    public ExposureBackend Backend { get; set; } = new();

    [Pattern(@"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    public string? Host { get; set; }

    [Pattern("^/.*$"), Default("/")]
    public string Path { get; set; } = "/";

    public RatePlan? RatePlan { get; set; }

    [Default(false)]
    [Description("false keeps the exposure a draft.")]
    public bool Publish { get; set; }
}

public sealed class ExposureBackend
{
    [Required, Pattern(Patterns.DnsLabel)]
    public string Service { get; set; } = "";

    [Required, Range(1, 65535)]
    public int Port { get; set; }
}

public sealed class RatePlan
{
    [Range(1, 1000000000)]
    public int? RequestsPerMinute { get; set; }

    [Range(0, 1000000000)]
    public int? Burst { get; set; }

    [Range(0, 1e15)]
    public long? MonthlyQuota { get; set; }
}

public sealed class ExposureStatus : StatusBase
{
    [Enum("Draft", "PendingApproval", "Published", "Rejected")]
    public string? Phase { get; set; }

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
    [Required]
    public string Approver { get; set; } = "";

    [DateTimeFormat]
    public DateTime? At { get; set; }
}
