using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

public sealed record WorkspaceRecord(Guid Id, string Name, string TenantName, string Region, string Environment, string DataMode,
    string ProvisioningState, string SpecHash, string MembersJson, string? DatabaseName, DateTime? DeletedAt);

/// <summary>A workspace database as recorded: its name is allocated once and read back, never derived again.</summary>
public sealed record DatabaseAllocation(Guid Id, string Region, string Name, string Workspace, string WorkspaceUid, string Tenant, string State, bool Provisioned);

public sealed record StoredProviderKey(Guid Id, string Workspace, string Provider, string Fingerprint, DateTime CreatedAt, DateTime ValidatedAt,
    DateTime? RetiredAt, DateTime? ExpiresAt);

/// <summary>Workspace rows and provider keys in the system of record; every change with its audit event.</summary>
public static class WorkspaceStore
{
    public static async Task<WorkspaceRecord?> GetWorkspaceAsync(this SystemDatabase db, string name, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT id, name, tenant_name, region, environment, data_mode, provisioning_state, spec_hash, members::text, database_name, deleted_at
            FROM controlplane.workspaces WHERE name = $1
            """);
        cmd.Parameters.AddWithValue(name);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) return null;
        return new WorkspaceRecord(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
            r.GetString(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : r.GetDateTime(10));
    }

    public static Task UpsertWorkspaceAsync(this SystemDatabase db, WorkspaceRecord w, Guid? tenantId, string k8sUid, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.workspaces (id, name, tenant_id, tenant_name, region, environment, data_mode, provisioning_state, spec_hash, members, database_name, k8s_uid)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)
                ON CONFLICT (name) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, tenant_name = EXCLUDED.tenant_name, region = EXCLUDED.region,
                    environment = EXCLUDED.environment, data_mode = EXCLUDED.data_mode, provisioning_state = EXCLUDED.provisioning_state,
                    spec_hash = EXCLUDED.spec_hash, members = EXCLUDED.members,
                    -- Written only by the database allocation; a workspace made again under an old name starts without one.
                    database_name = CASE WHEN controlplane.workspaces.deleted_at IS NULL THEN controlplane.workspaces.database_name END,
                    k8s_uid = EXCLUDED.k8s_uid, updated_at = now(), deleted_at = NULL
                """, conn, tx);
            cmd.Parameters.AddWithValue(w.Id);
            cmd.Parameters.AddWithValue(w.Name);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Uuid, (object?)tenantId ?? DBNull.Value);
            cmd.Parameters.AddWithValue(w.TenantName);
            cmd.Parameters.AddWithValue(w.Region);
            cmd.Parameters.AddWithValue(w.Environment);
            cmd.Parameters.AddWithValue(w.DataMode);
            cmd.Parameters.AddWithValue(w.ProvisioningState);
            cmd.Parameters.AddWithValue(w.SpecHash);
            cmd.Parameters.AddWithValue(w.MembersJson);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, DBNull.Value); // set by AllocateDatabaseAsync
            cmd.Parameters.AddWithValue(k8sUid);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, audit, ct);

    public static Task MarkWorkspaceDeletedAsync(this SystemDatabase db, string name, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand(
                "UPDATE controlplane.workspaces SET provisioning_state = 'deleted', deleted_at = now(), updated_at = now() WHERE name = $1 AND deleted_at IS NULL",
                conn, tx);
            cmd.Parameters.AddWithValue(name);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, audit, ct);

    const string AllocationColumns = "id, region, name, workspace, workspace_uid, tenant, state, provisioned";

    static DatabaseAllocation ReadAllocation(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetBoolean(7));

    /// <summary>The workspace's database allocations in a region that are not dropped: its active one, and any retained under its name.</summary>
    public static async Task<List<DatabaseAllocation>> GetDatabaseAllocationsAsync(this SystemDatabase db, string region, string workspace, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand($"""
            SELECT {AllocationColumns} FROM controlplane.workspace_databases
            WHERE region = $1 AND workspace = $2 AND state <> 'dropped' ORDER BY created_at DESC
            """);
        cmd.Parameters.AddWithValue(region);
        cmd.Parameters.AddWithValue(workspace);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<DatabaseAllocation>();
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadAllocation(r));
        return list;
    }

    /// <summary>
    /// Records a new database name for the workspace: the first candidate not recorded for anyone in the
    /// region (insert, do nothing on conflict, try the next), and the workspace row points at it. Null
    /// when every candidate was taken.
    /// </summary>
    public static async Task<DatabaseAllocation?> AllocateDatabaseAsync(this SystemDatabase db, string region, string workspace, string workspaceUid, string tenant,
        IReadOnlyList<string> candidates, CancellationToken ct)
    {
        DatabaseAllocation? allocated = null;
        var details = new JsonObject { ["region"] = region };
        try
        {
            // One transaction: the allocation, the workspace row pointing at it, and its audit event.
            await db.WriteAsync(async (conn, tx) =>
            {
                await LockDatabaseNamesAsync(conn, tx, ct).ConfigureAwait(false);
                foreach (var name in candidates)
                {
                    // Never a name a restore recorded (its copy, or the database an in-place restore replaced): issue 22, a restore squatting a future workspace's name.
                    await using var insert = new NpgsqlCommand($"""
                        INSERT INTO controlplane.workspace_databases (id, region, name, workspace, workspace_uid, tenant)
                        SELECT $1, $2, $3, $4, $5, $6
                        WHERE NOT EXISTS (SELECT 1 FROM controlplane.restores r WHERE (r.target_database = $3 AND NOT r.in_place) OR r.replaced_database = $3)
                        ON CONFLICT (region, name) WHERE state <> 'dropped' DO NOTHING
                        RETURNING {AllocationColumns}
                        """, conn, tx);
                    insert.Parameters.AddWithValue(Guid.NewGuid());
                    insert.Parameters.AddWithValue(region);
                    insert.Parameters.AddWithValue(name);
                    insert.Parameters.AddWithValue(workspace);
                    insert.Parameters.AddWithValue(workspaceUid);
                    insert.Parameters.AddWithValue(tenant);
                    await using (var r = await insert.ExecuteReaderAsync(ct).ConfigureAwait(false))
                    {
                        if (await r.ReadAsync(ct).ConfigureAwait(false)) allocated = ReadAllocation(r);
                    }

                    if (allocated is not null) break;
                }

                if (allocated is null) throw new AllocationExhaustedException();
                details["database"] = allocated.Name;
                await using var point = new NpgsqlCommand("UPDATE controlplane.workspaces SET database_name = $2, updated_at = now() WHERE name = $1", conn, tx);
                point.Parameters.AddWithValue(workspace);
                point.Parameters.AddWithValue(allocated.Name);
                await point.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }, new AuditEntry("controlplane-operator", "workspace.databaseAllocated", "Workspace", workspace, tenant, details), ct).ConfigureAwait(false);
        }
        catch (AllocationExhaustedException)
        {
            return null;
        }

        return allocated;
    }

    sealed class AllocationExhaustedException : Exception;

    /// <summary>
    /// Serialises the two ways a database name is taken in the system of record (a workspace's allocation, a restore's
    /// start): each checks the other's table under this transaction-scoped lock, so neither can miss the other.
    /// </summary>
    internal static async Task LockDatabaseNamesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('controlplane.database-names'))", conn, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Which of <paramref name="names"/> a workspace allocation (not dropped) holds in any region: a restore never takes one.</summary>
    public static async Task<string?> AllocatedNameAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<string> names, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT name FROM controlplane.workspace_databases WHERE name = ANY($1) AND state <> 'dropped' LIMIT 1", conn, tx);
        cmd.Parameters.AddWithValue(names.ToArray());
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
    }

    /// <summary>Moves an allocation to a new state (provisioned, retained, dropped, or active again for a new workspace of the same tenant) with its audit event.</summary>
    public static Task UpdateDatabaseAllocationAsync(this SystemDatabase db, Guid id, string state, bool provisioned, string? workspaceUid, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                UPDATE controlplane.workspace_databases SET state = $2, provisioned = $3, workspace_uid = coalesce($4, workspace_uid), updated_at = now(),
                    retained_at = CASE WHEN $2 = 'retained' THEN now() ELSE retained_at END,
                    dropped_at = CASE WHEN $2 = 'dropped' THEN now() ELSE dropped_at END
                WHERE id = $1
                """, conn, tx);
            cmd.Parameters.AddWithValue(id);
            cmd.Parameters.AddWithValue(state);
            cmd.Parameters.AddWithValue(provisioned);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)workspaceUid ?? DBNull.Value);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            if (state == "active")
            {
                await using var point = new NpgsqlCommand("""
                    UPDATE controlplane.workspaces w SET database_name = d.name, updated_at = now()
                    FROM controlplane.workspace_databases d WHERE d.id = $1 AND w.name = d.workspace AND w.database_name IS DISTINCT FROM d.name
                    """, conn, tx);
                point.Parameters.AddWithValue(id);
                await point.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }, audit, ct);

    public static async Task<List<StoredProviderKey>> GetProviderKeysAsync(this SystemDatabase db, string workspace, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT id, workspace, provider, fingerprint, created_at, validated_at, retired_at, expires_at
            FROM controlplane.provider_keys WHERE workspace = $1 ORDER BY created_at
            """);
        cmd.Parameters.AddWithValue(workspace);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var keys = new List<StoredProviderKey>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            keys.Add(new StoredProviderKey(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetDateTime(4), r.GetDateTime(5),
                r.IsDBNull(6) ? null : r.GetDateTime(6), r.IsDBNull(7) ? null : r.GetDateTime(7)));
        }

        return keys;
    }

    /// <summary>Stores a new active key; the previous active one is retired and kept until now + grace.</summary>
    public static Task StoreProviderKeyAsync(this SystemDatabase db, string workspace, string provider, string fingerprint, SealedValue sealedValue,
        TimeSpan grace, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync(async (conn, tx) =>
        {
            await RetireActiveAsync(conn, tx, workspace, provider, grace, ct).ConfigureAwait(false);
            await using var insert = new NpgsqlCommand("""
                INSERT INTO controlplane.provider_keys (id, workspace, provider, fingerprint, ciphertext, nonce, tag, wrapped_key, wrap_nonce, wrap_tag, kek_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                """, conn, tx);
            insert.Parameters.AddWithValue(Guid.NewGuid());
            insert.Parameters.AddWithValue(workspace);
            insert.Parameters.AddWithValue(provider);
            insert.Parameters.AddWithValue(fingerprint);
            insert.Parameters.AddWithValue(sealedValue.Ciphertext);
            insert.Parameters.AddWithValue(sealedValue.Nonce);
            insert.Parameters.AddWithValue(sealedValue.Tag);
            insert.Parameters.AddWithValue(sealedValue.WrappedKey);
            insert.Parameters.AddWithValue(sealedValue.WrapNonce);
            insert.Parameters.AddWithValue(sealedValue.WrapTag);
            insert.Parameters.AddWithValue(sealedValue.KekId);
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, audit, ct);

    /// <summary>Retires the active key of a provider no longer listed in the spec (kept for the grace period).</summary>
    public static Task RetireProviderKeyAsync(this SystemDatabase db, string workspace, string provider, TimeSpan grace, AuditEntry audit, CancellationToken ct) =>
        db.WriteAsync((conn, tx) => RetireActiveAsync(conn, tx, workspace, provider, grace, ct), audit, ct);

    static async Task RetireActiveAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string workspace, string provider, TimeSpan grace, CancellationToken ct)
    {
        await using var retire = new NpgsqlCommand("""
            UPDATE controlplane.provider_keys SET retired_at = now(), expires_at = now() + $3
            WHERE workspace = $1 AND provider = $2 AND retired_at IS NULL
            """, conn, tx);
        retire.Parameters.AddWithValue(workspace);
        retire.Parameters.AddWithValue(provider);
        retire.Parameters.AddWithValue(grace);
        await retire.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The decrypted active key (for the services that call the provider). Never logged.</summary>
    public static async Task<string?> ReadActiveProviderKeyAsync(this SystemDatabase db, KeyVault vault, string workspace, string provider, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT ciphertext, nonce, tag, wrapped_key, wrap_nonce, wrap_tag, kek_id FROM controlplane.provider_keys
            WHERE workspace = $1 AND provider = $2 AND retired_at IS NULL
            """);
        cmd.Parameters.AddWithValue(workspace);
        cmd.Parameters.AddWithValue(provider);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) return null;
        return vault.Open(new SealedValue((byte[])r[0], (byte[])r[1], (byte[])r[2], (byte[])r[3], (byte[])r[4], (byte[])r[5], r.GetString(6)));
    }

    /// <summary>Removes retired keys past their grace period; reads first, so an idle pass writes nothing.</summary>
    public static async Task<int> PurgeExpiredProviderKeysAsync(this SystemDatabase db, CancellationToken ct)
    {
        var expired = new List<(Guid Id, string Workspace, string Provider, string Fingerprint)>();
        await using (var cmd = db.DataSource.CreateCommand(
                         "SELECT id, workspace, provider, fingerprint FROM controlplane.provider_keys WHERE retired_at IS NOT NULL AND expires_at <= now()"))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false)) expired.Add((r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3)));
        }

        foreach (var key in expired)
        {
            await db.WriteAsync(async (conn, tx) =>
            {
                await using var delete = new NpgsqlCommand("DELETE FROM controlplane.provider_keys WHERE id = $1", conn, tx);
                delete.Parameters.AddWithValue(key.Id);
                await delete.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }, new AuditEntry("controlplane-operator", "providerKey.purged", "Workspace", key.Workspace, null,
                new JsonObject { ["provider"] = key.Provider, ["fingerprint"] = key.Fingerprint }), ct).ConfigureAwait(false);
        }

        return expired.Count;
    }
}
