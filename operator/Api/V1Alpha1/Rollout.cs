using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "Rollout", PluralName = "rollouts")]
[EntityScope(EntityScope.Namespaced), ShortName("ro")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ring", ".status.currentRing")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Rollout : CustomResource<RolloutSpec, RolloutStatus>
{
    public Rollout() => Kind = "Rollout";
}

public sealed class RolloutSpec
{
    [Required]
    public RolloutTarget Target { get; set; } = new();

    [Required, Items(1)]
    public List<Ring> Rings { get; set; } = [];

    public RolloutGates? Gates { get; set; }

    [Default(false)]
    public bool Paused { get; set; }

    [Default(true)]
    public bool AutoRollback { get; set; } = true;
}

public sealed class RolloutTarget
{
    [Pattern(Patterns.DnsLabel)]
    public string? Deployment { get; set; }

    [Pattern(Patterns.DnsLabel)]
    public string? DeploymentIntent { get; set; }
}

public sealed class Ring
{
    [Required, Pattern(Patterns.DnsLabel), Length(1, 63)]
    public string Name { get; set; } = "";

    [ListSet]
    public List<string>? Namespaces { get; set; }

    public LabelSelector? Selector { get; set; }

    [Pattern(Patterns.Duration), Default("0s")]
    public string Soak { get; set; } = "0s";
}

public sealed class RolloutGates
{
    [Range(0, 1)]
    public double? SuccessRateThreshold { get; set; }

    [Range(0, 1000000)]
    public int? MaxIncidents { get; set; }

    [Pattern(Patterns.Duration)]
    public string? ProgressDeadline { get; set; }
}

public sealed class RolloutStatus : StatusBase
{
    [Enum("Pending", "Progressing", "Paused", "Succeeded", "RolledBack", "Failed")]
    public string? Phase { get; set; }

    public string? CurrentRing { get; set; }

    public List<RingStatus>? Rings { get; set; }
}

public sealed class RingStatus
{
    [Required]
    public string Name { get; set; } = "";

    public string? Phase { get; set; }

    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    [Range(0, 1)]
    public double? SuccessRate { get; set; }
}
