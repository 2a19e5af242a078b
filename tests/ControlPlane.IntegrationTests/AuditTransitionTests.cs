using System.Text.Json.Nodes;
using ControlPlane.Operator.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// <see cref="AuditDetails.LatestTransitionIsAsync"/> on the real system of record: a change of state is "on record" only
/// when the newest transition row is the same action with each given detail equal, arrays whole (a recorded approval by
/// a and b is not one by a alone), a key the row lacks never matching, and a transition in between making it due again.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AuditTransitionTests(ClusterFixture cluster)
{
    [Fact]
    public async Task OnRecord_OnlyTheSameActionWithEqualDetails_AsTheNewestTransition()
    {
        var ct = CancellationToken.None;
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var system = new SystemDatabase(ds, NullLogger.Instance);
        await system.MigrateAsync(ct);
        var name = $"ns-{Guid.NewGuid().ToString("N")[..6]}/r";
        string[] transitions = ["x.approved", "x.withdrawn"];
        static JsonArray Names(params string[] names) => new(names.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray());
        Task Append(string action, JsonObject details) => system.AppendAuditAsync(new AuditEntry("controlplane-operator", action, "Restore", name, null, details), ct);
        Task<bool> OnRecord(string action, JsonObject details) => system.LatestTransitionIsAsync("Restore", name, transitions, action, details, ct);

        Assert.False(await OnRecord("x.approved", new JsonObject { ["approvers"] = Names("a") }));
        await Append("x.approved", new JsonObject { ["approvers"] = Names("a", "b"), ["generation"] = 1, ["at"] = "t1" });
        Assert.True(await OnRecord("x.approved", new JsonObject { ["approvers"] = Names("a", "b"), ["generation"] = 1 }));
        // Containment would say yes to these; equality per key says no.
        Assert.False(await OnRecord("x.approved", new JsonObject { ["approvers"] = Names("a"), ["generation"] = 1 }));
        Assert.False(await OnRecord("x.approved", new JsonObject { ["approvers"] = Names("a", "b"), ["generation"] = 2 }));
        Assert.False(await OnRecord("x.approved", new JsonObject { ["approvers"] = Names("a", "b"), ["missing"] = null }));
        // Another transition in between: the same approval is due again.
        await Append("x.withdrawn", new JsonObject { ["generation"] = 1 });
        Assert.False(await OnRecord("x.approved", new JsonObject { ["approvers"] = Names("a", "b"), ["generation"] = 1 }));
    }
}
