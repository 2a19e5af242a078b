using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "Tenant", PluralName = "tenants")]
[EntityScope(EntityScope.Cluster), ShortName("tnt")]
[PrinterColumn("Region", ".spec.region")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Workspaces", ".status.workspaces", "integer")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Tenant : CustomResource<TenantSpec, TenantStatus>
{
    public Tenant() => Kind = "Tenant";
}

public sealed class TenantSpec
{
    [Description("Human-readable name of the tenant.")]
    public string? DisplayName { get; set; }

    [Required, Pattern(Patterns.DnsLabel), Length(1, 63)]
    [Description("Region the tenant's data lives in; one of the regions the operator is configured with. Immutable.")]
    public string Region { get; set; } = "";

    [Enum("metadataOnly", "full"), Default("metadataOnly")]
    [Description("metadataOnly keeps identifiers, hashes and counts but no free text in the operator's records.")]
    public string DataMode { get; set; } = "metadataOnly";

    [Description("Owners are WorkspaceAdmin in every workspace of the tenant.")]
    public List<Subject>? Owners { get; set; }

    public TenantQuota? Quota { get; set; }

    [Description("Boundaries that deployment intents of this tenant may target.")]
    public List<TenantScope>? Scopes { get; set; }

    public TenantNetwork? Network { get; set; }

    [Default(false)]
    [Description("true: no new workspaces, rollouts or publications (cordon).")]
    public bool Suspended { get; set; }
}

public sealed class TenantQuota
{
    [Range(0, 100000)]
    public int? MaxWorkspaces { get; set; }

    public ResourceQuantity? Cpu { get; set; }

    public ResourceQuantity? Memory { get; set; }

    public ResourceQuantity? Storage { get; set; }
}

public sealed class TenantScope
{
    [Required, Length(1)]
    public string AcquisitionBoundary { get; set; } = "";

    [ListSet]
    public List<string>? BusinessUnits { get; set; }

    [ListSet]
    public List<string>? SiteClasses { get; set; }
}

public sealed class TenantNetwork
{
    [ListSet]
    public List<string>? AllowedIngressCIDRs { get; set; }

    [ListSet]
    public List<string>? ApprovedEgressCIDRs { get; set; }
}

public sealed class TenantStatus : StatusBase
{
    [Enum("Pending", "Ready", "Suspended", "Failed", "Terminating")]
    public string? Phase { get; set; }

    public int? Workspaces { get; set; }

    public TenantUsage? Usage { get; set; }

    [Description("UUID of the tenant row in the system of record.")]
    public string? RecordId { get; set; }
}

public sealed class TenantUsage
{
    public ResourceQuantity? Cpu { get; set; }

    public ResourceQuantity? Memory { get; set; }

    public ResourceQuantity? Storage { get; set; }
}
