using System.Globalization;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// The delegation expirer under faults (issue 25, item 2): expiry is read from the recorded status.expiresAt,
/// so it holds when the operator is SIGKILLed as a grant falls due, when the API server is down at the due time,
/// and across a leader hand-over; each end is audited once and its lag observed in
/// controlplane_access_expiry_lag_seconds. The shared API server is stopped here as TenantTests does: the
/// collection runs its tests one at a time.
/// </summary>
public sealed partial class AccessRequestTests
{
    /// <summary>The operator process SIGKILLed two seconds before a grant falls due (no graceful stop, its lease not
    /// released); nothing ends the grant meanwhile; the next operator waits out the dead leader's lease and ends it
    /// from the recorded time, audited once, with the whole wait as its lag.</summary>
    [Fact]
    public async Task AnOperatorKilledAsAGrantFallsDue_TheNextOperatorEndsItFromTheRecordedTime_AuditedOnce()
    {
        var lease = Unique("lease");
        var log = Path.Combine(Path.GetTempPath(), $"controlplane-{lease}-operator.log");
        AccessRequest active;
        string ns;
        await using (var writer = new StreamWriter(log))
        {
            var killed = ChildOperator.Start(cluster, lease, writer);
            await using (killed)
            {
                await Net.WaitUntilAsync(async () => await killed.StateAsync(CancellationToken.None) is { Leader: true, Ready: true }, TimeSpan.FromSeconds(90),
                    "the operator process leads with synced caches");
                ns = await WorkspaceAsync();
                var created = await RequestAsync(ns, "due", "30s");
                await WaitAsync(ns, "due", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
                await ApproveAsync(created, "carol@example.com");
                active = await WaitAsync(ns, "due", r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
                await Net.WaitUntilAsync(async () => await BindingAsync(ns, "due") is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");

                var due = active.Status!.ExpiresAt!.Value.ToUniversalTime();
                await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow >= due.AddSeconds(-2)), TimeSpan.FromSeconds(60), "two seconds before the grant is due");
                Assert.True(DateTime.UtcNow < due, $"the machine was too slow to kill the operator before {due:O}: the test cannot show what it is for");
                await killed.KillAsync();
                output.WriteLine($"operator process {killed.Pid} SIGKILLed {(due - DateTime.UtcNow).TotalMilliseconds:0} ms before the grant was due");
            }
        }

        // Nobody runs: the grant falls due and stays in force (no timer survives a process).
        var expiresAt = active.Status!.ExpiresAt!.Value.ToUniversalTime();
        await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow > expiresAt.AddSeconds(2)), TimeSpan.FromSeconds(60), "the grant is due");
        Assert.NotNull(await BindingAsync(ns, "due"));
        Assert.Equal(AccessRequestPhase.Active, (await cluster.Api.GetAsync<AccessRequest>(Requests, ns, "due", CancellationToken.None)).Status!.Phase);

        var startedAt = DateTime.UtcNow;
        // Same lease: the next operator leads only once the killed one's lease runs out.
        await using var next = TestOperator.Start(cluster, lease, output);
        var expired = await WaitAsync(ns, "due", r => r.Status?.Phase == AccessRequestPhase.Expired, "Expired by the next operator");
        Assert.Null(await BindingAsync(ns, "due"));
        // The recorded expiry was kept, not recomputed from the restart.
        Assert.Equal(active.Status.ExpiresAt, expired.Status!.ExpiresAt);
        Assert.Equal(1L, await AuditRowsAsync(ns, "due", "access.expired"));
        var (count, sum) = await ExpiryLagAsync(next);
        Assert.Equal(1, count);
        Assert.True(sum >= (startedAt - expiresAt).TotalSeconds, $"the lag observed ({sum:0.000} s) covers the time nobody ran ({(startedAt - expiresAt).TotalSeconds:0.000} s)");
        output.WriteLine($"grant due at {expiresAt:O}; next operator started {(startedAt - expiresAt).TotalSeconds:0.000} s later; ended at {expired.Status.EndedAt:O}; " +
                         $"{AccessExpiryLag.Name} observed {sum:0.000} s");
    }

    /// <summary>
    /// The API server stopped while a grant is Active and kept down past its due time; once it is back the grant is
    /// revoked without waiting for a resync (the new term's first pass reads the recorded time), its lag reported in
    /// the test output and the metric, and access.expired is written once although passes failed meanwhile.
    /// </summary>
    [Fact]
    public async Task TheApiServerDownAtExpiry_TheGrantEndsAsSoonAsItIsBack_WithItsLagReported_AndAuditedOnce()
    {
        // Reconciles and lease renewals in flight while the API server is down fail, and say so; just after its restart
        // its RBAC cache may still be loading (a brief Forbidden).
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, expectedErrors: ["Connection refused", "is forbidden"]);
        await op.WaitUntilLeaderAndSyncedAsync();
        var ns = await WorkspaceAsync();
        var name = Unique("apidown");
        var created = await RequestAsync(ns, name, "20s");
        await WaitAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        await ApproveAsync(created, "carol@example.com");
        var active = await WaitAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
        await Net.WaitUntilAsync(async () => await BindingAsync(ns, name) is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");
        var expiresAt = active.Status!.ExpiresAt!.Value.ToUniversalTime();
        Assert.True(DateTime.UtcNow < expiresAt, $"the machine was too slow to stop the API server before {expiresAt:O}: the test cannot show what it is for");

        await cluster.Plane.StopApiServerAsync();
        var stoppedAt = DateTime.UtcNow;
        DateTime startingAt, backAt;
        try
        {
            // Down until three seconds past the due time.
            await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow > expiresAt.AddSeconds(3)), TimeSpan.FromSeconds(90), "the grant is due while the API server is down");
        }
        finally
        {
            // Down until at least here; it answers (and the operator may act) before StartApiServerAsync sees it healthy.
            startingAt = DateTime.UtcNow;
            await cluster.Plane.StartApiServerAsync();
            backAt = DateTime.UtcNow;
        }

        await Net.WaitUntilAsync(async () => await BindingAsync(ns, name) is null, TimeSpan.FromSeconds(90), "the grant's RoleBinding deleted once the API server is back");
        var goneSeen = DateTime.UtcNow;
        var expired = await WaitAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Expired, "Expired");
        Assert.Equal(active.Status.ExpiresAt, expired.Status!.ExpiresAt);
        Assert.Equal(1L, await AuditRowsAsync(ns, name, "access.expired"));
        var (count, sum) = await ExpiryLagAsync(op);
        Assert.Equal(1, count);
        Assert.True(sum >= (startingAt - expiresAt).TotalSeconds, $"the lag observed ({sum:0.000} s) covers the downtime past the due time ({(startingAt - expiresAt).TotalSeconds:0.000} s)");
        output.WriteLine($"API server stopped {stoppedAt:HH:mm:ss.fff}, restarted {startingAt:HH:mm:ss.fff} (healthy {backAt:HH:mm:ss.fff}), grant due {expiresAt:HH:mm:ss.fff}; " +
                         $"binding deleted {sum:0.000} s after the due time ({AccessExpiryLag.Name}), {sum - (startingAt - expiresAt).TotalSeconds:0.000} s after the restart began " +
                         $"(seen gone by polling {(goneSeen - startingAt).TotalSeconds:0.000} s after); endedAt {expired.Status.EndedAt:O}");
    }

    /// <summary>
    /// Two instances; two grants, one falling due during the hand-over, one after it. The leader is stopped a second
    /// before the first is due; the new leader ends both from their recorded times (the second at its due time, not at
    /// a resync ten minutes later), each audited once, and the lag is observed by whoever deleted the binding.
    /// </summary>
    [Fact]
    public async Task ALeaderHandOverWithGrantsDue_TheNewLeaderEndsThemFromTheRecordedTimes()
    {
        var lease = Unique("lease");
        var first = TestOperator.Start(cluster, lease, output);
        await using var firstScope = first;
        await first.WaitUntilLeaderAndSyncedAsync();
        await using var second = TestOperator.Start(cluster, lease, output);
        var ns = await WorkspaceAsync();
        var soon = await RequestAsync(ns, "soon", "20s");
        var later = await RequestAsync(ns, "later", "40s");
        await WaitAsync(ns, "soon", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        await WaitAsync(ns, "later", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        await ApproveAsync(soon, "carol@example.com");
        await ApproveAsync(later, "carol@example.com");
        var soonActive = await WaitAsync(ns, "soon", r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
        var laterActive = await WaitAsync(ns, "later", r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
        Assert.True(first.Runtime.IsLeader);
        Assert.False(second.Runtime.IsLeader);
        var soonDue = soonActive.Status!.ExpiresAt!.Value.ToUniversalTime();
        var laterDue = laterActive.Status!.ExpiresAt!.Value.ToUniversalTime();

        await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow >= soonDue.AddSeconds(-1)), TimeSpan.FromSeconds(60), "a second before the first grant is due");
        Assert.True(DateTime.UtcNow < soonDue, $"the machine was too slow to stop the leader before {soonDue:O}: the test cannot show what it is for");
        await first.StopAsync();
        var stoppedAt = DateTime.UtcNow;
        await Net.WaitUntilAsync(() => Task.FromResult(second.Runtime.IsLeader), TimeSpan.FromSeconds(60), "the second instance leads");
        output.WriteLine($"leader stopped {(soonDue - stoppedAt).TotalMilliseconds:0} ms before the first grant was due; the second led {(DateTime.UtcNow - stoppedAt).TotalMilliseconds:0} ms later");

        var soonExpired = await WaitAsync(ns, "soon", r => r.Status?.Phase == AccessRequestPhase.Expired, "Expired by the new leader");
        var laterExpired = await WaitAsync(ns, "later", r => r.Status?.Phase == AccessRequestPhase.Expired, "Expired by the new leader", TimeSpan.FromSeconds(120));
        Assert.Null(await BindingAsync(ns, "soon"));
        Assert.Null(await BindingAsync(ns, "later"));
        Assert.Equal(soonActive.Status.ExpiresAt, soonExpired.Status!.ExpiresAt);
        Assert.Equal(laterActive.Status.ExpiresAt, laterExpired.Status!.ExpiresAt);
        Assert.Equal(1L, await AuditRowsAsync(ns, "soon", "access.expired"));
        Assert.Equal(1L, await AuditRowsAsync(ns, "later", "access.expired"));
        // The second grant was due well after the hand-over: ended by the new leader's requeue at its recorded time.
        var laterLag = (laterExpired.Status.EndedAt!.Value.ToUniversalTime() - laterDue).TotalSeconds;
        Assert.True(laterLag < 60, $"the grant due after the hand-over ended {laterLag:0.000} s late: not at its recorded time (the resync is ten minutes)");
        var (firstCount, _) = await ExpiryLagAsync(first);
        var (secondCount, secondSum) = await ExpiryLagAsync(second);
        Assert.Equal(0, firstCount); // stopped before either was due
        Assert.Equal(2, secondCount);
        output.WriteLine($"new leader ended 'soon' {(soonExpired.Status.EndedAt!.Value.ToUniversalTime() - soonDue).TotalSeconds:0.000} s and 'later' {laterLag:0.000} s after their due times " +
                         $"(status.endedAt); {AccessExpiryLag.Name} sum {secondSum:0.000} s over {secondCount}");
    }


    async Task<long> AuditRowsAsync(string ns, string name, string action)
    {
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var count = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'AccessRequest' AND object_name = $1 AND action = $2");
        count.Parameters.AddWithValue($"{ns}/{name}");
        count.Parameters.AddWithValue(action);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>The observations of controlplane_access_expiry_lag_seconds on this operator: how many, and their sum in seconds.</summary>
    static async Task<(int Count, double Sum)> ExpiryLagAsync(TestOperator op)
    {
        using var exported = new MemoryStream();
        await op.Runtime.Metrics.Registry.CollectAndExportAsTextAsync(exported);
        var lines = Encoding.UTF8.GetString(exported.ToArray()).Split('\n');
        double Value(string series) => lines.Where(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Single();
        return ((int)Value(AccessExpiryLag.Name + "_count"), Value(AccessExpiryLag.Name + "_sum"));
    }
}
