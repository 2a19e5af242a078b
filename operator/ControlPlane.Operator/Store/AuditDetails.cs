using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Store;

/// <summary>Idempotency checks on audit rows keyed by one of their details (an episode, not a generation).</summary>
public static class AuditDetails
{
    /// <summary>Whether the object already has an audit row with this action whose details[<paramref name="key"/>] is <paramref name="value"/>.</summary>
    public static async Task<bool> AuditDetailExistsAsync(this SystemDatabase db, string kind, string objectName, string action, string key, string value, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT 1 FROM controlplane.audit_events
            WHERE kind = $1 AND object_name = $2 AND action = $3 AND details->>$4 = $5
            LIMIT 1
            """);
        cmd.Parameters.AddWithValue(kind);
        cmd.Parameters.AddWithValue(objectName);
        cmd.Parameters.AddWithValue(action);
        cmd.Parameters.AddWithValue(key);
        cmd.Parameters.AddWithValue(value);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    /// <summary>
    /// Whether the newest of the object's audit rows whose action is one of <paramref name="transitions"/> is
    /// <paramref name="action"/> with <paramref name="details"/> (each key given equal to the recorded one, arrays whole: a
    /// recorded [a, b] is not [a]; keys not given are not compared): the change of state it records is on record
    /// already, and only its status write was lost (a conflict, a crash, a cache that lagged). A row of another
    /// transition in between (a revoke before a re-approval) makes the same action due again. <paramref name="since"/>
    /// (the object's creationTimestamp): rows from before it are a deleted predecessor's of the same name, not this object's.
    /// </summary>
    public static async Task<bool> LatestTransitionIsAsync(this SystemDatabase db, string kind, string objectName, IReadOnlyCollection<string> transitions,
        string action, JsonObject details, CancellationToken ct, DateTime? since = null)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT e.action = $4 AND NOT EXISTS (SELECT 1 FROM jsonb_each($5::jsonb) AS want (key, value) WHERE e.details -> want.key IS DISTINCT FROM want.value)
            FROM controlplane.audit_events e
            WHERE kind = $1 AND object_name = $2 AND action = ANY($3) AND ($6::timestamptz IS NULL OR occurred_at >= $6)
            ORDER BY id DESC
            LIMIT 1
            """);
        cmd.Parameters.AddWithValue(kind);
        cmd.Parameters.AddWithValue(objectName);
        cmd.Parameters.AddWithValue(transitions.ToArray());
        cmd.Parameters.AddWithValue(action);
        cmd.Parameters.AddWithValue(SystemDatabase.Canonical(details));
        cmd.Parameters.AddWithValue(NpgsqlTypes.NpgsqlDbType.TimestampTz, since is { } at ? (at.Kind == DateTimeKind.Local ? at.ToUniversalTime() : DateTime.SpecifyKind(at, DateTimeKind.Utc)) : DBNull.Value);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is true;
    }
}
