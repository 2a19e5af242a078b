using System.Diagnostics;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>A Backup's job (dump, upload, verify), the interrupted ones, and deletion of the stored object.</summary>
public sealed partial class BackupReconciler
{
    async Task RunAsync(Backup backup, BackupSource source, S3Target storage, PgLogin login, CancellationToken ct)
    {
        var key = BackupRules.ObjectKey(storage.KeyPrefix, source.Tenant, source.Workspace.Metadata.Name, backup);
        var uid = backup.Metadata.Uid ?? "";
        var startedAt = Now;
        var clock = Stopwatch.StartNew();
        var correlation = await database.StartBackupAsync(
            new BackupRow(Guid.NewGuid(), backup.Metadata.NamespaceProperty, backup.Metadata.Name, uid, backup.Spec.BackupPlan, source.Tenant, source.Region,
                source.Database, storage.ToString(), key),
            Audit(backup, "backup.started", new JsonObject { ["database"] = source.Database, ["storage"] = storage.ToString(), ["key"] = key }, source.Tenant), ct).ConfigureAwait(false);
        backup = await WriteStatusAsync(backup, s =>
        {
            s.Phase = BackupPhase.Running;
            s.StartedAt = startedAt;
            s.Key = key;
            s.Database = source.Database;
            s.CorrelationId = correlation.ToString("D");
            s.ObservedGeneration = backup.Metadata.Generation;
            s.Conditions = new ConditionSet(s.Conditions, backup.Metadata.Generation, startedAt).Set(BackupConditions.Ready, false, BackupReasons.Running, $"pg_dump of {source.Database} to {storage}").ToList();
            return s;
        }, ct).ConfigureAwait(false);

        string reason;
        string message;
        try
        {
            // The server confirms the session is the workspace role's, and that role a plain login, before pg_dump runs as it.
            var session = await targets.VerifyAsync(source.Region, login, ct).ConfigureAwait(false);
            using var store = new ObjectStore(storage);
            var uploaded = await tools.DumpAsync(login, stdout => store.UploadAsync(key, stdout, targets.Options.Backup.PartSizeBytes, async uploadId =>
            {
                backup = await WriteStatusAsync(backup, s =>
                {
                    s.UploadId = uploadId;
                    return s;
                }, ct).ConfigureAwait(false);
            }, ct), ct).ConfigureAwait(false);
            var verification = await BackupVerifier.VerifyAsync(store, tools, key, uploaded, ct).ConfigureAwait(false);
            if (verification.Ok)
            {
                // The archive's header names the pg_dump that wrote it; asking the binary is only the fallback (one process less per backup).
                var dumpVersion = verification.PgDumpVersion ?? await tools.DumpVersionAsync(ct).ConfigureAwait(false);
                var completedAt = Now;
                await WriteStatusAsync(backup, s =>
                {
                    s.Phase = BackupPhase.Completed;
                    s.CompletedAt = completedAt;
                    s.UploadId = null;
                    s.SizeBytes = uploaded.SizeBytes;
                    s.Size = ByteSizes.Format(uploaded.SizeBytes);
                    s.Sha256 = uploaded.Sha256;
                    s.PgDumpVersion = dumpVersion;
                    s.ServerVersion = verification.ServerVersion;
                    s.Conditions = new ConditionSet(s.Conditions, backup.Metadata.Generation, completedAt).Set(BackupConditions.Ready, true, BackupReasons.Completed, $"{verification.Message}; dumped as role {session.Role} (session_user verified)").ToList();
                    return s;
                }, ct).ConfigureAwait(false);
                await database.FinishBackupAsync(uid, new BackupOutcome(BackupPhase.Completed, null, uploaded.SizeBytes, uploaded.Sha256, dumpVersion,
                    verification.ServerVersion), Audit(backup, "backup.completed", new JsonObject
                {
                    ["sizeBytes"] = uploaded.SizeBytes, ["sha256"] = uploaded.Sha256, ["durationSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
                    ["serverVersion"] = verification.ServerVersion,
                }, source.Tenant), ct).ConfigureAwait(false);
                await events.NormalAsync(backup, BackupReasons.BackupCompleted,
                        $"{source.Database}: {uploaded.SizeBytes} bytes, sha256 {uploaded.Sha256}, in {clock.Elapsed.TotalSeconds:0.0} s; pg_dump {session.Describe()}", ct)
                    .ConfigureAwait(false);
                return;
            }

            // Nothing that failed verification is kept as if it were a backup.
            await store.DeleteAsync(key, ct).ConfigureAwait(false);
            (reason, message) = (BackupReasons.VerificationFailed, verification.Message);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The term ended: the upload was aborted; the next leader finds this Backup Running and marks it Interrupted.
            throw;
        }
        catch (PgToolException e)
        {
            (reason, message) = (BackupReasons.DumpFailed, e.Message);
        }
        catch (BackupRefusedException e)
        {
            (reason, message) = (e.Reason, e.Message);
        }
        catch (Npgsql.NpgsqlException e)
        {
            // Only ever the region's configured server: its error says nothing about any address a tenant chose.
            (reason, message) = (BackupReasons.DatabaseUnavailable, $"{source.Database} on the {source.Region} server: {e.Message}");
        }
        catch (AmazonServiceException e)
        {
            // The service's code and message (they carry no credentials).
            (reason, message) = (BackupReasons.StorageFailed, $"{storage}: {e.ErrorCode ?? e.StatusCode.ToString()}: {e.Message}");
        }
        catch (Exception e) when (e is AmazonClientException or HttpRequestException or IOException)
        {
            (reason, message) = (BackupReasons.StorageFailed, $"{storage}: {e.Message}");
        }

        logger.LogWarning("backup {Namespace}/{Name} failed: {Reason}: {Message}", backup.Metadata.NamespaceProperty, backup.Metadata.Name, reason, message);
        await FinishFailedAsync(backup, reason, message, source.Tenant, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Failed, written over the newest copy. <paramref name="keepTerminal"/> (an interruption found from a copy that may lag):
    /// never over a terminal phase that copy did not show, and then nothing is recorded, evented or audited. The job's own
    /// failure (e.g. the system of record refusing the Completed row after the status said Completed) is written as before,
    /// so the status, the row and the audit trail end in the same phase.
    /// </summary>
    async Task FinishFailedAsync(Backup backup, string reason, string message, string? tenant, CancellationToken ct, bool keepTerminal = false)
    {
        var at = Now;
        var terminal = false;
        backup = await WriteStatusAsync(backup, s =>
        {
            terminal = keepTerminal && s.Phase is BackupPhase.Completed or BackupPhase.Failed;
            if (terminal) return s;
            s.Phase = BackupPhase.Failed;
            s.CompletedAt = at;
            s.UploadId = null;
            s.Conditions = new ConditionSet(s.Conditions, backup.Metadata.Generation, at).Set(BackupConditions.Ready, false, reason, message).ToList();
            return s;
        }, ct).ConfigureAwait(false);
        if (terminal)
        {
            logger.LogInformation("backup {Namespace}/{Name}: already {Phase}; not marked Failed ({Reason})", backup.Metadata.NamespaceProperty, backup.Metadata.Name,
                backup.Status?.Phase, reason);
            return;
        }

        await database.FinishBackupAsync(backup.Metadata.Uid ?? "", new BackupOutcome(BackupPhase.Failed, reason, null, null, null, null),
            Audit(backup, "backup.failed", new JsonObject { ["reason"] = reason, ["message"] = message }, tenant), ct).ConfigureAwait(false);
        await events.WarningAsync(backup, reason, message, ct).ConfigureAwait(false);
    }

    /// <summary>The storage a Backup's object is in: its plan's, else (plan gone) its region's platform storage.</summary>
    async Task<S3Target?> StorageOfAsync(Backup backup, CancellationToken ct)
    {
        var plan = plans.Get($"{backup.Metadata.NamespaceProperty}/{backup.Spec.BackupPlan}")
                   ?? new BackupPlan { Metadata = new() { Name = backup.Spec.BackupPlan, NamespaceProperty = backup.Metadata.NamespaceProperty }, Spec = new() };
        try
        {
            return await targets.StorageAsync(plan, targets.Source(plan, toRun: false).Region, ct).ConfigureAwait(false);
        }
        catch (BackupRefusedException e)
        {
            logger.LogWarning("backup {Namespace}/{Name}: its storage cannot be resolved: {Reason}", backup.Metadata.NamespaceProperty, backup.Metadata.Name, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Running, but no job here runs it: the operator stopped mid-backup. Abort the upload; Failed/Interrupted. The cached
    /// copy may lag (a job writes Completed, then leaves <see cref="BackgroundJobs"/>): only the live object, the same one
    /// and still Running with no job, is acted on; otherwise its own watch event brings the fresh copy.
    /// </summary>
    async Task<ReconcileResult> InterruptedAsync(Backup backup, CancellationToken ct)
    {
        var live = await api.TryGetAsync<Backup>(Type, backup.Metadata.NamespaceProperty, backup.Metadata.Name, ct).ConfigureAwait(false);
        if (live is null || live.Metadata.Uid != backup.Metadata.Uid
                         || BackupRunPlan.Triage(live, jobs.IsRunning(live.Metadata.Uid ?? "")) is not BackupStep.Interrupted) return ReconcileResult.Done;
        try
        {
            return await AbortInterruptedAsync(live, ct).ConfigureAwait(false);
        }
        catch (BackupNotReadyException)
        {
            return ReconcileResult.RequeueAfter(BackupRunPlan.WaitDelay); // its workspace is not in the cache yet: the storage is known once it is
        }
    }

    async Task<ReconcileResult> AbortInterruptedAsync(Backup backup, CancellationToken ct)
    {
        var aborted = false;
        if (backup.Status?.Key is { } key && await StorageOfAsync(backup, ct).ConfigureAwait(false) is { } storage)
        {
            using var store = new ObjectStore(storage);
            if (backup.Status.UploadId is { } uploadId) aborted = await store.AbortAsync(key, uploadId, ct).ConfigureAwait(false);
            // A completed upload that was never verified is no backup either.
            await store.DeleteAsync(key, ct).ConfigureAwait(false);
        }

        await FinishFailedAsync(backup, BackupReasons.Interrupted, BackupRunPlan.InterruptedMessage(backup, aborted), null, ct, keepTerminal: true).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>A deleted Backup (by hand or by retention): its stored object goes first, then the finalizer.</summary>
    async Task<ReconcileResult> FinalizeAsync(Backup backup, CancellationToken ct)
    {
        try
        {
            return await DeleteStoredAsync(backup, ct).ConfigureAwait(false);
        }
        catch (BackupNotReadyException)
        {
            return ReconcileResult.RequeueAfter(BackupRunPlan.WaitDelay);
        }
    }

    async Task<ReconcileResult> DeleteStoredAsync(Backup backup, CancellationToken ct)
    {
        var uid = backup.Metadata.Uid ?? "";
        var facts = new BackupDeletionFacts(jobs.IsRunning(uid));
        RecordedBackup? recorded = null;
        // Whether its namespace goes, and the system of record's row, are read only where they decide (a Completed backup).
        if (ObjectWriter.HasFinalizer(backup, ApiGroup.Finalizer) && !facts.JobRunning && backup.Status?.Phase == BackupPhase.Completed
            && await NamespaceGoingAsync(backup, ct).ConfigureAwait(false) is { } going)
        {
            recorded = await database.GetRecordedBackupAsync(uid, ct).ConfigureAwait(false);
            facts = facts with { Going = going, Recorded = recorded is { DeletedAt: null } };
        }

        switch (BackupRunPlan.Deletion(backup, facts))
        {
            case BackupDeletion.Outlive outlive:
                await OutliveWorkspaceAsync(backup, recorded!, outlive.Policy, outlive.Why, ct).ConfigureAwait(false);
                await writer.RemoveFinalizerAsync(Type, backup, ApiGroup.Finalizer, ct).ConfigureAwait(false);
                return ReconcileResult.Done;
            case BackupDeletion.Release:
                return ReconcileResult.Done;
            case BackupDeletion.WaitForJob:
                return ReconcileResult.RequeueAfter(BackupRunPlan.WaitDelay); // its job ends soon, then the object is deleted
            case BackupDeletion.DeleteStored stored:
                var deleted = false;
                if (stored.Key is { } key && await StorageOfAsync(backup, ct).ConfigureAwait(false) is { } storage)
                {
                    using var store = new ObjectStore(storage);
                    if (stored.UploadId is { } uploadId) await store.AbortAsync(key, uploadId, ct).ConfigureAwait(false);
                    await store.DeleteAsync(key, ct).ConfigureAwait(false);
                    deleted = true;
                }

                if (stored.Key is not null)
                {
                    await database.MarkBackupDeletedAsync(uid, Audit(backup, "backup.deleted", new JsonObject { ["objectDeleted"] = deleted }), ct).ConfigureAwait(false);
                }

                await writer.RemoveFinalizerAsync(Type, backup, ApiGroup.Finalizer, ct).ConfigureAwait(false);
                return ReconcileResult.Done;
            case var other:
                throw new InvalidOperationException($"not a deletion to apply here: {other}");
        }
    }

    /// <summary>Whether its whole namespace goes: its workspace's deletion (cache), else the namespace's (a GET).</summary>
    async Task<(string Policy, string Why)?> NamespaceGoingAsync(Backup backup, CancellationToken ct)
    {
        var name = backup.Metadata.NamespaceProperty;
        return BackupRunPlan.WorkspaceGoing(targets.Workspaces.Get(name))
               ?? BackupRunPlan.NamespaceGone(name, await api.TryGetAsync<k8s.Models.V1Namespace>(ResourceType.Namespaces, null, name, ct).ConfigureAwait(false));
    }

    /// <summary>
    /// A completed backup of a workspace being deleted outlives its Backup object (<see cref="BackupRunPlan.Outlive"/>):
    /// its deletion is scheduled (the <see cref="BackupJanitor"/> deletes it) or it is kept, audited either way.
    /// </summary>
    async Task OutliveWorkspaceAsync(Backup backup, RecordedBackup stored, string policy, string why, CancellationToken ct)
    {
        var platform = await PlatformStorageOrNullAsync(stored.Region, ct).ConfigureAwait(false);
        var onPlatform = platform?.ToString() == stored.Storage;
        var details = new JsonObject { ["deletionPolicy"] = policy, ["storage"] = stored.Storage };
        switch (BackupRunPlan.Outlive(policy, why, onPlatform, Now, targets.Options.Backup.DeleteGrace))
        {
            case Outliving.ScheduleDeletion schedule:
                details["deleteAfter"] = schedule.DeleteAfter.ToString("O");
                await database.ScheduleBackupDeletionAsync(stored.K8sUid, schedule.DeleteAfter, Audit(backup, "backup.deletionScheduled", details, stored.Tenant), ct).ConfigureAwait(false);
                janitor.Wake();
                logger.LogInformation("backup {Namespace}/{Name}: its workspace is deleted (Delete): object {Key} is deleted after {DeleteAfter:O}",
                    backup.Metadata.NamespaceProperty, backup.Metadata.Name, stored.ObjectKey, schedule.DeleteAfter);
                return;
            case Outliving.Retain retain:
                details["reason"] = retain.Reason;
                await database.RetainBackupAsync(stored.K8sUid, retain.Reason, Audit(backup, "backup.retained", details, stored.Tenant), ct).ConfigureAwait(false);
                logger.LogInformation("backup {Namespace}/{Name}: kept after its workspace's deletion ({Reason})", backup.Metadata.NamespaceProperty, backup.Metadata.Name, retain.Reason);
                return;
        }
    }

    async Task<S3Target?> PlatformStorageOrNullAsync(string region, CancellationToken ct)
    {
        try
        {
            return await targets.PlatformStorageAsync(region, ct).ConfigureAwait(false);
        }
        catch (BackupRefusedException)
        {
            return null;
        }
    }
}
