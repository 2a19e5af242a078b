using Npgsql;

namespace ControlPlane.Operator.Store;

/// <summary>Where a row joins its tenant's chain: the tenant, the next sequence number and the previous hash ("" for the first).</summary>
public sealed record TenantLink(string Tenant, long Sequence, string PrevHash);

/// <summary>
/// The per-tenant hash chains (migration 0009, docs/audit-api.md): each row served in a tenant's
/// workspace is also chained with that tenant's previous row, in the append transaction and under
/// the same lock as the global chain, so a tenant auditor can verify their rows without seeing others'.
/// </summary>
public static class TenantChains
{
    /// <summary>The workspace an audit row is served in: as the generated column workspace of migration 0009 computes it.</summary>
    public static string? WorkspaceOf(string kind, string objectName) =>
        kind == "Workspace" ? objectName : objectName.IndexOf('/', StringComparison.Ordinal) is >= 0 and var i ? objectName[..i] : null;

    /// <summary>The link of a new audit row, or null for a platform row (no workspace, or a workspace of no tenant).</summary>
    public static async Task<TenantLink?> NextAuditLinkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, AuditEntry entry, CancellationToken ct)
    {
        if (await AuditChainTenantAsync(conn, tx, entry, ct).ConfigureAwait(false) is not { } tenant) return null;
        return await NextLinkAsync(conn, tx, AuditHeadSql, tenant, ct).ConfigureAwait(false);
    }

    /// <summary>The head of a tenant's audit chain ($1: the tenant): its sequence and hash, no row for a new chain.</summary>
    public const string AuditHeadSql = "SELECT tenant_seq, tenant_hash FROM controlplane.audit_events WHERE chain_tenant = $1 ORDER BY tenant_seq DESC LIMIT 1";

    /// <summary>
    /// The tenant whose chain a new audit row joins, or null for a platform row (no workspace, or a workspace of no tenant).
    /// Not chain state: it may be read before the chain's lock is taken.
    /// </summary>
    public static async Task<string?> AuditChainTenantAsync(NpgsqlConnection conn, NpgsqlTransaction tx, AuditEntry entry, CancellationToken ct)
    {
        if (WorkspaceOf(entry.Kind, entry.ObjectName) is not { } workspace) return null;
        if (entry.Tenant is { } tenant) return tenant;
        // A row that names no tenant joins the chain of the workspace's owner, from the operator's own record.
        await using var owner = new NpgsqlCommand("SELECT tenant_name FROM controlplane.workspaces WHERE name = $1", conn, tx);
        owner.Parameters.AddWithValue(workspace);
        return (string?)await owner.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The link of a new deployment event of this tenant.</summary>
    public static Task<TenantLink> NextDeploymentLinkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string tenant, CancellationToken ct) =>
        NextLinkAsync(conn, tx, "SELECT tenant_seq, tenant_hash FROM controlplane.deployment_events WHERE tenant = $1 AND tenant_seq IS NOT NULL ORDER BY tenant_seq DESC LIMIT 1", tenant, ct);

    static async Task<TenantLink> NextLinkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, string tenant, CancellationToken ct)
    {
        await using var head = new NpgsqlCommand(sql, conn, tx);
        head.Parameters.AddWithValue(tenant);
        await using var r = await head.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false)
            ? new TenantLink(tenant, r.GetInt64(0) + 1, r.GetString(1))
            : new TenantLink(tenant, 1, "");
    }
}
