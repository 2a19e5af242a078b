using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>A tenant's deletion is audited before its finalizer is removed, and once, even when a pass repeats it.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TenantAuditOnceTests(ClusterFixture cluster, ITestOutputHelper output)
{
    [Fact]
    public async Task APassRepeatedFromAStaleCopyAfterTheFinalizerWasRemoved_DoesNotAuditTheDeletionAgain()
    {
        var name = $"twice-{Guid.NewGuid().ToString("N")[..6]}";
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());

        async Task<long> DeletedRowsAsync()
        {
            await using var cmd = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Tenant' AND object_name = $1 AND action = 'tenant.deleted'");
            cmd.Parameters.AddWithValue(name);
            return (long)(await cmd.ExecuteScalarAsync())!;
        }

        Tenant live;
        DateTime began;
        await using (var op = TestOperator.Start(cluster, $"lease-{Guid.NewGuid().ToString("N")[..6]}", output))
        {
            await cluster.CreateTenantAsync(name);
            live = await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");
            // The deletionTimestamp the API server sets is at or after this (whole seconds).
            began = DateTime.UtcNow;
            began = new DateTime(began.Ticks - began.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
            await cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, name, CancellationToken.None);
            await Net.WaitUntilAsync(async () => await cluster.GetTenantAsync(name) is null, TimeSpan.FromSeconds(120), "tenant deleted");
            Assert.Equal(1L, await DeletedRowsAsync());
        }

        // A cache that has not yet seen the finalizer go still shows the tenant being deleted, finalizer and all (as a pass
        // repeated after a crash between the row's mark and the finalizer's removal also does): the pass runs the finalizer again.
        var workspaces = new Informer<Workspace>(cluster.Api, WorkspaceReconciler.Type, new OperatorMetrics(), NullLogger.Instance)
            .AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true);
        var bindings = new Informer<V1ClusterRoleBinding>(cluster.Api, TenantReconciler.ClusterRoleBindings, new OperatorMetrics(), NullLogger.Instance);
        var reconciler = new TenantReconciler(workspaces, bindings, new ChildApplier(cluster.Api), cluster.Api, new SystemDatabase(ds, NullLogger.Instance), new ObjectWriter(cluster.Api),
            new EventRecorder(cluster.Api, "test", "test", TimeProvider.System, NullLogger<EventRecorder>.Instance), cluster.OperatorOptions("unused"), TimeProvider.System,
            NullLogger<TenantReconciler>.Instance);
        var stale = live;
        stale.Metadata.DeletionTimestamp = began;
        stale.Metadata.Finalizers = [ApiGroup.Finalizer];
        try
        {
            await reconciler.ReconcileAsync(stale, CancellationToken.None);
        }
        catch (KubeApiException e) when (e.IsNotFound)
        {
            // The finalizer's removal finds the tenant gone: it was.
        }

        Assert.Equal(1L, await DeletedRowsAsync());
    }
}
