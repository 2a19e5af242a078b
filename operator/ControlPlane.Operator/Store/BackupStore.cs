using ControlPlane.Api.V1Alpha1;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

/// <summary>A backup as recorded when it started.</summary>
public sealed record BackupRow(Guid Id, string Namespace, string Name, string K8sUid, string Plan, string Tenant, string Region, string Database, string Storage, string ObjectKey);

/// <summary>How a backup ended.</summary>
public sealed record BackupOutcome(BackupPhase Phase, string? Reason, long? SizeBytes, string? Sha256, string? PgDumpVersion, string? ServerVersion);

/// <summary>A backup as the system of record holds it: where its object is, and what became of it.</summary>
public sealed record RecordedBackup(string K8sUid, string Namespace, string Name, string Plan, string Tenant, string Region, string Storage, string ObjectKey, string Phase,
    DateTime? RetainedAt, DateTime? DeleteAfter, DateTime? DeletedAt);

/// <summary>A restore as recorded when it started.</summary>
public sealed record RestoreRow(Guid Id, string Namespace, string Name, string K8sUid, string BackupName, Guid? BackupId, string TargetDatabase, bool InPlace);

/// <summary>Backup and restore rows in the system of record; every change with its audit event.</summary>
public static class BackupStore
{
    /// <summary>Records a backup starting (idempotent on the object's UID: a retried start keeps the first row's id).</summary>
    public static async Task<Guid> StartBackupAsync(this SystemDatabase db, BackupRow row, AuditEntry audit, CancellationToken ct)
    {
        var id = row.Id;
        await db.WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.backups (id, namespace, name, k8s_uid, plan, tenant, region, database_name, storage, object_key, phase)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Running')
                ON CONFLICT (k8s_uid) DO UPDATE SET phase = 'Running', started_at = now()
                RETURNING id
                """, conn, tx);
            foreach (var v in new object[] { row.Id, row.Namespace, row.Name, row.K8sUid, row.Plan, row.Tenant, row.Region, row.Database, row.Storage, row.ObjectKey })
            {
                cmd.Parameters.AddWithValue(v);
            }

            id = (Guid)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, audit, ct).ConfigureAwait(false);
        return id;
    }

    public static Task FinishBackupAsync(this SystemDatabase db, string k8sUid, BackupOutcome outcome, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                UPDATE controlplane.backups SET phase = $2, reason = $3, size_bytes = $4, sha256 = $5, pg_dump_version = $6, server_version = $7, completed_at = now()
                WHERE k8s_uid = $1
                """, conn, tx);
            cmd.Parameters.AddWithValue(k8sUid);
            cmd.Parameters.AddWithValue(outcome.Phase.ToString());
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)outcome.Reason ?? DBNull.Value);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Bigint, (object?)outcome.SizeBytes ?? DBNull.Value);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)outcome.Sha256 ?? DBNull.Value);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)outcome.PgDumpVersion ?? DBNull.Value);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)outcome.ServerVersion ?? DBNull.Value);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, audit, ct);

    /// <summary>
    /// The stored object is gone (pruned or the Backup deleted): the row stays, marked Deleted. Audited once: a finalizer pass
    /// repeated after its removal was lost (a crash), or from a stale cached copy, finds the row marked and appends nothing.
    /// </summary>
    public static Task<bool> MarkBackupDeletedAsync(this SystemDatabase db, string k8sUid, AuditEntry audit, CancellationToken ct) =>
        db.WriteIfChangedAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                WITH marked AS (UPDATE controlplane.backups SET phase = 'Deleted', deleted_at = now() WHERE k8s_uid = $1 AND deleted_at IS NULL RETURNING 1)
                SELECT EXISTS (SELECT 1 FROM marked) OR NOT EXISTS (SELECT 1 FROM controlplane.backups WHERE k8s_uid = $1)
                """, conn, tx);
            cmd.Parameters.AddWithValue(k8sUid);
            return (bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, audit, ct);

    const string StoredColumns = "k8s_uid, namespace, name, plan, tenant, region, storage, object_key, phase, retained_at, delete_after, deleted_at";

    static async Task<List<RecordedBackup>> ReadStoredAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var rows = new List<RecordedBackup>();
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            DateTime? At(int i) => reader.IsDBNull(i) ? null : reader.GetDateTime(i);
            rows.Add(new RecordedBackup(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                reader.GetString(6), reader.GetString(7), reader.GetString(8), At(9), At(10), At(11)));
        }

        return rows;
    }

    /// <summary>The recorded backup of a Backup object (by its UID); null when it never started.</summary>
    public static async Task<RecordedBackup?> GetRecordedBackupAsync(this SystemDatabase db, string k8sUid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand($"SELECT {StoredColumns} FROM controlplane.backups WHERE k8s_uid = $1");
        cmd.Parameters.AddWithValue(k8sUid);
        return (await ReadStoredAsync(cmd, ct).ConfigureAwait(false)).FirstOrDefault();
    }

    /// <summary>A deleted workspace's backup is kept (deletionPolicy Retain, or a bucket the operator can no longer reach); audited once.</summary>
    public static Task<bool> RetainBackupAsync(this SystemDatabase db, string k8sUid, string reason, AuditEntry audit, CancellationToken ct) =>
        db.WriteIfChangedAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                UPDATE controlplane.backups SET retained_at = now(), retained_reason = $2
                WHERE k8s_uid = $1 AND retained_at IS NULL AND delete_after IS NULL AND deleted_at IS NULL
                """, conn, tx);
            cmd.Parameters.AddWithValue(k8sUid);
            cmd.Parameters.AddWithValue(reason);
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
        }, audit, ct);

    /// <summary>A deleted workspace's backup (deletionPolicy Delete) is deleted once <paramref name="deleteAfter"/> has passed; audited once.</summary>
    public static Task<bool> ScheduleBackupDeletionAsync(this SystemDatabase db, string k8sUid, DateTime deleteAfter, AuditEntry audit, CancellationToken ct) =>
        db.WriteIfChangedAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                UPDATE controlplane.backups SET delete_after = $2
                WHERE k8s_uid = $1 AND retained_at IS NULL AND delete_after IS NULL AND deleted_at IS NULL
                """, conn, tx);
            cmd.Parameters.AddWithValue(k8sUid);
            cmd.Parameters.AddWithValue(NpgsqlDbType.TimestampTz, deleteAfter);
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
        }, audit, ct);

    /// <summary>Backups whose deletion is due (oldest first), at most <paramref name="limit"/>.</summary>
    public static async Task<IReadOnlyList<RecordedBackup>> BackupsDueForDeletionAsync(this SystemDatabase db, DateTime now, int limit, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand($"""
            SELECT {StoredColumns} FROM controlplane.backups
            WHERE delete_after IS NOT NULL AND deleted_at IS NULL AND delete_after <= $1 ORDER BY delete_after LIMIT $2
            """);
        cmd.Parameters.AddWithValue(NpgsqlDbType.TimestampTz, now);
        cmd.Parameters.AddWithValue(limit);
        return await ReadStoredAsync(cmd, ct).ConfigureAwait(false);
    }

    /// <summary>When the next scheduled deletion is due; null when none is scheduled.</summary>
    public static async Task<DateTime?> NextBackupDeletionAsync(this SystemDatabase db, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("SELECT min(delete_after) FROM controlplane.backups WHERE delete_after IS NOT NULL AND deleted_at IS NULL");
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is DateTime at ? at : null;
    }

    /// <param name="newNames">The databases the restore is about to create (its copy, or staging and replaced names):
    /// refused (<see cref="DatabaseConflictException"/>, nothing recorded) when a workspace allocation holds one.</param>
    public static async Task<Guid> StartRestoreAsync(this SystemDatabase db, RestoreRow row, IReadOnlyList<string> newNames, AuditEntry audit, CancellationToken ct)
    {
        var id = row.Id;
        await db.WriteAsync(async (conn, tx) =>
        {
            await WorkspaceStore.LockDatabaseNamesAsync(conn, tx, ct).ConfigureAwait(false);
            if (await WorkspaceStore.AllocatedNameAsync(conn, tx, newNames, ct).ConfigureAwait(false) is { } taken)
            {
                throw new DatabaseConflictException("DatabaseNameReserved",
                    $"spec.into.database: \"{taken}\" is a workspace's database name (controlplane.workspace_databases); a restore never takes one");
            }

            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.restores (id, namespace, name, k8s_uid, backup_name, backup_id, target_database, in_place, phase)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'Running')
                ON CONFLICT (k8s_uid) DO UPDATE SET phase = 'Running', started_at = now()
                RETURNING id
                """, conn, tx);
            cmd.Parameters.AddWithValue(row.Id);
            cmd.Parameters.AddWithValue(row.Namespace);
            cmd.Parameters.AddWithValue(row.Name);
            cmd.Parameters.AddWithValue(row.K8sUid);
            cmd.Parameters.AddWithValue(row.BackupName);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Uuid, (object?)row.BackupId ?? DBNull.Value);
            cmd.Parameters.AddWithValue(row.TargetDatabase);
            cmd.Parameters.AddWithValue(row.InPlace);
            id = (Guid)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, audit, ct).ConfigureAwait(false);
        return id;
    }

    public static Task FinishRestoreAsync(this SystemDatabase db, string k8sUid, RestorePhase phase, string? reason, string? replacedDatabase, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                UPDATE controlplane.restores SET phase = $2, reason = $3, replaced_database = $4, completed_at = now() WHERE k8s_uid = $1
                """, conn, tx);
            cmd.Parameters.AddWithValue(k8sUid);
            cmd.Parameters.AddWithValue(phase.ToString());
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)reason ?? DBNull.Value);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)replacedDatabase ?? DBNull.Value);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, audit, ct);

    /// <summary>The backup's correlation id, by the object's UID; null when it never started.</summary>
    public static async Task<Guid?> BackupIdAsync(this SystemDatabase db, string k8sUid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("SELECT id FROM controlplane.backups WHERE k8s_uid = $1");
        cmd.Parameters.AddWithValue(k8sUid);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as Guid?;
    }
}
