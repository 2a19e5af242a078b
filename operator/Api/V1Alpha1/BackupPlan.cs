using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "BackupPlan", PluralName = "backupplans")]
[EntityScope(EntityScope.Namespaced), ShortName("bp")]
[PrinterColumn("Schedule", ".spec.schedule")]
[PrinterColumn("Last-Backup", ".status.lastBackup.completedAt", "date")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class BackupPlan : CustomResource<BackupPlanSpec, BackupPlanStatus>
{
    public BackupPlan() => Kind = "BackupPlan";
}

public sealed class BackupPlanSpec
{
    [Pattern("^[a-z_][a-z0-9_]*$"), Length(1, 63)]
    [Description("Defaults to the workspace database.")]
    public string? Database { get; set; }

    [Required, Pattern(Patterns.Cron)]
    [Description("Five-field cron expression, UTC.")]
    public string Schedule { get; set; } = "";

    [Pattern(Patterns.Cron)]
    public string? FullSchedule { get; set; }

    public BackupRetention? Retention { get; set; }

    [Required]
    public BackupStorage Storage { get; set; } = new();

    [Default(false)]
    public bool Suspend { get; set; }
}

public sealed class BackupRetention
{
    [Range(1, 10000)]
    public int? KeepLast { get; set; }

    [Pattern(Patterns.Duration)]
    public string? MaxAge { get; set; }
}

public sealed class BackupStorage
{
    public VolumeStorage? Volume { get; set; }

    public S3Storage? S3 { get; set; }
}

public sealed class VolumeStorage
{
    [Required, Pattern(Patterns.DnsLabel)]
    public string ClaimName { get; set; } = "";
}

public sealed class S3Storage
{
    [Required, Pattern("^https?://.+$")]
    public string Endpoint { get; set; } = "";

    [Required, Length(3, 63)]
    public string Bucket { get; set; } = "";

    public string? Prefix { get; set; }

    [Required]
    public LocalObjectReference CredentialsSecret { get; set; } = new();
}

public sealed class BackupPlanStatus : StatusBase
{
    public BackupRecord? LastBackup { get; set; }

    [DateTimeFormat]
    public DateTime? NextScheduleTime { get; set; }

    [DateTimeFormat]
    public DateTime? FirstRecoverabilityPoint { get; set; }

    public List<BackupRecord>? Backups { get; set; }
}

public sealed class BackupRecord
{
    [Required]
    public string Name { get; set; } = "";

    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    public long? SizeBytes { get; set; }

    public string? Sha256 { get; set; }

    [Enum("Running", "Completed", "Failed")]
    public string? Phase { get; set; }
}
