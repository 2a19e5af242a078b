using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

/// <summary>One entry of the DeploymentIntent event store. <see cref="DedupeKey"/> makes a repeated pass append nothing.</summary>
public sealed record DeploymentEvent(
    string IntentUid,
    string Namespace,
    string Name,
    string Tenant,
    string CorrelationId,
    long Generation,
    string EventType,
    string? FromPhase,
    string? ToPhase,
    string? Ring,
    string Actor,
    string Reason,
    JsonObject Details,
    string DedupeKey);

/// <summary>A stored event with its place in the chain.</summary>
public sealed record StoredDeploymentEvent(long Id, DateTime OccurredAt, DeploymentEvent Event, string PrevHash, string Hash);

/// <summary>
/// The append-only, hash-chained event store of DeploymentIntents (controlplane.deployment_events),
/// chained like the audit trail but on its own chain and lock, and the record of risk model versions.
/// </summary>
public static class DeploymentEventStore
{
    const long ChainLockKey = 0x4465706C6F79; // "Deploy"

    /// <summary>Appends the events not yet stored (by dedupe key), in order, in one transaction; true when any was new.</summary>
    public static async Task<bool> AppendDeploymentEventsAsync(this SystemDatabase db, IReadOnlyList<DeploymentEvent> events, CancellationToken ct)
    {
        if (events.Count == 0) return false;
        var appended = await AppendAsync(db, events, ct).ConfigureAwait(false);
        if (appended) db.Appended.Raise();
        return appended;
    }

    static Task<bool> AppendAsync(SystemDatabase db, IReadOnlyList<DeploymentEvent> events, CancellationToken ct) =>
        db.TransactAsync(async (conn, tx) =>
            {
                await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({ChainLockKey})", conn, tx))
                {
                    await lockCmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                string prev;
                await using (var last = new NpgsqlCommand("SELECT hash FROM controlplane.deployment_events ORDER BY id DESC LIMIT 1", conn, tx))
                {
                    prev = (string?)await last.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? "";
                }

                var any = false;
                var tenantHeads = new Dictionary<string, TenantLink>(StringComparer.Ordinal);
                foreach (var e in events)
                {
                    await using (var exists = new NpgsqlCommand("SELECT 1 FROM controlplane.deployment_events WHERE dedupe_key = $1", conn, tx))
                    {
                        exists.Parameters.AddWithValue(e.DedupeKey);
                        if (await exists.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null) continue;
                    }

                    var now = DateTime.UtcNow;
                    var occurred = new DateTime(now.Ticks - now.Ticks % 10, DateTimeKind.Utc);
                    var hash = ChainHash(prev, occurred, e);
                    var link = tenantHeads.TryGetValue(e.Tenant, out var head) ? head : await TenantChains.NextDeploymentLinkAsync(conn, tx, e.Tenant, ct).ConfigureAwait(false);
                    var tenantHash = ChainHash(link.PrevHash, occurred, e);
                    tenantHeads[e.Tenant] = new TenantLink(e.Tenant, link.Sequence + 1, tenantHash);
                    await using var insert = new NpgsqlCommand("""
                        INSERT INTO controlplane.deployment_events (occurred_at, intent_uid, namespace, name, tenant, correlation_id, generation, event_type,
                            from_phase, to_phase, ring, actor, reason, details, dedupe_key, prev_hash, hash, tenant_seq, tenant_prev_hash, tenant_hash)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17, $18, $19, $20)
                        """, conn, tx);
                    insert.Parameters.AddWithValue(occurred);
                    insert.Parameters.AddWithValue(e.IntentUid);
                    insert.Parameters.AddWithValue(e.Namespace);
                    insert.Parameters.AddWithValue(e.Name);
                    insert.Parameters.AddWithValue(e.Tenant);
                    insert.Parameters.AddWithValue(e.CorrelationId);
                    insert.Parameters.AddWithValue(e.Generation);
                    insert.Parameters.AddWithValue(e.EventType);
                    insert.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)e.FromPhase ?? DBNull.Value);
                    insert.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)e.ToPhase ?? DBNull.Value);
                    insert.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)e.Ring ?? DBNull.Value);
                    insert.Parameters.AddWithValue(e.Actor);
                    insert.Parameters.AddWithValue(e.Reason);
                    insert.Parameters.AddWithValue(SystemDatabase.Canonical(e.Details));
                    insert.Parameters.AddWithValue(e.DedupeKey);
                    insert.Parameters.AddWithValue(prev);
                    insert.Parameters.AddWithValue(hash);
                    insert.Parameters.AddWithValue(link.Sequence);
                    insert.Parameters.AddWithValue(link.PrevHash);
                    insert.Parameters.AddWithValue(tenantHash);
                    await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    prev = hash;
                    any = true;
                }

                return any;
            }, ct);

    /// <summary>The hash of a deployment event: over exactly the object the audit API serves (<see cref="AuditLog.DeploymentEventObject"/>).</summary>
    public static string ChainHash(string previousHash, DateTime occurredAt, DeploymentEvent e) => AuditLog.Hash(previousHash, AuditLog.DeploymentEventObject(occurredAt, e));

    /// <summary>An intent's events, in order.</summary>
    public static async Task<IReadOnlyList<StoredDeploymentEvent>> GetDeploymentEventsAsync(this SystemDatabase db, string intentUid, CancellationToken ct) =>
        await ReadAsync(db, "WHERE intent_uid = $1", intentUid, ct).ConfigureAwait(false);

    /// <summary>Walks the whole chain; returns the id of the first row that does not verify, or null.</summary>
    public static async Task<long?> VerifyDeploymentEventChainAsync(this SystemDatabase db, CancellationToken ct)
    {
        var prev = "";
        foreach (var e in await ReadAsync(db, "", null, ct).ConfigureAwait(false))
        {
            if (e.PrevHash != prev || ChainHash(prev, e.OccurredAt, e.Event) != e.Hash) return e.Id;
            prev = e.Hash;
        }

        return null;
    }

    static async Task<IReadOnlyList<StoredDeploymentEvent>> ReadAsync(SystemDatabase db, string where, string? intentUid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand($"""
            SELECT id, occurred_at, intent_uid, namespace, name, tenant, correlation_id, generation, event_type, from_phase, to_phase, ring, actor, reason,
                   details::text, dedupe_key, prev_hash, hash
            FROM controlplane.deployment_events {where} ORDER BY id
            """);
        if (intentUid is not null) cmd.Parameters.AddWithValue(intentUid);
        var result = new List<StoredDeploymentEvent>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
            var e = new DeploymentEvent(r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetInt64(7), r.GetString(8),
                Text(9), Text(10), Text(11), r.GetString(12), r.GetString(13), SystemDatabase.DetailsOf(r.GetString(14)), r.GetString(15));
            result.Add(new StoredDeploymentEvent(r.GetInt64(0), DateTime.SpecifyKind(r.GetDateTime(1), DateTimeKind.Utc), e, r.GetString(16), r.GetString(17)));
        }

        return result;
    }

    /// <summary>
    /// Records a risk model version the first time it is used and says whether the stored one is the
    /// same: a version reused for other weights is refused (an intent keeps the model it was scored with).
    /// </summary>
    public static async Task<bool> RecordRiskModelAsync(this SystemDatabase db, string version, JsonObject weights, double threshold, CancellationToken ct)
    {
        var canonical = SystemDatabase.Canonical(weights);
        await using (var read = db.DataSource.CreateCommand("SELECT weights::text, threshold FROM controlplane.risk_models WHERE version = $1"))
        {
            read.Parameters.AddWithValue(version);
            await using var r = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                return SystemDatabase.Canonical(JsonNode.Parse(r.GetString(0))) == canonical && r.GetDouble(1).Equals(threshold);
            }
        }

        await db.TransactAsync(async (conn, tx) =>
        {
            await using var insert = new NpgsqlCommand(
                "INSERT INTO controlplane.risk_models (version, weights, threshold) VALUES ($1, $2::jsonb, $3) ON CONFLICT (version) DO NOTHING", conn, tx);
            insert.Parameters.AddWithValue(version);
            insert.Parameters.AddWithValue(canonical);
            insert.Parameters.AddWithValue(threshold);
            return await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, ct).ConfigureAwait(false);
        return true;
    }
}
