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
}
