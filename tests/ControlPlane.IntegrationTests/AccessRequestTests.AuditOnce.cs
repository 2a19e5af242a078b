using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>An AccessRequest's change of phase is audited before the status that reports it, and once, even when that status write is lost.</summary>
public sealed partial class AccessRequestTests
{
    [Fact]
    public async Task AStatusWriteLostAfterTheAuditRow_IsWrittenAgain_ButTheRequestAndTheGrantAreAuditedOnce()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        var created = await RequestAsync(ns, "lost", "2h");
        await WaitAsync(ns, "lost", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        var controller = op.Runtime.Controllers.Single(c => c.Name == "accessrequest");
        await using var ds = cluster.Postgres.DataSourceFor();

        async Task<List<string>> ActionsAsync()
        {
            await using var cmd = ds.CreateCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'AccessRequest' AND object_name = $1 ORDER BY id");
            cmd.Parameters.AddWithValue($"{ns}/lost");
            var actions = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) actions.Add(r.GetString(0));
            return actions;
        }

        // The status written after an audit row is lost (as a conflict the live read did not foresee, or a crash between the
        // two, loses it): the next pass (a status change alone wakes none: a resync) decides from the old status and writes it again.
        async Task LoseStatusAsync(string patch, Func<AccessRequest, bool> rewritten, string what)
        {
            var lost = await cluster.Api.PatchAsync<AccessRequest>(Requests, ns, "lost", patch, PatchTypes.Merge, CancellationToken.None, "status");
            await Net.WaitUntilAsync(async () =>
            {
                controller.ResyncNow();
                var r = await cluster.Api.GetAsync<AccessRequest>(Requests, ns, "lost", CancellationToken.None);
                return r.Metadata.ResourceVersion != lost.Metadata.ResourceVersion && rewritten(r);
            }, TimeSpan.FromSeconds(60), what);
        }

        Assert.Equal(["access.requested"], await ActionsAsync());
        await LoseStatusAsync("""{"status":null}""", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending written again");
        Assert.Equal(["access.requested"], await ActionsAsync());

        // The grant's status lost: Active again (its binding is there), the grant on record once.
        await ApproveAsync(created, "carol@example.com");
        await WaitAsync(ns, "lost", r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
        await Net.WaitUntilAsync(async () => await BindingAsync(ns, "lost") is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");
        Assert.Equal(["access.requested", "access.granted"], await ActionsAsync());
        await LoseStatusAsync("""{"status":{"phase":"Pending","approvedBy":null,"grantedAt":null,"expiresAt":null,"roleBinding":null}}""",
            r => r.Status?.Phase == AccessRequestPhase.Active && r.Status.ApprovedBy == "carol@example.com", "Active written again");
        Assert.Equal(["access.requested", "access.granted"], await ActionsAsync());

        // Its end is a change of its own, on record once.
        await cluster.Api.PatchAsync<AccessRequest>(Requests, ns, "lost", """{"spec":{"revoke":true}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitAsync(ns, "lost", r => r.Status?.Phase == AccessRequestPhase.Revoked, "Revoked");
        Assert.Equal(["access.requested", "access.granted", "access.revoked"], await ActionsAsync());
    }
}
