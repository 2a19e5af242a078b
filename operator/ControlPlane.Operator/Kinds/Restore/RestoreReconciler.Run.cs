using System.Diagnostics;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;

namespace ControlPlane.Operator.Kinds;

/// <summary>What one approved restore runs with; <see cref="Login"/> is the workspace role's, from the operator's record (built once).</summary>
sealed record RestoreJob(Restore Restore, Backup Backup, BackupSource Source, S3Target Storage, RestoreTargetPlan Target, Guid BackupId, ApprovalState Approval, PgLogin Login);

/// <summary>A restore that failed while it ran: the reason and a message without secrets.</summary>
sealed class RestoreFailedException(string reason, string message) : Exception(message)
{
    public string Reason { get; } = reason;
}

/// <summary>A Restore's job (create, pg_restore, swap, smoke check) and the interrupted ones.</summary>
public sealed partial class RestoreReconciler
{
    async Task RunAsync(RestoreJob job, CancellationToken ct)
    {
        var restore = job.Restore;
        var uid = restore.Metadata.Uid ?? "";
        var startedAt = Now;
        var clock = Stopwatch.StartNew();
        // The replaced name is fixed (and recorded) before anything is renamed.
        var target = job.Target.InPlace ? job.Target with { Replaced = RestoreResources.ReplacedName(job.Target.Database, startedAt) } : job.Target;
        Guid correlation;
        try
        {
            // Recorded (and checked against every workspace allocation) before any database is made: names taken by restores are skipped by allocations.
            correlation = await database.StartRestoreAsync(
                new RestoreRow(Guid.NewGuid(), restore.Metadata.NamespaceProperty, restore.Metadata.Name, uid, job.Backup.Metadata.Name, job.BackupId, target.Database, target.InPlace),
                target.InPlace ? [target.Staging, target.Replaced!] : [target.Database],
                Audit(restore, "restore.started", new JsonObject
                {
                    ["backup"] = job.Backup.Metadata.Name, ["backupCorrelationId"] = job.BackupId.ToString("D"), ["database"] = target.Database,
                    ["staging"] = target.Staging, ["replacedDatabase"] = target.Replaced,
                }, job.Source.Tenant), ct).ConfigureAwait(false);
        }
        catch (DatabaseConflictException e)
        {
            await FinishFailedAsync(restore, e.Reason, e.Message, job.Source.Tenant, null, ct).ConfigureAwait(false);
            return;
        }

        restore = await WriteStatusAsync(restore, s =>
        {
            s.Phase = RestorePhase.Running;
            s.StartedAt = startedAt;
            s.Backup = job.Backup.Metadata.Name;
            s.Database = target.Database;
            s.ReplacedDatabase = target.Replaced;
            s.CorrelationId = correlation.ToString("D");
            s.ObservedGeneration = restore.Metadata.Generation;
            s.Conditions = new ConditionSet(s.Conditions, restore.Metadata.Generation, startedAt)
                .Set(RestoreConditions.Approved, true, RestoreReasons.Approved, job.Approval.Message)
                .Set(RestoreConditions.Ready, false, RestoreReasons.Running, $"pg_restore of Backup {job.Backup.Metadata.Name} into {target.Staging}").ToList();
            return s;
        }, ct).ConfigureAwait(false);
        await events.NormalAsync(restore, RestoreReasons.Running, $"restoring Backup {job.Backup.Metadata.Name} into {target.Staging}", ct).ConfigureAwait(false);

        var role = job.Login.User;
        var swapped = false;
        try
        {
            var key = job.Backup.Status!.Key!;
            using var store = new ObjectStore(job.Storage);
            // The whole object is hashed before pg_restore sees a byte of it: an archive that is not the Backup's
            // runs no SQL as the workspace role (a role may change its own settings) and no database is made for it.
            CheckSha256(job, (await store.ReadAsync(key, null, ct).ConfigureAwait(false)).Sha256);
            await regions.CreateRestoreDatabaseAsync(job.Source.Region, target.Staging, role, uid, ct).ConfigureAwait(false);
            var login = job.Login with { Database = target.Staging };
            // pg_restore runs what the archive holds (functions in CHECK constraints, defaults, index expressions):
            // the server confirms first that the session is the workspace role's and that role a plain login.
            var session = await targets.VerifyAsync(job.Source.Region, login, ct).ConfigureAwait(false);
            await events.NormalAsync(restore, RestoreReasons.SessionVerified, $"pg_restore into {target.Staging}: {session.Describe()}", ct).ConfigureAwait(false);
            UploadResult? read = null;
            await tools.RestoreAsync(login, async stdin => read = await store.ReadAsync(key, stdin, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            // Hashed again as it streamed: an object replaced after the first read is caught before anything is swapped or handed over.
            CheckSha256(job, read?.Sha256);

            if (target.Replaced is { } replaced)
            {
                await regions.SwapInPlaceAsync(job.Source.Region, target.Database, target.Staging, replaced, role, uid, ct).ConfigureAwait(false);
                swapped = true;
                await events.NormalAsync(restore, RestoreReasons.Swapped, $"{target.Database} kept as {replaced}; the restored database took its name", ct).ConfigureAwait(false);
            }
            else
            {
                await regions.HandOverRestoreDatabaseAsync(job.Source.Region, target.Database, uid, ct).ConfigureAwait(false);
                swapped = true;
            }

            var smoke = await SmokeCheckAsync(job.Source.Region, job.Login with { Database = target.Database }, ct).ConfigureAwait(false);
            var completedAt = Now;
            restore = await WriteStatusAsync(restore, s =>
            {
                s.Phase = RestorePhase.Completed;
                s.CompletedAt = completedAt;
                s.SmokeCheck = smoke;
                s.Conditions = new ConditionSet(s.Conditions, restore.Metadata.Generation, completedAt)
                    .Set(RestoreConditions.Ready, smoke.Passed, smoke.Passed ? RestoreReasons.Completed : RestoreReasons.SmokeCheckFailed, $"{target.Database}: {smoke.Message}").ToList();
                return s;
            }, ct).ConfigureAwait(false);
            await database.FinishRestoreAsync(uid, RestorePhase.Completed, smoke.Passed ? null : RestoreReasons.SmokeCheckFailed, target.Replaced, Audit(restore, "restore.completed", new JsonObject
            {
                ["backup"] = job.Backup.Metadata.Name, ["database"] = target.Database, ["replacedDatabase"] = target.Replaced, ["sha256"] = read!.Sha256,
                ["sizeBytes"] = read.SizeBytes, ["tables"] = smoke.Tables, ["smokeCheckPassed"] = smoke.Passed, ["durationSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            }, job.Source.Tenant), ct).ConfigureAwait(false);
            await events.NormalAsync(restore, RestoreReasons.RestoreCompleted, $"{target.Database}: {smoke.Message}, in {clock.Elapsed.TotalSeconds:0.0} s", ct).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The term ended: pg_restore was killed; the next leader finds this Restore Running and marks it Interrupted.
            throw;
        }
        catch (Exception e) when (e is RestoreFailedException or PgToolException or AmazonServiceException or AmazonClientException or HttpRequestException or IOException
                                       or DatabaseConflictException or NpgsqlException or BackupNotReadyException or BackupRefusedException)
        {
            var (reason, message) = e switch
            {
                RestoreFailedException f => (f.Reason, f.Message),
                BackupRefusedException r => (r.Reason, r.Message),
                PgToolException => (RestoreReasons.RestoreFailed, e.Message),
                DatabaseConflictException c => (c.Reason, c.Message),
                PostgresException p => (RestoreReasons.DatabaseError, $"{p.SqlState}: {p.MessageText}"),
                NpgsqlException or BackupNotReadyException => (RestoreReasons.DatabaseUnavailable, e.Message),
                AmazonServiceException s => (RestoreReasons.StorageFailed, $"{job.Storage}: {s.ErrorCode ?? s.StatusCode.ToString()}: {s.Message}"),
                _ => (RestoreReasons.StorageFailed, $"{job.Storage}: {e.Message}"),
            };
            if (!swapped) await TryDropStagingAsync(job.Source.Region, target.Staging, uid).ConfigureAwait(false);
            logger.LogWarning("restore {Namespace}/{Name} failed: {Reason}: {Message}", restore.Metadata.NamespaceProperty, restore.Metadata.Name, reason, message);
            await FinishFailedAsync(restore, reason, message, job.Source.Tenant, swapped ? target.Replaced : null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The object read is the Backup's only if its SHA-256 is the one recorded when it was made (and checked against the system of record).</summary>
    static void CheckSha256(RestoreJob job, string? read)
    {
        var recorded = job.Backup.Status!.Sha256;
        if (read == recorded) return;
        throw new RestoreFailedException(RestoreReasons.ChecksumMismatch,
            $"checksum mismatch: the stored object's sha256 {read ?? "(unread)"} differs from Backup {job.Backup.Metadata.Name}'s sha256 {recorded}; nothing was restored");
    }

    async Task TryDropStagingAsync(string region, string staging, string uid)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await regions.DropRestoreDatabaseAsync(region, staging, uid, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            logger.LogWarning("restore: could not drop the half-restored database {Database}: {Error}", staging, e.Message);
        }
    }

    /// <summary>
    /// Connects to the restored database as the workspace role (on the region's server, verified: the archive
    /// ran as that role and gave it nothing more) and counts its tables; the message says what was verified.
    /// </summary>
    async Task<RestoreSmokeCheck> SmokeCheckAsync(string region, PgLogin login, CancellationToken ct)
    {
        try
        {
            var (conn, session) = await regions.OpenVerifiedAsync(region, login.Database, login.User, login.Password, ct).ConfigureAwait(false);
            await using (conn)
            {
                await using var cmd = new NpgsqlCommand(
                    "SELECT pg_catalog.count(*)::int FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", conn);
                var tables = (int)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
                return new RestoreSmokeCheck { Passed = true, Tables = tables, Message = $"{session.Describe()}; {tables} tables" };
            }
        }
        catch (SessionNotVerifiedException e)
        {
            return new RestoreSmokeCheck { Passed = false, Tables = 0, Message = $"session not verified: {e.Message}" };
        }
        catch (NpgsqlException e)
        {
            return new RestoreSmokeCheck { Passed = false, Tables = 0, Message = $"could not connect as the workspace role {login.User}: {e.Message}" };
        }
    }

    /// <summary>Failed while or after it ran; <paramref name="replaced"/> names the kept database only when the in-place swap did happen.</summary>
    /// <remarks>
    /// <paramref name="keepTerminal"/> (an interruption found from a copy that may lag): never written over a terminal phase that
    /// copy did not show, and then nothing is recorded, evented or audited. The job's own failures are written as before, so
    /// the status, the row and the audit trail end in the same phase.
    /// </remarks>
    async Task FinishFailedAsync(Restore restore, string reason, string message, string? tenant, string? replaced, CancellationToken ct, bool keepTerminal = false)
    {
        var at = Now;
        var terminal = false;
        restore = await WriteStatusAsync(restore, s =>
        {
            terminal = keepTerminal && s.Phase is RestorePhase.Completed or RestorePhase.Failed;
            if (terminal) return s;
            s.Phase = RestorePhase.Failed;
            s.CompletedAt = at;
            // No name for a database that does not exist: unless swapped, the live database was never renamed.
            s.ReplacedDatabase = replaced;
            s.Conditions = new ConditionSet(s.Conditions, restore.Metadata.Generation, at).Set(RestoreConditions.Ready, false, reason, message).ToList();
            return s;
        }, ct).ConfigureAwait(false);
        if (terminal)
        {
            logger.LogInformation("restore {Namespace}/{Name}: already {Phase}; not marked Failed ({Reason})", restore.Metadata.NamespaceProperty, restore.Metadata.Name,
                restore.Status?.Phase, reason);
            return;
        }

        await database.FinishRestoreAsync(restore.Metadata.Uid ?? "", RestorePhase.Failed, reason, replaced,
            Audit(restore, "restore.failed", new JsonObject { ["reason"] = reason, ["message"] = message }, tenant), ct).ConfigureAwait(false);
        await events.WarningAsync(restore, reason, message, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Running, but no job here runs it: the operator stopped mid-restore. Its half-filled database goes; Failed/Interrupted.
    /// The cached copy may lag (a job writes Completed, then leaves <see cref="BackgroundJobs"/>): only the live object, the
    /// same one and still Running with no job, is acted on; otherwise its own watch event brings the fresh copy.
    /// </summary>
    async Task<ReconcileResult> InterruptedAsync(Restore cached, CancellationToken ct)
    {
        var uid = cached.Metadata.Uid ?? "";
        var restore = await api.TryGetAsync<Restore>(Type, cached.Metadata.NamespaceProperty, cached.Metadata.Name, ct).ConfigureAwait(false);
        if (restore is null || restore.Metadata.Uid != uid || restore.Metadata.DeletionTimestamp is not null || restore.Status?.Phase != RestorePhase.Running
            || jobs.IsRunning(uid)) return ReconcileResult.Done;
        var plan = plans.Get($"{restore.Metadata.NamespaceProperty}/{restore.Spec.BackupPlan}");
        var dropped = false;
        string? replaced = null;
        if (plan is not null && restore.Status?.Database is { } db)
        {
            try
            {
                var source = targets.Source(plan, toRun: false);
                var staging = restore.Status.ReplacedDatabase is null ? db : RestoreResources.StagingName(db, uid);
                // Only a database still carrying this restore's mark (never handed over) is dropped.
                dropped = await regions.DropRestoreDatabaseAsync(source.Region, staging, uid, ct).ConfigureAwait(false);
                // The swap is one transaction: the kept name exists only if it committed, and then the restored database holds the live name.
                if (restore.Status.ReplacedDatabase is { } kept && await regions.DatabaseExistsAsync(source.Region, kept, ct).ConfigureAwait(false))
                {
                    replaced = kept;
                    await regions.HandOverRestoreDatabaseAsync(source.Region, db, uid, ct).ConfigureAwait(false);
                }

                // Stopped mid-swap, the live database may still refuse connections: the workspace's own database (by whichever name) takes them again.
                if (restore.Status.ReplacedDatabase is not null)
                {
                    // The role is named as the workspace's recorded database (never read from its Secret).
                    await regions.ReopenAsync(source.Region, replaced ?? source.Database, source.Database, ct).ConfigureAwait(false);
                }
            }
            catch (BackupNotReadyException)
            {
                return ReconcileResult.RequeueAfter(WaitDelay);
            }
            catch (BackupRefusedException)
            {
            }
        }

        var outcome = replaced is not null
            ? $"the swap had committed: {restore.Status!.Database} holds the restored data (not smoke-checked) and the replaced database is kept as {replaced}"
            : dropped ? "its half-restored database was dropped; the live database is untouched" : "no half-restored database was left; the live database is untouched";
        await FinishFailedAsync(restore, RestoreReasons.Interrupted, $"the operator stopped while this restore ran (started {restore.Status?.StartedAt:O}); {outcome}", null, replaced, ct, keepTerminal: true)
            .ConfigureAwait(false);
        return ReconcileResult.Done;
    }
}
