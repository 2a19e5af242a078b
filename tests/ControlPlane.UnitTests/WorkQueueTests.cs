using ControlPlane.Runtime;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ControlPlane.Tests;

public sealed class WorkQueueTests
{
    static async Task<string> Next(WorkQueue<string> q)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var (ok, item) = await q.GetAsync(cts.Token);
        Assert.True(ok);
        return item;
    }

    [Fact]
    public async Task Add_DeduplicatesWhileQueued()
    {
        using var q = new WorkQueue<string>(new FakeTimeProvider());
        q.Add("a");
        q.Add("b");
        q.Add("a");
        Assert.Equal(2, q.Count);
        Assert.Equal("a", await Next(q));
        Assert.Equal("b", await Next(q));
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task Key_IsNeverHandedToTwoWorkers_AndIsRequeuedOnDone()
    {
        using var q = new WorkQueue<string>(new FakeTimeProvider());
        q.Add("a");
        var first = await Next(q);
        q.Add("a"); // arrives while a worker holds "a"
        Assert.Equal(0, q.Count);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => q.GetAsync(cts.Token));
        q.Done(first);
        Assert.Equal(1, q.Count);
        Assert.Equal("a", await Next(q));
    }

    [Fact]
    public async Task AddAfter_ADueTimeYearsAway_IsHeld_AndComesWhenDue()
    {
        // A timer cannot wait past ~49 days (a yearly backup schedule threw); the queue re-arms instead.
        var time = new FakeTimeProvider();
        using var q = new WorkQueue<string>(time);
        q.AddAfter("yearly", TimeSpan.FromDays(730));
        Assert.Equal(1, q.WaitingCount);
        Assert.Equal(0, q.WaitingDueWithin(TimeSpan.FromDays(1)));
        for (var day = 0; day < 729; day++) time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(0, q.Count);
        time.Advance(TimeSpan.FromDays(1));
        Assert.Equal("yearly", await Next(q));
    }

    [Fact]
    public async Task AddAfter_KeepsTheEarliestDueTime()
    {
        var time = new FakeTimeProvider();
        using var q = new WorkQueue<string>(time);
        q.AddAfter("a", TimeSpan.FromSeconds(10));
        q.AddAfter("a", TimeSpan.FromSeconds(2));
        q.AddAfter("a", TimeSpan.FromSeconds(30));
        Assert.Equal(1, q.WaitingCount);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, q.Count);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, q.Count);
        Assert.Equal("a", await Next(q));
        q.Done("a");
        time.Advance(TimeSpan.FromSeconds(60)); // the later schedules were superseded
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public void RateLimited_BacksOffExponentiallyFrom5msTo1000s_AndForgetResets()
    {
        var time = new FakeTimeProvider();
        using var q = new WorkQueue<string>(time);
        var delays = Enumerable.Range(0, 20).Select(_ => q.AddRateLimited("a")).ToList();
        Assert.Equal(TimeSpan.FromMilliseconds(5), delays[0]);
        Assert.Equal(TimeSpan.FromMilliseconds(10), delays[1]);
        Assert.Equal(TimeSpan.FromMilliseconds(20), delays[2]);
        Assert.Equal(TimeSpan.FromMilliseconds(5 * 1024), delays[10]);
        Assert.Equal(TimeSpan.FromSeconds(1000), delays[19]);
        Assert.Equal(20, q.NumRequeues("a"));
        q.Forget("a");
        Assert.Equal(0, q.NumRequeues("a"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), q.AddRateLimited("a"));
        var capped = Enumerable.Range(0, 12).Select(_ => q.AddRateLimited("b", cap: TimeSpan.FromSeconds(1))).ToList();
        Assert.Equal(TimeSpan.FromMilliseconds(640), capped[7]);
        Assert.Equal(TimeSpan.FromSeconds(1), capped[8]);
        Assert.Equal(TimeSpan.FromSeconds(1), capped[11]);
    }

    [Fact]
    public void RateLimited_IsPerKey()
    {
        using var q = new WorkQueue<string>(new FakeTimeProvider());
        q.AddRateLimited("a");
        q.AddRateLimited("a");
        Assert.Equal(TimeSpan.FromMilliseconds(5), q.AddRateLimited("b"));
        Assert.Equal(TimeSpan.FromMilliseconds(20), q.AddRateLimited("a"));
    }

    [Fact]
    public async Task PlainAdd_CancelsAPendingDelayedAdd()
    {
        var time = new FakeTimeProvider();
        using var q = new WorkQueue<string>(time);
        q.AddAfter("a", TimeSpan.FromSeconds(5));
        q.Add("a");
        Assert.Equal(0, q.WaitingCount);
        Assert.Equal("a", await Next(q));
        q.Done("a");
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task ShutDown_ReleasesWaitingWorkers()
    {
        using var q = new WorkQueue<string>(new FakeTimeProvider());
        var waiting = q.GetAsync(CancellationToken.None);
        q.ShutDown();
        var (ok, _) = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(ok);
        q.Add("ignored");
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task ConcurrentWorkers_NeverProcessOneKeyTwiceAtOnce()
    {
        using var q = new WorkQueue<int>();
        var inFlight = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var violations = 0;
        var processed = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var workers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var (ok, key) = await q.GetAsync(cts.Token);
                if (!ok) return;
                if (inFlight.AddOrUpdate(key, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref violations);
                await Task.Yield();
                inFlight.AddOrUpdate(key, 0, (_, n) => n - 1);
                Interlocked.Increment(ref processed);
                q.Done(key);
            }
        })).ToList();
        for (var i = 0; i < 5000; i++) q.Add(i % 7);
        while (q.Count > 0 || q.ProcessingCount > 0) await Task.Yield();
        q.ShutDown();
        await Task.WhenAll(workers);
        Assert.Equal(0, violations);
        Assert.True(processed >= 7);
    }
}
