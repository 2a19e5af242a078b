using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.Operator.Store;

namespace ControlPlane.Operator.AuditApi;

/// <summary>One served resource: its plural, kind and table.</summary>
public sealed record AuditResource(string Plural, string Kind, AuditTable Table, string ShortName);

/// <summary>The API objects of audit.controlplane.io/v1alpha1 (docs/audit-api.md), built from stored rows (pure).</summary>
public static partial class AuditObjects
{
    public const string Group = "audit.controlplane.io";
    public const string Version = "v1alpha1";
    public const string GroupVersion = Group + "/" + Version;

    public static readonly AuditResource AuditEvents = new("auditevents", "AuditEvent", AuditTable.AuditEvents, "ae");
    public static readonly AuditResource DeploymentEvents = new("deploymentevents", "DeploymentEvent", AuditTable.DeploymentEvents, "de");
    public static readonly IReadOnlyList<AuditResource> Resources = [AuditEvents, DeploymentEvents];

    [GeneratedRegex("^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
    private static partial Regex LabelValue();

    public static JsonObject Object(AuditResource resource, AuditRecord row)
    {
        var labels = new JsonObject();
        foreach (var (key, value) in row.Labels)
        {
            // A value a label cannot hold (too long, other characters) stays only in the event itself.
            if (value is not null && value.Length <= 63 && LabelValue().IsMatch(value)) labels[key] = value;
        }

        var o = new JsonObject
        {
            ["apiVersion"] = GroupVersion,
            ["kind"] = resource.Kind,
            ["metadata"] = new JsonObject
            {
                ["name"] = Name(row.Id),
                ["namespace"] = row.Namespace,
                ["uid"] = Uid(row.Hash),
                ["resourceVersion"] = Name(row.Id),
                ["creationTimestamp"] = row.OccurredAt.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["labels"] = labels,
            },
        };
        if (resource.Table == AuditTable.AuditEvents) o["workspace"] = row.Workspace;
        o["event"] = row.Event.DeepClone();
        o["chain"] = new JsonObject { ["sequence"] = row.Id, ["prevHash"] = row.PrevHash, ["hash"] = row.Hash };
        if (row.ChainTenant is not null)
        {
            o["tenantChain"] = new JsonObject { ["tenant"] = row.ChainTenant, ["sequence"] = row.TenantSeq, ["prevHash"] = row.TenantPrevHash, ["hash"] = row.TenantHash };
        }

        return o;
    }

    public static string Name(long id) => id.ToString(CultureInfo.InvariantCulture);

    /// <summary>A stable uid from the row's hash (the same row, the same uid, on every replica).</summary>
    static string Uid(string hash) => hash.Length >= 32 ? new Guid(Convert.FromHexString(hash[..32])).ToString() : hash;

    public static JsonObject List(AuditResource resource, IEnumerable<AuditRecord> rows, long resourceVersion, string? continueToken) => new()
    {
        ["apiVersion"] = GroupVersion,
        ["kind"] = resource.Kind + "List",
        ["metadata"] = ListMeta(resourceVersion, continueToken),
        ["items"] = new JsonArray([.. rows.Select(r => (JsonNode)Object(resource, r))]),
    };

    static JsonObject ListMeta(long resourceVersion, string? continueToken)
    {
        var meta = new JsonObject { ["resourceVersion"] = Name(resourceVersion) };
        if (continueToken is not null) meta["continue"] = continueToken;
        return meta;
    }

    static readonly (string Name, string Type, string Format, string Description)[] AuditColumns =
    [
        ("Seq", "string", "name", "The row's sequence number on the global chain (its name)."),
        ("Occurred", "string", "date-time", "When the event was recorded."),
        ("Actor", "string", "", "Who acted: a user, or controlplane-operator."),
        ("Action", "string", "", "What happened."),
        ("Kind", "string", "", "The kind of the object acted on."),
        ("Object", "string", "", "The object acted on (namespace/name for a namespaced kind)."),
        ("Severity", "string", "", "info, warning or security."),
        ("Tenant", "string", "", "The tenant whose chain the row is on (or as recorded)."),
    ];

    static readonly (string Name, string Type, string Format, string Description)[] DeploymentColumns =
    [
        ("Seq", "string", "name", "The row's sequence number on the global chain (its name)."),
        ("Occurred", "string", "date-time", "When the event was recorded."),
        ("Intent", "string", "", "The DeploymentIntent's name."),
        ("Type", "string", "", "The event type."),
        ("From", "string", "", "The phase before."),
        ("To", "string", "", "The phase after."),
        ("Ring", "string", "", "The ring, when the event is about one."),
        ("Actor", "string", "", "Who acted."),
        ("Reason", "string", "", "Why."),
    ];

    static JsonArray Cells(AuditResource resource, AuditRecord row)
    {
        var e = row.Event;
        string? S(string key) => e[key]?.GetValue<string>();
        var time = row.OccurredAt.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        return resource.Table == AuditTable.AuditEvents
            ? new JsonArray(Name(row.Id), time, S("actor"), S("action"), S("kind"), S("objectName"), S("severity"), row.Labels.GetValueOrDefault("audit.controlplane.io/tenant") ?? "")
            : new JsonArray(Name(row.Id), time, S("name"), S("eventType"), S("fromPhase") ?? "", S("toPhase") ?? "", S("ring") ?? "", S("actor"), S("reason"));
    }

    /// <summary>A meta.k8s.io Table (what `kubectl get` asks for); includeObject: None, Metadata (default) or Object.</summary>
    public static JsonObject Table(AuditResource resource, IEnumerable<AuditRecord> rows, long resourceVersion, string? continueToken, string tableVersion, string includeObject)
    {
        var columns = resource.Table == AuditTable.AuditEvents ? AuditColumns : DeploymentColumns;
        return new JsonObject
        {
            ["apiVersion"] = "meta.k8s.io/" + tableVersion,
            ["kind"] = "Table",
            ["metadata"] = ListMeta(resourceVersion, continueToken),
            ["columnDefinitions"] = new JsonArray([.. columns.Select((c, i) => (JsonNode)new JsonObject
            {
                ["name"] = c.Name,
                ["type"] = c.Type,
                ["format"] = c.Format,
                ["description"] = c.Description,
                ["priority"] = 0,
            })]),
            ["rows"] = new JsonArray([.. rows.Select(r => (JsonNode)Row(resource, r, includeObject))]),
        };
    }

    static JsonObject Row(AuditResource resource, AuditRecord row, string includeObject)
    {
        var result = new JsonObject { ["cells"] = Cells(resource, row) };
        var full = Object(resource, row);
        if (includeObject == "Object") result["object"] = full;
        else if (includeObject != "None")
        {
            result["object"] = new JsonObject
            {
                ["kind"] = "PartialObjectMetadata",
                ["apiVersion"] = "meta.k8s.io/v1",
                ["metadata"] = full["metadata"]!.DeepClone(),
            };
        }

        return result;
    }

    public static JsonObject Status(int code, string reason, string message) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = reason,
        ["code"] = code,
    };

    public static JsonObject GroupObject() => new()
    {
        ["kind"] = "APIGroup",
        ["apiVersion"] = "v1",
        ["name"] = Group,
        ["versions"] = new JsonArray(new JsonObject { ["groupVersion"] = GroupVersion, ["version"] = Version }),
        ["preferredVersion"] = new JsonObject { ["groupVersion"] = GroupVersion, ["version"] = Version },
    };

    public static JsonObject GroupList() => new()
    {
        ["kind"] = "APIGroupList",
        ["apiVersion"] = "v1",
        ["groups"] = new JsonArray(GroupObject()),
    };

    public static JsonObject ResourceList() => new()
    {
        ["kind"] = "APIResourceList",
        ["apiVersion"] = "v1",
        ["groupVersion"] = GroupVersion,
        ["resources"] = new JsonArray([.. Resources.Select(r => (JsonNode)new JsonObject
        {
            ["name"] = r.Plural,
            ["singularName"] = r.Kind.ToLowerInvariant(),
            ["namespaced"] = true,
            ["kind"] = r.Kind,
            ["verbs"] = new JsonArray("get", "list", "watch"),
            ["shortNames"] = new JsonArray(r.ShortName),
            ["categories"] = new JsonArray("controlplane-audit"),
        }), NotificationDeliveryObjects.Discovery()]),
    };
}
