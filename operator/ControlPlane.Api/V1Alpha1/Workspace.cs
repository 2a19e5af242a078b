using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>A Workspace: a namespace with members, quota, a default-deny network and a Postgres database, owned by one Tenant.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "workspaces")]
[EntityScope(EntityScope.Cluster), ShortName("ws")]
[PrinterColumn("Tenant", ".spec.tenant")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Environment", ".spec.environment")]
[PrinterColumn("Region", ".spec.region", Priority = 1)]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Workspace : CustomResource<WorkspaceSpec, WorkspaceStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Workspace";

    public Workspace() => Kind = KubeKind;

    /// <summary>Thousands of workspaces name a few tenants: the cache shares those strings too.</summary>
    public override void InternStrings(Func<string?, string?> intern)
    {
        base.InternStrings(intern);
        Spec.Tenant = intern(Spec.Tenant)!;
    }
}

/// <summary>The desired state of a Workspace: its tenant, environment, members, quota, database and provider keys.</summary>
public sealed class WorkspaceSpec
{
    [Required, Pattern(Patterns.DnsLabel), Length(1, 63)]
    [Description("The owning Tenant. Immutable.")]
    public string Tenant { get; set; } = "";

    [Enum("dev", "test", "prod"), Default("dev")]
    [Description("prod turns on the two-person rule.")]
    public string Environment { get; set; } = "dev";

    [Pattern(Patterns.DnsLabel)]
    [Description("Defaults to the tenant's region and must equal it. Immutable.")]
    public string? Region { get; set; }

    [Enum("metadataOnly", "full")]
    [Description("Defaults to the tenant's data mode.")]
    public string? DataMode { get; set; }

    /// <summary>Who may act in the workspace: one RoleBinding per member to controlplane:workspace:&lt;role&gt; in its namespace. The tenant's owners are WorkspaceAdmin besides; a WorkspaceAdmin may edit this list (and nothing else) of this workspace.</summary>
    public List<WorkspaceMember>? Members { get; set; }

    /// <summary>What the workspace asks for: rendered as its namespace's ResourceQuota, granted within what remains of the tenant's quota.</summary>
    public WorkspaceQuota? Quota { get; set; }

    /// <summary>The workspace's own Postgres database and login role in its region, credentials in a Secret of the namespace.</summary>
    public WorkspaceDatabase? Database { get; set; }

    [ListMap("provider")]
    [Description("Bring-your-own LLM keys, stored encrypted, never in status or logs; one per provider.")]
    public List<ProviderKey>? ProviderKeys { get; set; }
}

public sealed class WorkspaceMember
{
    /// <summary>Whether name is a user, a group, or a ServiceAccount ("namespace/name").</summary>
    [Required, Enum("User", "Group", "ServiceAccount")]
    public string Kind { get; set; } = "User";

    [Required, Length(1, 320)]
    [Description("User or group name; for a ServiceAccount \"namespace/name\" (a DNS label and a DNS subdomain).")]
    public string Name { get; set; } = "";

    /// <summary>The workspace role bound: WorkspaceAdmin (everything in the namespace, members), Operator (workloads, rollouts), Approver (approvals, read), Auditor (read), IntegrationAdmin (Secrets and ConfigMaps), SecurityReviewer (approves Exceptions, read). No other role can be granted.</summary>
    [Required, Enum("WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer")]
    public string Role { get; set; } = "";
}

public sealed class WorkspaceQuota
{
    /// <summary>CPU requests and limits the namespace may total.</summary>
    public ResourceQuantity? Cpu { get; set; }

    /// <summary>Memory requests and limits the namespace may total.</summary>
    public ResourceQuantity? Memory { get; set; }

    /// <summary>Storage requests the namespace's PersistentVolumeClaims may total.</summary>
    public ResourceQuantity? Storage { get; set; }

    /// <summary>How many pods the namespace may run.</summary>
    [Range(0, 100000)]
    public int? Pods { get; set; }
}

public sealed class WorkspaceDatabase
{
    /// <summary>false: no database is provisioned for the workspace.</summary>
    [Default(true)]
    public bool Enabled { get; set; } = true;

    [ListSet]
    [Description("Extensions created in the database, by the workspace role itself; only those the region allows (ControlPlane:Regions:<region>:AllowedExtensions, by default PostgreSQL's trusted extensions).")]
    public List<string>? Extensions { get; set; }

    [Enum("Retain", "Delete"), Default("Retain")]
    [Description("What happens to the database and role when the workspace is deleted. Retain keeps them locked (the role cannot log in) and recorded for the tenant.")]
    public string DeletionPolicy { get; set; } = "Retain";

    [Default(false)]
    [Description("Take back the database retained from a deleted workspace of the same name and the same tenant (with a new password). Without it such a database is never reused: the workspace waits with DatabaseReady=False, reason RetainedDatabaseExists.")]
    public bool ReuseRetained { get; set; }
}

public sealed class ProviderKey
{
    /// <summary>The LLM provider the key is for; one key per provider.</summary>
    [Required, Enum("openai", "azure-openai", "anthropic")]
    public string Provider { get; set; } = "";

    /// <summary>The Secret in the workspace namespace holding the API key; its value is stored encrypted and never shown.</summary>
    [Required]
    public SecretKeyReference SecretRef { get; set; } = new();

    [Description("Required for azure-openai.")]
    public string? Endpoint { get; set; }
}

/// <summary>The observed state of a Workspace, written by the operator.</summary>
public sealed class WorkspaceStatus : StatusBase
{
    /// <summary>Creating until every child is in place; Ready; Failed on a refusal or error (see conditions); Terminating while deletion runs.</summary>
    [JsonConverter(typeof(PhaseConverter<WorkspacePhase>))]
    public WorkspacePhase? Phase { get; set; }

    /// <summary>The namespace the workspace owns (same name as the workspace).</summary>
    public string? Namespace { get; set; }

    /// <summary>Where the workspace's database is and the Secret holding its credentials.</summary>
    public WorkspaceDatabaseStatus? Database { get; set; }

    /// <summary>What is known of each provider key: a fingerprint and when it was validated and rotated, never the key.</summary>
    public List<ProviderKeyStatus>? ProviderKeys { get; set; }

    [Description("When the workspace was first admitted against its tenant's aggregate quota (RFC 3339, 100 ns precision); earlier admissions are served first.")]
    public string? AdmittedAt { get; set; }

    /// <summary>The environment the operator recorded and applies (deletion guard, approvals): never lower than spec.environment; lowered only after a platform administrator lifted the deletion guard.</summary>
    [Enum("dev", "test", "prod")]
    public string? Environment { get; set; }
}

public sealed class WorkspaceDatabaseStatus
{
    /// <summary>The database server's host name.</summary>
    public string? Host { get; set; }

    /// <summary>The database's name, recorded once in the system of record.</summary>
    public string? Name { get; set; }

    /// <summary>The Secret in the workspace namespace with the database's connection credentials.</summary>
    public string? SecretName { get; set; }
}

public sealed class ProviderKeyStatus
{
    /// <summary>The provider this entry describes.</summary>
    [Required]
    public string Provider { get; set; } = "";

    /// <summary>sha256 prefix of the key, to tell keys apart without revealing them.</summary>
    public string? Fingerprint { get; set; }

    /// <summary>When the key was last validated.</summary>
    [DateTimeFormat]
    public DateTime? ValidatedAt { get; set; }

    /// <summary>When the key last changed.</summary>
    [DateTimeFormat]
    public DateTime? RotatedAt { get; set; }
}

/// <summary>
/// The environments a workspace can be, least to most guarded. Wherever several apply (a spec and the
/// recorded one, the targets of a change) the strictest decides: an environment the requester can write
/// never lowers what another one requires.
/// </summary>
public static class WorkspaceEnvironments
{
    public const string Dev = "dev";
    public const string Test = "test";
    public const string Prod = "prod";

    /// <summary>dev 0, test 1, prod 2; unset is the default dev; anything unknown counts as prod (never less guarded).</summary>
    public static int Rank(string? environment) => environment switch
    {
        null or "" or Dev => 0,
        Test => 1,
        _ => 2,
    };

    /// <summary>The most guarded of these (unset ones ignored); dev when none is given.</summary>
    public static string Strictest(IEnumerable<string?> environments) =>
        environments.Where(e => !string.IsNullOrEmpty(e)).Select(e => Rank(e) == 2 ? Prod : e!).MaxBy(Rank) ?? Dev;

    public static string Strictest(params string?[] environments) => Strictest((IEnumerable<string?>)environments);

    /// <summary>Whether going from <paramref name="from"/> to <paramref name="to"/> loosens the rules (prod to test or dev, test to dev).</summary>
    public static bool Lowers(string? from, string? to) => Rank(to) < Rank(from);

    /// <summary>
    /// The environment every rule applies to a workspace: the stricter of its spec and the one the
    /// operator recorded (status.environment, from the system of record), so a lowered spec changes
    /// nothing until the operator has accepted it through the deletion-guard path.
    /// </summary>
    public static string Effective(Workspace ws) => Strictest(ws.Spec.Environment, ws.Status?.Environment);

    /// <summary>
    /// What the operator records: the spec when it raises the environment or when a platform
    /// administrator lifted the deletion guard (the one approved path to lower it); otherwise the
    /// stricter of the spec and what was recorded before.
    /// </summary>
    public static string ToRecord(string? spec, string? recorded, bool guardLifted) =>
        guardLifted || string.IsNullOrEmpty(recorded) ? Strictest(spec) : Strictest(spec, recorded);
}
