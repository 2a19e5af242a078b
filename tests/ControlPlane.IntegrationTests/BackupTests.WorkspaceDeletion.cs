using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>A deleted workspace's backups: kept with Retain (recorded), deleted after the grace with Delete.</summary>
public sealed partial class BackupTests
{
    sealed record BackupRecordRow(string Phase, DateTime? RetainedAt, string? RetainedReason, DateTime? DeleteAfter, DateTime? DeletedAt);

    async Task<BackupRecordRow> BackupRecordAsync(string uid)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT phase, retained_at, retained_reason, delete_after, deleted_at FROM controlplane.backups WHERE k8s_uid = $1", conn);
        cmd.Parameters.AddWithValue(uid);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync(), "a row in controlplane.backups");
        DateTime? At(int i) => r.IsDBNull(i) ? null : r.GetDateTime(i);
        return new BackupRecordRow(r.GetString(0), At(1), r.IsDBNull(2) ? null : r.GetString(2), At(3), At(4));
    }

    async Task<List<string>> BackupAuditActionsAsync(string ws, string name)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'Backup' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue($"{ws}/{name}");
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    [Fact]
    public async Task AWorkspaceDeletedWithRetain_KeepsItsBackups_Recorded_AndWithDelete_TheyFollowAfterTheGrace()
    {
        var (retained, prefix, credentials) = await WorkspaceAsync("bk-keep");
        var deleted = Unique("bk-drop");
        await cluster.CreateWorkspaceAsync(deleted, (await cluster.GetWorkspaceAsync(retained))!.Spec.Tenant,
            w => w.Database = new WorkspaceDatabase { DeletionPolicy = "Delete" });
        var grace = TimeSpan.FromSeconds(20);
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials, o => o.Backup.DeleteGrace = grace));
        var kept = (await BackedUpAsync(retained)).Backup;
        var dropped = (await BackedUpAsync(deleted)).Backup;
        using var store = s3.Store(prefix);
        Assert.Equal(new[] { kept.Status!.Key!, dropped.Status!.Key! }.Order(), (await store.ListKeysAsync(prefix + "/", CancellationToken.None)).Order());

        foreach (var ws in new[] { retained, deleted })
        {
            await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        }

        foreach (var ws in new[] { retained, deleted })
        {
            await Net.WaitUntilAsync(async () => await cluster.GetWorkspaceAsync(ws) is null, TimeSpan.FromSeconds(90), $"workspace {ws} deleted");
        }

        // Retain: kept, and recorded as kept, once.
        var keptRow = await BackupRecordAsync(kept.Metadata.Uid!);
        Assert.Equal("Completed", keptRow.Phase);
        Assert.NotNull(keptRow.RetainedAt);
        Assert.Contains("Retain", keptRow.RetainedReason);
        Assert.Null(keptRow.DeleteAfter);
        Assert.Equal(1, (await BackupAuditActionsAsync(retained, kept.Metadata.Name)).Count(a => a == "backup.retained"));

        // Delete: scheduled at the deletion plus the grace; the object is still there until then.
        var droppedRow = await BackupRecordAsync(dropped.Metadata.Uid!);
        Assert.NotNull(droppedRow.DeleteAfter);
        Assert.Null(droppedRow.RetainedAt);
        Assert.InRange(droppedRow.DeleteAfter!.Value - dropped.Status.CompletedAt!.Value, grace - TimeSpan.FromSeconds(1), grace + TimeSpan.FromSeconds(90));
        if (DateTime.UtcNow < droppedRow.DeleteAfter.Value - TimeSpan.FromSeconds(2))
        {
            Assert.Contains(dropped.Status.Key!, await store.ListKeysAsync(prefix + "/", CancellationToken.None));
        }

        await Net.WaitUntilAsync(async () => !(await store.ListKeysAsync(prefix + "/", CancellationToken.None)).Contains(dropped.Status.Key!),
            grace + TimeSpan.FromSeconds(60), "the deleted workspace's backup object deleted after the grace");
        Assert.True(DateTime.UtcNow >= droppedRow.DeleteAfter.Value, "not deleted before the grace was over");
        await Net.WaitUntilAsync(async () => (await BackupRecordAsync(dropped.Metadata.Uid!)).Phase == "Deleted", TimeSpan.FromSeconds(60), "recorded as Deleted");
        Assert.Equal(["backup.deletionScheduled", "backup.deleted"],
            (await BackupAuditActionsAsync(deleted, dropped.Metadata.Name)).Where(a => a is "backup.deletionScheduled" or "backup.deleted" or "backup.retained"));

        // The retained one stays, whatever the janitor does.
        Assert.Equal([kept.Status.Key!], await store.ListKeysAsync(prefix + "/", CancellationToken.None));
        Assert.Null((await BackupRecordAsync(kept.Metadata.Uid!)).DeletedAt);
    }

    async Task<bool> RoleExistsAsync(string role)
    {
        await using var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", admin);
        cmd.Parameters.AddWithValue(role);
        return await cmd.ExecuteScalarAsync() is not null;
    }

    /// <summary>
    /// Issue 22 (medium): a workspace whose role owned a restored copy stayed Terminating for good ("role cannot be dropped"),
    /// which also blocked its tenant's deletion. With Delete the copy goes first, then the database and role; with Retain it is kept and recorded.
    /// </summary>
    [Fact]
    public async Task AWorkspaceWithARestoredCopy_DeletedWithDelete_DropsTheCopyThenItsRole_AndWithRetain_KeepsAndRecordsIt()
    {
        var (retained, prefix, credentials) = await WorkspaceAsync("rc-keep");
        var deleted = Unique("rc-drop");
        await cluster.CreateWorkspaceAsync(deleted, (await cluster.GetWorkspaceAsync(retained))!.Spec.Tenant,
            w => w.Database = new WorkspaceDatabase { DeletionPolicy = "Delete" });
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        var databases = new Dictionary<string, string>();
        foreach (var ws in new[] { retained, deleted })
        {
            var (_, db, _, _) = await BackedUpAsync(ws);
            databases[ws] = db;
            await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = db + "_copy" }));
            var done = await WaitForRestoreAsync(ws, "copy", RestoreFinished, "finished", TimeSpan.FromSeconds(90));
            Assert.True(done.Status!.Phase == RestorePhase.Completed, $"{ReadyReason(done)}: {Condition(done.Status.Conditions, "Ready")?.Message}");
        }

        foreach (var ws in new[] { retained, deleted }) await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        foreach (var ws in new[] { retained, deleted })
        {
            await Net.WaitUntilAsync(async () => await cluster.GetWorkspaceAsync(ws) is null, TimeSpan.FromSeconds(90), $"workspace {ws} deleted (not stuck Terminating)");
        }

        var gone = databases[deleted];
        Assert.False(await DatabaseExistsAsync(gone + "_copy"), "the restored copy is dropped");
        Assert.False(await DatabaseExistsAsync(gone));
        Assert.False(await RoleExistsAsync(gone), "the role is dropped");

        var kept = databases[retained];
        Assert.True(await DatabaseExistsAsync(kept + "_copy"), "Retain keeps the restored copy");
        Assert.True(await DatabaseExistsAsync(kept));
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "SELECT details->'restoredCopies' ->> 0 FROM controlplane.audit_events WHERE kind = 'Workspace' AND object_name = $1 AND action = $2", conn);
        cmd.Parameters.AddWithValue(retained);
        cmd.Parameters.AddWithValue("workspace.databaseRetained");
        Assert.Equal(kept + "_copy", await cmd.ExecuteScalarAsync());
    }
}
