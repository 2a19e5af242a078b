using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>Restores a Backup of a workspace database into a new database of the same workspace, or in place (the replaced one is kept renamed); approved through ApprovalPolicy.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "restores")]
[EntityScope(EntityScope.Namespaced), ShortName("rst")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Backup-Plan", ".spec.backupPlan")]
[PrinterColumn("Backup", ".status.backup")]
[PrinterColumn("Database", ".status.database")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Restore : CustomResource<RestoreSpec, RestoreStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Restore";

    public Restore() => Kind = KubeKind;
}

public sealed class RestoreSpec
{
    /// <summary>The BackupPlan (in this namespace) whose backups are restored from.</summary>
    [Required, Pattern(Patterns.DnsLabel)]
    public string BackupPlan { get; set; } = "";

    [DateTimeFormat]
    [Description("Restore the newest backup at or before this time.")]
    public DateTime? TargetTime { get; set; }

    [Description("Restore this backup by name instead of by time.")]
    public string? Backup { get; set; }

    /// <summary>Where the backup goes: a new database of this workspace, or the workspace's database in place.</summary>
    [Required]
    public RestoreTarget Into { get; set; } = new();

    /// <summary>Why the restore is asked for (shown to the approvers and recorded in the audit trail).</summary>
    [Length(0, 4096)]
    public string? Reason { get; set; }
}

public sealed class RestoreTarget
{
    /// <summary>A new database, inside the workspace's own prefix (its name and an underscore), created owned by the workspace's role; it must not exist.</summary>
    [Pattern("^[a-z_][a-z0-9_]*$"), Length(1, 63)]
    public string? Database { get; set; }

    /// <summary>true: restore into the workspace's database itself; the current one is kept renamed (status.replacedDatabase) and its sessions ended.</summary>
    public bool? InPlace { get; set; }
}

public sealed class RestoreStatus : StatusBase
{
    /// <summary>Pending, AwaitingApproval (two Approvers in prod; one for in place elsewhere), Running (pg_restore), Completed or Failed.</summary>
    [JsonConverter(typeof(PhaseConverter<RestorePhase>))]
    public RestorePhase? Phase { get; set; }

    /// <summary>The Backup restored from (spec.backup, or the newest Completed one at or before spec.targetTime).</summary>
    public string? Backup { get; set; }

    /// <summary>When pg_restore started.</summary>
    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    /// <summary>When the restore completed or failed.</summary>
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
    /// <summary>Whether the workspace's credentials could connect to the restored database.</summary>
    public bool Passed { get; set; }

    /// <summary>Tables found in the restored database.</summary>
    public int Tables { get; set; }

    /// <summary>What the check saw, or why it failed.</summary>
    public string? Message { get; set; }
}
