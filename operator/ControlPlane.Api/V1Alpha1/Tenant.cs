using System.Text.Json.Serialization;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

/// <summary>A Tenant: an organisation with owners, a region and an aggregate quota; its Workspaces are its teams' environments.</summary>
[KubernetesEntity(Group = ApiGroup.Group, ApiVersion = ApiGroup.Version, Kind = KubeKind, PluralName = "tenants")]
[EntityScope(EntityScope.Cluster)]
[PrinterColumn("Phase", ".status.phase")]
[PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Workspaces", ".status.workspaces", "integer")]
[PrinterColumn("Region", ".spec.region")]
[PrinterColumn("Age", ".metadata.creationTimestamp", "date")]
public sealed class Tenant : CustomResource<TenantSpec, TenantStatus>
{
    /// <summary>The kind as the API names it (apiVersion controlplane.io/v1alpha1), as KubernetesClient's own models name theirs.</summary>
    public const string KubeKind = "Tenant";

    public Tenant() => Kind = KubeKind;
}

/// <summary>The desired state of a Tenant: region, data mode, owners, quota, scopes, network bounds.</summary>
public sealed class TenantSpec
{
    [Description("Human-readable name of the tenant.")]
    public string? DisplayName { get; set; }

    [Required, Pattern(Patterns.DnsLabel), Length(1, 63)]
    [Description("Region the tenant's data lives in; one of the regions the operator is configured with. Immutable.")]
    public string Region { get; set; } = "";

    [Enum("metadataOnly", "full"), Default("metadataOnly")]
    [Description("metadataOnly keeps identifiers, hashes and counts but no free text in the operator's records.")]
    public string DataMode { get; set; } = "metadataOnly";

    [Description("Owners are WorkspaceAdmin in every workspace of the tenant.")]
    public List<Subject>? Owners { get; set; }

    /// <summary>Aggregate limits over all the tenant's workspaces; a workspace gets what it asks for while the sum fits, earlier admissions first.</summary>
    public TenantQuota? Quota { get; set; }

    [Description("Boundaries that deployment intents of this tenant may target.")]
    public List<TenantScope>? Scopes { get; set; }

    /// <summary>
    /// Who may publish DeploymentIntents where: an intent's authors (its creator and every spec editor, as the
    /// webhook stamped them, with their groups) must each hold a publisher entry whose scopes cover its target.
    /// Absent or empty: every author publishes within spec.scopes (the behaviour before publishers existed).
    /// </summary>
    [Items(0, 256)]
    public List<TenantPublisher>? Publishers { get; set; }

    /// <summary>Network bounds for the tenant's workspaces: the CIDRs their WorkspaceNetworkPolicies may name.</summary>
    public TenantNetwork? Network { get; set; }

    /// <summary>Where the tenant's Exposures may publish: the host names the platform delegates to it (besides each workspace's default domain).</summary>
    public TenantExposure? Exposure { get; set; }

    /// <summary>How long the tenant's Exceptions may run (spec.expiresAt at most this after creation).</summary>
    public TenantExceptionPolicy? ExceptionPolicy { get; set; }

    /// <summary>What AccessRequests of the tenant's workspaces may ask for: the highest role and the longest grant.</summary>
    public TenantAccessPolicy? AccessPolicy { get; set; }

    [Default(false)]
    [Description("true: no new workspaces, rollouts or publications (cordon).")]
    public bool Suspended { get; set; }

    [Items(0, 100), Description("CAB routing: which Approvers are assigned to changes of which acquisition boundaries and business units. When any route is declared, only an assigned Approver's approval counts toward CAB approval of a DeploymentIntent; absent or empty: every eligible Approver is assigned.")]
    public List<CabRoute>? CabRoutes { get; set; }
}

/// <summary>One CAB route: these people (by name or group) review the changes of these boundaries and business units.</summary>
public sealed class CabRoute
{
    [Items(0, 100), ListSet, Description("Users assigned by this route (they must also hold the Approver or WorkspaceAdmin role where the change lands).")]
    public List<string>? Subjects { get; set; }

    [Items(0, 100), ListSet, Description("Groups whose members are assigned by this route (system: groups never are).")]
    public List<string>? Groups { get; set; }

    [Items(0, 100), ListSet, Description("The acquisition boundaries this route covers (an intent's spec.targetScope.acquisitionBoundary); empty: every one.")]
    public List<string>? AcquisitionBoundaries { get; set; }

    [Items(0, 100), ListSet, Description("The business units this route covers (an intent's spec.targetScope.businessUnit); empty: every one, including an intent that names none.")]
    public List<string>? BusinessUnits { get; set; }
}

public sealed class TenantQuota
{
    /// <summary>How many workspaces the tenant may have; a create past it is refused at admission.</summary>
    [Range(0, 100000)]
    public int? MaxWorkspaces { get; set; }

    /// <summary>Total CPU the tenant's workspaces may be granted (sum of their spec.quota.cpu).</summary>
    public ResourceQuantity? Cpu { get; set; }

    /// <summary>Total memory the tenant's workspaces may be granted (sum of their spec.quota.memory).</summary>
    public ResourceQuantity? Memory { get; set; }

    /// <summary>Total storage the tenant's workspaces may be granted (sum of their spec.quota.storage).</summary>
    public ResourceQuantity? Storage { get; set; }
}

public sealed class TenantScope
{
    /// <summary>The acquisition boundary (legal entity or acquired company) a deployment intent of this tenant may target.</summary>
    [Required, Length(1)]
    public string AcquisitionBoundary { get; set; } = "";

    /// <summary>Business units inside that boundary the tenant may target; empty: none.</summary>
    [ListSet]
    public List<string>? BusinessUnits { get; set; }

    /// <summary>Site classes (e.g. online, edge) the tenant may target; empty: none.</summary>
    [ListSet]
    public List<string>? SiteClasses { get; set; }
}

public sealed class TenantPublisher
{
    /// <summary>Users (as the API server authenticates them) this entry applies to.</summary>
    [ListSet, Items(0, 256)]
    public List<string>? Subjects { get; set; }

    /// <summary>Groups (as the API server reports them) this entry applies to; system: groups never match.</summary>
    [ListSet, Items(0, 256)]
    public List<string>? Groups { get; set; }

    /// <summary>Where they may publish; each within the tenant's spec.scopes.</summary>
    [Required, Items(1, 64)]
    public List<PublisherScope> Scopes { get; set; } = [];
}

public sealed class PublisherScope
{
    /// <summary>One of the tenant's spec.scopes acquisition boundaries.</summary>
    [Required, Length(1)]
    public string AcquisitionBoundary { get; set; } = "";

    /// <summary>Business units of that boundary they may target; empty: none.</summary>
    [ListSet]
    public List<string>? BusinessUnits { get; set; }

    /// <summary>Site classes of that boundary they may target; empty: none.</summary>
    [ListSet]
    public List<string>? SiteClasses { get; set; }

    /// <summary>Rings they may target; empty: none.</summary>
    [ListSet]
    public List<string>? Rings { get; set; }
}

public sealed class TenantNetwork
{
    /// <summary>Source CIDRs a WorkspaceNetworkPolicy of this tenant may allow in; any other CIDR is refused.</summary>
    [ListSet]
    public List<string>? AllowedIngressCIDRs { get; set; }

    /// <summary>Destination CIDRs every workspace of this tenant may reach (its default-deny policy allows egress to them), and the only ones a WorkspaceNetworkPolicy of this tenant may allow out to; any other CIDR is refused.</summary>
    [ListSet]
    public List<string>? ApprovedEgressCIDRs { get; set; }
}

public sealed class TenantExposure
{
    /// <summary>
    /// Hosts delegated to the tenant: an exact host (api.acme.example) or a pattern *.suffix (one or
    /// more labels under suffix; it also allows wildcard hosts under suffix). Its Exposures may use a
    /// spec.host only inside these, or under a workspace's default domain. Delegations are exclusive:
    /// one overlapping another tenant's, or the platform's default domain, is refused. Set by a
    /// platform administrator (tenant owners cannot update their Tenant).
    /// </summary>
    [ListSet, Items(0, 256)]
    public List<string>? AllowedDomains { get; set; }
}

public sealed class TenantExceptionPolicy
{
    /// <summary>The longest an Exception may last: its spec.expiresAt at most this after its creation (30s, 12h, 30d; at most 3650d).</summary>
    [Default("90d"), Pattern("^([0-9]+(ms|s|m|h|d))+$"), Length(1, 32)]
    public string MaxDuration { get; set; } = "90d";
}

public sealed class TenantAccessPolicy
{
    /// <summary>The highest workspace role an AccessRequest may ask for (ranks: Auditor &lt; Approver = SecurityReviewer &lt; Operator &lt; IntegrationAdmin &lt; WorkspaceAdmin).</summary>
    [Default("Operator"), Enum("WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer")]
    public string MaxRole { get; set; } = "Operator";

    /// <summary>The longest an AccessRequest's grant may last (spec.duration at most this; at most 7d).</summary>
    [Default("8h"), Pattern("^([0-9]+(ms|s|m|h|d))+$"), Length(1, 32)]
    public string MaxDuration { get; set; } = "8h";

    [Description("Break-glass emergency access (BreakGlass objects): the one role it grants and who may invoke it. Absent: break-glass is disabled in the tenant's workspaces.")]
    public TenantBreakGlassPolicy? BreakGlass { get; set; }
}

/// <summary>Who may invoke break-glass in a tenant's workspaces, for which pre-declared emergency role, for how long at most.</summary>
public sealed class TenantBreakGlassPolicy
{
    [Required, Enum("WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer")]
    [Description("The pre-declared emergency role: a BreakGlass's spec.role must be this workspace role.")]
    public string Role { get; set; } = "";

    [Default("1h"), Pattern("^([0-9]+(ms|s|m|h|d))+$"), Length(1, 32)]
    [Description("The longest a break-glass grant may last (a BreakGlass's spec.duration at most this); at most 1h, which is also the default.")]
    public string MaxDuration { get; set; } = "1h";

    [Required, Description("Who may invoke break-glass: users by name, or members of groups (the admission webhook checks the caller's groups). Nobody else, whatever their workspace role.")]
    public BreakGlassInvokers Invokers { get; set; } = new();
}

/// <summary>The people a tenant allows to invoke break-glass.</summary>
public sealed class BreakGlassInvokers
{
    [Items(0, 100), ListSet, Description("Users who may invoke break-glass, by username.")]
    public List<string>? Users { get; set; }

    [Items(0, 100), ListSet, Description("Groups whose members may invoke break-glass (system: groups never count).")]
    public List<string>? Groups { get; set; }
}

/// <summary>The observed state of a Tenant, written by the operator.</summary>
public sealed class TenantStatus : StatusBase
{
    /// <summary>Pending until the system of record has the tenant; Ready; Suspended when spec.suspended; Failed on an invalid spec; Terminating while deletion waits for its workspaces.</summary>
    [JsonConverter(typeof(PhaseConverter<TenantPhase>))]
    public TenantPhase? Phase { get; set; }

    /// <summary>How many workspaces the tenant has.</summary>
    public int? Workspaces { get; set; }

    /// <summary>What the tenant's workspaces are granted in total (their requests, capped by the tenant quota).</summary>
    public TenantUsage? Usage { get; set; }

    [Description("UUID of the tenant row in the system of record.")]
    public string? RecordId { get; set; }
}

public sealed class TenantUsage
{
    /// <summary>CPU granted to the tenant's workspaces in total.</summary>
    public ResourceQuantity? Cpu { get; set; }

    /// <summary>Memory granted to the tenant's workspaces in total.</summary>
    public ResourceQuantity? Memory { get; set; }

    /// <summary>Storage granted to the tenant's workspaces in total.</summary>
    public ResourceQuantity? Storage { get; set; }
}
