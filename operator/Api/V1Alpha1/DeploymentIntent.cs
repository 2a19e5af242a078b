using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "DeploymentIntent", PluralName = "deploymentintents")]
[EntityScope(EntityScope.Namespaced), ShortName("di")]
[PrinterColumn("Application", ".spec.application")]
[PrinterColumn("Version", ".spec.version")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Decision", ".status.decision")]
[PrinterColumn("Risk", ".status.riskScore", "integer")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class DeploymentIntent : CustomResource<DeploymentIntentSpec, DeploymentIntentStatus>
{
    public DeploymentIntent() => Kind = "DeploymentIntent";
}

public sealed class DeploymentIntentSpec
{
    [Required, Length(1, 253)]
    public string Application { get; set; } = "";

    [Required, Length(1, 128)]
    public string Version { get; set; } = "";

    [Required]
    public Artifact Artifact { get; set; } = new();

    [Required]
    public TargetScope TargetScope { get; set; } = new();

    public ExecutionPlane? ExecutionPlane { get; set; }

    [Description("Per ring: when its window starts and how long it lasts.")]
    public Dictionary<string, RingSchedule>? Schedule { get; set; }

    public PromotionGates? PromotionGates { get; set; }

    public RollbackPlan? RollbackPlan { get; set; }

    public RiskFactors? Risk { get; set; }

    public LocalObjectReference? EvidencePackRef { get; set; }
}

public sealed class Artifact
{
    [Required, Length(1)]
    public string Image { get; set; } = "";

    [Pattern(Patterns.Sha256)]
    public string? Sha256 { get; set; }
}

public sealed class TargetScope
{
    [Required, Length(1)]
    public string AcquisitionBoundary { get; set; } = "";

    public string? BusinessUnit { get; set; }

    public string? SiteClass { get; set; }

    [ListSet]
    public List<string>? Rings { get; set; }
}

public sealed class ExecutionPlane
{
    [Enum("kubernetes", "http"), Default("kubernetes")]
    public string Type { get; set; } = "kubernetes";

    [Pattern("^https?://.+$")]
    public string? Url { get; set; }

    public LocalObjectReference? CredentialsSecret { get; set; }
}

public sealed class RingSchedule
{
    [Required, DateTimeFormat]
    public DateTime? Start { get; set; }

    [Range(0, 8760)]
    public int? DurationHours { get; set; }
}

public sealed class PromotionGates
{
    [Range(0, 1)]
    public double? SuccessRateThreshold { get; set; }

    [Range(0, 8760)]
    public int? TimeToComplianceHours { get; set; }

    [Range(0, 1000000)]
    public int? MaxIncidents { get; set; }
}

public sealed class RollbackPlan
{
    [Enum("previous-version", "specific-version", "none"), Default("previous-version")]
    public string Strategy { get; set; } = "previous-version";

    public string? RollbackVersion { get; set; }

    [Default(false)]
    public bool Validated { get; set; }
}

public sealed class RiskFactors
{
    [Range(0, 1)]
    public double? PrivilegeImpact { get; set; }

    [Range(0, 1)]
    public double? SupplyChainTrust { get; set; }

    [Range(0, 1)]
    public double? BlastRadius { get; set; }

    [Range(0, 1)]
    public double? ChangeComplexity { get; set; }

    [Range(0, 1)]
    public double? TestEvidence { get; set; }
}

public sealed class DeploymentIntentStatus : StatusBase
{
    [Enum("Pending", "RiskAssessed", "ScopeValidated", "AwaitingApproval", "InProgress", "Completed", "Failed", "RolledBack", "Denied")]
    public string? Phase { get; set; }

    [Enum("Allow", "Deny", "RequireApproval", "RequireException")]
    public string? Decision { get; set; }

    [Range(0, 100)]
    public int? RiskScore { get; set; }

    public string? RiskModelVersion { get; set; }

    public List<RiskFactorContribution>? RiskFactors { get; set; }

    [Description("The idempotency key sent to the execution plane.")]
    public string? CorrelationId { get; set; }

    public string? RolloutRef { get; set; }

    public DriftStatus? Drift { get; set; }
}

public sealed class RiskFactorContribution
{
    [Required]
    public string Name { get; set; } = "";

    public double? NormalizedValue { get; set; }

    public double? Weight { get; set; }

    public double? Contribution { get; set; }
}

public sealed class DriftStatus
{
    [DateTimeFormat]
    public DateTime? DetectedAt { get; set; }

    public string? Type { get; set; }

    public string? Desired { get; set; }

    public string? Actual { get; set; }
}
