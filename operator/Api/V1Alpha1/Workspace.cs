using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = "Workspace", PluralName = "workspaces")]
[EntityScope(EntityScope.Cluster), ShortName("ws")]
[PrinterColumn("Tenant", ".spec.tenant")]
[PrinterColumn("Environment", ".spec.environment")]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Workspace : CustomResource<WorkspaceSpec, WorkspaceStatus>
{
    public Workspace() => Kind = "Workspace";

    /// <summary>Thousands of workspaces name a few tenants: the cache shares those strings too.</summary>
    public override void InternStrings(Runtime.StringPool strings)
    {
        base.InternStrings(strings);
        Spec.Tenant = strings.Intern(Spec.Tenant)!;
    }
}

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

    public List<WorkspaceMember>? Members { get; set; }

    public WorkspaceQuota? Quota { get; set; }

    public WorkspaceDatabase? Database { get; set; }

    [ListMap("provider")]
    [Description("Bring-your-own LLM keys, stored encrypted, never in status or logs; one per provider.")]
    public List<ProviderKey>? ProviderKeys { get; set; }
}

public sealed class WorkspaceMember
{
    [Required, Enum("User", "Group", "ServiceAccount")]
    public string Kind { get; set; } = "User";

    [Required, Length(1, 320)]
    [Description("User or group name; for a ServiceAccount \"namespace/name\" (a DNS label and a DNS subdomain).")]
    public string Name { get; set; } = "";

    [Required, Enum("WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin")]
    public string Role { get; set; } = "";
}

public sealed class WorkspaceQuota
{
    public ResourceQuantity? Cpu { get; set; }

    public ResourceQuantity? Memory { get; set; }

    public ResourceQuantity? Storage { get; set; }

    [Range(0, 100000)]
    public int? Pods { get; set; }
}

public sealed class WorkspaceDatabase
{
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
    [Required, Enum("openai", "azure-openai", "anthropic")]
    public string Provider { get; set; } = "";

    [Required]
    public SecretKeyReference SecretRef { get; set; } = new();

    [Description("Required for azure-openai.")]
    public string? Endpoint { get; set; }
}

public sealed class WorkspaceStatus : StatusBase
{
    [Enum("Creating", "Ready", "Failed", "Terminating")]
    public string? Phase { get; set; }

    public string? Namespace { get; set; }

    public WorkspaceDatabaseStatus? Database { get; set; }

    public List<ProviderKeyStatus>? ProviderKeys { get; set; }

    [Description("When the workspace was first admitted against its tenant's aggregate quota (RFC 3339, 100 ns precision); earlier admissions are served first.")]
    public string? AdmittedAt { get; set; }
}

public sealed class WorkspaceDatabaseStatus
{
    public string? Host { get; set; }

    public string? Name { get; set; }

    public string? SecretName { get; set; }
}

public sealed class ProviderKeyStatus
{
    [Required]
    public string Provider { get; set; } = "";

    public string? Fingerprint { get; set; }

    [DateTimeFormat]
    public DateTime? ValidatedAt { get; set; }

    [DateTimeFormat]
    public DateTime? RotatedAt { get; set; }
}
