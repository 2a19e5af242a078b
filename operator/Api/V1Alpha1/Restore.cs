using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "Restore", PluralName = "restores")]
[EntityScope(EntityScope.Namespaced), ShortName("rst")]
[PrinterColumn("Backup-Plan", ".spec.backupPlan")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Backup", ".status.backup")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Restore : CustomResource<RestoreSpec, RestoreStatus>
{
    public Restore() => Kind = "Restore";
}

public sealed class RestoreSpec
{
    [Required, Pattern(Patterns.DnsLabel)]
    public string BackupPlan { get; set; } = "";

    [DateTimeFormat]
    [Description("Restore the newest backup at or before this time.")]
    public DateTime? TargetTime { get; set; }

    [Description("Restore this backup by name instead of by time.")]
    public string? Backup { get; set; }

    [Required]
    public RestoreTarget Into { get; set; } = new();

    [Length(0, 4096)]
    public string? Reason { get; set; }
}

public sealed class RestoreTarget
{
    [Pattern("^[a-z_][a-z0-9_]*$"), Length(1, 63)]
    public string? Database { get; set; }

    public bool? InPlace { get; set; }
}

public sealed class RestoreStatus : StatusBase
{
    [Enum("Pending", "AwaitingApproval", "Running", "Completed", "Failed")]
    public string? Phase { get; set; }

    public string? Backup { get; set; }
}
