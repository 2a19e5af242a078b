using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "DeploymentIntent", PluralName = "deploymentintents")]
[EntityScope(EntityScope.Namespaced), ShortName("di")]
[PrinterColumn("Application", ".spec.application")]
[PrinterColumn("Version", ".spec.version")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Decision", ".status.decision")]
[PrinterColumn("Risk", ".status.riskScore", "number")]
[PrinterColumn("Ring", ".status.currentRing")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class DeploymentIntent : CustomResource<DeploymentIntentSpec, DeploymentIntentStatus>
{
    public DeploymentIntent() => Kind = "DeploymentIntent";
}

public sealed class DeploymentIntentSpec
{
    [Required, Length(1, 63), Pattern(Patterns.DnsLabel)]
    [Description("The application changed. On the kubernetes plane it is also the name of the Deployment (and of its container, unless spec.artifact.container says otherwise) in every ring workspace. One active change per application and ring.")]
    public string Application { get; set; } = "";

    [Required, Length(1, 128), Description("The version being deployed (what drift checks compare the plane's actual version with).")]
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

    [Description("The five risk factors in [0,1] scored by the risk model; a factor left out counts at its worst (1, or 0 for testEvidence).")]
    public RiskFactors? Risk { get; set; }

    [Default(false), Description("true: the change uses privileged tooling, so it needs CAB approval whatever its risk score.")]
    public bool PrivilegedTooling { get; set; }

    [Description("The evidence pack CAB reviews: a ConfigMap in this namespace (the value of one key) or a URL under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes, with the SHA-256 it must have. Required before any ring past the first when approval is required.")]
    public EvidencePackRef? EvidencePackRef { get; set; }

    [Pattern(Patterns.Duration), Default("1h"), Description("How often the plane's actual state is compared with this intent once a ring has completed.")]
    public string DriftCheckInterval { get; set; } = "1h";

    [Enum("report", "auto"), Default("report"), Description("report: drift is recorded (status.drift, an Event, the event store); auto: the ring is also redeployed through the plane.")]
    public string DriftRemediation { get; set; } = "report";
}

public sealed class EvidencePackRef
{
    [Pattern(Patterns.DnsLabel), Length(1, 253), Description("A ConfigMap in the intent's namespace holding the evidence pack.")]
    public string? ConfigMap { get; set; }

    [Length(1, 253), Default("evidence"), Description("The ConfigMap key whose value is the pack (its UTF-8 bytes are hashed).")]
    public string Key { get; set; } = "evidence";

    [Pattern("^https://.+$"), Length(1, 2048), Description("Or a URL the pack is fetched from (the response body is hashed); only under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes.")]
    public string? Url { get; set; }

    [Required, Pattern(Patterns.Sha256), Description("SHA-256 (hex) the pack must have: what `sha256sum` prints for it.")]
    public string Sha256 { get; set; } = "";
}

public sealed class Vulnerability
{
    [Required, Length(1, 128)]
    public string Id { get; set; } = "";

    [Required, Enum("Low", "Medium", "High", "Critical")]
    public string Severity { get; set; } = "Low";
}

public sealed class Artifact
{
    [Required, Length(1)]
    public string Image { get; set; } = "";

    [Pattern(Patterns.Sha256), Description("The artifact's SHA-256 digest (hex); an intent without one is denied.")]
    public string? Sha256 { get; set; }

    [Pattern(Patterns.DnsLabel), Length(1, 63), Description("kubernetes plane: the container whose image changes (default: spec.application).")]
    public string? Container { get; set; }

    [Items(0, 1000), Description("Vulnerabilities declared for the artifact; a High or Critical one denies the intent (exceptions are not supported yet).")]
    public List<Vulnerability>? Vulnerabilities { get; set; }
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

    [Range(0, 100), Description("The risk score, 0-100, one decimal.")]
    public double? RiskScore { get; set; }

    public string? RiskModelVersion { get; set; }

    public List<RiskFactorContribution>? RiskFactors { get; set; }

    [Description("The idempotency key sent to the execution plane.")]
    public string? CorrelationId { get; set; }

    [Description("kubernetes plane: the Rollout driving the current ring.")]
    public string? RolloutRef { get; set; }

    public DriftStatus? Drift { get; set; }

    [Description("The ring in progress or waiting to start.")]
    public string? CurrentRing { get; set; }

    public List<IntentRingStatus>? Rings { get; set; }

    [DateTimeFormat, Description("When CAB approval was given (the CAB approval time is this minus creation).")]
    public DateTime? ApprovedAt { get; set; }

    [DateTimeFormat, Description("When drift was last checked.")]
    public DateTime? LastDriftCheck { get; set; }
}

public sealed class IntentRingStatus
{
    [Required]
    public string Name { get; set; } = "";

    [Enum("Pending", "InProgress", "Completed", "Failed", "RolledBack")]
    public string? Phase { get; set; }

    public List<string>? Workspaces { get; set; }

    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    public double? SuccessRate { get; set; }

    public int? Incidents { get; set; }

    public string? Message { get; set; }
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
