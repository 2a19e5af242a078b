using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// A cached copy that still shows a completed Backup Running (its job wrote Completed, then left; the cache has not seen it yet)
/// is no interrupted backup: the live object decides, and Failed is never written over Completed.
/// </summary>
public sealed partial class BackupTests
{
    [Fact]
    public async Task ACompletedBackup_SeenRunningInAStaleCopy_WithNoJob_KeepsItsObjectAndItsCompletedStatus()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-stale");
        var tweak = Storage(prefix, credentials);
        Backup completed;
        await using (var op = TestOperator.Start(cluster, Unique("lease"), output, tweak))
        {
            completed = (await BackedUpAsync(ws, "done")).Backup;
        }

        // The reconciler of another term, its caches synced, no job of its own running.
        var options = cluster.OperatorOptions("unused");
        tweak(options);
        using var stop = new CancellationTokenSource();
        var plans = new Informer<BackupPlan>(cluster.Api, BackupPlanReconciler.Type, new OperatorMetrics(), NullLogger.Instance);
        var workspaces = new Informer<Workspace>(cluster.Api, WorkspaceReconciler.Type, new OperatorMetrics(), NullLogger.Instance);
        var tenants = new Informer<Tenant>(cluster.Api, TenantReconciler.Type, new OperatorMetrics(), NullLogger.Instance);
        var running = new[] { plans.RunAsync(stop.Token), workspaces.RunAsync(stop.Token), tenants.RunAsync(stop.Token) };
        try
        {
            using var synced = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await Task.WhenAll(plans.WaitForSyncAsync(synced.Token), workspaces.WaitForSyncAsync(synced.Token), tenants.WaitForSyncAsync(synced.Token));
            await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
            var system = new SystemDatabase(ds, NullLogger.Instance);
            await using var regions = new RegionDatabases(options);
            var targets = new BackupTargets(cluster.Api, workspaces, tenants, options, system, regions);
            var reconciler = new BackupReconciler(plans, targets, new BackgroundJobs(1, NullLogger.Instance), new BackupJanitor(system, targets, TimeProvider.System, NullLogger.Instance),
                new PgTools(options.Backup), system, cluster.Api, new ObjectWriter(cluster.Api),
                new EventRecorder(cluster.Api, "test", "test", TimeProvider.System, NullLogger<EventRecorder>.Instance), TimeProvider.System, NullLogger.Instance);

            // As the cache had it before the Completed status arrived.
            var stale = (await cluster.Api.GetAsync<Backup>(Backups, ws, "done", CancellationToken.None))!;
            stale.Status!.Phase = BackupPhase.Running;
            await reconciler.ReconcileAsync(stale, CancellationToken.None);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(running.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        }

        using var store = s3.Store(prefix);
        var read = await store.ReadAsync(completed.Status!.Key!, null, CancellationToken.None);
        Assert.Equal(completed.Status.Sha256, read.Sha256);
        var live = (await cluster.Api.GetAsync<Backup>(Backups, ws, "done", CancellationToken.None))!;
        Assert.Equal(BackupPhase.Completed, live.Status!.Phase);
        Assert.Equal(completed.Status.Sha256, live.Status.Sha256);
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Backup' AND object_name = $1 AND action = 'backup.failed'", conn);
        cmd.Parameters.AddWithValue($"{ws}/done");
        Assert.Equal(0L, (long)(await cmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task ACompletedRestore_SeenRunningInAStaleCopy_WithNoJob_StaysCompleted_AndIsNotAuditedFailed()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("rst-stale");
        var tweak = Storage(prefix, credentials);
        string into;
        await using (var op = TestOperator.Start(cluster, Unique("lease"), output, tweak))
        {
            var (_, db, _, _) = await BackedUpAsync(ws);
            into = db + "_stale";
            await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = into }));
            var done = await WaitForRestoreAsync(ws, "copy", RestoreFinished, "finished", TimeSpan.FromSeconds(90));
            Assert.Equal(RestorePhase.Completed, done.Status!.Phase);
            // The job records it after its status: it has ended (left BackgroundJobs) once the row says so.
            await Net.WaitUntilAsync(async () => (await RestoreRowAsync(done.Metadata.Uid)).Phase == "Completed", TimeSpan.FromSeconds(60), "recorded Completed");
        }

        // Another term's reconciler, no job of its own running. Its caches are never read on this path (only the
        // plan, to drop a half-restored database, and the restored one is handed over and carries no mark): left empty.
        var options = cluster.OperatorOptions("unused");
        tweak(options);
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var system = new SystemDatabase(ds, NullLogger.Instance);
        await using var regions = new RegionDatabases(options);
        var metrics = new OperatorMetrics();
        var workspaces = new Informer<Workspace>(cluster.Api, WorkspaceReconciler.Type, metrics, NullLogger.Instance);
        var tenants = new Informer<Tenant>(cluster.Api, TenantReconciler.Type, metrics, NullLogger.Instance);
        var reconciler = new RestoreReconciler(new Informer<Backup>(cluster.Api, BackupReconciler.Type, metrics, NullLogger.Instance),
            new Informer<BackupPlan>(cluster.Api, BackupPlanReconciler.Type, metrics, NullLogger.Instance),
            new Informer<Approval>(cluster.Api, ApprovalReconciler.Type, metrics, NullLogger.Instance),
            new Informer<V1RoleBinding>(cluster.Api, WorkspaceReconciler.RoleBindings, metrics, NullLogger.Instance),
            new BackupTargets(cluster.Api, workspaces, tenants, options, system, regions), new BackgroundJobs(1, NullLogger.Instance), new PgTools(options.Backup), regions, system,
            cluster.Api, new ObjectWriter(cluster.Api), new EventRecorder(cluster.Api, "test", "test", TimeProvider.System, NullLogger<EventRecorder>.Instance), TimeProvider.System,
            NullLogger.Instance);

        // As the cache had it before the Completed status arrived.
        var stale = await cluster.Api.GetAsync<Restore>(Restores, ws, "copy", CancellationToken.None);
        stale.Status!.Phase = RestorePhase.Running;
        await reconciler.ReconcileAsync(stale, CancellationToken.None);

        var live = await cluster.Api.GetAsync<Restore>(Restores, ws, "copy", CancellationToken.None);
        Assert.Equal(RestorePhase.Completed, live.Status!.Phase);
        Assert.Equal(into, live.Status.Database);
        Assert.Equal("Completed", (await RestoreRowAsync(live.Metadata.Uid)).Phase);
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Restore' AND object_name = $1 AND action = 'restore.failed'", conn);
        cmd.Parameters.AddWithValue($"{ws}/copy");
        Assert.Equal(0L, (long)(await cmd.ExecuteScalarAsync())!);
    }
}
