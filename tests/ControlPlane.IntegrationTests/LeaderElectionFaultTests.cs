using System.Collections.Concurrent;
using ControlPlane.LocalEnv;
using Xunit.Abstractions;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Leader election when the API server hangs: an expired leader must stop before anyone else leads.</summary>
[Collection(ClusterCollection.Name)]
public sealed class LeaderElectionFaultTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    [Fact]
    public async Task AFrozenApiServer_MakesTheLeaderStepDownWithinItsRenewDeadline_AndTwoReplicasNeverLeadAtOnce()
    {
        var lease = Unique("lease");
        var terms = new ConcurrentQueue<(string Who, bool Leading, DateTime At)>();
        await using var a = TestOperator.Start(cluster, lease, output);
        a.Runtime.LeadershipChanged += leading => terms.Enqueue(("a", leading, DateTime.UtcNow));
        await a.WaitUntilLeaderAndSyncedAsync();
        terms.Enqueue(("a", true, DateTime.UtcNow.AddSeconds(-60))); // a's term began before we listened
        await using var b = TestOperator.Start(cluster, lease, output);
        b.Runtime.LeadershipChanged += leading => terms.Enqueue(("b", leading, DateTime.UtcNow));
        Assert.False(b.Runtime.IsLeader);

        // SIGSTOP: connections stay open and nothing answers, as a hung API server or network looks.
        var options = cluster.OperatorOptions(lease).LeaderElection;
        await cluster.Plane.FreezeApiServerAsync(true);
        var frozenAt = DateTime.UtcNow;
        try
        {
            // RenewDeadline (3 s) to stop renewing, then LeaseDuration - RenewDeadline (1 s) to stop reconciling.
            await Net.WaitUntilAsync(() => Task.FromResult(!a.Runtime.IsLeader), options.LeaseDuration + TimeSpan.FromSeconds(2), "the frozen-out leader stepped down");
            output.WriteLine($"leader stepped down {(DateTime.UtcNow - frozenAt).TotalMilliseconds:0} ms after the API server froze");
            Assert.Null(a.Runtime.FatalError);
            // Stay frozen past the lease, as the issue's scenario asks.
            await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow - frozenAt > options.LeaseDuration + TimeSpan.FromSeconds(1)),
                TimeSpan.FromSeconds(60), "frozen longer than the lease");
        }
        finally
        {
            await cluster.Plane.FreezeApiServerAsync(false);
        }

        await Net.WaitUntilAsync(() => Task.FromResult(a.Runtime.IsLeader || b.Runtime.IsLeader), TimeSpan.FromSeconds(30), "a leader again after the thaw");
        var leaders = new[] { a, b }.Count(o => o.Runtime.IsLeader);
        Assert.Equal(1, leaders);

        // Terms, as [start, end) per replica, never overlap.
        var intervals = new List<(string Who, DateTime From, DateTime To)>();
        foreach (var who in new[] { "a", "b" })
        {
            DateTime? from = null;
            foreach (var t in terms.Where(t => t.Who == who).OrderBy(t => t.At))
            {
                if (t.Leading) from ??= t.At;
                else if (from is { } start)
                {
                    intervals.Add((who, start, t.At));
                    from = null;
                }
            }

            if (from is { } open) intervals.Add((who, open, DateTime.MaxValue));
        }

        foreach (var x in intervals.Where(i => i.Who == "a"))
        {
            foreach (var y in intervals.Where(i => i.Who == "b"))
            {
                Assert.False(x.From < y.To && y.From < x.To, $"a led {x.From:HH:mm:ss.fff}-{x.To:HH:mm:ss.fff} while b led {y.From:HH:mm:ss.fff}-{y.To:HH:mm:ss.fff}");
            }
        }
    }
}
