using System.Text.Json.Nodes;
using Amazon.Runtime;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Store;
using Npgsql;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Deletes the stored objects of a deleted workspace's backups once their grace has passed
/// (deletionPolicy Delete; ControlPlane:Backup:DeleteGrace). The schedule is in the system of record
/// (controlplane.backups.delete_after), not on any object: the workspace and its Backups are gone by
/// then. Runs on the leader only; sleeps until the next deletion is due, so an idle janitor only reads.
/// </summary>
public sealed class BackupJanitor(SystemDatabase database, BackupTargets targets, TimeProvider time, ILogger logger)
{
    const string Actor = "controlplane-operator";
    const int Batch = 100;

    /// <summary>The longest sleep: a schedule written by another process (a former leader) is seen within it.</summary>
    static readonly TimeSpan MaxSleep = TimeSpan.FromHours(1);

    /// <summary>After a failure (Postgres or the storage unreachable) the janitor tries again after this.</summary>
    static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(30);

    readonly SemaphoreSlim wake = new(0, 1);

    /// <summary>A deletion was scheduled: look again now rather than at the end of the current sleep.</summary>
    public void Wake()
    {
        try
        {
            wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already woken.
        }
    }

    /// <summary>Runs for the leadership term (register as a term loop).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            // Term loops start beside the migrations: the first sweep waits for the table it reads.
            await database.Migrated.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }

        while (!ct.IsCancellationRequested)
        {
            var sleep = await SweepAsync(ct).ConfigureAwait(false);
            try
            {
                await wake.WaitAsync(sleep, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Deletes what is due; returns how long to sleep before the next sweep.</summary>
    async Task<TimeSpan> SweepAsync(CancellationToken ct)
    {
        try
        {
            var due = await database.BackupsDueForDeletionAsync(time.GetUtcNow().UtcDateTime, Batch, ct).ConfigureAwait(false);
            var failed = false;
            foreach (var backup in due)
            {
                failed |= !await DeleteAsync(backup, ct).ConfigureAwait(false);
            }

            if (failed) return RetryDelay;
            if (due.Count == Batch) return TimeSpan.Zero;
            var next = await database.NextBackupDeletionAsync(ct).ConfigureAwait(false);
            if (next is null) return MaxSleep;
            var untilNext = next.Value - time.GetUtcNow().UtcDateTime;
            return untilNext <= TimeSpan.Zero ? TimeSpan.Zero : untilNext < MaxSleep ? untilNext : MaxSleep;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            logger.LogWarning("backup janitor: Postgres unavailable, trying again in {Delay}: {Error}", RetryDelay, e.Message);
            return RetryDelay;
        }
    }

    /// <summary>Deletes one backup's object, then records it; false when it must be tried again later.</summary>
    async Task<bool> DeleteAsync(RecordedBackup backup, CancellationToken ct)
    {
        try
        {
            // Only the region's platform storage, and only where this backup was recorded as stored: the
            // configuration may have moved, and a key is never deleted from a bucket it was not written to.
            var storage = await targets.PlatformStorageAsync(backup.Region, ct).ConfigureAwait(false);
            if (storage.ToString() != backup.Storage)
            {
                logger.LogWarning("backup {Namespace}/{Name}: recorded in {Recorded}, but region {Region}'s storage is now {Current}; its deletion waits",
                    backup.Namespace, backup.Name, backup.Storage, backup.Region, storage.ToString());
                return false;
            }

            using (var store = new ObjectStore(storage))
            {
                await store.DeleteAsync(backup.ObjectKey, ct).ConfigureAwait(false);
            }

            await database.MarkBackupDeletedAsync(backup.K8sUid, new AuditEntry(Actor, "backup.deleted", "Backup", $"{backup.Namespace}/{backup.Name}", backup.Tenant, new JsonObject
            {
                ["namespace"] = backup.Namespace, ["backupPlan"] = backup.Plan, ["key"] = backup.ObjectKey, ["objectDeleted"] = true,
                ["reason"] = "workspace deleted with deletionPolicy Delete; grace over", ["deleteAfter"] = backup.DeleteAfter?.ToString("O"),
            }), ct).ConfigureAwait(false);
            logger.LogInformation("backup {Namespace}/{Name} of a deleted workspace: object {Key} deleted", backup.Namespace, backup.Name, backup.ObjectKey);
            return true;
        }
        catch (BackupRefusedException e)
        {
            logger.LogWarning("backup {Namespace}/{Name}: its region's storage cannot be resolved, its deletion waits: {Reason}", backup.Namespace, backup.Name, e.Message);
            return false;
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException or IOException or Runtime.KubeApiException)
        {
            logger.LogWarning("backup {Namespace}/{Name}: deleting {Key} failed, trying again later: {Error}", backup.Namespace, backup.Name, backup.ObjectKey, e.Message);
            return false;
        }
    }
}
