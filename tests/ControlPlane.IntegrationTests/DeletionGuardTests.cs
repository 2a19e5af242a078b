using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Deletion-guarding decisions confirm with the API server: a lagging cache never lets a tenant go.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DeletionGuardTests(ClusterFixture cluster)
{
    [Fact]
    public async Task ATenantsFinalizer_WithAnEmptyCache_StillSeesItsWorkspaces_AndHoldsDeletion()
    {
        var name = $"lagging-{Guid.NewGuid().ToString("N")[..6]}";
        var tenant = await cluster.CreateTenantAsync(name);
        await cluster.CreateWorkspaceAsync(name + "-ws", name, s => s.Database = new WorkspaceDatabase { Enabled = false });
        // The reconciler's workspace cache has not seen the workspace (never started: empty).
        var empty = new Informer<Workspace>(cluster.Api, WorkspaceReconciler.Type, new OperatorMetrics(), NullLogger.Instance)
            .AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true);
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var options = cluster.OperatorOptions("unused");
        var bindings = new Informer<V1ClusterRoleBinding>(cluster.Api, TenantReconciler.ClusterRoleBindings, new OperatorMetrics(), NullLogger.Instance);
        var reconciler = new TenantReconciler(empty, bindings, new ChildApplier(cluster.Api), cluster.Api, new SystemDatabase(ds, NullLogger.Instance), new ObjectWriter(cluster.Api),
            new EventRecorder(cluster.Api, "test", "test", TimeProvider.System, NullLogger<EventRecorder>.Instance), options, TimeProvider.System, NullLogger<TenantReconciler>.Instance);

        tenant.Metadata.DeletionTimestamp = DateTime.UtcNow; // as the API server shows a tenant being deleted
        tenant.Metadata.Finalizers = [ApiGroup.Finalizer];
        await reconciler.ReconcileAsync(tenant, CancellationToken.None);

        var held = (await cluster.GetTenantAsync(name))!;
        Assert.Equal("DeletionBlocked", ClusterFixture.Condition(held, "Ready")?.Reason);
        Assert.Contains(name + "-ws", ClusterFixture.Condition(held, "Ready")!.Message);
    }
}
