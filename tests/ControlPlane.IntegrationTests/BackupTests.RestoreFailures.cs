using System.Security.Cryptography;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Restores that must not happen or must not finish: interrupted by an operator stop, of a tampered object, rejected.</summary>
public sealed partial class BackupTests
{
    /// <summary>A stand-in pg_restore: `--list` (a backup's verification) runs the real one; a restore hangs, as a large one would mid-way.</summary>
    static string HangingPgRestore()
    {
        var dir = Path.Combine(Path.GetTempPath(), "controlplane-fake-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "pg_restore");
        File.WriteAllText(path, "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = \"--list\" ] && exec /usr/bin/pg_restore \"$@\"; done\nexec sleep 600\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>Every database on the server whose name starts with this workspace database's name and "_" (a restore's target, staging or kept database).</summary>
    async Task<List<string>> DatabasesUnderAsync(string database)
    {
        await using var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT datname::text FROM pg_catalog.pg_database WHERE pg_catalog.starts_with(datname::text, $1) ORDER BY 1", admin);
        cmd.Parameters.AddWithValue(database + "_");
        var names = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) names.Add(r.GetString(0));
        return names;
    }

    async Task<V1Condition?> ApprovalConditionAsync(Approval approval, string type) =>
        Condition((await cluster.Api.GetAsync<Approval>(Approvals, approval.Metadata.NamespaceProperty, approval.Metadata.Name, CancellationToken.None)).Status?.Conditions, type);

    [Fact]
    public async Task Restore_FoundRunningAtStart_IsFailedInterrupted_DropsWhatItMade_AndTheLiveDatabaseStaysUntouchedAndUsable()
    {
        var (ws, credentials) = await WorkspaceWithApproversAsync("rst-kill", "dev", "carol@example.com");
        var hanging = HangingPgRestore();
        string db, live;
        Restore undo;
        await using (var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials, o => o.Backup.PgRestorePath = hanging)))
        {
            (_, db, _, _) = await BackedUpAsync(ws);
            live = await ChecksumOfAsync(ws);
            await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = db + "_copy" }));
            undo = await CreateRestoreAsync(ws, "undo", s => (s.Backup, s.Into) = ("first", new RestoreTarget { InPlace = true }));
            await WaitForRestoreAsync(ws, "undo", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "awaiting approval");
            await ApproveAsync(undo, "carol@example.com");
            foreach (var (name, made) in new[] { ("copy", db + "_copy"), ("undo", RestoreResources.StagingName(db, undo.Metadata.Uid)) })
            {
                await WaitForRestoreAsync(ws, name, r => r.Status?.Phase == RestorePhase.Running, "Running");
                await Net.WaitUntilAsync(() => DatabaseExistsAsync(made), TimeSpan.FromSeconds(30), $"{name}: {made} made for pg_restore");
            }

            await op.StopAsync();
        }

        Assert.Equal(RestorePhase.Running, (await cluster.Api.GetAsync<Restore>(Restores, ws, "undo", CancellationToken.None)).Status?.Phase);
        Assert.Equal([db + "_copy", RestoreResources.StagingName(db, undo.Metadata.Uid)], await DatabasesUnderAsync(db));
        // As a SIGKILL between closing the live database to connections and the finally that reopens it would leave it.
        await using (var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await admin.OpenAsync();
            await ExecAsync(admin, $"ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS false");
        }

        await using var next = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        foreach (var name in new[] { "copy", "undo" })
        {
            var failed = await WaitForRestoreAsync(ws, name, RestoreFinished, "finished after the restart");
            Assert.Equal(RestorePhase.Failed, failed.Status!.Phase);
            Assert.True(ReadyReason(failed) == "Interrupted", $"{name}: {ReadyReason(failed)}: {Condition(failed.Status.Conditions, "Ready")?.Message}");
            Assert.Contains("dropped", Condition(failed.Status.Conditions, "Ready")!.Message);
            // Nothing was renamed: no name of a kept database that does not exist.
            Assert.Null(failed.Status.ReplacedDatabase);
            // The system of record is written just after the status.
            await Net.WaitUntilAsync(async () => (await RestoreRowAsync(failed.Metadata.Uid)).Phase == "Failed", TimeSpan.FromSeconds(60), $"{name}: recorded Failed");
            Assert.Null((await RestoreRowAsync(failed.Metadata.Uid)).Replaced);
            Assert.Equal(name == "undo" ? ["restore.requested", "restore.approved", "restore.started", "restore.failed"] : ["restore.requested", "restore.started", "restore.failed"],
                await AuditActionsAsync($"{ws}/{name}"));
        }

        // No half-restored database is left, and the live one holds what it held, reachable with the workspace's own credentials.
        Assert.Empty(await DatabasesUnderAsync(db));
        Assert.Equal(live, await ChecksumOfAsync(ws));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready after the interrupted restores");
    }

    [Fact]
    public async Task Restore_OfAnObjectWhoseSha256IsNotTheBackups_FailsChecksumMismatch_MakesNoDatabase_AndLeavesTheLiveOneUntouched()
    {
        var (ws, credentials) = await WorkspaceWithApproversAsync("rst-sha", "dev", "carol@example.com");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        var (_, db, _, first) = await BackedUpAsync(ws);
        await CreateBackupAsync(ws, "second", "nightly");
        var second = await WaitForBackupAsync(ws, "second", Finished, "finished");
        Assert.Equal(BackupPhase.Completed, second.Status!.Phase);
        var live = await ChecksumOfAsync(ws);

        // Someone with write access to the bucket swaps the objects: the first backup's now holds the second's archive
        // (valid, but not the one backed up), the second's holds bytes that are no archive at all.
        using var store = s3.Store(ws);
        using var secondArchive = new MemoryStream();
        await store.ReadAsync(second.Status.Key!, secondArchive, CancellationToken.None);
        var garbage = RandomNumberGenerator.GetBytes(20000);
        var written = new Dictionary<string, string>
        {
            ["undo"] = await OverwriteAsync(store, first.Status!.Key!, secondArchive.ToArray()),
            ["copy"] = await OverwriteAsync(store, second.Status.Key!, garbage),
        };

        var undo = await CreateRestoreAsync(ws, "undo", s => (s.Backup, s.Into) = ("first", new RestoreTarget { InPlace = true }));
        await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("second", new RestoreTarget { Database = db + "_copy" }));
        await WaitForRestoreAsync(ws, "undo", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "awaiting approval");
        await ApproveAsync(undo, "carol@example.com");
        foreach (var (name, backup) in new[] { ("undo", first), ("copy", second) })
        {
            var failed = await WaitForRestoreAsync(ws, name, RestoreFinished, "finished", TimeSpan.FromSeconds(90));
            Assert.Equal(RestorePhase.Failed, failed.Status!.Phase);
            var ready = Condition(failed.Status.Conditions, "Ready")!;
            Assert.True(ready.Reason == "ChecksumMismatch", $"{name}: {ready.Reason}: {ready.Message}");
            Assert.Contains("checksum mismatch", ready.Message);
            Assert.Contains(backup.Status!.Sha256!, ready.Message);
            Assert.Contains(written[name], ready.Message);
            Assert.Null(failed.Status.ReplacedDatabase);
        }

        // No database was made (or kept) for either, and the live one is as it was.
        Assert.Empty(await DatabasesUnderAsync(db));
        Assert.Equal(live, await ChecksumOfAsync(ws));
    }

    /// <summary>Replaces a stored object with these bytes; returns their SHA-256.</summary>
    static async Task<string> OverwriteAsync(ObjectStore store, string key, byte[] bytes)
    {
        using var source = new MemoryStream(bytes);
        var put = await store.UploadAsync(key, source, 5 * 1024 * 1024, _ => Task.CompletedTask, CancellationToken.None);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), put.Sha256);
        return put.Sha256;
    }

    [Fact]
    public async Task Restore_Rejected_IsFailedRejected_NamingTheApprover_RestoresNothing_AndApprovalsShowWhatTheRestoreNeeds()
    {
        var (ws, credentials) = await WorkspaceWithApproversAsync("rst-reject", "dev", "carol@example.com");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        var (_, db, _, _) = await BackedUpAsync(ws);
        var live = await ChecksumOfAsync(ws);

        var undo = await CreateRestoreAsync(ws, "undo", s => (s.Backup, s.Into, s.Reason) = ("first", new RestoreTarget { InPlace = true }, "bad migration"));
        await WaitForRestoreAsync(ws, "undo", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "awaiting approval");
        var rejection = await ApproveAsync(undo, "carol@example.com", "reject");
        var failed = await WaitForRestoreAsync(ws, "undo", RestoreFinished, "finished");
        Assert.Equal(RestorePhase.Failed, failed.Status!.Phase);
        var ready = Condition(failed.Status.Conditions, "Ready")!;
        Assert.Equal(("False", "Rejected"), (ready.Status, ready.Reason));
        Assert.Contains("carol@example.com", ready.Message);
        var approved = Condition(failed.Status.Conditions, "Approved")!;
        Assert.Equal(("False", "Rejected"), (approved.Status, approved.Reason));
        Assert.Equal(["restore.requested", "restore.rejected"], await AuditActionsAsync($"{ws}/undo"));
        Assert.Contains((await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, ws, null, 500, null, CancellationToken.None)).Items,
            e => e.InvolvedObject.Name == "undo" && e.Type == "Warning" && e.Reason == "Rejected" && e.Message.Contains("carol@example.com"));
        Assert.Empty(await DatabasesUnderAsync(db));
        Assert.Equal(live, await ChecksumOfAsync(ws));
        // The Approval kind says the same of its target.
        await Net.WaitUntilAsync(async () => (await ApprovalConditionAsync(rejection, ApprovalReconciler.TargetApprovedCondition))?.Reason == "Rejected",
            TimeSpan.FromSeconds(20), "the rejection's TargetApproved False/Rejected");

        // Outside prod a new database needs no approval: an Approval of it that does not count (dave is no Approver here)
        // shows its target approved, as the Restore's own Approved condition does.
        var copy = await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = db + "_copy" }));
        var bystander = await ApproveAsync(copy, "dave@example.com");
        var done = await WaitForRestoreAsync(ws, "copy", RestoreFinished, "finished");
        Assert.True(done.Status!.Phase == RestorePhase.Completed, $"{ReadyReason(done)}: {Condition(done.Status.Conditions, "Ready")?.Message}");
        Assert.Equal("True", Condition(done.Status.Conditions, "Approved")?.Status);
        await Net.WaitUntilAsync(async () => (await ApprovalConditionAsync(bystander, "Ready"))?.Reason == "NotAnApprover"
                                             && (await ApprovalConditionAsync(bystander, ApprovalReconciler.TargetApprovedCondition))?.Status == "True",
            TimeSpan.FromSeconds(20), "dave's approval does not count, and its target is approved all the same");

        // Settled: reconciling the rejected Restore and the approvals again writes nothing.
        await op.ResyncWritesNothingAsync($"restore {ws}/undo", $"approval {ws}/{rejection.Metadata.Name}", $"approval {ws}/{bystander.Metadata.Name}");
    }
}
