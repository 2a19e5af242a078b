using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

/// <summary>The two hash-chained tables the audit API serves.</summary>
public enum AuditTable
{
    AuditEvents,
    DeploymentEvents,
}

/// <summary>One condition on a column: Op is "=", "!=", "in", "notin", "exists" or "!exists". A null column is a key no row carries.</summary>
public sealed record AuditCondition(string? Column, string Op, IReadOnlyList<string> Values);

/// <summary>
/// What to read: a namespace (null: cluster-wide), conditions, rows after <see cref="AfterId"/> up to
/// <see cref="UpToId"/>, at most <see cref="Limit"/>; or one row by <see cref="Id"/>.
/// </summary>
public sealed record AuditQuery(AuditTable Table, string? Namespace, IReadOnlyList<AuditCondition> Conditions, long AfterId, long UpToId, int Limit, long? Id = null);

/// <summary>A stored row as the API serves it: its hashed event object, both chains' links, its namespace and labels.</summary>
public sealed record AuditRecord(long Id, DateTime OccurredAt, string Namespace, string? Workspace, JsonObject Event, string PrevHash, string Hash,
    string? ChainTenant, long? TenantSeq, string? TenantPrevHash, string? TenantHash, IReadOnlyDictionary<string, string?> Labels);

/// <summary>
/// Reads the audit trail and the deployment event store for the audit API (docs/audit-api.md): which
/// namespace serves a row, the selectors as SQL, pages by id. Reads only; parameters always bound.
/// </summary>
public sealed class AuditLog(NpgsqlDataSource dataSource, string platformNamespace)
{
    public const string TimeFormat = "yyyy-MM-ddTHH:mm:ss.ffffffZ";

    public string PlatformNamespace => platformNamespace;

    /// <summary>Selectable keys (label or field name) and the SQL each reads, per table.</summary>
    public static readonly IReadOnlyDictionary<string, string> AuditColumns = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["audit.controlplane.io/tenant"] = "COALESCE(a.chain_tenant, a.tenant)",
        ["audit.controlplane.io/kind"] = "a.kind",
        ["audit.controlplane.io/action"] = "a.action",
        ["audit.controlplane.io/severity"] = "a.severity",
        ["metadata.name"] = "a.id::text",
        ["actor"] = "a.actor",
        ["action"] = "a.action",
        ["kind"] = "a.kind",
        ["objectName"] = "a.object_name",
        ["tenant"] = "COALESCE(a.chain_tenant, a.tenant)",
        ["severity"] = "a.severity",
    };

    public static readonly IReadOnlyDictionary<string, string> DeploymentColumns = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["audit.controlplane.io/tenant"] = "a.tenant",
        ["audit.controlplane.io/type"] = "a.event_type",
        ["audit.controlplane.io/intent"] = "a.name",
        ["metadata.name"] = "a.id::text",
        ["actor"] = "a.actor",
        ["type"] = "a.event_type",
        ["intent"] = "a.name",
        ["intentUid"] = "a.intent_uid",
        ["tenant"] = "a.tenant",
        ["ring"] = "a.ring",
        ["correlationId"] = "a.correlation_id",
    };

    /// <summary>The namespace column as the API shows it (platform rows in the platform namespace).</summary>
    public static string NamespaceColumn(AuditTable table) => table == AuditTable.AuditEvents ? "COALESCE(a.workspace, $1)" : "a.namespace";

    /// <summary>A NotificationChannel's delivery history by its UID, newest first (<see cref="NotificationStore.HistoryAsync"/>).</summary>
    public Task<IReadOnlyList<DeliveryRecord>> NotificationHistoryAsync(string channelUid, int limit, CancellationToken ct) =>
        NotificationStore.HistoryAsync(dataSource, channelUid, limit, ct);

    /// <summary>The newest committed id: a list's resourceVersion, a watch's starting cursor.</summary>
    public async Task<long> HeadAsync(AuditTable table, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT COALESCE(max(id), 0) FROM {TableName(table)}");
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    static string TableName(AuditTable table) => table == AuditTable.AuditEvents ? "controlplane.audit_events" : "controlplane.deployment_events";

    /// <summary>The rows the query selects, oldest first.</summary>
    public async Task<IReadOnlyList<AuditRecord>> ReadAsync(AuditQuery q, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand();
        var p = cmd.Parameters;
        p.AddWithValue(platformNamespace); // $1
        var where = new List<string>();
        string Bind(object value, NpgsqlDbType? type = null)
        {
            if (type is { } t) p.AddWithValue(t, value);
            else p.AddWithValue(value);
            return "$" + p.Count.ToString(CultureInfo.InvariantCulture);
        }

        if (q.Id is { } id) where.Add($"a.id = {Bind(id)}");
        else where.Add($"a.id > {Bind(q.AfterId)} AND a.id <= {Bind(q.UpToId)}");
        if (q.Namespace is { } ns)
        {
            if (q.Table == AuditTable.AuditEvents && ns == platformNamespace)
            {
                where.Add("a.workspace IS NULL");
            }
            else
            {
                // Only the rows of the tenant that owns the workspace now: a reused name shows nothing of its previous owner.
                var owner = "(SELECT w.tenant_name FROM controlplane.workspaces w WHERE w.name = " + Bind(ns) + ")";
                where.Add(q.Table == AuditTable.AuditEvents
                    ? $"a.workspace = $" + p.Count.ToString(CultureInfo.InvariantCulture) + $" AND COALESCE(a.chain_tenant, a.tenant) = {owner}"
                    : $"a.namespace = $" + p.Count.ToString(CultureInfo.InvariantCulture) + $" AND a.tenant = {owner}");
            }
        }

        foreach (var c in q.Conditions)
        {
            where.Add(Sql(c, q.Table, Bind));
        }

        var columns = q.Table == AuditTable.AuditEvents
            ? "a.id, a.occurred_at, a.actor, a.action, a.kind, a.object_name, a.tenant, a.severity, a.details::text, a.prev_hash, a.hash, a.workspace, a.chain_tenant, a.tenant_seq, a.tenant_prev_hash, a.tenant_hash"
            : "a.id, a.occurred_at, a.intent_uid, a.namespace, a.name, a.tenant, a.correlation_id, a.generation, a.event_type, a.from_phase, a.to_phase, a.ring, a.actor, a.reason, a.details::text, a.dedupe_key, a.prev_hash, a.hash, a.tenant_seq, a.tenant_prev_hash, a.tenant_hash";
        cmd.CommandText = $"SELECT {columns} FROM {TableName(q.Table)} a WHERE {string.Join(" AND ", where)} ORDER BY a.id LIMIT {Bind(q.Limit)}";
        var rows = new List<AuditRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(q.Table == AuditTable.AuditEvents ? AuditRow(r) : DeploymentRow(r));
        }

        return rows;
    }

    static string Sql(AuditCondition c, AuditTable table, Func<object, NpgsqlDbType?, string> bind)
    {
        if (c.Column is null)
        {
            // A key no row carries: present-tests fail, absent-tests pass.
            return c.Op is "!=" or "notin" or "!exists" ? "TRUE" : "FALSE";
        }

        var col = c.Column == "$namespace" ? NamespaceColumn(table) : c.Column;
        return c.Op switch
        {
            "=" => $"{col} = {bind(c.Values[0], null)}",
            "!=" => $"{col} IS DISTINCT FROM {bind(c.Values[0], null)}",
            "in" => $"{col} = ANY({bind(c.Values.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text)})",
            "notin" => $"({col} IS NULL OR {col} <> ALL({bind(c.Values.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text)}))",
            "exists" => $"{col} IS NOT NULL",
            "!exists" => $"{col} IS NULL",
            ">=time" => $"a.occurred_at >= {bind(DateTime.Parse(c.Values[0], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal), NpgsqlDbType.TimestampTz)}",
            _ => throw new ArgumentOutOfRangeException(nameof(c), c.Op, "unknown selector operator"),
        };
    }

    static string? Text(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    static long? Long(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    AuditRecord AuditRow(NpgsqlDataReader r)
    {
        var occurred = DateTime.SpecifyKind(r.GetDateTime(1), DateTimeKind.Utc);
        var entry = new AuditEntry(r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), Text(r, 6), SystemDatabase.DetailsOf(r.GetString(8)), r.GetString(7));
        var workspace = Text(r, 11);
        var chainTenant = Text(r, 12);
        return new AuditRecord(r.GetInt64(0), occurred, workspace ?? platformNamespace, workspace, AuditEvent(occurred, entry), r.GetString(9), r.GetString(10),
            chainTenant, Long(r, 13), Text(r, 14), Text(r, 15),
            new Dictionary<string, string?>
            {
                ["audit.controlplane.io/tenant"] = chainTenant ?? entry.Tenant,
                ["audit.controlplane.io/kind"] = entry.Kind,
                ["audit.controlplane.io/action"] = entry.Action,
                ["audit.controlplane.io/severity"] = entry.Severity,
            });
    }

    static AuditRecord DeploymentRow(NpgsqlDataReader r)
    {
        var occurred = DateTime.SpecifyKind(r.GetDateTime(1), DateTimeKind.Utc);
        var e = new DeploymentEvent(r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetInt64(7), r.GetString(8),
            Text(r, 9), Text(r, 10), Text(r, 11), r.GetString(12), r.GetString(13), SystemDatabase.DetailsOf(r.GetString(14)), r.GetString(15));
        var tenantSeq = Long(r, 18);
        return new AuditRecord(r.GetInt64(0), occurred, e.Namespace, e.Namespace, DeploymentEventObject(occurred, e), r.GetString(16), r.GetString(17),
            tenantSeq is null ? null : e.Tenant, tenantSeq, Text(r, 19), Text(r, 20),
            new Dictionary<string, string?>
            {
                ["audit.controlplane.io/tenant"] = e.Tenant,
                ["audit.controlplane.io/type"] = e.EventType,
                ["audit.controlplane.io/intent"] = e.Name,
            });
    }

    /// <summary>The object an audit row's hashes cover (SystemDatabase.ChainHash hashes exactly this).</summary>
    public static JsonObject AuditEvent(DateTime occurredAt, AuditEntry e) => new()
    {
        ["occurredAt"] = occurredAt.ToUniversalTime().ToString(TimeFormat, CultureInfo.InvariantCulture),
        ["actor"] = e.Actor,
        ["action"] = e.Action,
        ["kind"] = e.Kind,
        ["objectName"] = e.ObjectName,
        ["tenant"] = e.Tenant,
        ["severity"] = e.Severity,
        ["details"] = JsonNode.Parse(SystemDatabase.Canonical(e.Details)),
    };

    /// <summary>The object a deployment event's hashes cover (DeploymentEventStore.ChainHash hashes exactly this).</summary>
    public static JsonObject DeploymentEventObject(DateTime occurredAt, DeploymentEvent e) => new()
    {
        ["occurredAt"] = occurredAt.ToUniversalTime().ToString(TimeFormat, CultureInfo.InvariantCulture),
        ["intentUid"] = e.IntentUid,
        ["namespace"] = e.Namespace,
        ["name"] = e.Name,
        ["tenant"] = e.Tenant,
        ["correlationId"] = e.CorrelationId,
        ["generation"] = e.Generation,
        ["eventType"] = e.EventType,
        ["fromPhase"] = e.FromPhase,
        ["toPhase"] = e.ToPhase,
        ["ring"] = e.Ring,
        ["actor"] = e.Actor,
        ["reason"] = e.Reason,
        ["details"] = JsonNode.Parse(SystemDatabase.Canonical(e.Details)),
        ["dedupeKey"] = e.DedupeKey,
    };

    /// <summary>The hash rule of docs/audit-api.md, over a served event object: what a client recomputes.</summary>
    public static string Hash(string prevHash, JsonNode eventObject) => SystemDatabase.Sha256Hex(prevHash + SystemDatabase.Canonical(eventObject));
}
