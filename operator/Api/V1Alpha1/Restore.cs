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

    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    [Description("The database restored into.")]
    public string? Database { get; set; }

    [Description("In place: the name the replaced database was kept under (rename it back to undo).")]
    public string? ReplacedDatabase { get; set; }

    [Description("After the restore: connected with the workspace's credentials and counted its tables.")]
    public RestoreSmokeCheck? SmokeCheck { get; set; }

    [Description("The correlation id of the restore's row in the system of record.")]
    public string? CorrelationId { get; set; }
}

public sealed class RestoreSmokeCheck
{
    public bool Passed { get; set; }

    public int Tables { get; set; }

    public string? Message { get; set; }
}
