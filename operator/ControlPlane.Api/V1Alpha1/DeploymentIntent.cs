using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>A governed change: one application version rolled out ring by ring through an execution plane, after risk scoring, scope checks and, when required, CAB approval.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "deploymentintents")]
[EntityScope(EntityScope.Namespaced), ShortName("di")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Application", ".spec.application")]
[PrinterColumn("Version", ".spec.version")]
[PrinterColumn("Decision", ".status.decision")]
[PrinterColumn("Risk", ".status.riskScore", "number")]
[PrinterColumn("Ring", ".status.currentRing")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class DeploymentIntent : CustomResource<DeploymentIntentSpec, DeploymentIntentStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "DeploymentIntent";

    public DeploymentIntent() => Kind = KubeKind;
}

public sealed class DeploymentIntentSpec
{
    [Required, Length(1, 63), Pattern(Patterns.DnsLabel)]
    [Description("The Application (in this namespace) changed: the target must lie within its approved scope; an intent waits while it is missing or not yet approved. On the kubernetes plane it is also the name of the Deployment (and of its container, unless spec.artifact.container says otherwise) in every ring workspace. One active change per application and ring.")]
    public string Application { get; set; } = "";

    [Required, Length(1, 128), Description("The version being deployed (what drift checks compare the plane's actual version with).")]
    public string Version { get; set; } = "";

    /// <summary>The build being deployed: image, digest and declared vulnerabilities (checked before any ring starts).</summary>
    [Required]
    public Artifact Artifact { get; set; } = new();

    /// <summary>Where the change may go: an acquisition boundary of the namespace's tenant, optionally narrowed, and the rings in order.</summary>
    [Required]
    public TargetScope TargetScope { get; set; } = new();

    /// <summary>The plane that carries the change out; absent means the kubernetes plane (a Rollout per ring).</summary>
    public ExecutionPlane? ExecutionPlane { get; set; }

    [Description("Per ring: when its window starts and how long it lasts.")]
    public Dictionary<string, RingSchedule>? Schedule { get; set; }

    /// <summary>What a ring must meet before the next one starts.</summary>
    public PromotionGates? PromotionGates { get; set; }

    /// <summary>What is done to every ring already touched when a ring fails.</summary>
    public RollbackPlan? RollbackPlan { get; set; }

    [Description("The five risk factors in [0,1] scored by the risk model; a factor left out counts at its worst (1, or 0 for testEvidence).")]
    public RiskFactors? Risk { get; set; }

    [Default(false), Description("true: the change uses privileged tooling, so it needs CAB approval whatever its risk score.")]
    public bool PrivilegedTooling { get; set; }

    [Description("The evidence pack: a ConfigMap in this namespace (the value of one key) or a URL under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes, with the SHA-256 it must have. Required for every new intent: before the first ring starts the operator checks its SHA-256 (a mismatch denies the intent) and copies it, write-once, into the region's evidence storage under evidence/<tenant>/<sha256>.")]
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
    /// <summary>The vulnerability's identifier, such as a CVE id.</summary>
    [Required, Length(1, 128)]
    public string Id { get; set; } = "";

    /// <summary>Its severity; High or Critical denies the intent.</summary>
    [Required, Enum("Low", "Medium", "High", "Critical")]
    public string Severity { get; set; } = "Low";
}

public sealed class Artifact
{
    /// <summary>The container image reference deployed (on the kubernetes plane, set on the container of every ring workspace's Deployment).</summary>
    [Required, Length(1)]
    public string Image { get; set; } = "";

    [Pattern(Patterns.Sha256), Description("The artifact's SHA-256 digest (hex); an intent without one is denied.")]
    public string? Sha256 { get; set; }

    [Pattern(Patterns.DnsLabel), Length(1, 63), Description("kubernetes plane: the container whose image changes (default: spec.application).")]
    public string? Container { get; set; }

    [Items(0, 1000), Description("Vulnerabilities the author adds to what the scan report says (never hides any: a finding keeps the highest severity any source gives it); a High or Critical one makes the decision RequireException: no ring starts until an approved, unexpired Exception covers it.")]
    public List<Vulnerability>? Vulnerabilities { get; set; }

    [Description("The scanner's report on this artifact (Trivy JSON or CycloneDX JSON with vulnerabilities), SHA-256 pinned: the operator reads it once per generation, checks it is about this artifact, and its vulnerabilities become findings. Required for new intents unless the platform sets ControlPlane:DeploymentIntent:RequireScanReport to false.")]
    public ScanReportRef? ScanReport { get; set; }

    [Length(1, 2048), Pattern("^[A-Za-z0-9+/]+={0,2}$"), Description("Base64 signature over the artifact's SHA-256 digest (spec.artifact.sha256; what `openssl dgst -sha256 -sign key.pem <artifact>` writes: ECDSA P-256 or RSA PKCS#1 v1.5/PSS), verified against the platform's keys (ControlPlane:DeploymentIntent:TrustedSigningKeys, never a key the tenant supplies). With keys configured, a missing or non-verifying signature is an UnsignedPackage finding.")]
    public string? Signature { get; set; }
}

public sealed class ScanReportRef
{
    [Pattern(Patterns.DnsLabel), Length(1, 253), Description("A ConfigMap in the intent's namespace holding the report.")]
    public string? ConfigMap { get; set; }

    [Length(1, 253), Default("report"), Description("The ConfigMap key whose value is the report (its UTF-8 bytes are hashed and parsed).")]
    public string Key { get; set; } = "report";

    [Pattern("^https://.+$"), Length(1, 2048), Description("Or a URL the report is fetched from (the response body is hashed and parsed); only under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes.")]
    public string? Url { get; set; }

    [Required, Pattern(Patterns.Sha256), Description("SHA-256 (hex) the report must have: what `sha256sum` prints for it; a mismatch denies the intent.")]
    public string Sha256 { get; set; } = "";

    [Required, Enum("trivy", "cyclonedx"), Description("trivy: `trivy image --format json` (Results[].Vulnerabilities[]); cyclonedx: CycloneDX 1.4+ JSON with vulnerabilities[] (`trivy image --format cyclonedx --scanners vuln`, grype, ...).")]
    public string Format { get; set; } = "trivy";
}

public sealed class TargetScope
{
    /// <summary>One of the tenant's spec.scopes; only workspaces labelled controlplane.io/acquisition-boundary with this value are targeted.</summary>
    [Required, Length(1)]
    public string AcquisitionBoundary { get; set; } = "";

    /// <summary>Narrows the target to workspaces labelled controlplane.io/business-unit with this value; must be one of the boundary's business units. Required for a new intent.</summary>
    public string? BusinessUnit { get; set; }

    /// <summary>Narrows the target to workspaces labelled controlplane.io/site-class with this value; must be one of the boundary's site classes. Required for a new intent.</summary>
    public string? SiteClass { get; set; }

    /// <summary>The rings, in the order they are deployed; a ring's workspaces are those in scope labelled controlplane.io/ring with its name.</summary>
    [ListSet]
    public List<string>? Rings { get; set; }
}

public sealed class ExecutionPlane
{
    /// <summary>kubernetes: the operator drives a Rollout per ring in this cluster; http: an external plane is called at spec.executionPlane.url.</summary>
    [Enum("kubernetes", "http"), Default("kubernetes")]
    public string Type { get; set; } = "kubernetes";

    /// <summary>http plane: its base URL; required for http and must be under the operator's ControlPlane:DeploymentIntent:PlaneUrlPrefixes.</summary>
    [Pattern("^https?://.+$")]
    public string? Url { get; set; }

    /// <summary>http plane: a Secret in this namespace whose key token is the bearer token the operator calls the plane with; required for http.</summary>
    public LocalObjectReference? CredentialsSecret { get; set; }
}

public sealed class RingSchedule
{
    /// <summary>When the ring's window opens (RFC 3339, UTC); the ring does not start before it.</summary>
    [Required, DateTimeFormat]
    public DateTime? Start { get; set; }

    /// <summary>The least time the ring runs before it counts as completed (a soak), in hours; absent: 0.</summary>
    [Range(0, 8760)]
    public int? DurationHours { get; set; }
}

public sealed class PromotionGates
{
    /// <summary>The success rate (0-1) a ring must keep once the plane reports it succeeded (and through its soak); under it the ring fails and is rolled back. Applies where the plane reports a rate (the http plane's successRate); the kubernetes plane's rings are gated by Deployment health and incidents.</summary>
    [Range(0, 1)]
    public double? SuccessRateThreshold { get; set; }

    /// <summary>How long a ring may take to complete, in hours; on the kubernetes plane, the Rollout's progress deadline (absent or 0: 30 minutes).</summary>
    [Range(0, 8760)]
    public int? TimeToComplianceHours { get; set; }

    /// <summary>Incidents a ring may have before it fails and is rolled back (absent: 0); counted by the plane (the kubernetes plane: container restarts and pods not ready after the deadline).</summary>
    [Range(0, 1000000)]
    public int? MaxIncidents { get; set; }
}

public sealed class RollbackPlan
{
    /// <summary>How failed rings are rolled back: a strategy the execution plane advertises (its capabilities), checked at assessment. Every plane knows previous-version (back to what ran before), specific-version (to spec.rollbackPlan.rollbackVersion) and none (nothing is rolled back, the intent just fails); an http plane may advertise its own (e.g. intune-supersedence).</summary>
    [Length(1, 63), Pattern(Patterns.DnsLabel), Default("previous-version")]
    public string Strategy { get; set; } = "previous-version";

    /// <summary>specific-version: the version rolled back to; a plane-specific strategy receives it too.</summary>
    public string? RollbackVersion { get; set; }

    /// <summary>Whether the rollback was rehearsed. false blocks CAB approval of a risky intent (decision RequireApproval): approvals do not count, and the webhook refuses an approve.</summary>
    [Default(false)]
    public bool Validated { get; set; }
}

public sealed class RiskFactors
{
    /// <summary>How much privilege the change touches, 0 (none) to 1 (most); adds value x weight to the risk score.</summary>
    [Range(0, 1)]
    public double? PrivilegeImpact { get; set; }

    /// <summary>Supply-chain risk of the artifact, 0 (fully trusted source) to 1 (untrusted); adds value x weight.</summary>
    [Range(0, 1)]
    public double? SupplyChainTrust { get; set; }

    /// <summary>Share of the estate the change can reach, 0 to 1; adds value x weight.</summary>
    [Range(0, 1)]
    public double? BlastRadius { get; set; }

    /// <summary>How complex the change is, 0 to 1; adds value x weight.</summary>
    [Range(0, 1)]
    public double? ChangeComplexity { get; set; }

    /// <summary>How well the change is tested, 0 (no evidence) to 1 (full); mitigating: adds (1 - value) x weight.</summary>
    [Range(0, 1)]
    public double? TestEvidence { get; set; }
}

public sealed class DeploymentIntentStatus : StatusBase
{
    /// <summary>Where the intent is in the governed state machine (Pending -&gt; RiskAssessed -&gt; ScopeValidated -&gt; AwaitingApproval -&gt; InProgress -&gt; Completed, or Failed, RolledBack, Denied).</summary>
    [JsonConverter(typeof(PhaseConverter<IntentPhase>))]
    public IntentPhase? Phase { get; set; }

    /// <summary>The policy decision from risk score, findings, scope and privileged tooling: Allow, Deny, RequireApproval (CAB) or RequireException (serious findings wait for approved Exceptions; CAB too when status.cabRequired).</summary>
    [Enum("Allow", "Deny", "RequireApproval", "RequireException")]
    public string? Decision { get; set; }

    [Range(0, 100), Description("The risk score, 0-100, one decimal.")]
    public double? RiskScore { get; set; }

    /// <summary>The version of the risk model (weights) the score was computed with.</summary>
    public string? RiskModelVersion { get; set; }

    /// <summary>Each factor's value, weight and contribution to status.riskScore.</summary>
    public List<RiskFactorContribution>? RiskFactors { get; set; }

    [Description("The idempotency key sent to the execution plane.")]
    public string? CorrelationId { get; set; }

    [Description("kubernetes plane: the Rollout driving the current ring.")]
    public string? RolloutRef { get; set; }

    /// <summary>The drift found by the last check, if any; cleared when the plane matches the intent again.</summary>
    public DriftStatus? Drift { get; set; }

    [Description("The ring in progress or waiting to start.")]
    public string? CurrentRing { get; set; }

    /// <summary>Per ring, in deployment order: its phase, workspaces, timings and health.</summary>
    public List<IntentRingStatus>? Rings { get; set; }

    [Description("The scope version of spec.application in effect when the intent last started a ring (its status.scopeVersion): what the target was checked against.")]
    public int? ApplicationScopeVersion { get; set; }

    [Description("RequireException only: true when the risk score or privileged tooling also asks for CAB approval (as RequireApproval would).")]
    public bool? CabRequired { get; set; }

    [Description("The Exceptions (of this namespace, for this artifact digest) covering the intent's serious findings now, and which findings each covers.")]
    public List<IntentException>? Exceptions { get; set; }

    [DateTimeFormat, Description("When CAB approval was given (the CAB approval time is this minus creation).")]
    public DateTime? ApprovedAt { get; set; }

    [DateTimeFormat, Description("When drift was last checked.")]
    public DateTime? LastDriftCheck { get; set; }

    [Description("While CAB approval is awaited (phase AwaitingApproval): the Approvers whose approval counts, routed by the tenant's spec.cabRoutes (users by name, groups as group:<name>); only these count when routes are declared.")]
    public List<string>? AssignedApprovers { get; set; }

    [Description("Everything found wrong with the artifact, from every source (the scan report, the author's list, the signature check), one per type and id at the highest severity any source gave; what the decision read.")]
    public List<IntentFinding>? Findings { get; set; }

    [Description("The metadata.generation status.findings were read for: the scan report is fetched once per generation, not on every resync.")]
    public long? FindingsGeneration { get; set; }

    /// <summary>The evidence pack as stored: its content-addressed key and SHA-256, set once it is copied (before the first ring starts).</summary>
    public StoredEvidence? Evidence { get; set; }
}

public sealed class IntentFinding
{
    /// <summary>Vulnerability, UnsignedPackage or ScopeViolation.</summary>
    [Required, Enum("Vulnerability", "UnsignedPackage", "ScopeViolation")]
    public string Type { get; set; } = "Vulnerability";

    /// <summary>The vulnerability's id (a CVE id), or unsigned for an artifact whose signature is missing or does not verify.</summary>
    [Required]
    public string Id { get; set; } = "";

    /// <summary>Low, Medium, High or Critical (a severity the scanner did not give counts as Critical).</summary>
    [Required]
    public string Severity { get; set; } = "";

    /// <summary>Who reported it: spec (the author), scan:trivy or scan:cyclonedx (the scan report), signature (the operator's check).</summary>
    [Required]
    public string Source { get; set; } = "";
}

public sealed class StoredEvidence
{
    /// <summary>The object key in the region's evidence storage: &lt;prefix&gt;evidence/&lt;tenant&gt;/&lt;sha256&gt;, written once and never overwritten.</summary>
    [Required]
    public string Key { get; set; } = "";

    /// <summary>The SHA-256 (hex) of the stored bytes (spec.evidencePackRef.sha256, checked).</summary>
    [Required]
    public string Sha256 { get; set; } = "";

    /// <summary>Where: the storage's endpoint and bucket (never its credentials).</summary>
    public string? Storage { get; set; }

    /// <summary>When the operator found it stored (copied now, or already there with the same bytes).</summary>
    [DateTimeFormat]
    public DateTime? StoredAt { get; set; }
}

public sealed class IntentException
{
    /// <summary>The Exception's name (in the intent's namespace).</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The finding ids it covers for this intent.</summary>
    public List<string>? Covers { get; set; }

    /// <summary>Its spec.expiresAt: from then on it covers nothing, and the next ring waits.</summary>
    [DateTimeFormat]
    public DateTime? ExpiresAt { get; set; }
}

public sealed class IntentRingStatus
{
    /// <summary>The ring (one of spec.targetScope.rings).</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The ring's phase.</summary>
    [JsonConverter(typeof(PhaseConverter<IntentRingPhase>))]
    public IntentRingPhase? Phase { get; set; }

    /// <summary>The workspace namespaces the ring deploys to.</summary>
    public List<string>? Workspaces { get; set; }

    /// <summary>When the ring was handed to the plane.</summary>
    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    /// <summary>When the plane reported the ring done.</summary>
    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    /// <summary>The success rate (0-1) the plane reports for the ring.</summary>
    public double? SuccessRate { get; set; }

    /// <summary>Incidents the plane reports for the ring.</summary>
    public int? Incidents { get; set; }

    /// <summary>The plane's latest message about the ring (why it failed, for instance).</summary>
    public string? Message { get; set; }

    [Description("The CAB approvals that let the ring start, with their conditions and expiry as they were then: a later change of an Approval does not re-decide a started ring.")]
    public List<RingApproval>? ApprovedBy { get; set; }

    [Pattern(Patterns.Duration), Description("The least soak the approvals that let the ring start set for it (their conditions.minSoak); the ring completes no earlier than the longer of this and spec.schedule's durationHours.")]
    public string? MinSoak { get; set; }
}

/// <summary>One approval counted when a ring started, as it was then.</summary>
public sealed class RingApproval
{
    /// <summary>Who approved.</summary>
    [Required]
    public string Approver { get; set; } = "";

    /// <summary>The Approval's name.</summary>
    public string? Approval { get; set; }

    /// <summary>Its conditions.maxRing, if any.</summary>
    public string? MaxRing { get; set; }

    /// <summary>Its least soak for this ring, if any.</summary>
    public string? MinSoak { get; set; }

    /// <summary>Its expiresAt, if any.</summary>
    [DateTimeFormat]
    public DateTime? ExpiresAt { get; set; }
}

public sealed class RiskFactorContribution
{
    /// <summary>The factor, such as privilegeImpact.</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The value used, 0-1 (the worst case when spec.risk left it out).</summary>
    public double? NormalizedValue { get; set; }

    /// <summary>The factor's weight in the risk model (weights sum to 100).</summary>
    public double? Weight { get; set; }

    /// <summary>Points the factor adds to the risk score: value x weight ((1 - value) x weight for testEvidence).</summary>
    public double? Contribution { get; set; }
}

public sealed class DriftStatus
{
    /// <summary>When the drift was found.</summary>
    [DateTimeFormat]
    public DateTime? DetectedAt { get; set; }

    /// <summary>version_mismatch, assignment_missing or scope_mismatch.</summary>
    public string? Type { get; set; }

    /// <summary>What the intent deployed (version, assignment or workspaces).</summary>
    public string? Desired { get; set; }

    /// <summary>What the plane reports instead.</summary>
    public string? Actual { get; set; }
}
