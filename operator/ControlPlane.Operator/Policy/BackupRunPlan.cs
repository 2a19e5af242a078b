using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>What resolving a Backup's plan to a source, storage and login said (<c>BackupTargets</c>).</summary>
public abstract record BackupResolution
{
    public sealed record Resolved : BackupResolution;

    /// <summary>Refused for good (the reason names what): the Backup fails.</summary>
    public sealed record Refused(string Reason, string Message) : BackupResolution;

    /// <summary>Not yet (no database yet, a cache not synced, ...): the Backup waits.</summary>
    public sealed record NotReady(string Message) : BackupResolution;
}

/// <summary>What one pass of a Backup does.</summary>
public abstract record BackupStep
{
    /// <summary>Being deleted: <see cref="BackupRunPlan.Deletion"/> decides.</summary>
    public sealed record Finalize : BackupStep;

    /// <summary>Finished, or its job runs here: nothing to do.</summary>
    public sealed record Nothing : BackupStep;

    /// <summary>Running, but no job of this process runs it (the operator stopped): abort its upload, then Failed/Interrupted.</summary>
    public sealed record Interrupted : BackupStep;

    /// <summary>Not started: add the finalizer, then find its plan and resolve it.</summary>
    public sealed record Prepare : BackupStep;

    /// <summary>Refused before it ran: Failed with the reason, a Warning and an audit event.</summary>
    public sealed record Fail(string Reason, string Message) : BackupStep;

    /// <summary>Pending with the reason; looked at again after <see cref="BackupRunPlan.WaitDelay"/>.</summary>
    public sealed record Wait(string Reason, string Message) : BackupStep;

    /// <summary>Start its job (or, with no free slot, <see cref="BackupRunPlan.Queued"/>).</summary>
    public sealed record Start : BackupStep;
}

/// <summary>What a deleted Backup's finalizer does.</summary>
public abstract record BackupDeletion
{
    /// <summary>Not ours to hold (no finalizer).</summary>
    public sealed record Release : BackupDeletion;

    /// <summary>Its job still runs: it ends soon, then the object is deleted.</summary>
    public sealed record WaitForJob : BackupDeletion;

    /// <summary>A completed backup of a workspace that goes: it outlives its Backup object (<see cref="BackupRunPlan.Outlive"/>).</summary>
    public sealed record Outlive(string Policy, string Why) : BackupDeletion;

    /// <summary>Abort its upload (if any), delete its stored object (if it has a key), record that, then remove the finalizer.</summary>
    public sealed record DeleteStored(string? Key, string? UploadId) : BackupDeletion;
}

/// <summary>
/// What a deleted Backup's finalizer decides on: whether its job runs here, whether its whole namespace
/// goes (<see cref="BackupRunPlan.WorkspaceGoing"/>, <see cref="BackupRunPlan.NamespaceGone"/>; read only
/// for a Completed one), and whether the system of record has it and not yet deleted (read only when the namespace goes).
/// </summary>
public sealed record BackupDeletionFacts(bool JobRunning, (string Policy, string Why)? Going = null, bool Recorded = false);

/// <summary>How a completed backup outlives its workspace.</summary>
public abstract record Outliving
{
    /// <summary>The platform's storage with deletionPolicy Delete: deleted after the grace (by the janitor).</summary>
    public sealed record ScheduleDeletion(DateTime DeleteAfter) : Outliving;

    /// <summary>Kept, and why.</summary>
    public sealed record Retain(string Reason) : Outliving;
}

/// <summary>
/// The Backup's decisions as pure functions, asked between the reconciler's I/O steps: what a pass does
/// (<see cref="Triage"/>, then <see cref="Plan"/> and <see cref="Resolve"/> once it is prepared), and what
/// its finalizer does (<see cref="Deletion"/>, <see cref="Outlive"/>). The job itself (dump, upload,
/// verify) is the apply of <see cref="BackupStep.Start"/>.
/// </summary>
public static class BackupRunPlan
{
    /// <summary>How long a Backup waits before trying again for a slot or for its workspace's database.</summary>
    public static readonly TimeSpan WaitDelay = TimeSpan.FromSeconds(2);

    public static BackupStep Triage(Backup backup, bool jobRunning)
    {
        if (backup.Metadata.DeletionTimestamp is not null) return new BackupStep.Finalize();
        return backup.Status?.Phase switch
        {
            BackupPhase.Completed or BackupPhase.Failed => new BackupStep.Nothing(),
            BackupPhase.Running => jobRunning ? new BackupStep.Nothing() : new BackupStep.Interrupted(),
            _ => jobRunning ? new BackupStep.Nothing() : new BackupStep.Prepare(),
        };
    }

    /// <summary>Its plan must exist in its namespace; null when it does.</summary>
    public static BackupStep.Fail? Plan(Backup backup, BackupPlan? plan) => plan is not null
        ? null
        : new(BackupReasons.PlanNotFound, $"spec.backupPlan: BackupPlan {backup.Spec.BackupPlan} not found in namespace {backup.Metadata.NamespaceProperty}");

    public static BackupStep Resolve(BackupPlan plan, BackupResolution resolution) => resolution switch
    {
        BackupResolution.Refused r => new BackupStep.Fail(r.Reason, $"BackupPlan {plan.Metadata.Name}: {r.Message}"),
        BackupResolution.NotReady n => new BackupStep.Wait(BackupReasons.Waiting, n.Message),
        _ => new BackupStep.Start(),
    };

    /// <summary>No free slot for its job.</summary>
    public static BackupStep.Wait Queued(int running) =>
        new(BackupReasons.Queued, $"waiting for a slot: {running} backups or restores running (ControlPlane:Backup:MaxConcurrent)");

    /// <summary>The Ready message of an interrupted backup.</summary>
    public static string InterruptedMessage(Backup backup, bool aborted) =>
        $"the operator stopped while this backup ran (started {backup.Status?.StartedAt:O}); {(aborted ? "its unfinished upload was aborted" : "no unfinished upload was left")}; the schedule goes on";

    public static BackupDeletion Deletion(Backup backup, BackupDeletionFacts facts)
    {
        if (backup.Metadata.Finalizers?.Contains(ApiGroup.Finalizer) != true) return new BackupDeletion.Release();
        if (facts.JobRunning) return new BackupDeletion.WaitForJob();
        if (backup.Status?.Phase == BackupPhase.Completed && facts.Going is var (policy, why) && facts.Recorded) return new BackupDeletion.Outlive(policy, why);
        return new BackupDeletion.DeleteStored(backup.Status?.Key, backup.Status?.UploadId);
    }

    /// <summary>Its workspace is being deleted: that workspace's deletionPolicy decides (Retain when unset).</summary>
    public static (string Policy, string Why)? WorkspaceGoing(Workspace? ws)
    {
        if (ws?.Metadata.DeletionTimestamp is null) return null;
        var policy = ws.Spec.Database?.DeletionPolicy ?? "Retain";
        return (policy, $"workspace deleted with deletionPolicy {policy}");
    }

    /// <summary>
    /// Its namespace is gone or going while its workspace stays: treated as Retain (backups are never
    /// lost to a deletion nobody meant for them). Null when the namespace stays: only this Backup goes.
    /// </summary>
    public static (string Policy, string Why)? NamespaceGone(string name, V1Namespace? ns) =>
        ns is null || ns.Metadata.DeletionTimestamp is not null ? ("Retain", $"namespace {name} deleted while its workspace stays: kept as with Retain") : null;

    /// <summary>
    /// With Delete, a backup on the platform's storage is deleted after the grace; otherwise it is kept.
    /// A backup in the plan's own bucket is always kept: its credentials go with the namespace.
    /// </summary>
    public static Outliving Outlive(string policy, string why, bool onPlatform, DateTime now, TimeSpan grace)
    {
        if (policy == "Delete" && onPlatform) return new Outliving.ScheduleDeletion(now + grace);
        return new Outliving.Retain(policy == "Delete" ? why + ", but the backup is in the plan's own bucket, whose credentials went with the namespace" : why);
    }
}
