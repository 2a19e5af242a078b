using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// One deployable thing of a workspace: who owns it and the scope its DeploymentIntents may reach. A
/// change of spec.allowedScope is a new scope version that takes effect only once CAB approves it
/// (Approvals naming the Application; two distinct Approvers in prod, never its author); a narrowing
/// takes effect at once.
/// </summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "applications")]
[EntityScope(EntityScope.Namespaced), ShortName("cpapp")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Owner", ".spec.owner")]
[PrinterColumn("Scope-Version", ".status.scopeVersion", "integer")]
[PrinterColumn("Pending", ".status.pendingScope.version", "integer")]
[PrinterColumn("Class", ".spec.class", Priority = 1)]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Application : CustomResource<ApplicationSpec, ApplicationStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Application";

    public Application() => Kind = KubeKind;
}

/// <summary>The desired state of an Application: its owner, classification and the scope its changes may reach.</summary>
public sealed class ApplicationSpec
{
    /// <summary>The person accountable for the application (a user name, such as alice@acme.io). Descriptive: changing it needs no CAB approval.</summary>
    [Required, Length(1, 253)]
    public string Owner { get; set; } = "";

    /// <summary>The application's class (such as business-critical or internal-tool). Descriptive: changing it needs no CAB approval.</summary>
    [Length(1, 63), Pattern(Patterns.DnsLabel)]
    public string? Class { get; set; }

    /// <summary>The support tier the application is run under (such as tier-1). Descriptive: changing it needs no CAB approval.</summary>
    [Length(1, 63), Pattern(Patterns.DnsLabel)]
    public string? SupportTier { get; set; }

    /// <summary>
    /// Where the application's DeploymentIntents may deploy: every value within the tenant's spec.scopes.
    /// A wider scope takes effect once CAB approves it (status.pendingScope until then); a narrower one at once.
    /// </summary>
    [Required]
    public ApplicationScope AllowedScope { get; set; } = new();
}

/// <summary>A scope by dimension: a target is inside it when its acquisition boundary, business unit, site class and every ring are listed.</summary>
public sealed class ApplicationScope
{
    /// <summary>Acquisition boundaries (each one of the tenant's spec.scopes).</summary>
    [Required, ListSet, Items(1, 64)]
    public List<string> AcquisitionBoundaries { get; set; } = [];

    /// <summary>Business units (each one of those boundaries' business units in the tenant's spec.scopes).</summary>
    [Required, ListSet, Items(1, 256)]
    public List<string> BusinessUnits { get; set; } = [];

    /// <summary>Site classes (each one of those boundaries' site classes in the tenant's spec.scopes).</summary>
    [Required, ListSet, Items(1, 64)]
    public List<string> SiteClasses { get; set; } = [];

    /// <summary>Rings (DNS labels: the controlplane.io/ring label of the workspaces they are).</summary>
    [Required, ListSet, Items(1, 64)]
    public List<string> Rings { get; set; } = [];
}

/// <summary>The observed state of an Application: the scope version in effect and the one awaiting CAB.</summary>
public sealed class ApplicationStatus : StatusBase
{
    /// <summary>Active: spec.allowedScope is in effect; AwaitingApproval: a scope version waits for CAB (the approved one, if any, stays in effect); Rejected: CAB rejected it; Failed: spec.allowedScope is invalid (outside the tenant's scopes, or not in a workspace).</summary>
    [JsonConverter(typeof(PhaseConverter<ApplicationPhase>))]
    public ApplicationPhase? Phase { get; set; }

    [Description("The approved scope version in effect (1, 2, ...); absent until the first is approved. Every version is recorded in the system of record.")]
    public int? ScopeVersion { get; set; }

    [Description("The scope of status.scopeVersion: what DeploymentIntents naming the application are checked against. Written only by the operator.")]
    public ApplicationScope? ApprovedScope { get; set; }

    [DateTimeFormat, Description("When status.scopeVersion took effect.")]
    public DateTime? ApprovedAt { get; set; }

    [Description("Who approved status.scopeVersion (empty for a narrowing, which needs no approval).")]
    public List<string>? ApprovedBy { get; set; }

    [Description("The scope version awaiting CAB: spec.allowedScope where it is wider than the approved scope, with its diff and blast radius.")]
    public PendingScope? PendingScope { get; set; }
}

public sealed class PendingScope
{
    /// <summary>The version it becomes once approved.</summary>
    [Required]
    public int Version { get; set; }

    /// <summary>The scope requested (spec.allowedScope).</summary>
    [Required]
    public ApplicationScope Scope { get; set; } = new();

    /// <summary>Per dimension, the values added and removed against the approved scope.</summary>
    public ScopeDiff? Diff { get; set; }

    /// <summary>The workspaces and rings of the tenant that newly come into scope.</summary>
    public BlastRadius? BlastRadius { get; set; }

    /// <summary>How many distinct approvers it needs (two when a workspace of the requested scope, or the application's own, is prod).</summary>
    public int? RequiredApprovals { get; set; }

    /// <summary>The approvers whose approval of the current generation counts so far.</summary>
    public List<string>? Approvals { get; set; }
}

public sealed class ScopeDiff
{
    /// <summary>Acquisition boundaries added and removed.</summary>
    public DimensionDiff? AcquisitionBoundaries { get; set; }

    /// <summary>Business units added and removed.</summary>
    public DimensionDiff? BusinessUnits { get; set; }

    /// <summary>Site classes added and removed.</summary>
    public DimensionDiff? SiteClasses { get; set; }

    /// <summary>Rings added and removed.</summary>
    public DimensionDiff? Rings { get; set; }
}

public sealed class DimensionDiff
{
    /// <summary>Values in the requested scope and not in the approved one.</summary>
    public List<string>? Added { get; set; }

    /// <summary>Values in the approved scope and not in the requested one.</summary>
    public List<string>? Removed { get; set; }
}

public sealed class BlastRadius
{
    /// <summary>Workspaces of the tenant inside the requested scope and outside the approved one (by their scope labels).</summary>
    public List<string>? Workspaces { get; set; }

    /// <summary>The rings those workspaces are (their controlplane.io/ring labels).</summary>
    public List<string>? Rings { get; set; }

    /// <summary>The strictest environment among those workspaces (prod, test or dev); absent when none.</summary>
    public string? Environment { get; set; }
}
