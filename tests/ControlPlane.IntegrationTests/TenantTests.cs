using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

[Collection(ClusterCollection.Name)]
public sealed class TenantTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    [Fact]
    public async Task EveryCrd_IsInstalledAndServed()
    {
        foreach (var kind in ApiKinds.All)
        {
            var entity = (KubernetesEntityAttribute)Attribute.GetCustomAttribute(kind, typeof(KubernetesEntityAttribute))!;
            var type = new ResourceType(entity.Group, entity.ApiVersion, entity.PluralName, entity.Kind, false);
            var page = await cluster.Api.ListAsync<Tenant>(type, null, null, 1, null, CancellationToken.None);
            // ListPage.ResourceVersion defaults to "": only a served list carries a real one.
            Assert.False(string.IsNullOrEmpty(page.ResourceVersion), $"{entity.Kind}: the list has no resourceVersion");
        }
    }

    [Fact]
    public async Task Tenant_BecomesReady_WithItsRowInPostgres_AnAuditEvent_AndAnEvent()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("acme");
        await cluster.CreateTenantAsync(name, edit: s => s.Quota = new TenantQuota { MaxWorkspaces = 3 });
        var tenant = await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");

        Assert.Equal(TenantPhase.Ready, tenant.Status!.Phase);
        Assert.Equal("True", ClusterFixture.Condition(tenant, "RecordSynced")!.Status);
        Assert.Equal(0, tenant.Status.Workspaces);
        Assert.Contains(ApiGroup.Finalizer, tenant.Metadata.Finalizers);
        Assert.Equal(tenant.Metadata.Generation, tenant.Status.ObservedGeneration);

        var row = await op.Runtime.Database.GetTenantAsync(name, CancellationToken.None);
        Assert.NotNull(row);
        Assert.Equal(row!.Id.ToString(), tenant.Status.RecordId);
        Assert.Equal("eu", row.Region);
        Assert.Null(row.DisplayName); // metadataOnly: no free text in the record

        await using var ds = cluster.Postgres.DataSourceFor();
        await using var cmd = ds.CreateCommand(
            "SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Tenant' AND object_name = $1 AND action = 'tenant.created'");
        cmd.Parameters.AddWithValue(name);
        Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
        Assert.Null(await op.Runtime.Database.VerifyAuditChainAsync(CancellationToken.None));

        await Net.WaitUntilAsync(async () =>
            (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, "default", null, 500, null, CancellationToken.None)).Items
                .Any(e => e.InvolvedObject.Name == name && e.Reason == "RecordCreated"),
            TimeSpan.FromSeconds(60), "RecordCreated event");
    }

    [Fact]
    public async Task Tenant_WithMalformedRegion_IsRefusedByTheSchema_NamingTheField()
    {
        var bad = await Assert.ThrowsAsync<KubeApiException>(() => cluster.CreateTenantAsync(Unique("bad"), region: "EU West!"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.StatusCode);
        Assert.Contains("spec.region", bad.StatusMessage);

        var missing = await Assert.ThrowsAsync<KubeApiException>(() => cluster.CreateTenantAsync(Unique("bad"), region: ""));
        Assert.Contains("spec.region", missing.StatusMessage);

        var mode = await Assert.ThrowsAsync<KubeApiException>(() => cluster.CreateTenantAsync(Unique("bad"), edit: s => s.DataMode = "everything"));
        Assert.Contains("spec.dataMode", mode.StatusMessage);
        Assert.Contains("metadataOnly", mode.StatusMessage);
    }

    [Fact]
    public async Task Tenant_InAnUnconfiguredRegion_FailsWithAConditionNamingTheRegion_AndWritesNoRow()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("mars");
        await cluster.CreateTenantAsync(name, region: "mars");
        var tenant = await cluster.WaitForTenantAsync(name, t => t.Status?.Phase == TenantPhase.Failed, "Failed");
        var ready = ClusterFixture.Condition(tenant, "Ready")!;
        Assert.Equal("False", ready.Status);
        Assert.Equal("InvalidRegion", ready.Reason);
        Assert.Contains("spec.region", ready.Message);
        Assert.Contains("mars", ready.Message);
        Assert.Null(await op.Runtime.Database.GetTenantAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task TenantDeletion_RunsTheFinalizer_MarksTheRowDeleted_AndAudits()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("gone");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");
        await cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.GetTenantAsync(name) is null, TimeSpan.FromSeconds(120), "tenant deleted");

        var row = await op.Runtime.Database.GetTenantAsync(name, CancellationToken.None);
        Assert.NotNull(row!.DeletedAt);
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var cmd = ds.CreateCommand(
            "SELECT count(*) FROM controlplane.audit_events WHERE object_name = $1 AND action = 'tenant.deleted'");
        cmd.Parameters.AddWithValue(name);
        Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task TenantDeletion_IsHeldWhileWorkspacesRemain()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("held");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name + "-dev" } };
        ws.Spec.Tenant = name;
        ws.Spec.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("2"), Memory = new ResourceQuantity("4Gi") };
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        var counted = await cluster.WaitForTenantAsync(name, t => t.Status?.Workspaces == 1, "counts its workspace");
        Assert.Equal(2m, counted.Status!.Usage!.Cpu!.ToDecimal());

        await cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, name, CancellationToken.None);
        var held = await cluster.WaitForTenantAsync(name, t => ClusterFixture.Condition(t, "Ready")?.Reason == "DeletionBlocked", "deletion held");
        Assert.NotNull(held.Metadata.DeletionTimestamp);
        Assert.Contains(name + "-dev", ClusterFixture.Condition(held, "Ready")!.Message);
        // The Event follows the status write; poll for it.
        await Net.WaitUntilAsync(async () =>
            (await cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, "default", null, 500, null, CancellationToken.None)).Items
                .Any(e => e.InvolvedObject.Name == name && e.Reason == "DeletionBlocked" && e.Type == "Warning"),
            TimeSpan.FromSeconds(60), "DeletionBlocked Warning event");

        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name + "-dev", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.GetTenantAsync(name) is null, TimeSpan.FromSeconds(120), "tenant deleted once its workspace is gone");
    }

    [Fact]
    public async Task PostgresDown_FlipsRecordSynced_AndRecoversByItself()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("pgdown");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");

        await cluster.Postgres.StopServerAsync();
        try
        {
            await cluster.Api.EditAsync<Tenant>(ClusterFixture.Tenants, null, name, t => t.Spec.DisplayName = "changed while Postgres is down");
            var failing = await cluster.WaitForTenantAsync(name,
                t => ClusterFixture.Condition(t, "RecordSynced")?.Status == "False", "RecordSynced=False");
            Assert.Equal("DatabaseUnavailable", ClusterFixture.Condition(failing, "RecordSynced")!.Reason);
            Assert.DoesNotContain(cluster.Postgres.Password, ClusterFixture.Condition(failing, "RecordSynced")!.Message);
        }
        finally
        {
            await cluster.Postgres.StartServerAsync();
        }

        var recovered = await cluster.WaitForTenantAsync(name, t => ClusterFixture.IsReady(t) && ClusterFixture.Condition(t, "RecordSynced")?.Status == "True",
            "recovered", TimeSpan.FromSeconds(60));
        Assert.Equal(TenantPhase.Ready, recovered.Status!.Phase);
    }

    [Fact]
    public async Task ApiServerRestart_OperatorReconnects_AndReconcilesATenantCreatedAfterwards()
    {
        // Reconciles in flight while the API server is down fail, and say so; just after its restart its RBAC
        // cache may still be loading (a brief Forbidden).
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, expectedErrors: ["Connection refused", "is forbidden"]);
        await op.WaitUntilLeaderAndSyncedAsync();
        await cluster.Plane.StopApiServerAsync();
        await cluster.Plane.StartApiServerAsync();
        var name = Unique("after");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready after the API server restarted", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task ExpiredResourceVersion_410_TriggersARelist_ThatDropsVanishedObjects()
    {
        // A lease that outlives the API server's restart, so the same informer sees the 410
        // (with the tests' 3 s renew deadline the leader would step down and start a new term).
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.LeaderElection = new()
        {
            LeaseName = Unique("lease"),
            LeaseDuration = TimeSpan.FromSeconds(90),
            RenewDeadline = TimeSpan.FromSeconds(60),
            RetryPeriod = TimeSpan.FromSeconds(1),
        }, expectedErrors: ["Connection refused", "is forbidden"]);
        var vanishing = Unique("vanish");
        await cluster.CreateTenantAsync(vanishing);
        await cluster.WaitForTenantAsync(vanishing, ClusterFixture.IsReady, "Ready");
        await op.WaitUntilLeaderAndSyncedAsync();
        var informer = op.Runtime.InformerOf<Tenant>()!;
        Assert.NotNull(informer.Get(vanishing));
        var gone = () => op.Runtime.Metrics.WatchRestarts.WithLabels("tenants", "gone").Value;
        var relists = () => op.Runtime.Metrics.Relists.WithLabels("tenants").Value;
        var (goneBefore, relistsBefore) = (gone(), relists());

        // While the watch is down: the object vanishes behind the API server's back, and etcd is
        // compacted past the informer's resourceVersion, as `etcdctl compact` would.
        await cluster.Plane.StopApiServerAsync();
        await cluster.Plane.DeleteEtcdKeyAsync($"/registry/controlplane.io/tenants/{vanishing}");
        await cluster.Plane.CompactEtcdAsync(putKeyFirst: "/controlplane-test/bump");
        await cluster.Plane.StartApiServerAsync();

        await Net.WaitUntilAsync(() => Task.FromResult(relists() > relistsBefore && informer.Get(vanishing) is null),
            TimeSpan.FromSeconds(60), "informer re-listed and dropped the vanished tenant");
        Assert.True(gone() > goneBefore, "the re-list came from a 410 Gone");

        var name = Unique("relisted");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready after the re-list");
    }

    [Fact]
    public async Task TwoInstances_OnlyTheLeaderReconciles_AndStoppingItReleasesTheLease_SoTheOtherLeads()
    {
        var lease = Unique("lease");
        await using var first = TestOperator.Start(cluster, lease, output);
        await first.WaitUntilLeaderAndSyncedAsync();
        await using var second = TestOperator.Start(cluster, lease, output);

        var name = Unique("led");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");
        Assert.True(first.Runtime.IsLeader);
        Assert.False(second.Runtime.IsLeader);
        Assert.Equal(0, second.Runtime.Metrics.ReconcileTotal.WithLabels("tenant", "success").Value);
        Assert.Equal(0, second.Requests.Writes());

        var stopped = System.Diagnostics.Stopwatch.StartNew();
        await first.StopAsync();
        // Leadership moves within the lease; filling every cache after that (pods, Deployments, ... cluster-wide) takes what it takes.
        await Net.WaitUntilAsync(() => Task.FromResult(second.Runtime.IsLeader), TimeSpan.FromSeconds(60), "the second instance leads");
        output.WriteLine($"handover took {stopped.ElapsedMilliseconds} ms (lease duration 4 s; the lease was released)");
        await second.WaitUntilLeaderAndSyncedAsync(TimeSpan.FromSeconds(30));

        var next = Unique("next");
        await cluster.CreateTenantAsync(next);
        await cluster.WaitForTenantAsync(next, ClusterFixture.IsReady, "Ready under the new leader");
        // Counted when the reconcile returns, after the status it wrote: waited for.
        await Net.WaitUntilAsync(() => Task.FromResult(second.Runtime.Metrics.ReconcileTotal.WithLabels("tenant", "success").Value > 0), TimeSpan.FromSeconds(60), "a successful reconcile counted by the new leader");
    }

    [Fact]
    public async Task NoOpReconcile_MakesZeroWrites_ToTheApiServerAndToPostgres()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("idle");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");
        await op.WaitUntilIdleAsync();

        var apiWrites = op.Requests.Writes();
        var dbWrites = op.Runtime.Database.Writes;
        var reconciles = op.Runtime.Metrics.ReconcileTotal.WithLabels("tenant", "success").Value;
        var tenants = op.Runtime.InformerOf<Tenant>()!.Keys.Count();
        op.Runtime.ResyncAll();
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.Metrics.ReconcileTotal.WithLabels("tenant", "success").Value >= reconciles + tenants
            && op.Runtime.IsIdle), TimeSpan.FromSeconds(30), "every tenant reconciled again");

        Assert.Equal(apiWrites, op.Requests.Writes());
        Assert.Equal(dbWrites, op.Runtime.Database.Writes);
        output.WriteLine($"{tenants} tenants reconciled with no change: 0 API writes, 0 Postgres writes; requests by verb: " +
            string.Join(", ", op.Runtime.Requests.Snapshot().Select(kv => $"{kv.Key}={kv.Value}")));
    }

    [Fact]
    public async Task AuditTrail_IsAppendOnly_AndHashChained()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("audited");
        await cluster.CreateTenantAsync(name);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready");
        await using var ds = cluster.Postgres.DataSourceFor();
        foreach (var sql in new[] { "UPDATE controlplane.audit_events SET actor = 'mallory'", "DELETE FROM controlplane.audit_events", "TRUNCATE controlplane.audit_events" })
        {
            await using var cmd = ds.CreateCommand(sql);
            var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());
            Assert.Contains("append-only", e.MessageText);
        }

        Assert.Null(await op.Runtime.Database.VerifyAuditChainAsync(CancellationToken.None));
    }
}

static class TestExtensions
{
    public static long Writes(this RequestMetricsHandler handler) => handler.Writes;

    public static NpgsqlDataSource DataSourceFor(this LocalPostgres pg) => NpgsqlDataSource.Create(pg.ConnectionString());
}
