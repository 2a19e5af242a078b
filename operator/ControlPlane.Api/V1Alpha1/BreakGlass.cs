using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// A BreakGlass: emergency access, granted at once, loud, and reviewed afterwards. Its invoker (the user who
/// created it, stamped by the webhook in metadata.annotations[controlplane.io/created-by]) must be named by the
/// tenant's spec.accessPolicy.breakGlass.invokers (by user or group) and gets that policy's pre-declared role in
/// the workspace for spec.duration (at most 1h) through a RoleBinding owned by the BreakGlass. Every invocation
/// writes a security audit row and a Warning Event, raises a critical alert, and needs an Approval (the review)
/// within the review window (24h by default), else it shows ReviewOverdue.
/// </summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "breakglasses")]
[EntityScope(EntityScope.Namespaced), ShortName("bg")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Invoker", ".status.invoker")]
[PrinterColumn("Role", ".spec.role")]
[PrinterColumn("Incident", ".spec.incident")]
[PrinterColumn("Expires", ".status.expiresAt")]
[PrinterColumn("Reviewed", ".status.conditions[?(@.type==\"Reviewed\")].status")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class BreakGlass : CustomResource<BreakGlassSpec, BreakGlassStatus>
{
    public const string KubeKind = "BreakGlass";

    public BreakGlass() => Kind = KubeKind;
}

/// <summary>Which emergency role, for how long, why, for which incident. Immutable once created but for spec.end (false to true only).</summary>
public sealed class BreakGlassSpec
{
    [Required, Enum("WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer")]
    [Description("The emergency role invoked: must be the tenant's spec.accessPolicy.breakGlass.role, the one role declared for emergencies.")]
    public string Role { get; set; } = "";

    [Default("1h"), Pattern("^([0-9]+(ms|s|m|h|d))+$"), Length(1, 32)]
    [Description("How long the grant lasts from invocation (e.g. 30m). At most the tenant's spec.accessPolicy.breakGlass.maxDuration, never more than 1h (the default).")]
    public string? Duration { get; set; }

    [Required, Length(20, 4096)]
    [Description("Why emergency access is needed: at least 20 characters and 4 distinct words, kept in the audit trail and shown to the reviewers.")]
    public string Justification { get; set; } = "";

    [Required, Length(3, 128), Pattern("^[A-Za-z0-9][A-Za-z0-9._:/#-]*$")]
    [Description("The incident the access is for (e.g. INC-1234): letters, digits and . _ : / # -, kept in the audit trail.")]
    public string Incident { get; set; } = "";

    [Default(false)]
    [Description("Set to true to end the grant early (the RoleBinding is deleted, breakglass.ended is audited). Cannot be set back to false.")]
    public bool? End { get; set; }
}

/// <summary>The observed state of a BreakGlass, written by the operator.</summary>
public sealed class BreakGlassStatus : StatusBase
{
    /// <summary>Active (the RoleBinding exists until expiresAt), Expired, Ended (spec.end, deletion or the policy withdrawn) or Refused (never granted).</summary>
    [JsonConverter(typeof(PhaseConverter<BreakGlassPhase>))]
    public BreakGlassPhase? Phase { get; set; }

    [Description("Who invoked it: the user who created the BreakGlass, as the admission webhook stamped it.")]
    public string? Invoker { get; set; }

    [DateTimeFormat, Description("When the operator granted the access: the grant starts then.")]
    public DateTime? GrantedAt { get; set; }

    [DateTimeFormat, Description("grantedAt + spec.duration: when the RoleBinding is deleted. Recorded once, so the expiry holds across operator restarts.")]
    public DateTime? ExpiresAt { get; set; }

    [DateTimeFormat, Description("When the grant ended (expired or ended early).")]
    public DateTime? EndedAt { get; set; }

    [DateTimeFormat, Description("grantedAt + the operator's review window (24h by default): an Approval of this BreakGlass is due by then, else ReviewOverdue.")]
    public DateTime? ReviewDeadline { get; set; }

    [Description("Who reviewed the invocation (the approvers of the counting Approval).")]
    public string? ReviewedBy { get; set; }

    [DateTimeFormat, Description("When the operator first saw the review.")]
    public DateTime? ReviewedAt { get; set; }

    [Description("The RoleBinding that carries the grant while Active.")]
    public string? RoleBinding { get; set; }
}
