using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>`kubectl controlplane backup now` and `restore`, the built binary run as a workspace's admin (a token user), to completion.</summary>
public sealed partial class BackupTests
{
    [Fact]
    public async Task Plugin_BackupNow_AndRestoreByTime_FollowToCompletion_AsTheWorkspacesAdmin_AndATimeOutsideTheWindowIsOneLine()
    {
        var (ws, credentials) = await WorkspaceWithMembersAsync("plg-bk", "dev", new WorkspaceMember { Kind = "User", Name = "alice@example.com", Role = "WorkspaceAdmin" });
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await WriteRowsAsync(ws, 1, 100);
        await CreatePlanAsync(ws, "nightly", Yearly);
        var alice = Path.Combine(Path.GetDirectoryName(cluster.Plane.KubeconfigPath)!, "kubeconfig-alice");

        var now = (await PluginRunner.RunAsync(alice, "backup", "now", "nightly", "-n", ws)).Succeeds();
        Assert.Contains("  Completed", now.Stdout, StringComparison.Ordinal);
        Assert.Contains("completed: ", now.Stdout, StringComparison.Ordinal);
        var atBackup = await ChecksumOfAsync(ws);
        await WriteRowsAsync(ws, 101, 20);

        var list = JsonNode.Parse((await PluginRunner.RunAsync(alice, "backup", "list", "-n", ws, "-o", "json")).Succeeds().Stdout)!.AsArray();
        var row = Assert.Single(list)!;
        Assert.Equal("Completed", row["phase"]!.GetValue<string>());
        Assert.Equal("nightly", row["plan"]!.GetValue<string>());

        // Before the first recoverability point: refused by the plugin, before anything is created.
        (await PluginRunner.RunAsync(alice, "restore", ws, "--to-time", "2000-01-01T00:00:00Z", "--into", "never"))
            .FailsWithOneLine("--to-time 2000-01-01T00:00:00Z is outside the recoverability window of BackupPlan nightly");
        Assert.Empty((await cluster.Api.ListAsync<Restore>(Restores, ws, null, 100, null, CancellationToken.None)).Items);

        // By time, into a new database (outside prod: no approval): followed to Completed, with the smoke check.
        var db = Value(await DatabaseSecretAsync(ws), "database");
        var into = db + "_plugin";
        var at = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var restore = (await PluginRunner.RunAsync(alice, "restore", ws, "--to-time", at, "--into", into, "--reason", "plugin test")).Succeeds();
        Assert.Contains($"restored into {into}", restore.Stdout, StringComparison.Ordinal);
        Assert.Contains("smoke check passed", restore.Stdout, StringComparison.Ordinal);
        Assert.Equal(atBackup, await ChecksumOfAsync(ws, into));
    }
}
