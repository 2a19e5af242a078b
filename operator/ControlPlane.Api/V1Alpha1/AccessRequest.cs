using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// An AccessRequest: just-in-time elevation of its requester (the user who created it, stamped by the
/// webhook in metadata.annotations[controlplane.io/created-by]) to one workspace role in its workspace,
/// for spec.duration from approval. Approved through Approvals (one Approver or WorkspaceAdmin outside
/// prod, two distinct in prod, never the requester); the operator then makes a RoleBinding owned by the
/// request and deletes it at status.expiresAt, on spec.revoke or when the request is deleted.
/// </summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "accessrequests")]
[EntityScope(EntityScope.Namespaced), ShortName("areq")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Requester", ".status.requester")]
[PrinterColumn("Role", ".spec.role")]
[PrinterColumn("Duration", ".spec.duration")]
[PrinterColumn("Expires", ".status.expiresAt")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class AccessRequest : CustomResource<AccessRequestSpec, AccessRequestStatus>
{
    public const string KubeKind = "AccessRequest";

    public AccessRequest() => Kind = KubeKind;
}

/// <summary>Which role, for how long, why. Immutable once created but for spec.revoke (false to true only).</summary>
public sealed class AccessRequestSpec
{
    [Required, Enum("WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer")]
    [Description("The workspace role asked for. Never above the tenant's spec.accessPolicy.maxRole (default Operator); ranks: Auditor < Approver = SecurityReviewer < Operator < IntegrationAdmin < WorkspaceAdmin.")]
    public string Role { get; set; } = "";

    [Required, Pattern("^([0-9]+(ms|s|m|h|d))+$"), Length(1, 32)]
    [Description("How long the grant lasts from approval (e.g. 30m, 2h). At most the tenant's spec.accessPolicy.maxDuration (default 8h).")]
    public string Duration { get; set; } = "";

    [Required, Length(20, 4096)]
    [Description("Why the access is needed: at least 20 characters and 4 distinct words, shown to the approvers and kept in the audit trail.")]
    public string Justification { get; set; } = "";

    [Length(0, 256)]
    [Description("An optional ticket or incident reference (e.g. OPS-1234), kept in the audit trail.")]
    public string? Ticket { get; set; }

    [Default(false)]
    [Description("Set to true to end the grant early (the RoleBinding is deleted, access.revoked is audited). Cannot be set back to false.")]
    public bool? Revoke { get; set; }
}

/// <summary>The observed state of an AccessRequest, written by the operator.</summary>
public sealed class AccessRequestStatus : StatusBase
{
    /// <summary>Pending (awaiting approval), Active (approved: the RoleBinding exists until expiresAt), Expired, Revoked or Rejected.</summary>
    [JsonConverter(typeof(PhaseConverter<AccessRequestPhase>))]
    public AccessRequestPhase? Phase { get; set; }

    [Description("Who asked: the user who created the request, as the admission webhook stamped it.")]
    public string? Requester { get; set; }

    [Description("Who approved the grant.")]
    public string? ApprovedBy { get; set; }

    [DateTimeFormat, Description("When the operator first saw the request approved: the grant starts then.")]
    public DateTime? GrantedAt { get; set; }

    [DateTimeFormat, Description("grantedAt + spec.duration: when the RoleBinding is deleted. Recorded once, so the expiry holds across operator restarts.")]
    public DateTime? ExpiresAt { get; set; }

    [DateTimeFormat, Description("When the grant ended (expired or revoked).")]
    public DateTime? EndedAt { get; set; }

    [Description("The RoleBinding that carries the grant while Active.")]
    public string? RoleBinding { get; set; }
}
