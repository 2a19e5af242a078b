using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>A ring-by-ring image rollout across the tenant's workspaces, with gates and automatic rollback.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "rollouts")]
[EntityScope(EntityScope.Namespaced)]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Rings", ".status.progress")]
[PrinterColumn("Current-Ring", ".status.currentRing")]
[PrinterColumn("Images", ".spec.target.containers[*].image")]
[PrinterColumn("Deployment", ".spec.target.deployment", Priority = 1)]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Rollout : CustomResource<RolloutSpec, RolloutStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Rollout";

    public Rollout() => Kind = KubeKind;
}

/// <summary>What to roll out, through which rings, under which gates.</summary>
public sealed class RolloutSpec
{
    /// <summary>What is rolled out: a Deployment's container images, by name in each ring namespace.</summary>
    [Required]
    public RolloutTarget Target { get; set; } = new();

    [Required, Items(1, 20)]
    [Description("Rings in order; each is promoted only after the previous one rolled out and soaked with its gates holding.")]
    public List<Ring> Rings { get; set; } = [];

    /// <summary>Health conditions every ring must hold; a breach pauses or rolls back.</summary>
    public RolloutGates? Gates { get; set; }

    [Default(false), Description("true: no next step is taken (a ring in progress keeps its gates watched); false resumes.")]
    public bool Paused { get; set; }

    [Default(false), Description("true: stop and roll every touched namespace back to its recorded previous images.")]
    public bool Abort { get; set; }

    [Default(true), Description("A breached gate rolls every touched namespace back to its recorded previous images.")]
    public bool AutoRollback { get; set; } = true;

    [Pattern(Patterns.DnsLabel), Length(1, 63), Description("End the named ring's soak early (kubectl controlplane rollout promote): it succeeds as soon as it has rolled out, its gates hold (a success-rate gate must answer) and the Rollout's current generation is approved as its environment requires (one approver, two when a ring reaches prod; never the one who set this field, which is content under review, not a control action). Refused while a gate fails or cannot be read; audited as rollout.promoted.")]
    public string? Promote { get; set; }
}

public sealed class RolloutTarget
{
    [Pattern(Patterns.DnsLabel), Length(1, 63), Description("The Deployment, by name, in every ring namespace. It must exist: the operator only patches its container images.")]
    public string? Deployment { get; set; }

    [Pattern(Patterns.DnsLabel), Length(1, 63), Description("Set when a DeploymentIntent created this Rollout (containers then come from its artifact).")]
    public string? DeploymentIntent { get; set; }

    [Items(0, 20), Description("The change rolled out: the image of each named container (names unique).")]
    public List<ContainerImage>? Containers { get; set; }
}

public sealed class ContainerImage
{
    /// <summary>The container's name in the Deployment's pod template.</summary>
    [Required, Pattern(Patterns.DnsLabel), Length(1, 63)]
    public string Name { get; set; } = "";

    /// <summary>The image reference (registry/repository:tag or @sha256 digest).</summary>
    [Required, Length(1, 512), Pattern(@"^[^\s]+$")]
    public string Image { get; set; } = "";
}

public sealed class Ring
{
    /// <summary>The ring's name, unique in the Rollout (e.g. canary, early, broad).</summary>
    [Required, Pattern(Patterns.DnsLabel), Length(1, 63)]
    public string Name { get; set; } = "";

    [ListSet, Items(0, 200), Description("Workspaces of the Rollout's own tenant, by name.")]
    public List<string>? Workspaces { get; set; }

    [Description("Workspaces of the Rollout's own tenant whose labels match (e.g. controlplane.io/ring: canary).")]
    public LabelSelector? Selector { get; set; }

    [Pattern(Patterns.Duration), Default("0s"), Description("How long the ring must stay healthy, gates holding, before the next ring starts.")]
    public string Soak { get; set; } = "0s";

    [Default(false), Description("The ring starts only once the Rollout's current generation is approved (two approvers when a ring workspace is prod). A ring reaching a prod workspace needs approval whatever this says: it can only raise it.")]
    public bool RequiresApproval { get; set; }
}

public sealed class RolloutGates
{
    [Pattern(Patterns.Duration), Default("30m"), Description("How long each ring namespace's Deployment may take to roll out (observedGeneration, updated and available replicas).")]
    public string ProgressDeadline { get; set; } = "30m";

    [Range(0, 1000000), Default(0), Description("Container restarts and not-ready pods (after the deadline) of the new version tolerated per ring.")]
    public int MaxIncidents { get; set; }

    /// <summary>A Prometheus query the ring must keep at or above a threshold.</summary>
    public SuccessRateGate? SuccessRate { get; set; }
}

public sealed class SuccessRateGate
{
    [Required, Length(1, 4096), Description("PromQL returning a ratio in [0,1]; {{namespaces}} is replaced by the ring's namespaces as a regex alternation. Every selector must carry namespace=~\"{{namespaces}}\" (no bare metric names, comments or info()): a query reading outside the ring is refused.")]
    public string Query { get; set; } = "";

    /// <summary>The lowest acceptable ratio; a ring measuring below it breaches the gate.</summary>
    [Required, Range(0, 1)]
    public double Threshold { get; set; }
}

/// <summary>The observed state of a Rollout, ring by ring.</summary>
public sealed class RolloutStatus : StatusBase
{
    /// <summary>Pending; Progressing ring by ring; Paused; Succeeded when every ring completed; RolledBack after a breach or abort; Failed.</summary>
    [JsonConverter(typeof(PhaseConverter<RolloutPhase>))]
    public RolloutPhase? Phase { get; set; }

    /// <summary>The ring in progress (or the last one reached).</summary>
    public string? CurrentRing { get; set; }

    /// <summary>Rings completed out of the rings in spec, e.g. 1/3; what `kubectl get` shows.</summary>
    public string? Progress { get; set; }

    /// <summary>Each ring's progress, in spec order.</summary>
    public List<RingStatus>? Rings { get; set; }

    [Description("Each touched namespace's container images before the Rollout patched them, recorded before the patch: what a rollback restores.")]
    public List<PreviousImages>? Previous { get; set; }

    /// <summary>When the rollback was issued.</summary>
    [DateTimeFormat]
    public DateTime? RolledBackAt { get; set; }

    /// <summary>Why and how fast a rollback was issued.</summary>
    public RollbackRecord? Rollback { get; set; }
}

public sealed class RingStatus
{
    /// <summary>The ring's name from spec.rings.</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>Where the ring is: Pending, AwaitingApproval, Progressing, Soaking, Succeeded, Failed or RolledBack.</summary>
    [JsonConverter(typeof(PhaseConverter<RingPhase>))]
    public RingPhase? Phase { get; set; }

    [Description("The ring's namespaces as resolved when it started.")]
    public List<string>? Workspaces { get; set; }

    /// <summary>When the ring started.</summary>
    [DateTimeFormat]
    public DateTime? StartedAt { get; set; }

    [DateTimeFormat, Description("When every Deployment of the ring was rolled out: the soak is counted from here.")]
    public DateTime? RolledOutAt { get; set; }

    /// <summary>When the ring completed its soak with its gates holding.</summary>
    [DateTimeFormat]
    public DateTime? CompletedAt { get; set; }

    /// <summary>The last success rate measured by the gate query.</summary>
    [Range(0, 1)]
    public double? SuccessRate { get; set; }

    /// <summary>Container restarts and not-ready pods of the new version counted in the ring.</summary>
    public int? Incidents { get; set; }
}

public sealed class PreviousImages
{
    /// <summary>The ring namespace these images were recorded in.</summary>
    [Required]
    public string Namespace { get; set; } = "";

    /// <summary>Each container's image before the Rollout patched it.</summary>
    public List<ContainerImage> Containers { get; set; } = [];
}

/// <summary>Why and how fast a rollback was issued.</summary>
public sealed class RollbackRecord
{
    /// <summary>The gate that was breached (abort when spec.abort asked for it).</summary>
    [Enum("incidents", "progressDeadline", "successRate", "abort")]
    public string? Gate { get; set; }

    /// <summary>The ring in which the breach was seen.</summary>
    public string? Ring { get; set; }

    [Description("The value observed (incidents, success rate) and the limit it breached.")]
    public string? Value { get; set; }

    /// <summary>The gate's limit that was breached.</summary>
    public string? Limit { get; set; }

    [DateTimeFormat, Description("When the breach became observable in the cluster (a container restart, the deadline passing, the query answering).")]
    public DateTime? BreachObservableAt { get; set; }

    /// <summary>When the rollback patches were issued.</summary>
    [DateTimeFormat]
    public DateTime? IssuedAt { get; set; }

    [Description("Seconds from the breach being observable to the rollback patches issued.")]
    public double? SecondsToIssue { get; set; }

    /// <summary>The namespaces rolled back.</summary>
    public List<string>? Namespaces { get; set; }
}
