using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>What a killed operator leaves half-done, finished by the next pass and recorded once (found by the chaos suite).</summary>
[Collection(ClusterCollection.Name)]
public sealed class InterruptedProvisioningTests(ClusterFixture cluster, ITestOutputHelper output)
{
    [Fact]
    public async Task APassKilledAfterCreatingTheRoleAndDatabase_TheNextPassRecordsTheProvisioningOnce()
    {
        var ct = CancellationToken.None;
        var tenant = $"t-{Guid.NewGuid().ToString("N")[..6]}";
        await cluster.CreateTenantAsync(tenant);
        var name = $"{tenant}-ws";
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Database = new WorkspaceDatabase { DeletionPolicy = "Delete" };
        ws = await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, ct);

        // Exactly what a pass SIGKILLed between RegionDatabases.EnsureAsync and marking the allocation
        // provisioned leaves: the allocation recorded, its role (with the allocation's mark) and database made.
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var system = new SystemDatabase(ds, NullLogger.Instance);
        await system.MigrateAsync(ct);
        var allocation = await system.AllocateDatabaseAsync("eu", name, ws.Metadata.Uid, tenant, [RegionDatabases.DatabaseName(name)], ct);
        Assert.NotNull(allocation);
        await using (var regions = new RegionDatabases(cluster.OperatorOptions("unused")))
        {
            var password = RegionDatabases.NewPassword();
            await regions.EnsureAsync("eu", allocation.Id, false, allocation.Name, allocation.Name, password, password, [], ct);
        }

        await using var op = TestOperator.Start(cluster, $"lease-{Guid.NewGuid().ToString("N")[..6]}", output);
        await Net.WaitUntilAsync(async () =>
        {
            var current = await cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, ct);
            return current?.Status?.Phase == WorkspacePhase.Ready && current.Status.ObservedGeneration == current.Metadata.Generation;
        }, TimeSpan.FromSeconds(60), $"workspace {name} Ready");

        await using var cmd = ds.CreateCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'Workspace' AND object_name = $1 ORDER BY id");
        cmd.Parameters.AddWithValue(name);
        var actions = new List<string>();
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct)) actions.Add(reader.GetString(0));
        }

        // The provisioning is on the trail once, and not disguised as a password reset.
        Assert.Equal(1, actions.Count(a => a == "workspace.databaseProvisioned"));
        Assert.DoesNotContain("workspace.databasePasswordReset", actions);
        Assert.Null(await system.VerifyAuditChainAsync(ct));

        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, ct);
        await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, ct) is null,
            TimeSpan.FromSeconds(60), $"workspace {name} deleted");
    }
}
