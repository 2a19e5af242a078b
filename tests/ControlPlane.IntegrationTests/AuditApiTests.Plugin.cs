using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl controlplane audit` and `audit verify` (docs/plugin.md), the built binary run as the token
/// users of two tenants against the real audit API (docs/audit-api.md) through the API server.
/// </summary>
public sealed partial class AuditApiTests
{
    string KubeconfigOf(string user) => Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-" + user);

    /// <summary>Sets a row's actor as the Postgres superuser with the append-only triggers off (this transaction only).</summary>
    async Task SetActorBehindTheTriggersAsync(long id, string actor)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var replica = new NpgsqlCommand("SET LOCAL session_replication_role = replica", conn, tx)) await replica.ExecuteNonQueryAsync();
        await using (var update = new NpgsqlCommand("UPDATE controlplane.audit_events SET actor = $1 WHERE id = $2", conn, tx))
        {
            update.Parameters.AddWithValue(actor);
            update.Parameters.AddWithValue(id);
            Assert.Equal(1, await update.ExecuteNonQueryAsync());
        }

        await tx.CommitAsync();
    }

    [Fact]
    public async Task ThePlugin_ListsAsEachTenantsAuditor_OnlyTheirRows_AndVerifiesTheirChain_UntilARowIsChangedBehindTheTriggers()
    {
        var a = await TenantAsync("dave");
        var b = await TenantAsync("erin");
        for (var i = 0; i < 3; i++)
        {
            await AppendAsync(a, "test.plugin", i);
            await AppendAsync(b, "test.plugin", i);
        }

        var dave = KubeconfigOf("dave");
        var erin = KubeconfigOf("erin");
        var refusal = "cannot list resource \"auditevents\" in API group \"audit.controlplane.io\" in the namespace ";

        // dave, a's auditor: every row a's workspace serves, read two a page through the API server's continue tokens, all a's.
        var (direct, _) = await ListAllAsync(As("dave"), $"{Prefix}/namespaces/{a.Workspace}/auditevents", 500);
        var mine = JsonNode.Parse((await PluginRunner.RunAsync(dave, "audit", "-n", a.Workspace, "--chunk-size", "2", "-o", "json")).Succeeds().Stdout)!.AsArray();
        Assert.True(mine.Count >= 4, $"{mine.Count} rows");
        Assert.Subset(mine.Select(r => r!["metadata"]!["name"]!.GetValue<string>()).ToHashSet(), direct.Select(r => r["metadata"]!["name"]!.GetValue<string>()).ToHashSet());
        Assert.All(mine, r =>
        {
            Assert.Equal(a.Workspace, r!["metadata"]!["namespace"]!.GetValue<string>());
            Assert.Equal(a.Tenant, r["metadata"]!["labels"]!["audit.controlplane.io/tenant"]!.GetValue<string>());
        });

        // The filters, as server-side selectors: tenant and kind (labels), actor and since (fields).
        var filtered = JsonNode.Parse((await PluginRunner.RunAsync(dave, "audit", "-n", a.Workspace, "--tenant", a.Tenant, "--kind", "Workspace",
            "--actor", "tester@example.com", "--since", "1h", "-o", "json")).Succeeds().Stdout)!.AsArray();
        Assert.Equal(["test.plugin", "test.plugin", "test.plugin"], filtered.Select(r => r!["event"]!["action"]!.GetValue<string>()));
        Assert.Contains("no audit rows match", (await PluginRunner.RunAsync(dave, "audit", "-n", a.Workspace, "--since", "2999-01-01T00:00:00Z")).Succeeds().Stdout, StringComparison.Ordinal);

        // erin, b's auditor: b's rows in the table, nothing of a's.
        var theirs = (await PluginRunner.RunAsync(erin, "audit", "-n", b.Workspace)).Succeeds();
        Assert.Contains("test.plugin", theirs.Stdout, StringComparison.Ordinal);
        Assert.Contains(b.Tenant, theirs.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(a.Tenant, theirs.Stdout, StringComparison.Ordinal);

        // Across tenants: one line naming the refusal, a non-zero exit, nothing of the other tenant's rows.
        var across = (await PluginRunner.RunAsync(dave, "audit", "-w", b.Workspace)).FailsWithOneLine(refusal + $"\"{b.Workspace}\"");
        Assert.DoesNotContain("test.plugin", across.Stdout, StringComparison.Ordinal);
        (await PluginRunner.RunAsync(erin, "audit", "verify", "-n", a.Workspace)).FailsWithOneLine(refusal + $"\"{a.Workspace}\"");

        // Each verifies their tenant's chain from what they may read (the tenant found from the workspace); the platform admin the global chain.
        var intact = (await PluginRunner.RunAsync(dave, "audit", "verify", "-n", a.Workspace, "--chunk-size", "2")).Succeeds();
        Assert.Contains($"auditevents chain of tenant {a.Tenant}: intact (", intact.Stdout, StringComparison.Ordinal);
        (await PluginRunner.RunAsync(erin, "audit", "verify", "-n", b.Workspace)).Succeeds();
        // The workspace named, no tenant: the tenant is the one whose rows it serves (what a caller who may not read Workspaces gets).
        Assert.Contains($"chain of tenant {b.Tenant}: intact", (await PluginRunner.RunAsync(erin, "audit", "verify", "-w", b.Workspace)).Succeeds().Stdout, StringComparison.Ordinal);
        Assert.Contains("auditevents global chain: intact", (await PluginRunner.RunAsync(Cluster.Plane.KubeconfigPath, "audit", "verify", "-A")).Succeeds().Stdout, StringComparison.Ordinal);

        // One of a's rows changed as the Postgres superuser: a's verification names its tenant sequence and row, exit 4; b's chain is untouched.
        var victim = mine.Where(r => r!["event"]!["action"]!.GetValue<string>() == "test.plugin").ElementAt(1)!;
        var id = long.Parse(victim["metadata"]!["name"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        var tenantSeq = victim["tenantChain"]!["sequence"]!.GetValue<long>();
        var actor = victim["event"]!["actor"]!.GetValue<string>();
        await SetActorBehindTheTriggersAsync(id, "mallory@example.com");
        try
        {
            var broken = await PluginRunner.RunAsync(dave, "audit", "verify", "-n", a.Workspace);
            Assert.True(broken.ExitCode == 4, broken.ToString());
            Assert.Contains($"BROKEN at sequence {tenantSeq} (row {id})", broken.Stdout, StringComparison.Ordinal);
            var report = await PluginRunner.RunAsync(dave, "audit", "verify", "-n", a.Workspace, "-o", "json");
            Assert.Equal(4, report.ExitCode);
            var firstBreak = JsonNode.Parse(report.Stdout)!["firstBreak"]!;
            Assert.Equal(tenantSeq, firstBreak["sequence"]!.GetValue<long>());
            Assert.Equal(id.ToString(CultureInfo.InvariantCulture), firstBreak["row"]!.GetValue<string>());
            (await PluginRunner.RunAsync(erin, "audit", "verify", "-n", b.Workspace)).Succeeds();
            var global = await PluginRunner.RunAsync(Cluster.Plane.KubeconfigPath, "audit", "verify", "-A");
            Assert.True(global.ExitCode == 4, global.ToString());
            Assert.Contains($"BROKEN at sequence {id} (row {id})", global.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await SetActorBehindTheTriggersAsync(id, actor);
        }

        (await PluginRunner.RunAsync(dave, "audit", "verify", "-n", a.Workspace)).Succeeds();
    }
}
