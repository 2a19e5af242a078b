using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The Backup's pure decisions (<see cref="BackupRunPlan"/>): what a pass does with a Backup in each
/// phase, why it fails or waits before its job starts, and what its finalizer does, without a server.
/// </summary>
public sealed class BackupRunPlanTests
{
    static readonly DateTime Now = new(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc);

    static Backup Backup(string? phase = null, bool deleting = false, bool finalizer = true, string? key = null, string? uploadId = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "nightly-202601040200", NamespaceProperty = "team-a", Uid = "u1",
            DeletionTimestamp = deleting ? Now : null, Finalizers = finalizer ? [ApiGroup.Finalizer] : null,
        },
        Spec = new BackupSpec { BackupPlan = "nightly" },
        Status = phase is null ? null : new BackupStatus { Phase = phase is null ? null : Enum.Parse<BackupPhase>(phase), Key = key, UploadId = uploadId, StartedAt = Now.AddMinutes(-5) },
    };

    static BackupPlan Plan() => new() { Metadata = new V1ObjectMeta { Name = "nightly", NamespaceProperty = "team-a" }, Spec = new BackupPlanSpec { Schedule = "0 2 * * *" } };

    [Theory]
    [InlineData(null, false, typeof(BackupStep.Prepare))]
    [InlineData(null, true, typeof(BackupStep.Nothing))]
    [InlineData("Pending", false, typeof(BackupStep.Prepare))]
    [InlineData("Pending", true, typeof(BackupStep.Nothing))]
    [InlineData("Running", true, typeof(BackupStep.Nothing))]
    [InlineData("Running", false, typeof(BackupStep.Interrupted))]
    [InlineData("Completed", false, typeof(BackupStep.Nothing))]
    [InlineData("Failed", false, typeof(BackupStep.Nothing))]
    public void Triage_ByPhaseAndJob(string? phase, bool jobRunning, Type expected) =>
        Assert.IsType(expected, BackupRunPlan.Triage(Backup(phase), jobRunning));

    [Theory]
    [InlineData(null)]
    [InlineData("Running")]
    [InlineData("Completed")]
    public void ADeletedBackup_IsFinalized_WhateverItsPhase(string? phase) =>
        Assert.IsType<BackupStep.Finalize>(BackupRunPlan.Triage(Backup(phase, deleting: true), jobRunning: true));

    [Fact]
    public void AMissingPlan_FailsTheBackup_NamingTheField()
    {
        Assert.Null(BackupRunPlan.Plan(Backup(), Plan()));
        Assert.Equal(new BackupStep.Fail("PlanNotFound", "spec.backupPlan: BackupPlan nightly not found in namespace team-a"), BackupRunPlan.Plan(Backup(), null));
    }

    [Fact]
    public void AResolvedPlan_Starts_ARefusedOneFails_NamingThePlan_ANotReadyOneWaits()
    {
        Assert.IsType<BackupStep.Start>(BackupRunPlan.Resolve(Plan(), new BackupResolution.Resolved()));
        Assert.Equal(new BackupStep.Fail("NoBackupStorage", "BackupPlan nightly: region eu has no backup storage configured"),
            BackupRunPlan.Resolve(Plan(), new BackupResolution.Refused("NoBackupStorage", "region eu has no backup storage configured")));
        Assert.Equal(new BackupStep.Wait("Waiting", "workspace team-a has no database yet (status.database)"),
            BackupRunPlan.Resolve(Plan(), new BackupResolution.NotReady("workspace team-a has no database yet (status.database)")));
    }

    [Fact]
    public void NoFreeSlot_Queues_SayingHowManyRun() =>
        Assert.Equal(new BackupStep.Wait("Queued", "waiting for a slot: 2 backups or restores running (ControlPlane:Backup:MaxConcurrent)"), BackupRunPlan.Queued(2));

    [Fact]
    public void AnInterruptedBackup_SaysWhetherItsUploadWasAborted()
    {
        var b = Backup("Running");
        Assert.Equal($"the operator stopped while this backup ran (started {Now.AddMinutes(-5):O}); its unfinished upload was aborted; the schedule goes on", BackupRunPlan.InterruptedMessage(b, aborted: true));
        Assert.Contains("no unfinished upload was left", BackupRunPlan.InterruptedMessage(b, aborted: false), StringComparison.Ordinal);
    }

    [Fact]
    public void Deletion_WithoutOurFinalizer_Releases_AndWaitsForARunningJob()
    {
        Assert.IsType<BackupDeletion.Release>(BackupRunPlan.Deletion(Backup("Completed", deleting: true, finalizer: false), new BackupDeletionFacts(JobRunning: true)));
        Assert.IsType<BackupDeletion.WaitForJob>(BackupRunPlan.Deletion(Backup("Running", deleting: true), new BackupDeletionFacts(JobRunning: true)));
    }

    [Fact]
    public void ADeletedBackup_DeletesItsStoredObject_AbortingAnUnfinishedUpload()
    {
        Assert.Equal(new BackupDeletion.DeleteStored("k/1.dump", "up-1"), BackupRunPlan.Deletion(Backup("Failed", deleting: true, key: "k/1.dump", uploadId: "up-1"), new BackupDeletionFacts(false)));
        Assert.Equal(new BackupDeletion.DeleteStored(null, null), BackupRunPlan.Deletion(Backup(null, deleting: true), new BackupDeletionFacts(false)));
        // Only this Backup goes (its namespace stays): a Completed one's object is deleted too.
        Assert.Equal(new BackupDeletion.DeleteStored("k/1.dump", null), BackupRunPlan.Deletion(Backup("Completed", deleting: true, key: "k/1.dump"), new BackupDeletionFacts(false)));
    }

    [Fact]
    public void ACompletedBackupOfAWorkspaceThatGoes_OutlivesIt_WhenTheSystemOfRecordHasIt()
    {
        var going = ("Delete", "workspace deleted with deletionPolicy Delete");
        var completed = Backup("Completed", deleting: true, key: "k/1.dump");
        Assert.Equal(new BackupDeletion.Outlive("Delete", "workspace deleted with deletionPolicy Delete"), BackupRunPlan.Deletion(completed, new BackupDeletionFacts(false, going, Recorded: true)));
        // Not recorded (or already deleted there): deleted like any other.
        Assert.IsType<BackupDeletion.DeleteStored>(BackupRunPlan.Deletion(completed, new BackupDeletionFacts(false, going, Recorded: false)));
        // Only a Completed backup outlives its workspace.
        Assert.IsType<BackupDeletion.DeleteStored>(BackupRunPlan.Deletion(Backup("Failed", deleting: true, key: "k"), new BackupDeletionFacts(false, going, Recorded: true)));
    }

    [Fact]
    public void AWorkspaceBeingDeleted_DecidesByItsDeletionPolicy_RetainWhenUnset()
    {
        Assert.Null(BackupRunPlan.WorkspaceGoing(null));
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = "team-a" }, Spec = new WorkspaceSpec { Tenant = "acme" } };
        Assert.Null(BackupRunPlan.WorkspaceGoing(ws));
        ws.Metadata.DeletionTimestamp = Now;
        Assert.Equal(("Retain", "workspace deleted with deletionPolicy Retain"), BackupRunPlan.WorkspaceGoing(ws));
        ws.Spec.Database = new WorkspaceDatabase { DeletionPolicy = "Delete" };
        Assert.Equal(("Delete", "workspace deleted with deletionPolicy Delete"), BackupRunPlan.WorkspaceGoing(ws));
    }

    [Fact]
    public void ANamespaceGoneUnderAWorkspaceThatStays_IsTreatedAsRetain()
    {
        var kept = ("Retain", "namespace team-a deleted while its workspace stays: kept as with Retain");
        Assert.Equal(kept, BackupRunPlan.NamespaceGone("team-a", null));
        Assert.Equal(kept, BackupRunPlan.NamespaceGone("team-a", new V1Namespace { Metadata = new V1ObjectMeta { Name = "team-a", DeletionTimestamp = Now } }));
        Assert.Null(BackupRunPlan.NamespaceGone("team-a", new V1Namespace { Metadata = new V1ObjectMeta { Name = "team-a" } }));
    }

    [Fact]
    public void OutlivingItsWorkspace_DeleteOnThePlatformIsScheduled_EverythingElseIsKept()
    {
        var grace = TimeSpan.FromDays(7);
        Assert.Equal(new Outliving.ScheduleDeletion(Now + grace), BackupRunPlan.Outlive("Delete", "workspace deleted with deletionPolicy Delete", onPlatform: true, Now, grace));
        Assert.Equal(new Outliving.Retain("workspace deleted with deletionPolicy Delete, but the backup is in the plan's own bucket, whose credentials went with the namespace"),
            BackupRunPlan.Outlive("Delete", "workspace deleted with deletionPolicy Delete", onPlatform: false, Now, grace));
        Assert.Equal(new Outliving.Retain("workspace deleted with deletionPolicy Retain"), BackupRunPlan.Outlive("Retain", "workspace deleted with deletionPolicy Retain", onPlatform: true, Now, grace));
    }
}
