using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using Xunit;

namespace ControlPlane.Tests;

public sealed partial class NotificationChannelTests
{
    /// <summary>
    /// History rows are kept for NotificationDelivery:HistoryRetention (7 days): the leader prunes delivered rows past it
    /// (at its first look, then every 10 minutes), never a row still waiting to be delivered.
    /// </summary>
    [Fact]
    public async Task DeliveredHistoryPastItsRetention_IsPruned_TheBacklogNever()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-nine");
        var tenant = Unique("t");
        string uid;
        await using (var first = Start())
        {
            await first.WaitUntilLeaderAndSyncedAsync(Long);
            var channel = await ChannelAsync(receiver, await SigningSecretAsync("s3cret-nine"), [NotificationEvents.BackupFailed], maxFailures: 1000);
            uid = channel.Metadata.Uid!;
            await WaitAsync(channel.Metadata.Name, Active, "Active");
            await Audit(first.Runtime.Database, tenant, "backup.failed", "old");
            await Audit(first.Runtime.Database, tenant, "backup.failed", "recent");
            await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Count == 2), Long, "two delivered");
            receiver.Status = 503;
            await Audit(first.Runtime.Database, tenant, "backup.failed", "waiting");
            await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Received, tenant).Count >= 3), Long, "the third refused");
            await Net.WaitUntilAsync(async () => (await RowsAsync(uid)).Count(r => r.State == "delivered") == 2, Long, "two recorded delivered");
        }

        // Eight days pass for the first delivery and for the waiting one's commit.
        await using (var ds = cluster.Postgres.DataSourceFor())
        {
            var rows = await RowsAsync(uid);
            await using var cmd = ds.CreateCommand("""
                UPDATE controlplane.notification_deliveries SET delivered_at = delivered_at - interval '8 days', committed_at = committed_at - interval '8 days'
                WHERE id = $1 OR id = $2
                """);
            cmd.Parameters.AddWithValue(rows.First(r => r.State == "delivered").Id);
            cmd.Parameters.AddWithValue(rows.Single(r => r.State != "delivered").Id);
            await cmd.ExecuteNonQueryAsync();
        }

        await using var second = Start();
        await second.WaitUntilLeaderAndSyncedAsync(Long);
        await Net.WaitUntilAsync(async () => (await RowsAsync(uid)).Count == 2, Long, "the old delivered row pruned");
        var left = await RowsAsync(uid);
        Assert.Single(left, r => r.State == "delivered");
        Assert.Single(left, r => r.State != "delivered");
    }

    async Task<IReadOnlyList<(long Id, string State)>> RowsAsync(string uid)
    {
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var cmd = ds.CreateCommand("SELECT id, state FROM controlplane.notification_deliveries WHERE channel_uid = $1 ORDER BY id");
        cmd.Parameters.AddWithValue(uid);
        await using var r = await cmd.ExecuteReaderAsync();
        var all = new List<(long, string)>();
        while (await r.ReadAsync()) all.Add((r.GetInt64(0), r.GetString(1)));
        return all;
    }
}
