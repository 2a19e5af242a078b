using Npgsql;

namespace ControlPlane.Operator.Store;

/// <summary>
/// The databases a restore makes, drops and swaps. As for workspace databases: the region role (never a
/// superuser) acts only through its membership in the workspace role, and a database is the restore's
/// only while it carries that restore's mark; anything else of that name is left untouched.
/// </summary>
public sealed partial class RegionDatabases
{
    const string RestoreMarkPrefix = "controlplane restore ";

    static string RestoreMark(string restoreUid) => RestoreMarkPrefix + restoreUid;

    async Task<(bool Exists, string? Owner, string? Comment)> DatabaseInfoAsync(NpgsqlDataSource ds, string database, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, pg_catalog.shobj_description(d.oid, 'pg_database')
            FROM pg_catalog.pg_database d WHERE d.datname = $1
            """);
        cmd.Parameters.AddWithValue(database);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) return (false, null, null);
        return (true, r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1));
    }

    /// <summary>
    /// A fresh database owned by the workspace role, for a restore to fill. One left by an earlier
    /// attempt of the same restore (its mark) is dropped and made again; any other of that name is refused.
    /// </summary>
    public async Task CreateRestoreDatabaseAsync(string region, string database, string role, string restoreUid, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        var state = await InspectAsync(ds, database, role, ct).ConfigureAwait(false);
        if (!state.RoleExists || state.RoleSuper || !state.Member)
        {
            throw new DatabaseConflictException("RoleNotOwned", $"role {role} is not a workspace role this operator manages on the {region} server");
        }

        var info = await DatabaseInfoAsync(ds, database, ct).ConfigureAwait(false);
        if (info.Exists && (info.Comment != RestoreMark(restoreUid) || info.Owner != role))
        {
            throw new DatabaseConflictException("DatabaseExists", $"spec.into.database: database {database} already exists on the {region} server; choose a new name");
        }

        if (info.Exists) await ExecAsync(ds, $"DROP DATABASE {Quote(database)} WITH (FORCE)", ct).ConfigureAwait(false);
        await ExecAsync(ds, $"CREATE DATABASE {Quote(database)} OWNER {Quote(role)}", ct).ConfigureAwait(false);
        await ExecAsync(ds, $"COMMENT ON DATABASE {Quote(database)} IS '{RestoreMark(restoreUid)}'", ct).ConfigureAwait(false);
        // Only the workspace's own role may connect, as for its own database.
        await ExecAsync(ds, $"REVOKE ALL ON DATABASE {Quote(database)} FROM PUBLIC", ct).ConfigureAwait(false);
        await ExecAsync(ds, $"GRANT ALL ON DATABASE {Quote(database)} TO {Quote(role)}", ct).ConfigureAwait(false);
    }

    /// <summary>Drops a database this restore made and has not handed over (its mark is still on it); anything else is left alone.</summary>
    public async Task<bool> DropRestoreDatabaseAsync(string region, string database, string restoreUid, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        var info = await DatabaseInfoAsync(ds, database, ct).ConfigureAwait(false);
        if (!info.Exists || info.Comment != RestoreMark(restoreUid)) return false;
        await ExecAsync(ds, $"DROP DATABASE {Quote(database)} WITH (FORCE)", ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// After an operator stopped mid-swap (between closing the live database to connections and the finally
    /// that reopens it): the workspace role's database takes connections again. No write when it already does.
    /// </summary>
    public async Task<bool> ReopenAsync(string region, string database, string role, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        await using (var cmd = ds.CreateCommand(
                         "SELECT NOT d.datallowconn FROM pg_catalog.pg_database d WHERE d.datname = $1 AND pg_catalog.pg_get_userbyid(d.datdba)::text = $2"))
        {
            cmd.Parameters.AddWithValue(database);
            cmd.Parameters.AddWithValue(role);
            if (await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not true) return false;
        }

        await ExecAsync(ds, $"ALTER DATABASE {Quote(database)} WITH ALLOW_CONNECTIONS true", ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>The restore is done: its mark comes off (the database is no longer a restore's to drop).</summary>
    public async Task HandOverRestoreDatabaseAsync(string region, string database, string restoreUid, CancellationToken ct)
    {
        var ds = Source(region);
        var info = await DatabaseInfoAsync(ds, database, ct).ConfigureAwait(false);
        if (info.Exists && info.Comment == RestoreMark(restoreUid)) await ExecAsync(ds, $"COMMENT ON DATABASE {Quote(database)} IS NULL", ct).ConfigureAwait(false);
    }

    /// <summary>
    /// In place: the live database stops taking connections, its sessions end, it is renamed to
    /// <paramref name="replaced"/> and the restored one takes its name, both renames in one transaction.
    /// The replaced database stays, owned by the workspace role, so the restore can be undone.
    /// </summary>
    public async Task SwapInPlaceAsync(string region, string live, string staging, string replaced, string role, string restoreUid, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        var current = await DatabaseInfoAsync(ds, live, ct).ConfigureAwait(false);
        var restored = await DatabaseInfoAsync(ds, staging, ct).ConfigureAwait(false);
        if (!current.Exists || current.Owner != role) throw new DatabaseConflictException("DatabaseNotOwned", $"database {live} is not the workspace role's");
        if (!restored.Exists || restored.Comment != RestoreMark(restoreUid)) throw new DatabaseConflictException("StagingMissing", $"the restored database {staging} is gone");
        if ((await DatabaseInfoAsync(ds, replaced, ct).ConfigureAwait(false)).Exists)
        {
            throw new DatabaseConflictException("DatabaseExists", $"database {replaced} (where the replaced database is kept) already exists");
        }

        await ExecAsync(ds, $"ALTER DATABASE {Quote(live)} WITH ALLOW_CONNECTIONS false", ct).ConfigureAwait(false);
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                // Every session on the live database ends (waiting up to 5 s for each), then both renames at once.
                await using (var kill = ds.CreateCommand("SELECT pg_catalog.pg_terminate_backend(pid, 5000) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()"))
                {
                    kill.Parameters.AddWithValue(live);
                    await kill.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                try
                {
                    await using var conn = await ds.OpenConnectionAsync(ct).ConfigureAwait(false);
                    await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
                    await ExecAsync(conn, tx, $"ALTER DATABASE {Quote(live)} RENAME TO {Quote(replaced)}", ct).ConfigureAwait(false);
                    await ExecAsync(conn, tx, $"ALTER DATABASE {Quote(staging)} RENAME TO {Quote(live)}", ct).ConfigureAwait(false);
                    await tx.CommitAsync(ct).ConfigureAwait(false);
                    Interlocked.Increment(ref writes);
                    break;
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 5)
                {
                    // A session was still ending: terminate again and retry.
                }
            }
        }
        finally
        {
            // Whichever name it now has, the kept database takes connections again (its owner may read it or it may be renamed back).
            var name = (await DatabaseInfoAsync(ds, replaced, CancellationToken.None).ConfigureAwait(false)).Exists ? replaced : live;
            await ExecAsync(ds, $"ALTER DATABASE {Quote(name)} WITH ALLOW_CONNECTIONS true", CancellationToken.None).ConfigureAwait(false);
        }

        await HandOverRestoreDatabaseAsync(region, live, restoreUid, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The databases besides its own that a workspace role owns and a restore made: those recorded in
    /// controlplane.restores (<paramref name="recorded"/>) and any still carrying a restore's mark (a staging
    /// database left by a stopped restore). Only the role's own databases are listed, so a record naming another's is ignored.
    /// </summary>
    public async Task<IReadOnlyList<string>> RestoredCopiesAsync(string region, string live, string role, IReadOnlyCollection<string> recorded, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        await using var cmd = Source(region).CreateCommand("""
            SELECT d.datname::text FROM pg_catalog.pg_database d
            WHERE pg_catalog.pg_get_userbyid(d.datdba)::text = $1 AND d.datname <> $2
              AND (d.datname::text = ANY($3) OR pg_catalog.shobj_description(d.oid, 'pg_database') LIKE 'controlplane restore %')
            ORDER BY 1
            """);
        cmd.Parameters.AddWithValue(role);
        cmd.Parameters.AddWithValue(live);
        cmd.Parameters.AddWithValue(recorded.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var names = new List<string>();
        while (await r.ReadAsync(ct).ConfigureAwait(false)) names.Add(r.GetString(0));
        return names;
    }

    /// <summary>
    /// Drops restored copies of a workspace database before its role is dropped (a role that still owns a database
    /// cannot be): only databases that role owns, and only when the role is this allocation's.
    /// </summary>
    public async Task DropRestoredCopiesAsync(string region, Guid allocation, bool provisioned, string live, string role, IReadOnlyList<string> copies, CancellationToken ct)
    {
        var ds = Source(region);
        if (!Ours(await InspectAsync(ds, live, role, ct).ConfigureAwait(false), allocation, provisioned, role).Role) return;
        foreach (var copy in copies)
        {
            var info = await DatabaseInfoAsync(ds, copy, ct).ConfigureAwait(false);
            if (info.Exists && info.Owner == role) await ExecAsync(ds, $"DROP DATABASE IF EXISTS {Quote(copy)} WITH (FORCE)", ct).ConfigureAwait(false);
        }
    }
}
