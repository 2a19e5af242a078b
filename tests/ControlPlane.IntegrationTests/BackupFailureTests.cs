using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Backups that fail, are interrupted, deleted by hand, or refused: never stuck, nothing left behind, no secret shown.</summary>
public sealed partial class BackupTests
{
    const string Yearly = "0 0 1 1 *";

    static bool Finished(Backup b) => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed;

    [Fact]
    public async Task OperatorStoppedMidBackup_NextStart_MarksItFailedInterrupted_AndAbortsTheUpload_AndTheScheduleGoesOn()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-kill");
        // A pg_dump that sends a little and then hangs, as a large dump would mid-way.
        var hanging = FakePgDump("head -c 1000 /dev/urandom\nexec sleep 600");
        string uploadId;
        await using (var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials, o => o.Backup.PgDumpPath = hanging)))
        {
            await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
            var nightly = await CreatePlanAsync(ws, "nightly", Yearly);
            // No success yet: the plan's series exists from its creation, so a plan that never succeeds becomes overdue.
            var created = new DateTimeOffset(nightly.Metadata.CreationTimestamp!.Value.ToUniversalTime()).ToUnixTimeSeconds();
            await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.BackupMetrics.LastSuccess.WithLabels(ws, "nightly").Value == created),
                TimeSpan.FromSeconds(20), "the plan's last-success series at its creation time");
            await CreateBackupAsync(ws, "on-demand", "nightly");
            var running = await WaitForBackupAsync(ws, "on-demand", b => b.Status?.Phase == BackupPhase.Running && b.Status.UploadId is not null, "Running with an upload");
            uploadId = running.Status!.UploadId!;
            await op.StopAsync();
        }

        var stopped = await cluster.Api.GetAsync<Backup>(Backups, ws, "on-demand", CancellationToken.None);
        Assert.Equal(BackupPhase.Running, stopped.Status?.Phase);
        // A SIGKILLed operator aborts nothing: leave an unfinished upload behind under the recorded id, as it would.
        using var store = s3.Store(prefix);
        var leftover = await store.InitiateAsync(stopped.Status!.Key!, CancellationToken.None);
        await store.UploadPartAsync(stopped.Status.Key!, leftover, 1, [1, 2, 3], CancellationToken.None);
        await cluster.Api.PatchAsync<Backup>(Backups, ws, "on-demand", "{\"status\":{\"uploadId\":\"" + leftover + "\"}}", PatchTypes.Merge, CancellationToken.None, "status");

        await using var next = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        var failed = await WaitForBackupAsync(ws, "on-demand", Finished, "finished after the restart");
        Assert.Equal(BackupPhase.Failed, failed.Status!.Phase);
        Assert.Equal("Interrupted", Condition(failed.Status.Conditions, "Ready")?.Reason);
        await LiveHealth.AssertAsync(cluster.Api, Backups, ws, "on-demand", "failed: interrupted by an operator restart");
        Assert.Contains("aborted", Condition(failed.Status.Conditions, "Ready")?.Message);
        Assert.Null(failed.Status.UploadId);
        Assert.Empty(await store.ListUploadsAsync(prefix + "/", CancellationToken.None));
        Assert.Empty(await store.ListKeysAsync(prefix + "/", CancellationToken.None));
        Assert.NotEqual(uploadId, leftover);

        // Not stuck: the next backup of the same plan runs to completion.
        await CreateBackupAsync(ws, "after", "nightly");
        var after = await WaitForBackupAsync(ws, "after", Finished, "the next backup finished");
        Assert.Equal(BackupPhase.Completed, after.Status!.Phase);
        var plan = await WaitForPlanAsync(ws, "nightly", p => p.Status?.LastBackup?.Name == "after", "status shows the later backup");
        Assert.Equal("True", Condition(plan.Status!.Conditions, "LastBackupSucceeded")?.Status);
    }

    [Fact]
    public async Task BadStorageCredentials_FailTheBackup_NamingTheError_WithoutTheSecret()
    {
        var (ws, prefix, _) = await WorkspaceAsync("bk-creds");
        var wrong = Unique("s3-wrong");
        const string secretKey = "a-secret-key-that-must-not-leak";
        await cluster.Api.CreateAsync(ResourceType.Secrets, OperatorNamespace, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = wrong, NamespaceProperty = OperatorNamespace },
            Data = new Dictionary<string, byte[]> { ["accessKeyId"] = Encoding.UTF8.GetBytes("NOT-A-KEY"), ["secretAccessKey"] = Encoding.UTF8.GetBytes(secretKey) },
        }, CancellationToken.None);
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, wrong));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await CreatePlanAsync(ws, "nightly", Yearly);
        await CreateBackupAsync(ws, "on-demand", "nightly");
        var failed = await WaitForBackupAsync(ws, "on-demand", Finished, "finished");
        Assert.Equal(BackupPhase.Failed, failed.Status!.Phase);
        var ready = Condition(failed.Status.Conditions, "Ready")!;
        Assert.Equal("StorageFailed", ready.Reason);
        Assert.Contains("InvalidAccessKeyId", ready.Message);
        var everything = k8s.KubernetesJson.Serialize(failed) + string.Join("\n",
            (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, ws, null, 500, null, CancellationToken.None)).Items.Select(e => e.Message));
        Assert.DoesNotContain(secretKey, everything);
        var plan = await WaitForPlanAsync(ws, "nightly", p => Condition(p.Status?.Conditions, "LastBackupSucceeded")?.Status == "False", "LastBackupSucceeded False");
        Assert.Equal("StorageFailed", Condition(plan.Status!.Conditions, "LastBackupSucceeded")?.Reason);
    }

    [Fact]
    public async Task ADumpThatIsNotAnArchive_FailsVerification_AndNothingIsLeftInTheBucket()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-garbage");
        var garbage = FakePgDump("head -c 20000 /dev/urandom");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials, o => o.Backup.PgDumpPath = garbage));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await CreatePlanAsync(ws, "nightly", Yearly);
        await CreateBackupAsync(ws, "on-demand", "nightly");
        var failed = await WaitForBackupAsync(ws, "on-demand", Finished, "finished");
        Assert.Equal(BackupPhase.Failed, failed.Status!.Phase);
        Assert.Equal("VerificationFailed", Condition(failed.Status.Conditions, "Ready")?.Reason);
        using var store = s3.Store(prefix);
        Assert.Empty(await store.ListKeysAsync(prefix + "/", CancellationToken.None));
    }

    [Fact]
    public async Task AHandDeletedBackup_DeletesItsObject_AndANoOpReconcileWritesNothing()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-delete");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await WriteRowsAsync(ws, 1, 10);
        await CreatePlanAsync(ws, "nightly", Yearly);
        await CreateBackupAsync(ws, "on-demand", "nightly");
        var done = await WaitForBackupAsync(ws, "on-demand", Finished, "finished");
        Assert.Equal(BackupPhase.Completed, done.Status!.Phase);
        using var store = s3.Store(prefix);
        Assert.Equal([done.Status.Key!], await store.ListKeysAsync(prefix + "/", CancellationToken.None));
        await WaitForPlanAsync(ws, "nightly", p => p.Status?.LastBackup?.Phase == BackupPhase.Completed, "plan status settled");

        // Settled: reconciling the Backup and its BackupPlan again writes nothing to the API server or Postgres.
        await op.ResyncWritesNothingAsync($"backup {ws}/on-demand", $"backupplan {ws}/nightly");

        await cluster.Api.DeleteAsync(Backups, ws, "on-demand", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<Backup>(Backups, ws, "on-demand", CancellationToken.None) is null,
            TimeSpan.FromSeconds(120), "the Backup gone");
        Assert.Empty(await store.ListKeysAsync(prefix + "/", CancellationToken.None));
    }

    [Fact]
    public async Task TenantStorage_WhereNotAllowed_IsRefusedAtReconcile_NamingTheField()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-own");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        // Written past admission (no webhook here): the reconcilers check again.
        await CreatePlanAsync(ws, "own-bucket", Yearly, edit: s => s.Storage = new BackupStorage
        {
            S3 = new S3Storage { Endpoint = s3.S3.Endpoint, Bucket = S3Fixture.Bucket, CredentialsSecret = new ControlPlane.Api.V1Alpha1.LocalObjectReference { Name = "mine" } },
        });
        var plan = await WaitForPlanAsync(ws, "own-bucket", p => Condition(p.Status?.Conditions, "Ready")?.Status == "False", "Ready False");
        Assert.Equal("TenantStorageNotAllowed", Condition(plan.Status!.Conditions, "Ready")!.Reason);
        Assert.Contains("spec.storage.s3", Condition(plan.Status.Conditions, "Ready")!.Message);
        await CreateBackupAsync(ws, "on-demand", "own-bucket");
        var failed = await WaitForBackupAsync(ws, "on-demand", Finished, "finished");
        Assert.Equal(BackupPhase.Failed, failed.Status!.Phase);
        Assert.Contains("spec.storage.s3", Condition(failed.Status.Conditions, "Ready")!.Message);
    }

    [Fact]
    public async Task APlanNameLongerThanALabelValue_ThatSlippedPastAdmission_IsInvalidName_AndSchedulesNothing()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-long");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        // Its name labels every scheduled Backup (controlplane.io/backup-plan): 64+ characters would fail every pass.
        var name = "nightly-" + new string('a', 60);
        await CreatePlanAsync(ws, name, "* * * * *");
        var plan = await WaitForPlanAsync(ws, name, p => Condition(p.Status?.Conditions, "Ready")?.Status == "False", "Ready False");
        Assert.Equal("InvalidName", Condition(plan.Status!.Conditions, "Ready")!.Reason);
        Assert.StartsWith("metadata.name: 68 characters, at most 63", Condition(plan.Status.Conditions, "Ready")!.Message);
        Assert.Null(plan.Status.NextScheduleTime);
        Assert.Empty(await BackupsOfAsync(ws));
    }
}
