using System.Text.Json.Nodes;
using ControlPlane.Operator.Policy;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

/// <summary>A channel's delivery state (controlplane.notification_channels) and its undelivered count.</summary>
public sealed record ChannelState(
    string Uid,
    long AuditCursor,
    long DeploymentCursor,
    int ConsecutiveFailures,
    long? DisabledGeneration,
    long Delivered,
    long FailedAttempts,
    long Pending,
    DateTime? LastDeliveredAt,
    string? LastError,
    DateTime? NextDue);

/// <summary>A delivery to make: one event for one channel, in id order.</summary>
public sealed record PendingDelivery(long Id, string EventId, string EventType, JsonObject Payload, DateTime CommittedAt, int Attempts, DateTime NextAttemptAt);

/// <summary>A delivery as the history shows it.</summary>
public sealed record DeliveryRecord(long Id, string EventId, string EventType, string State, int Attempts, int? LastStatusCode, string? LastError,
    DateTime? LastAttemptAt, DateTime? DeliveredAt, DateTime CommittedAt);

/// <summary>A delivery to record for a channel (its event id is the idempotency key).</summary>
public sealed record NewDelivery(string EventId, string EventType, JsonObject Payload, DateTime CommittedAt);

/// <summary>
/// Notification delivery state in the system of record (migration 0010): per channel its cursors over the two
/// chained tables, its failure streak and history rows. State lives only here, so any leader resumes where the
/// last one stopped. Reads are plain queries; every write is one transaction counted by <see cref="SystemDatabase.Writes"/>
/// only when it changed something.
/// </summary>
public static class NotificationStore
{
    const string StateColumns = """
        c.channel_uid, c.audit_cursor, c.deployment_cursor, c.consecutive_failures, c.disabled_generation, c.delivered_count, c.failed_count,
        (SELECT count(*) FROM controlplane.notification_deliveries d WHERE d.channel_uid = c.channel_uid AND d.state <> 'delivered'),
        c.last_delivered_at, c.last_error,
        (SELECT d.next_attempt_at FROM controlplane.notification_deliveries d WHERE d.channel_uid = c.channel_uid AND d.state <> 'delivered' ORDER BY d.id LIMIT 1)
        """;

    static ChannelState ReadState(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt32(3), r.IsDBNull(4) ? null : r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7),
        r.IsDBNull(8) ? null : Utc(r.GetDateTime(8)), r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : Utc(r.GetDateTime(10)));

    static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);

    public static async Task<ChannelState?> GetChannelStateAsync(this SystemDatabase db, string uid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand($"SELECT {StateColumns} FROM controlplane.notification_channels c WHERE c.channel_uid = $1");
        cmd.Parameters.AddWithValue(uid);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadState(r) : null;
    }

    /// <summary>Every channel's state (the delivery loop's one query per tick).</summary>
    public static async Task<IReadOnlyList<ChannelState>> GetChannelStatesAsync(this SystemDatabase db, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand($"SELECT {StateColumns} FROM controlplane.notification_channels c");
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var all = new List<ChannelState>();
        while (await r.ReadAsync(ct).ConfigureAwait(false)) all.Add(ReadState(r));
        return all;
    }

    /// <summary>The newest committed ids of both chained tables.</summary>
    public static async Task<(long Audit, long Deployment)> HeadsAsync(this SystemDatabase db, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand(
            "SELECT (SELECT COALESCE(max(id), 0) FROM controlplane.audit_events), (SELECT COALESCE(max(id), 0) FROM controlplane.deployment_events)");
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        return (r.GetInt64(0), r.GetInt64(1));
    }

    /// <summary>
    /// Registers a channel the first time it is seen, its cursors at the current heads: it hears what is committed
    /// from then on. True when the row was made (a write); an existing row is left as it is.
    /// </summary>
    public static Task<bool> EnsureChannelAsync(this SystemDatabase db, string uid, string key, CancellationToken ct) =>
        db.TransactAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.notification_channels (channel_uid, channel_key, audit_cursor, deployment_cursor)
                SELECT $1, $2, (SELECT COALESCE(max(id), 0) FROM controlplane.audit_events), (SELECT COALESCE(max(id), 0) FROM controlplane.deployment_events)
                ON CONFLICT (channel_uid) DO NOTHING
                """, conn, tx);
            cmd.Parameters.AddWithValue(uid);
            cmd.Parameters.AddWithValue(key);
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, ct);

    /// <summary>A spec change re-enables an auto-disabled channel (audited), and its waiting deliveries are due at once.</summary>
    public static Task ReEnableChannelAsync(this SystemDatabase db, string uid, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            // One statement per command: positional parameters do not span statements.
            await using (var cmd = new NpgsqlCommand("UPDATE controlplane.notification_channels SET disabled_generation = NULL, consecutive_failures = 0 WHERE channel_uid = $1", conn, tx))
            {
                cmd.Parameters.AddWithValue(uid);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            await using (var cmd = new NpgsqlCommand("UPDATE controlplane.notification_deliveries SET next_attempt_at = now() WHERE channel_uid = $1 AND state <> 'delivered'", conn, tx))
            {
                cmd.Parameters.AddWithValue(uid);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }, audit, ct);

    /// <summary>Queues one delivery unless its event id is already queued for the channel (a test nonce sent once). True when queued.</summary>
    public static Task<bool> QueueDeliveryAsync(this SystemDatabase db, string uid, NewDelivery d, CancellationToken ct) =>
        db.TransactAsync(async (conn, tx) => await InsertAsync(conn, tx, uid, d, ct).ConfigureAwait(false) == 1, ct);

    static async Task<int> InsertAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string uid, NewDelivery d, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO controlplane.notification_deliveries (channel_uid, event_id, event_type, payload, committed_at)
            VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (channel_uid, event_id) DO NOTHING
            """, conn, tx);
        cmd.Parameters.AddWithValue(uid);
        cmd.Parameters.AddWithValue(d.EventId);
        cmd.Parameters.AddWithValue(d.EventType);
        cmd.Parameters.AddWithValue(d.Payload.ToJsonString());
        cmd.Parameters.AddWithValue(Utc(d.CommittedAt));
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>One channel's share of a look: its cursors as read, where they move to, and the deliveries that come with the move.</summary>
    public sealed record ChannelAdvance(string Uid, (long Audit, long Deployment) From, (long Audit, long Deployment) To, IReadOnlyList<NewDelivery> Deliveries);

    /// <summary>
    /// Moves every channel's cursors from where they were read to the new positions and records their deliveries,
    /// in one transaction: a crash in between leaves all as they were. A channel whose cursors another leader moved
    /// meanwhile is skipped (its deliveries are not recorded). Returns the channels advanced.
    /// </summary>
    public static async Task<IReadOnlySet<string>> AdvanceAsync(this SystemDatabase db, IReadOnlyList<ChannelAdvance> advances, CancellationToken ct)
    {
        var advanced = new HashSet<string>(StringComparer.Ordinal);
        if (advances.Count == 0) return advanced;
        await db.TransactAsync(async (conn, tx) =>
        {
            // One statement moves every cursor that is still where it was read (compare-and-set per channel).
            await using (var cmd = new NpgsqlCommand("""
                UPDATE controlplane.notification_channels c SET audit_cursor = u.to_audit, deployment_cursor = u.to_deployment
                FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(uid, from_audit, from_deployment, to_audit, to_deployment)
                WHERE c.channel_uid = u.uid AND c.audit_cursor = u.from_audit AND c.deployment_cursor = u.from_deployment
                RETURNING c.channel_uid
                """, conn, tx))
            {
                cmd.Parameters.AddWithValue(advances.Select(a => a.Uid).ToArray());
                cmd.Parameters.AddWithValue(advances.Select(a => a.From.Audit).ToArray());
                cmd.Parameters.AddWithValue(advances.Select(a => a.From.Deployment).ToArray());
                cmd.Parameters.AddWithValue(advances.Select(a => a.To.Audit).ToArray());
                cmd.Parameters.AddWithValue(advances.Select(a => a.To.Deployment).ToArray());
                await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await r.ReadAsync(ct).ConfigureAwait(false)) advanced.Add(r.GetString(0));
            }

            var rows = advances.Where(a => advanced.Contains(a.Uid)).SelectMany(a => a.Deliveries.Select(d => (a.Uid, d))).ToList();
            if (rows.Count > 0)
            {
                // One insert for all of them; WITH ORDINALITY keeps each channel's deliveries in the order given (ids are the delivery order).
                await using var cmd = new NpgsqlCommand("""
                    INSERT INTO controlplane.notification_deliveries (channel_uid, event_id, event_type, payload, committed_at)
                    SELECT u.uid, u.event_id, u.event_type, u.payload::jsonb, u.committed_at
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY AS u(uid, event_id, event_type, payload, committed_at, n)
                    ORDER BY u.n
                    ON CONFLICT (channel_uid, event_id) DO NOTHING
                    """, conn, tx);
                cmd.Parameters.AddWithValue(rows.Select(x => x.Uid).ToArray());
                cmd.Parameters.AddWithValue(rows.Select(x => x.d.EventId).ToArray());
                cmd.Parameters.AddWithValue(rows.Select(x => x.d.EventType).ToArray());
                cmd.Parameters.AddWithValue(rows.Select(x => x.d.Payload.ToJsonString()).ToArray());
                cmd.Parameters.AddWithValue(rows.Select(x => Utc(x.d.CommittedAt)).ToArray());
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            return advanced.Count > 0;
        }, ct).ConfigureAwait(false);
        return advanced;
    }

    /// <summary>Committed rows of both chained tables after the cursors, oldest first (at most <paramref name="limit"/> of each).</summary>
    public static async Task<IReadOnlyList<SourceRow>> ReadSourceRowsAsync(this SystemDatabase db, long afterAudit, long afterDeployment, int limit, CancellationToken ct)
    {
        var rows = new List<SourceRow>();
        await using (var cmd = db.DataSource.CreateCommand("""
            SELECT id, occurred_at, action, kind, object_name, COALESCE(chain_tenant, tenant), workspace, actor, details->>'reason', details::text, prev_hash, hash, tenant_seq, tenant_hash,
                   tenant, severity
            FROM controlplane.audit_events WHERE id > $1 ORDER BY id LIMIT $2
            """))
        {
            cmd.Parameters.AddWithValue(afterAudit);
            cmd.Parameters.AddWithValue(limit);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
                var occurred = Utc(r.GetDateTime(1));
                var details = SystemDatabase.DetailsOf(r.GetString(9));
                var hashed = AuditLog.AuditEvent(occurred, new AuditEntry(r.GetString(7), r.GetString(2), r.GetString(3), r.GetString(4), Text(14), details, r.GetString(15)));
                rows.Add(new SourceRow(NotificationSource.Audit, r.GetInt64(0), occurred, r.GetString(2), r.GetString(3), r.GetString(4), Text(5), Text(6),
                    r.GetString(7), Text(8), null, null, details, r.GetString(10), r.GetString(11),
                    r.IsDBNull(12) ? null : r.GetInt64(12), Text(13), hashed));
            }
        }

        await using (var cmd = db.DataSource.CreateCommand("""
            SELECT id, occurred_at, event_type, namespace || '/' || name, tenant, namespace, actor, reason, from_phase, to_phase, details::text, prev_hash, hash, tenant_seq, tenant_hash,
                   intent_uid, name, correlation_id, generation, ring, dedupe_key
            FROM controlplane.deployment_events WHERE id > $1 ORDER BY id LIMIT $2
            """))
        {
            cmd.Parameters.AddWithValue(afterDeployment);
            cmd.Parameters.AddWithValue(limit);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
                var occurred = Utc(r.GetDateTime(1));
                var details = SystemDatabase.DetailsOf(r.GetString(10));
                var hashed = AuditLog.DeploymentEventObject(occurred, new DeploymentEvent(r.GetString(15), r.GetString(5), r.GetString(16), r.GetString(4), r.GetString(17), r.GetInt64(18),
                    r.GetString(2), Text(8), Text(9), Text(19), r.GetString(6), r.GetString(7), details, r.GetString(20)));
                rows.Add(new SourceRow(NotificationSource.Deployment, r.GetInt64(0), occurred, r.GetString(2), "DeploymentIntent", r.GetString(3), r.GetString(4),
                    r.GetString(5), r.GetString(6), r.GetString(7), Text(8), Text(9), details, r.GetString(11), r.GetString(12),
                    r.IsDBNull(13) ? null : r.GetInt64(13), Text(14), hashed));
            }
        }

        return rows;
    }

    /// <summary>The channel's oldest undelivered events, oldest first: ordering per channel means nothing after the first goes before it.</summary>
    public static async Task<IReadOnlyList<PendingDelivery>> NextDeliveriesAsync(this SystemDatabase db, string uid, int limit, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT id, event_id, event_type, payload::text, committed_at, attempts, next_attempt_at FROM controlplane.notification_deliveries
            WHERE channel_uid = $1 AND state <> 'delivered' ORDER BY id LIMIT $2
            """);
        cmd.Parameters.AddWithValue(uid);
        cmd.Parameters.AddWithValue(limit);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var all = new List<PendingDelivery>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            all.Add(new PendingDelivery(r.GetInt64(0), r.GetString(1), r.GetString(2), SystemDatabase.DetailsOf(r.GetString(3)), Utc(r.GetDateTime(4)), r.GetInt32(5), Utc(r.GetDateTime(6))));
        }

        return all;
    }

    /// <summary>A delivery the receiver accepted, to record.</summary>
    public sealed record Delivered(long Id, int StatusCode, DateTime At);

    /// <summary>
    /// Records deliveries the receiver accepted, in one transaction (a run records them in batches while it goes on
    /// sending; a crash before the batch commits sends them again: at least once, receivers de-duplicate by event id).
    /// </summary>
    public static Task<bool> RecordDeliveredAsync(this SystemDatabase db, string uid, IReadOnlyList<Delivered> delivered, CancellationToken ct) =>
        delivered.Count == 0
            ? Task.FromResult(false)
            : db.TransactAsync(async (conn, tx) =>
            {
                int n;
                await using (var cmd = new NpgsqlCommand("""
                    UPDATE controlplane.notification_deliveries d SET state = 'delivered', attempts = d.attempts + 1, last_status_code = u.code, last_error = NULL,
                        last_attempt_at = u.at, delivered_at = u.at
                    FROM unnest($2::bigint[], $3::int[], $4::timestamptz[]) AS u(id, code, at)
                    WHERE d.id = u.id AND d.channel_uid = $1 AND d.state <> 'delivered'
                    """, conn, tx))
                {
                    cmd.Parameters.AddWithValue(uid);
                    cmd.Parameters.AddWithValue(delivered.Select(d => d.Id).ToArray());
                    cmd.Parameters.AddWithValue(delivered.Select(d => d.StatusCode).ToArray());
                    cmd.Parameters.AddWithValue(delivered.Select(d => Utc(d.At)).ToArray());
                    n = await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await using (var cmd = new NpgsqlCommand("""
                    UPDATE controlplane.notification_channels SET consecutive_failures = 0, delivered_count = delivered_count + $2, last_delivered_at = $3
                    WHERE channel_uid = $1
                    """, conn, tx))
                {
                    cmd.Parameters.AddWithValue(uid);
                    cmd.Parameters.AddWithValue((long)n);
                    cmd.Parameters.AddWithValue(Utc(delivered.Max(d => d.At)));
                    await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                return true;
            }, ct);

    /// <summary>
    /// A receiver answered again: the waiting retries of the given channels (others sending to the same host) are
    /// due now instead of at the end of their backoff. True when some were.
    /// </summary>
    public static Task<bool> RetryNowAsync(this SystemDatabase db, IReadOnlyCollection<string> uids, CancellationToken ct) =>
        uids.Count == 0
            ? Task.FromResult(false)
            : db.TransactAsync(async (conn, tx) =>
            {
                await using var cmd = new NpgsqlCommand("""
                    UPDATE controlplane.notification_deliveries SET next_attempt_at = now()
                    WHERE channel_uid = ANY($1) AND state = 'failed' AND next_attempt_at > now()
                    """, conn, tx);
                cmd.Parameters.AddWithValue(uids.ToArray());
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            }, ct);

    /// <summary>
    /// Records a failed attempt and when to try again; returns the failure streak. When the streak reaches
    /// <paramref name="maxFailures"/> the channel is disabled at <paramref name="generation"/> and
    /// <paramref name="disabledAudit"/> is appended in the same transaction (its channel.auto_disabled row is what
    /// platform channels hear).
    /// </summary>
    public static async Task<(int Streak, bool Disabled)> RecordFailedAsync(this SystemDatabase db, string uid, long deliveryId, int? statusCode, string error,
        DateTime nextAttempt, int maxFailures, long generation, Func<int, AuditEntry> disabledAudit, CancellationToken ct)
    {
        var streak = 0;
        var disabled = false;
        await db.WriteAuditingAsync(async (c, tx) =>
        {
            await using (var cmd = new NpgsqlCommand("""
                UPDATE controlplane.notification_deliveries SET state = 'failed', attempts = attempts + 1, last_status_code = $3, last_error = $4,
                    last_attempt_at = now(), next_attempt_at = $5 WHERE id = $2 AND channel_uid = $1
                """, c, tx))
            {
                cmd.Parameters.AddWithValue(uid);
                cmd.Parameters.AddWithValue(deliveryId);
                cmd.Parameters.AddWithValue(NpgsqlDbType.Integer, (object?)statusCode ?? DBNull.Value);
                cmd.Parameters.AddWithValue(error);
                cmd.Parameters.AddWithValue(Utc(nextAttempt));
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            // Disabled by the attempt that reaches the limit, once: the audit row (channel.auto_disabled) commits with it.
            await using (var cmd = new NpgsqlCommand("""
                UPDATE controlplane.notification_channels SET consecutive_failures = consecutive_failures + 1, failed_count = failed_count + 1, last_error = $2,
                    disabled_generation = CASE WHEN disabled_generation IS NULL AND consecutive_failures + 1 >= $3 THEN $4 ELSE disabled_generation END
                WHERE channel_uid = $1
                RETURNING consecutive_failures, disabled_generation IS NOT NULL AND consecutive_failures = $3
                """, c, tx))
            {
                cmd.Parameters.AddWithValue(uid);
                cmd.Parameters.AddWithValue(error);
                cmd.Parameters.AddWithValue(maxFailures);
                cmd.Parameters.AddWithValue(generation);
                await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                if (await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    streak = r.GetInt32(0);
                    disabled = r.GetBoolean(1);
                }
            }

            return disabled ? disabledAudit(streak) : null;
        }, ct).ConfigureAwait(false);
        return (streak, disabled);
    }

    /// <summary>
    /// A channel's newest deliveries, newest first, by its UID (the audit API's notificationdeliveries and the plugin's
    /// `channel history`: the server resolves the live channel first, so a channel made again under its name, or a
    /// namespace reused, never shows an earlier one's rows): never the payload.
    /// </summary>
    public static async Task<IReadOnlyList<DeliveryRecord>> HistoryAsync(NpgsqlDataSource dataSource, string channelUid, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, event_id, event_type, state, attempts, last_status_code, last_error, last_attempt_at, delivered_at, committed_at
            FROM controlplane.notification_deliveries WHERE channel_uid = $1 ORDER BY id DESC LIMIT $2
            """);
        cmd.Parameters.AddWithValue(channelUid);
        cmd.Parameters.AddWithValue(limit);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var all = new List<DeliveryRecord>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            all.Add(new DeliveryRecord(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt32(4), r.IsDBNull(5) ? null : r.GetInt32(5),
                r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : Utc(r.GetDateTime(7)), r.IsDBNull(8) ? null : Utc(r.GetDateTime(8)), Utc(r.GetDateTime(9))));
        }

        return all;
    }

    /// <summary>
    /// Deletes up to <paramref name="limit"/> delivered history rows delivered before <paramref name="before"/>, oldest
    /// first; returns how many. Rows not yet delivered are never pruned (they are the backlog).
    /// </summary>
    public static async Task<int> PruneHistoryAsync(this SystemDatabase db, DateTime before, int limit, CancellationToken ct)
    {
        var deleted = 0;
        await db.TransactAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                DELETE FROM controlplane.notification_deliveries WHERE id IN (
                    SELECT id FROM controlplane.notification_deliveries WHERE state = 'delivered' AND delivered_at < $1 ORDER BY delivered_at LIMIT $2)
                """, conn, tx);
            cmd.Parameters.AddWithValue(Utc(before));
            cmd.Parameters.AddWithValue(limit);
            deleted = await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return deleted > 0;
        }, ct).ConfigureAwait(false);
        return deleted;
    }

    /// <summary>Deletes the state of channels that no longer exist (by UID); their history goes with them.</summary>
    public static Task<bool> ForgetChannelsAsync(this SystemDatabase db, IReadOnlyCollection<string> uids, CancellationToken ct) =>
        uids.Count == 0
            ? Task.FromResult(false)
            : db.TransactAsync(async (conn, tx) =>
            {
                await using var cmd = new NpgsqlCommand("DELETE FROM controlplane.notification_channels WHERE channel_uid = ANY($1)", conn, tx);
                cmd.Parameters.AddWithValue(uids.ToArray());
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            }, ct);
}
