using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>One logical backup (pg_dump -Fc) of a workspace database, made by a BackupPlan's schedule or by hand.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "backups")]
[EntityScope(EntityScope.Namespaced), ShortName("bk")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Plan", ".spec.backupPlan")]
[PrinterColumn("Size", ".status.size")]
[PrinterColumn("Completed", ".status.completedAt", "date")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Backup : CustomResource<BackupSpec, BackupStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Backup";

    public Backup() => Kind = KubeKind;
}

public sealed class BackupSpec
{
    [Required, Pattern(Patterns.DnsLabel), Length(1, 253)]
    [Description("The BackupPlan (in this namespace) whose database and storage this backup uses.")]
    public string BackupPlan { get; set; } = "";
}

public sealed class BackupStatus : StatusBase
{
    /// <summary>Pending (waiting to run), Running (dump streaming to storage), Completed (stored and verified) or Failed.</summary>
    [JsonConverter(typeof(PhaseConverter<BackupPhase>))]
    public BackupPhase? Phase { get; set; }

    /// <summary>When the dump started.</summary>
    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    /// <summary>When the dump was stored and verified.</summary>
    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    /// <summary>Size of the stored object, in bytes.</summary>
    public long? SizeBytes { get; set; }

    /// <summary>sizeBytes for people, in binary units (e.g. 12.3 MiB); what `kubectl get` shows.</summary>
    public string? Size { get; set; }

    [Description("SHA-256 of the stored object, computed while streaming and verified by reading it back.")]
    public string? Sha256 { get; set; }

    [Description("The storage object's key.")]
    public string? Key { get; set; }

    [Description("The multipart upload in progress (aborted if the operator stops before it completes).")]
    public string? UploadId { get; set; }

    /// <summary>The pg_dump version that made the dump.</summary>
    public string? PgDumpVersion { get; set; }

    /// <summary>The PostgreSQL server version dumped (a restore needs a server at least as new).</summary>
    public string? ServerVersion { get; set; }

    [Description("The database dumped.")]
    public string? Database { get; set; }

    [Description("The correlation id of the backup's row in the system of record.")]
    public string? CorrelationId { get; set; }
}
