namespace ControlPlane.Operator.Store;

/// <summary>A backup as the system of record has it (what a restore trusts over a Backup's status).</summary>
public sealed record StoredBackup(Guid Id, string Namespace, string ObjectKey, string Phase, string? Sha256, string Database);

public static class RestoreStore
{
    /// <summary>The row of a backup, by its object's UID; null when none was recorded.</summary>
    public static async Task<StoredBackup?> BackupRecordAsync(this SystemDatabase db, string k8sUid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand(
            "SELECT id, namespace, object_key, phase, sha256, database_name FROM controlplane.backups WHERE k8s_uid = $1");
        cmd.Parameters.AddWithValue(k8sUid);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) return null;
        return new StoredBackup(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4), r.GetString(5));
    }
}

public static class RestoredDatabaseStore
{
    /// <summary>
    /// Every database a restore of this namespace's workspace made or kept, as recorded in controlplane.restores: the
    /// targets of restores into a new database and the databases in-place restores replaced (kept under a new name).
    /// </summary>
    public static async Task<IReadOnlyList<string>> RestoredDatabasesAsync(this SystemDatabase db, string ns, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT target_database FROM controlplane.restores WHERE namespace = $1 AND NOT in_place
            UNION SELECT replaced_database FROM controlplane.restores WHERE namespace = $1 AND replaced_database IS NOT NULL
            """);
        cmd.Parameters.AddWithValue(ns);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var names = new List<string>();
        while (await r.ReadAsync(ct).ConfigureAwait(false)) names.Add(r.GetString(0));
        return names;
    }
}
