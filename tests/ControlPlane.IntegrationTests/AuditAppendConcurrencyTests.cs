using System.Text.Json.Nodes;
using ControlPlane.Operator.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Appenders racing on the audit chains (the lock and both chains' heads are read in one batch): every
/// row still has exactly one successor on the global chain, and each tenant's chain runs 1, 2, 3, …
/// with each row linked to the one before.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AuditAppendConcurrencyTests(ClusterFixture cluster)
{
    [Fact]
    public async Task ConcurrentAppends_KeepTheGlobalAndTenantChainsWhole()
    {
        var ct = CancellationToken.None;
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var system = new SystemDatabase(ds, NullLogger.Instance);
        await system.MigrateAsync(ct);
        var suffix = Guid.NewGuid().ToString("N")[..6];
        string[] tenants = [$"ta-{suffix}", $"tb-{suffix}"];

        // Eight writers, as the operator's workers: rows of two tenants' workspaces and platform rows (no tenant chain).
        await Parallel.ForEachAsync(Enumerable.Range(0, 64), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, token) =>
        {
            var entry = (i % 3) switch
            {
                2 => new AuditEntry("test", "tenant.updated", "Tenant", $"platform-{suffix}-{i}", null, new JsonObject { ["i"] = i }),
                var t => new AuditEntry("test", "workspace.created", "Workspace", $"{tenants[t]}-ws{i}", tenants[t], new JsonObject { ["i"] = i }),
            };
            await system.AppendAuditAsync(entry, token);
        });

        Assert.Null(await system.VerifyAuditChainAsync(ct));
        foreach (var tenant in tenants)
        {
            await using var cmd = ds.CreateCommand("SELECT tenant_seq, tenant_prev_hash, tenant_hash FROM controlplane.audit_events WHERE chain_tenant = $1 ORDER BY tenant_seq");
            cmd.Parameters.AddWithValue(tenant);
            var links = new List<(long Seq, string Prev, string Hash)>();
            await using (var r = await cmd.ExecuteReaderAsync(ct))
            {
                while (await r.ReadAsync(ct)) links.Add((r.GetInt64(0), r.GetString(1), r.GetString(2)));
            }

            Assert.Equal(Enumerable.Range(1, links.Count).Select(n => (long)n), links.Select(l => l.Seq));
            Assert.Equal(64 / 3 + (tenant == tenants[0] ? 1 : 0), links.Count);
            Assert.Equal("", links[0].Prev);
            for (var k = 1; k < links.Count; k++) Assert.Equal(links[k - 1].Hash, links[k].Prev);
        }
    }
}
