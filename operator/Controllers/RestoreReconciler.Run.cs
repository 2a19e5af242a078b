using System.Diagnostics;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Backups;
using ControlPlane.Operator.Runtime;
using ControlPlane.Operator.Store;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Operator.Controllers;

/// <summary>What one approved restore runs with.</summary>
sealed record RestoreJob(Restore Restore, Backup Backup, BackupSource Source, S3Target Storage, RestoreTargetPlan Target, Guid BackupId, ApprovalState Approval);

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
        var correlation = await database.StartRestoreAsync(
            new RestoreRow(Guid.NewGuid(), restore.Metadata.NamespaceProperty, restore.Metadata.Name, uid, job.Backup.Metadata.Name, job.BackupId, target.Database, target.InPlace),
            Audit(restore, "restore.started", new JsonObject
            {
                ["backup"] = job.Backup.Metadata.Name, ["backupCorrelationId"] = job.BackupId.ToString("D"), ["database"] = target.Database,
                ["staging"] = target.Staging, ["replacedDatabase"] = target.Replaced,
            }, job.Source.Tenant), ct).ConfigureAwait(false);
        restore = await WriteStatusAsync(restore, s =>
        {
            s.Phase = RestorePhases.Running;
            s.StartedAt = startedAt;
            s.Backup = job.Backup.Metadata.Name;
            s.Database = target.Database;
            s.ReplacedDatabase = target.Replaced;
            s.CorrelationId = correlation.ToString("D");
            s.ObservedGeneration = restore.Metadata.Generation;
            s.Conditions = new ConditionSet(s.Conditions, restore.Metadata.Generation, startedAt)
                .Set(RestoreConditions.Approved, true, "Approved", job.Approval.Message)
                .Set(RestoreConditions.Ready, false, "Running", $"pg_restore of Backup {job.Backup.Metadata.Name} into {target.Staging}").ToList();
            return s;
        }, ct).ConfigureAwait(false);
        await events.NormalAsync(restore, "Running", $"restoring Backup {job.Backup.Metadata.Name} into {target.Staging}", ct).ConfigureAwait(false);

        var role = (await targets.LoginAsync(job.Source, job.Source.Database, ct).ConfigureAwait(false)).User;
        var swapped = false;
        try
        {
            await regions.CreateRestoreDatabaseAsync(job.Source.Region, target.Staging, role, uid, ct).ConfigureAwait(false);
            var login = await targets.LoginAsync(job.Source, target.Staging, ct).ConfigureAwait(false);
            using var store = new ObjectStore(job.Storage);
            UploadResult? read = null;
            await tools.RestoreAsync(login, async stdin => read = await store.ReadAsync(job.Backup.Status!.Key!, stdin, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            if (read is null || read.Sha256 != job.Backup.Status!.Sha256)
            {
                throw new RestoreFailedException("ChecksumMismatch",
                    $"the stored object's sha256 {read?.Sha256 ?? "(unread)"} differs from Backup {job.Backup.Metadata.Name}'s recorded {job.Backup.Status!.Sha256}; nothing was kept");
            }

            if (target.Replaced is { } replaced)
            {
                await regions.SwapInPlaceAsync(job.Source.Region, target.Database, target.Staging, replaced, role, uid, ct).ConfigureAwait(false);
                swapped = true;
                await events.NormalAsync(restore, "Swapped", $"{target.Database} kept as {replaced}; the restored database took its name", ct).ConfigureAwait(false);
            }
            else
            {
                await regions.HandOverRestoreDatabaseAsync(job.Source.Region, target.Database, uid, ct).ConfigureAwait(false);
                swapped = true;
            }

            var smoke = await SmokeCheckAsync(job.Source, target.Database, ct).ConfigureAwait(false);
            var completedAt = Now;
            restore = await WriteStatusAsync(restore, s =>
            {
                s.Phase = RestorePhases.Completed;
                s.CompletedAt = completedAt;
                s.SmokeCheck = smoke;
                s.Conditions = new ConditionSet(s.Conditions, restore.Metadata.Generation, completedAt)
                    .Set(RestoreConditions.Ready, smoke.Passed, smoke.Passed ? "Completed" : "SmokeCheckFailed", $"{target.Database}: {smoke.Message}").ToList();
                return s;
            }, ct).ConfigureAwait(false);
            await database.FinishRestoreAsync(uid, RestorePhases.Completed, smoke.Passed ? null : "SmokeCheckFailed", target.Replaced, Audit(restore, "restore.completed", new JsonObject
            {
                ["backup"] = job.Backup.Metadata.Name, ["database"] = target.Database, ["replacedDatabase"] = target.Replaced, ["sha256"] = read.Sha256,
                ["sizeBytes"] = read.SizeBytes, ["tables"] = smoke.Tables, ["smokeCheckPassed"] = smoke.Passed, ["durationSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            }, job.Source.Tenant), ct).ConfigureAwait(false);
            await events.NormalAsync(restore, "RestoreCompleted", $"{target.Database}: {smoke.Message}, in {clock.Elapsed.TotalSeconds:0.0} s", ct).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The term ended: pg_restore was killed; the next leader finds this Restore Running and marks it Interrupted.
            throw;
        }
        catch (Exception e) when (e is RestoreFailedException or PgToolException or AmazonServiceException or AmazonClientException or HttpRequestException or IOException
                                       or DatabaseConflictException or NpgsqlException or BackupNotReadyException)
        {
            var (reason, message) = e switch
            {
                RestoreFailedException f => (f.Reason, f.Message),
                PgToolException => ("RestoreFailed", e.Message),
                DatabaseConflictException c => (c.Reason, c.Message),
                PostgresException p => ("DatabaseError", $"{p.SqlState}: {p.MessageText}"),
                NpgsqlException or BackupNotReadyException => ("DatabaseUnavailable", e.Message),
                AmazonServiceException s => ("StorageFailed", $"{job.Storage}: {s.ErrorCode ?? s.StatusCode.ToString()}: {s.Message}"),
                _ => ("StorageFailed", $"{job.Storage}: {e.Message}"),
            };
            if (!swapped) await TryDropStagingAsync(job.Source.Region, target.Staging, uid).ConfigureAwait(false);
            logger.LogWarning("restore {Namespace}/{Name} failed: {Reason}: {Message}", restore.Metadata.NamespaceProperty, restore.Metadata.Name, reason, message);
            await FinishFailedAsync(restore, reason, message, job.Source.Tenant, ct).ConfigureAwait(false);
        }
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

    /// <summary>Connects to the restored database with the workspace's own credentials and counts its tables.</summary>
    async Task<RestoreSmokeCheck> SmokeCheckAsync(BackupSource source, string db, CancellationToken ct)
    {
        try
        {
            var login = await targets.LoginAsync(source, db, ct).ConfigureAwait(false);
            var b = RegionDatabases.Pin(new NpgsqlConnectionStringBuilder
            {
                Host = login.Host, Port = login.Port, Database = db, Username = login.User, Password = login.Password, Pooling = false, Timeout = 10,
            });
            await using var conn = new NpgsqlConnection(b.ConnectionString);
            await conn.OpenAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand(
                "SELECT pg_catalog.count(*)::int FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", conn);
            var tables = (int)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            return new RestoreSmokeCheck { Passed = true, Tables = tables, Message = $"connected as the workspace role; {tables} tables" };
        }
        catch (Exception e) when (e is NpgsqlException or BackupNotReadyException)
        {
            return new RestoreSmokeCheck { Passed = false, Tables = 0, Message = $"could not connect as the workspace role: {e.Message}" };
        }
    }

    async Task FinishFailedAsync(Restore restore, string reason, string message, string? tenant, CancellationToken ct)
    {
        var at = Now;
        restore = await WriteStatusAsync(restore, s =>
        {
            s.Phase = RestorePhases.Failed;
            s.CompletedAt = at;
            // Nothing was replaced: the live database is untouched.
            s.ReplacedDatabase = reason == "Interrupted" ? s.ReplacedDatabase : null;
            s.Conditions = new ConditionSet(s.Conditions, restore.Metadata.Generation, at).Set(RestoreConditions.Ready, false, reason, message).ToList();
            return s;
        }, ct).ConfigureAwait(false);
        await database.FinishRestoreAsync(restore.Metadata.Uid ?? "", RestorePhases.Failed, reason, null,
            Audit(restore, "restore.failed", new JsonObject { ["reason"] = reason, ["message"] = message }, tenant), ct).ConfigureAwait(false);
        await events.WarningAsync(restore, reason, message, ct).ConfigureAwait(false);
    }

    /// <summary>Running, but no job here runs it: the operator stopped mid-restore. Its half-filled database goes; Failed/Interrupted.</summary>
    async Task<ReconcileResult> InterruptedAsync(Restore restore, CancellationToken ct)
    {
        var uid = restore.Metadata.Uid ?? "";
        var plan = plans.Get($"{restore.Metadata.NamespaceProperty}/{restore.Spec.BackupPlan}");
        var dropped = false;
        if (plan is not null && restore.Status?.Database is { } db)
        {
            try
            {
                var source = targets.Source(plan, toRun: false);
                var staging = restore.Status.ReplacedDatabase is null ? db : RestoreResources.StagingName(db, uid);
                // Only a database still carrying this restore's mark (never handed over) is dropped.
                dropped = await regions.DropRestoreDatabaseAsync(source.Region, staging, uid, ct).ConfigureAwait(false);
            }
            catch (BackupNotReadyException)
            {
                return ReconcileResult.RequeueAfter(WaitDelay);
            }
            catch (BackupRefusedException)
            {
            }
        }

        await FinishFailedAsync(restore, "Interrupted",
            $"the operator stopped while this restore ran (started {restore.Status?.StartedAt:O}); {(dropped ? "its half-restored database was dropped" : "no half-restored database was left")}",
            null, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }
}
