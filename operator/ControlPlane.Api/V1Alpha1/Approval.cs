using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>An approver's decision on an Exposure, DeploymentIntent, Restore, Rollout or Application (two-person rule), or a SecurityReviewer's on an Exception.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "approvals")]
[EntityScope(EntityScope.Namespaced), ShortName("apr")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Decision", ".spec.decision")]
[PrinterColumn("Target-Kind", ".spec.target.kind")]
[PrinterColumn("Target", ".spec.target.name")]
[PrinterColumn("Approver", ".spec.approver")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Approval : CustomResource<ApprovalSpec, ApprovalStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Approval";

    public Approval() => Kind = KubeKind;
}

/// <summary>A decision on one approvable object, bound to its UID and generation.</summary>
public sealed class ApprovalSpec
{
    /// <summary>The object approved or rejected, in the Approval's namespace.</summary>
    [Required]
    public ApprovalTarget Target { get; set; } = new();

    /// <summary>approve counts toward the target's required approvals; reject blocks the target's current generation.</summary>
    [Required, Enum("approve", "reject")]
    public string Decision { get; set; } = "approve";

    /// <summary>Why: kept with the approval in the audit trail.</summary>
    [Length(0, 4096)]
    public string? Comment { get; set; }

    [Description("Set by the admission webhook from the requester's identity; a user-supplied value is overwritten.")]
    public string? Approver { get; set; }

    [Description("The target's generation approved. Filled in by the admission webhook when absent; a value that is not the target's current generation is refused.")]
    public long? TargetGeneration { get; set; }

    [Default(false), Description("DeploymentIntent only: the approver lets this change proceed although another change of the same application is in progress in one of its rings.")]
    public bool Override { get; set; }

    [Description("The target's UID approved (an object deleted and recreated under the same name is another object). Filled in by the admission webhook when absent; another UID is refused.")]
    public string? TargetUID { get; set; }

    /// <summary>DeploymentIntent only: limits the operator enforces on this approval (the rings it counts for, the least soak per ring). Absent: no limits.</summary>
    public ApprovalLimits? Conditions { get; set; }

    [DateTimeFormat, Description("DeploymentIntent only: after this time (RFC 3339, UTC) the approval no longer counts for rings not yet started; a ring it let start goes on. Must be in the future when created. Absent: no expiry.")]
    public DateTime? ExpiresAt { get; set; }

    [Length(0, 4096), Description("Why the change is acceptable, kept in the audit trail. Required (at least 20 characters) to approve a DeploymentIntent that needs CAB approval (status.decision RequireApproval).")]
    public string? Justification { get; set; }
}

/// <summary>The conditions of a CAB approval of a DeploymentIntent, enforced by the operator and recorded with each ring they let start.</summary>
public sealed class ApprovalLimits
{
    [Length(1, 63), Pattern(Patterns.DnsLabel), Description("The approval counts only for rings up to and including this one, in the order of the intent's spec.targetScope.rings; it must be one of them.")]
    public string? MaxRing { get; set; }

    [Items(0, 64), Description("Per ring, the least soak: the ring completes no earlier than this long after it started, whatever spec.schedule says (the longer of the two wins). Each ring must be one of the intent's rings, at most once.")]
    public List<RingSoak>? MinSoak { get; set; }
}

/// <summary>A least soak for one ring of a DeploymentIntent.</summary>
public sealed class RingSoak
{
    /// <summary>The ring (one of the intent's spec.targetScope.rings).</summary>
    [Required, Length(1, 63), Pattern(Patterns.DnsLabel)]
    public string Ring { get; set; } = "";

    /// <summary>How long the ring soaks at least once started, e.g. 7d or 36h (at most 365d).</summary>
    [Required, Pattern(Patterns.Duration), Length(1, 32)]
    public string Duration { get; set; } = "";
}

public sealed class ApprovalTarget
{
    /// <summary>The kind of the object approved.</summary>
    [Required, Enum("Exposure", "DeploymentIntent", "Restore", "Rollout", "Application", "Exception", "AccessRequest", "BreakGlass")]
    public string Kind { get; set; } = "";

    /// <summary>The name of the object approved, in the Approval's namespace.</summary>
    [Required, Length(1, 253)]
    public string Name { get; set; } = "";
}

/// <summary>The observed state of an Approval, written by the operator.</summary>
public sealed class ApprovalStatus : StatusBase;
