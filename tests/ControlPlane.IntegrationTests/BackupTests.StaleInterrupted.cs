using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;

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
}
