using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

/// <summary>One audit event, before it is chained.</summary>
public sealed record AuditEntry(string Actor, string Action, string Kind, string ObjectName, string? Tenant, JsonObject Details, string Severity = "info");

public sealed record TenantRecord(Guid Id, string Name, string Region, string DataMode, string? DisplayName, bool Suspended,
    string SpecJson, string SpecHash, DateTime? DeletedAt);

/// <summary>
/// The system of record: migrations, tenant rows and the hash-chained audit trail. Every write goes
/// through a transaction that appends its audit event, so a change is never recorded without its trail.
/// Its data source pins search_path to pg_catalog (<see cref="RegionDatabases.Pin"/>): every table,
/// function and catalog named here is schema-qualified.
/// </summary>
public sealed class SystemDatabase(NpgsqlDataSource dataSource, ILogger logger)
{
    const long MigrationLockKey = 0x436f6e74726f6c; // "Control"
    const long AuditLockKey = 0x4175646974;        // "Audit"

    long writes;
    readonly TaskCompletionSource migrated = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>Raised after a transaction that appended to a chained table (audit or deployment events) commits.</summary>
    public CommitSignal Appended { get; } = new();

    /// <summary>Completes once this instance has brought the schema up to date: a loop of its own (not a reconcile) waits for it.</summary>
    public Task Migrated => migrated.Task;

    /// <summary>Write transactions committed by this instance (what a no-op reconcile must not add to).</summary>
    public long Writes => Interlocked.Read(ref writes);

    /// <summary>Applies pending migrations under an advisory lock, so concurrent starts are safe.</summary>
    public async Task<int> MigrateAsync(CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await Exec(conn, tx, $"SELECT pg_advisory_xact_lock({MigrationLockKey})", ct).ConfigureAwait(false);
        await Exec(conn, tx, """
            CREATE SCHEMA IF NOT EXISTS controlplane;
            CREATE TABLE IF NOT EXISTS controlplane.schema_migrations (
                version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
            """, ct).ConfigureAwait(false);
        var applied = new HashSet<int>();
        await using (var cmd = new NpgsqlCommand("SELECT version FROM controlplane.schema_migrations", conn, tx))
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) applied.Add(reader.GetInt32(0));
        }

        var count = 0;
        foreach (var m in Migrations.All.Where(m => !applied.Contains(m.Version)).OrderBy(m => m.Version))
        {
            await Exec(conn, tx, m.Sql, ct).ConfigureAwait(false);
            await using var record = new NpgsqlCommand("INSERT INTO controlplane.schema_migrations (version, name) VALUES ($1, $2)", conn, tx);
            record.Parameters.AddWithValue(m.Version);
            record.Parameters.AddWithValue(m.Name);
            await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            logger.LogInformation("applied migration {Version} ({Name})", m.Version, m.Name);
            count++;
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (count > 0) Interlocked.Increment(ref writes);
        migrated.TrySetResult();
        return count;
    }

    static async Task Exec(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async Task<TenantRecord?> GetTenantAsync(string name, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT id, name, region, data_mode, display_name, suspended, spec::text, spec_hash, deleted_at FROM controlplane.tenants WHERE name = $1");
        cmd.Parameters.AddWithValue(name);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false)) return null;
        return new TenantRecord(reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
            reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetBoolean(5), reader.GetString(6), reader.GetString(7),
            reader.IsDBNull(8) ? null : reader.GetDateTime(8));
    }

    /// <summary>Inserts or updates the tenant row and appends the audit event in one transaction.</summary>
    public async Task<Guid> UpsertTenantAsync(TenantRecord desired, string k8sUid, AuditEntry audit, CancellationToken ct)
    {
        var id = Guid.Empty;
        await WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.tenants (id, name, region, data_mode, display_name, suspended, spec, spec_hash, k8s_uid)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
                ON CONFLICT (name) DO UPDATE SET region = EXCLUDED.region, data_mode = EXCLUDED.data_mode,
                    display_name = EXCLUDED.display_name, suspended = EXCLUDED.suspended, spec = EXCLUDED.spec,
                    spec_hash = EXCLUDED.spec_hash, k8s_uid = EXCLUDED.k8s_uid, updated_at = now(), deleted_at = NULL
                RETURNING id
                """, conn, tx);
            cmd.Parameters.AddWithValue(desired.Id);
            cmd.Parameters.AddWithValue(desired.Name);
            cmd.Parameters.AddWithValue(desired.Region);
            cmd.Parameters.AddWithValue(desired.DataMode);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)desired.DisplayName ?? DBNull.Value);
            cmd.Parameters.AddWithValue(desired.Suspended);
            cmd.Parameters.AddWithValue(desired.SpecJson);
            cmd.Parameters.AddWithValue(desired.SpecHash);
            cmd.Parameters.AddWithValue(k8sUid);
            id = (Guid)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, audit, ct).ConfigureAwait(false);
        return id;
    }

    /// <summary>
    /// Marks the row deleted and audits it, unless the row was marked since <paramref name="deletionStarted"/> (the object's
    /// deletionTimestamp) already: a pass repeated after the finalizer removal that follows was lost (a crash), or from a
    /// stale cached copy that still shows the finalizer, records this deletion once. A tenant without a row is audited as before.
    /// </summary>
    public Task<bool> MarkTenantDeletedAsync(string name, DateTime? deletionStarted, AuditEntry audit, CancellationToken ct) =>
        WriteIfChangedAsync(async (conn, tx) =>
        {
            await using (var cmd = new NpgsqlCommand(
                "UPDATE controlplane.tenants SET deleted_at = now(), updated_at = now() WHERE name = $1 AND deleted_at IS NULL", conn, tx))
            {
                cmd.Parameters.AddWithValue(name);
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0) return true;
            }

            await using var recorded = new NpgsqlCommand("SELECT NOT EXISTS (SELECT 1 FROM controlplane.tenants WHERE name = $1 AND deleted_at >= $2)", conn, tx);
            recorded.Parameters.AddWithValue(name);
            recorded.Parameters.AddWithValue(NpgsqlDbType.TimestampTz, deletionStarted is { } at ? (at.Kind == DateTimeKind.Local ? at.ToUniversalTime() : DateTime.SpecifyKind(at, DateTimeKind.Utc)) : DBNull.Value);
            return (bool)(await recorded.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, audit, ct);

    /// <summary>Whether an audit event with this action, reason and generation was already written for the object (keeps appends idempotent when the cache lags).</summary>
    public async Task<bool> AuditExistsAsync(string kind, string objectName, string action, string reason, long? generation, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT 1 FROM controlplane.audit_events
            WHERE kind = $1 AND object_name = $2 AND action = $3 AND details->>'reason' = $4 AND details->>'generation' IS NOT DISTINCT FROM $5
            LIMIT 1
            """);
        cmd.Parameters.AddWithValue(kind);
        cmd.Parameters.AddWithValue(objectName);
        cmd.Parameters.AddWithValue(action);
        cmd.Parameters.AddWithValue(reason);
        cmd.Parameters.AddWithValue(NpgsqlTypes.NpgsqlDbType.Text, (object?)generation?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? DBNull.Value);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    /// <summary>One write transaction: the change and its audit event commit together or not at all.</summary>
    public async Task WriteAsync(Func<NpgsqlConnection, NpgsqlTransaction, Task> change, AuditEntry audit, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await change(conn, tx).ConfigureAwait(false);
        await AppendAuditAsync(conn, tx, audit, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        Interlocked.Increment(ref writes);
        Appended.Raise();
    }

    /// <summary>
    /// As <see cref="WriteAsync"/>, but the audit event is appended only when the change did something:
    /// an idempotent insert that finds its row already there (a pass repeated after a crash) records nothing twice.
    /// </summary>
    public async Task<bool> WriteIfChangedAsync(Func<NpgsqlConnection, NpgsqlTransaction, Task<bool>> change, AuditEntry audit, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        var changed = await change(conn, tx).ConfigureAwait(false);
        if (changed) await AppendAuditAsync(conn, tx, audit, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (changed)
        {
            Interlocked.Increment(ref writes);
            Appended.Raise();
        }

        return changed;
    }

    /// <summary>A write transaction whose change says whether it needs an audit event (null: none); always counted as a write.</summary>
    public async Task WriteAuditingAsync(Func<NpgsqlConnection, NpgsqlTransaction, Task<AuditEntry?>> change, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        var audit = await change(conn, tx).ConfigureAwait(false);
        if (audit is not null) await AppendAuditAsync(conn, tx, audit, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        Interlocked.Increment(ref writes);
        if (audit is not null) Appended.Raise();
    }

    /// <summary>A write transaction of its own kind (no audit event: the store it writes is its own trail); counted as a write when it changed something.</summary>
    public async Task<bool> TransactAsync(Func<NpgsqlConnection, NpgsqlTransaction, Task<bool>> change, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        var changed = await change(conn, tx).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (changed) Interlocked.Increment(ref writes);
        return changed;
    }

    public Task AppendAuditAsync(AuditEntry entry, CancellationToken ct) => WriteAsync((_, _) => Task.CompletedTask, entry, ct);

    /// <summary>
    /// Appends to the chain: hash = sha256(previous hash || canonical JSON of the row). A transaction
    /// advisory lock serialises appenders, so the chain has exactly one successor per row.
    /// </summary>
    static async Task AppendAuditAsync(NpgsqlConnection conn, NpgsqlTransaction tx, AuditEntry entry, CancellationToken ct)
    {
        // The lock serialises every appender, so what is done while holding it is kept to three round trips:
        // the lock with both chains' heads in one batch (each statement's snapshot is taken after the one
        // before it ran, so the heads are read under the lock), the insert, the commit. Who the tenant chain
        // is does not depend on the chain and is read before.
        var chainTenant = await TenantChains.AuditChainTenantAsync(conn, tx, entry, ct).ConfigureAwait(false);
        string prev;
        TenantLink? link = null;
        await using (var heads = new NpgsqlBatch(conn, tx))
        {
            heads.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT pg_advisory_xact_lock({AuditLockKey})"));
            heads.BatchCommands.Add(new NpgsqlBatchCommand("SELECT hash FROM controlplane.audit_events ORDER BY id DESC LIMIT 1"));
            if (chainTenant is not null)
            {
                var tenantHead = new NpgsqlBatchCommand(TenantChains.AuditHeadSql);
                tenantHead.Parameters.Add(new NpgsqlParameter { Value = chainTenant });
                heads.BatchCommands.Add(tenantHead);
            }

            await using var r = await heads.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await r.NextResultAsync(ct).ConfigureAwait(false); // past the lock's row
            prev = await r.ReadAsync(ct).ConfigureAwait(false) ? r.GetString(0) : "";
            if (chainTenant is not null)
            {
                await r.NextResultAsync(ct).ConfigureAwait(false);
                link = await r.ReadAsync(ct).ConfigureAwait(false)
                    ? new TenantLink(chainTenant, r.GetInt64(0) + 1, r.GetString(1))
                    : new TenantLink(chainTenant, 1, "");
            }
        }

        // Microsecond precision: what Postgres stores is what the hash covers.
        var now = DateTime.UtcNow;
        var occurred = new DateTime(now.Ticks - now.Ticks % 10, DateTimeKind.Utc);
        var hash = ChainHash(prev, occurred, entry);
        await using var insert = new NpgsqlCommand("""
            INSERT INTO controlplane.audit_events (occurred_at, actor, action, kind, object_name, tenant, severity, details, prev_hash, hash,
                chain_tenant, tenant_seq, tenant_prev_hash, tenant_hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14)
            """, conn, tx);
        insert.Parameters.AddWithValue(occurred);
        insert.Parameters.AddWithValue(entry.Actor);
        insert.Parameters.AddWithValue(entry.Action);
        insert.Parameters.AddWithValue(entry.Kind);
        insert.Parameters.AddWithValue(entry.ObjectName);
        insert.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)entry.Tenant ?? DBNull.Value);
        insert.Parameters.AddWithValue(entry.Severity);
        insert.Parameters.AddWithValue(Canonical(entry.Details));
        insert.Parameters.AddWithValue(prev);
        insert.Parameters.AddWithValue(hash);
        insert.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)link?.Tenant ?? DBNull.Value);
        insert.Parameters.AddWithValue(NpgsqlDbType.Bigint, (object?)link?.Sequence ?? DBNull.Value);
        insert.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)link?.PrevHash ?? DBNull.Value);
        insert.Parameters.AddWithValue(NpgsqlDbType.Text, link is null ? DBNull.Value : ChainHash(link.PrevHash, occurred, entry));
        await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The hash of an audit row: over exactly the object the audit API serves (<see cref="AuditLog.AuditEvent"/>), so a client recomputes it.</summary>
    public static string ChainHash(string previousHash, DateTime occurredAt, AuditEntry e) => AuditLog.Hash(previousHash, AuditLog.AuditEvent(occurredAt, e));

    /// <summary>
    /// A row's details as written (always an object). A row changed behind the triggers may hold any JSON (null, an
    /// array): it is kept as a marker object, whose hash then does not verify, so the chain reports the break at that row
    /// instead of the reader throwing and verification stopping.
    /// </summary>
    public static JsonObject DetailsOf(string json) => JsonNode.Parse(json) as JsonObject ?? new JsonObject { ["notAnObject"] = json };

    /// <summary>JSON with object keys sorted at every level and no insignificant whitespace.</summary>
    public static string Canonical(JsonNode? node) => Sort(node)?.ToJsonString() ?? "null";

    static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, Sort(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Sort).ToArray()),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };

    /// <summary>Recomputes the chain; returns the id of the first row that does not verify, or null.</summary>
    public async Task<long?> VerifyAuditChainAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT id, occurred_at, actor, action, kind, object_name, tenant, severity, details::text, prev_hash, hash FROM controlplane.audit_events ORDER BY id");
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var prev = "";
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var entry = new AuditEntry(reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetString(6), DetailsOf(reader.GetString(8)), reader.GetString(7));
            var expected = ChainHash(prev, reader.GetDateTime(1), entry);
            if (reader.GetString(9) != prev || reader.GetString(10) != expected) return reader.GetInt64(0);
            prev = expected;
        }

        return null;
    }

    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static string SerializeCanonical(object value) => Canonical(JsonSerializer.SerializeToNode(value));
}
