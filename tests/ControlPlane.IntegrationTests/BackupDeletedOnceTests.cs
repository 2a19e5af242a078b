using System.Text.Json.Nodes;
using ControlPlane.Operator.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// A Backup's deletion is recorded (row marked, audited) before its finalizer is removed. A finalizer pass repeated after
/// that removal was lost (a crash), or from a stale cached copy that still shows the finalizer, records it once.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BackupDeletedOnceTests(ClusterFixture cluster)
{
    [Fact]
    public async Task ABackupsDeletion_RecordedTwice_IsAuditedOnce()
    {
        var ct = CancellationToken.None;
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var system = new SystemDatabase(ds, NullLogger.Instance);
        await system.MigrateAsync(ct);
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var (uid, name) = (Guid.NewGuid().ToString(), $"ns-{suffix}/nightly-1");
        AuditEntry Audit(string action) => new("controlplane-operator", action, "Backup", name, $"t-{suffix}", new JsonObject { ["namespace"] = $"ns-{suffix}" });
        await system.StartBackupAsync(new BackupRow(Guid.NewGuid(), $"ns-{suffix}", "nightly-1", uid, "nightly", $"t-{suffix}", "eu", $"ws_{suffix}", "s3://bucket/prefix",
            $"prefix/{suffix}.dump"), Audit("backup.started"), ct);

        Assert.True(await system.MarkBackupDeletedAsync(uid, Audit("backup.deleted"), ct));
        // The pass again, from the copy that still shows the finalizer: the row is marked already, nothing is appended.
        Assert.False(await system.MarkBackupDeletedAsync(uid, Audit("backup.deleted"), ct));

        await using var cmd = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Backup' AND object_name = $1 AND action = 'backup.deleted'");
        cmd.Parameters.AddWithValue(name);
        Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync(ct))!);
        Assert.Equal("Deleted", (await system.GetRecordedBackupAsync(uid, ct))!.Phase);
    }
}
