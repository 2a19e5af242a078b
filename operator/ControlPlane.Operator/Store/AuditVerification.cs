namespace ControlPlane.Operator.Store;

/// <summary>Where verification of one table got to: the global chain's last verified row and each tenant chain's head.</summary>
public sealed record ChainCursor(long LastId, string LastHash, IReadOnlyDictionary<string, TenantLink> TenantHeads)
{
    public static readonly ChainCursor Start = new(0, "", new Dictionary<string, TenantLink>(StringComparer.Ordinal));
}

/// <summary>The outcome of a pass: the cursor after the last good row, and the first row that does not verify (its global sequence) or null.</summary>
public sealed record ChainVerdict(ChainCursor Cursor, long? FirstBadId, string? Problem);

/// <summary>
/// Verifies a table's global chain and its tenant chains from a cursor on (incremental), in batches,
/// with the same rule clients use (<see cref="AuditLog.Hash"/> over the served event object). Reads only.
/// </summary>
public static class AuditVerification
{
    const int Batch = 2000;

    public static async Task<ChainVerdict> VerifyAsync(AuditLog log, AuditTable table, ChainCursor from, CancellationToken ct)
    {
        var lastId = from.LastId;
        var lastHash = from.LastHash;
        var heads = new Dictionary<string, TenantLink>(from.TenantHeads, StringComparer.Ordinal);
        var head = await log.HeadAsync(table, ct).ConfigureAwait(false);
        while (lastId < head)
        {
            var rows = await log.ReadAsync(new AuditQuery(table, null, [], lastId, head, Batch), ct).ConfigureAwait(false);
            if (rows.Count == 0) break;
            foreach (var row in rows)
            {
                if (Check(row, lastHash, heads) is { } problem)
                {
                    return new ChainVerdict(new ChainCursor(lastId, lastHash, heads), row.Id, problem);
                }

                lastId = row.Id;
                lastHash = row.Hash;
                if (row.ChainTenant is { } tenant) heads[tenant] = new TenantLink(tenant, row.TenantSeq!.Value, row.TenantHash!);
            }
        }

        return new ChainVerdict(new ChainCursor(lastId, lastHash, heads), null, null);
    }

    /// <summary>Why a row breaks a chain, or null (pure).</summary>
    public static string? Check(AuditRecord row, string lastHash, IReadOnlyDictionary<string, TenantLink> tenantHeads)
    {
        if (row.PrevHash != lastHash) return $"row {row.Id}: prevHash is not the hash of the row before it";
        if (AuditLog.Hash(lastHash, row.Event) != row.Hash) return $"row {row.Id}: its hash does not match its content";
        if (row.ChainTenant is not { } tenant) return null;
        var expected = tenantHeads.TryGetValue(tenant, out var h) ? h : new TenantLink(tenant, 0, "");
        if (row.TenantSeq != expected.Sequence + 1) return $"row {row.Id}: tenant {tenant} sequence {row.TenantSeq} follows {expected.Sequence}";
        if (row.TenantPrevHash != expected.PrevHash) return $"row {row.Id}: tenant {tenant} sequence {row.TenantSeq}: prevHash is not the hash of the tenant's row before it";
        if (AuditLog.Hash(expected.PrevHash, row.Event) != row.TenantHash) return $"row {row.Id}: tenant {tenant} sequence {row.TenantSeq}: its tenant hash does not match its content";
        return null;
    }
}
