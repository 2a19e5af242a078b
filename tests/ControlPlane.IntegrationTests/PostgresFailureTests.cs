using ControlPlane.Operator.Store;
using Xunit.Abstractions;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Not every Postgres error is "down": a refusal is terminal and names its class.</summary>
[Collection(ClusterCollection.Name)]
public sealed class PostgresFailureTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    [Fact]
    public async Task APermissionError_IsATerminalConditionNamingItsClass_NotAnUnreachableServer()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        await op.WaitUntilLeaderAndSyncedAsync(); // migrations ran
        var name = Unique("refused");
        await using var ds = cluster.Postgres.DataSourceFor();
        // The system of record refuses this one tenant's row as a revoked privilege would.
        await using (var cmd = ds.CreateCommand($"""
            CREATE FUNCTION public.refuse_{name.Replace('-', '_')}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.name = '{name}' THEN RAISE EXCEPTION 'permission denied for table tenants' USING ERRCODE = '42501'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_{name.Replace('-', '_')} BEFORE INSERT ON controlplane.tenants FOR EACH ROW EXECUTE FUNCTION public.refuse_{name.Replace('-', '_')}();
            """))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        try
        {
            await cluster.CreateTenantAsync(name);
            var tenant = await cluster.WaitForTenantAsync(name, t => ClusterFixture.Condition(t, "RecordSynced")?.Reason == "DatabaseError", "RecordSynced=False/DatabaseError");
            var condition = ClusterFixture.Condition(tenant, "RecordSynced")!;
            Assert.Equal("False", condition.Status);
            Assert.Contains("insufficient privilege (SQLSTATE 42501)", condition.Message);
            Assert.Equal("DatabaseError", ClusterFixture.Condition(tenant, "Ready")!.Reason);
            // Terminal: not retried on a backoff (it would fail the same way) until the spec changes.
            await op.WaitUntilIdleAsync();
            Assert.True(op.Runtime.Metrics.ReconcileTotal.WithLabels("tenant", "terminal").Value >= 1);
        }
        finally
        {
            await using var drop = ds.CreateCommand($"DROP TRIGGER refuse_{name.Replace('-', '_')} ON controlplane.tenants");
            await drop.ExecuteNonQueryAsync();
        }

        // Fixed, and the spec changes: it converges.
        await cluster.Api.PatchAsync<ControlPlane.Api.V1Alpha1.Tenant>(ClusterFixture.Tenants, null, name, """{"spec":{"displayName":"retry"}}""",
            ControlPlane.Runtime.PatchTypes.Merge, CancellationToken.None);
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready once the spec changed");
    }

    [Fact]
    public void ErrorClasses_AreNamed_AndOnlyConnectionFailuresAreTransient()
    {
        Assert.Equal("integrity constraint violation", PostgresFailure.ClassOf("23505"));
        Assert.Equal("insufficient privilege", PostgresFailure.ClassOf("42501"));
        Assert.False(PostgresFailure.Of(new Npgsql.PostgresException("dup", "ERROR", "ERROR", "23505"), "x").Transient);
        Assert.True(PostgresFailure.Of(new TimeoutException("slow"), "x").Transient);
    }
}
