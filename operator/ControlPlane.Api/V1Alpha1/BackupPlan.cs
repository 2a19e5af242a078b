using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>Scheduled logical backups of a workspace database: creates a Backup per schedule tick and prunes old ones by its retention.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "backupplans")]
[EntityScope(EntityScope.Namespaced), ShortName("bp")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Schedule", ".spec.schedule")]
[PrinterColumn("Last-Backup", ".status.lastBackup.completedAt", "date")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class BackupPlan : CustomResource<BackupPlanSpec, BackupPlanStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "BackupPlan";

    public BackupPlan() => Kind = KubeKind;
}

public sealed class BackupPlanSpec
{
    [Pattern("^[a-z_][a-z0-9_]*$"), Length(1, 63)]
    [Description("Defaults to the workspace database; only the workspace's own.")]
    public string? Database { get; set; }

    [Required, Pattern(Patterns.Cron)]
    [Description("Five-field cron expression, UTC. Every backup is a full logical dump (pg_dump -Fc).")]
    public string Schedule { get; set; } = "";

    /// <summary>How many Completed backups are kept, by count and age; absent keeps them all.</summary>
    public BackupRetention? Retention { get; set; }

    [Description("Optional: the default is the platform storage of the workspace's region. A plan's own bucket is allowed only where the operator's ControlPlane:Backup:AllowTenantStorage is true.")]
    public BackupStorage? Storage { get; set; }

    [Default(false)]
    [Description("true stops scheduling new backups and nothing else (retention and on-demand backups go on).")]
    public bool Suspend { get; set; }
}

public sealed class BackupRetention
{
    [Range(1, 10000)]
    [Description("Keep at most this many Completed backups (the newest Completed one is never pruned).")]
    public int? KeepLast { get; set; }

    [Pattern(Patterns.Duration)]
    [Description("Prune Completed backups older than this (e.g. 30d); the newest Completed one is never pruned.")]
    public string? MaxAge { get; set; }
}

public sealed class BackupStorage
{
    /// <summary>An S3-compatible bucket the dumps are written to.</summary>
    public S3Storage? S3 { get; set; }
}

public sealed class S3Storage
{
    /// <summary>The S3 endpoint URL, such as https://s3.eu-west-1.amazonaws.com.</summary>
    [Required, Pattern("^https?://.+$")]
    public string Endpoint { get; set; } = "";

    /// <summary>The bucket name.</summary>
    [Required, Length(3, 63)]
    public string Bucket { get; set; } = "";

    /// <summary>Key prefix the backup objects are written under.</summary>
    [Length(0, 256)]
    public string? Prefix { get; set; }

    [Required]
    [Description("A Secret in the workspace with keys accessKeyId and secretAccessKey.")]
    public LocalObjectReference CredentialsSecret { get; set; } = new();
}

public sealed class BackupPlanStatus : StatusBase
{
    /// <summary>The newest Backup of this plan.</summary>
    public BackupRecord? LastBackup { get; set; }

    /// <summary>When the schedule creates the next Backup; absent while suspended or refused.</summary>
    [DateTimeFormat]
    public DateTime? NextScheduleTime { get; set; }

    [DateTimeFormat]
    [Description("completedAt of the oldest retained Completed backup: the earliest time a restore can go back to.")]
    public DateTime? FirstRecoverabilityPoint { get; set; }

    [DateTimeFormat]
    [Description("The schedule time of the last Backup the schedule created.")]
    public DateTime? LastScheduleTime { get; set; }
}

public sealed class BackupRecord
{
    /// <summary>The Backup object's name.</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>When the dump started.</summary>
    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    /// <summary>When the dump was stored and verified.</summary>
    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    /// <summary>Size of the stored object, in bytes.</summary>
    public long? SizeBytes { get; set; }

    /// <summary>SHA-256 (hex) of the stored object.</summary>
    public string? Sha256 { get; set; }

    /// <summary>The Backup's phase.</summary>
    [JsonConverter(typeof(PhaseConverter<BackupPhase>))]
    public BackupPhase? Phase { get; set; }
}
