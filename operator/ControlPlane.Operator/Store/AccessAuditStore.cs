using Npgsql;

namespace ControlPlane.Operator.Store;

/// <summary>The end of a just-in-time grant in the audit trail, recorded once.</summary>
public static class AccessAuditStore
{
    /// <summary>
    /// Appends <paramref name="audit"/> unless a row of the same kind, object and action for the same grant (its
    /// details' expiresAt, recorded once at approval) is already there: a pass repeated after its row committed and
    /// its status write failed (API server gone, a conflict, a crash) records nothing twice. Returns whether it appended.
    /// </summary>
    public static Task<bool> AppendGrantEndOnceAsync(this SystemDatabase db, AuditEntry audit, string expiresAt, CancellationToken ct) =>
        db.WriteIfChangedAsync(async (conn, tx) =>
        {
            // Served by the audit_events_object index (kind, object_name).
            await using var cmd = new NpgsqlCommand("""
                SELECT NOT EXISTS (SELECT 1 FROM controlplane.audit_events
                    WHERE kind = $1 AND object_name = $2 AND action = $3 AND details->>'expiresAt' = $4)
                """, conn, tx);
            cmd.Parameters.AddWithValue(audit.Kind);
            cmd.Parameters.AddWithValue(audit.ObjectName);
            cmd.Parameters.AddWithValue(audit.Action);
            cmd.Parameters.AddWithValue(expiresAt);
            return (bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, audit, ct);
}
