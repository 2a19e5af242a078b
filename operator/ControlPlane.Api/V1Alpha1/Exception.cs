using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// An Exception (kind "Exception"; the C# name avoids System.Exception): a time-boxed, reviewed acceptance of
/// findings on one artifact (by digest) in one workspace: vulnerabilities by id, an unsigned package, or a scope
/// violation. It counts for a DeploymentIntent of the same namespace and digest only while Active: approved
/// by a SecurityReviewer of the workspace (never its owner, its author or an author of an intent it covers) and not expired.
/// </summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "exceptions")]
[EntityScope(EntityScope.Namespaced), ShortName("exc")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Type", ".spec.type")]
[PrinterColumn("Severity", ".spec.severity")]
[PrinterColumn("Owner", ".spec.owner")]
[PrinterColumn("Expires", ".spec.expiresAt")]
[PrinterColumn("Approved-By", ".status.approvedBy")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class SecurityException : CustomResource<SecurityExceptionSpec, SecurityExceptionStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Exception";

    public SecurityException() => Kind = KubeKind;
}

/// <summary>What is accepted, on which artifact, by whom, why, with which controls, until when.</summary>
public sealed class SecurityExceptionSpec
{
    [Required, Enum("vulnerability", "unsignedPackage", "scopeViolation")]
    [Description("What kind of finding it accepts: vulnerability (spec.covers lists vulnerability ids, e.g. CVE-2025-12345), unsignedPackage (spec.covers lists the unsigned-package finding ids the intent reports) or scopeViolation (spec.covers lists the scope finding ids the intent reports).")]
    public string Type { get; set; } = "";

    /// <summary>The one artifact it applies to: an intent counts it only when its spec.artifact.sha256 is this digest.</summary>
    [Required]
    public ExceptionArtifact Artifact { get; set; } = new();

    [Required, Items(1, 100), ListSet]
    [Description("The findings accepted, by id as the DeploymentIntent's ExceptionsCovered condition names them: vulnerability ids for type vulnerability, unsigned-package finding ids for unsignedPackage, scope finding ids for scopeViolation. No wildcards: every finding is named.")]
    public List<string> Covers { get; set; } = [];

    [Required, Enum("Low", "Medium", "High", "Critical")]
    [Description("The highest severity it may cover: a finding of a higher severity stays uncovered.")]
    public string Severity { get; set; } = "";

    [Items(0, 20)]
    [Description("What limits the risk meanwhile (a WAF rule, a network policy, monitoring). Required, at least one, when spec.severity is High or Critical.")]
    public List<string>? CompensatingControls { get; set; }

    [Required, Length(1, 256)]
    [Description("The person accountable for the exception (a user name, never a ServiceAccount). The owner never approves it.")]
    public string Owner { get; set; } = "";

    [Required, DateTimeFormat]
    [Description("When it stops counting (RFC 3339). At most the tenant's spec.exceptionPolicy.maxDuration (default 90d) after its creation; in the future when created.")]
    public DateTime ExpiresAt { get; set; }

    [Required, Length(40, 4096)]
    [Description("Why the findings are accepted: at least 40 characters and 6 words, shown to the SecurityReviewer and kept in the audit trail.")]
    public string Justification { get; set; } = "";
}

public sealed class ExceptionArtifact
{
    /// <summary>The image reference, for people reading it (the digest is what is matched).</summary>
    [Required, Length(1, 512)]
    public string Image { get; set; } = "";

    [Required, Pattern(Patterns.Sha256), Description("The artifact's SHA-256 digest (hex): only intents with this spec.artifact.sha256 are covered.")]
    public string Sha256 { get; set; } = "";
}

/// <summary>The observed state of an Exception, written by the operator.</summary>
public sealed class SecurityExceptionStatus : StatusBase
{
    /// <summary>Pending (awaiting a SecurityReviewer's approval), Active (approved, not expired: it counts), Expired (spec.expiresAt passed) or Rejected (a SecurityReviewer rejected it, or it breaks the tenant's exception policy).</summary>
    [JsonConverter(typeof(PhaseConverter<ExceptionPhase>))]
    public ExceptionPhase? Phase { get; set; }

    [Description("The SecurityReviewer whose Approval made it Active (the current generation's).")]
    public string? ApprovedBy { get; set; }

    [DateTimeFormat, Description("When the operator first saw the current generation approved.")]
    public DateTime? ApprovedAt { get; set; }
}
