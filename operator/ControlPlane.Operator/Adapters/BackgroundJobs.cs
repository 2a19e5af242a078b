using System.Collections.Concurrent;

namespace ControlPlane.Operator.Adapters;

/// <summary>
/// Long jobs (dumps, restores) that outlive a reconcile: at most MaxConcurrent at once across
/// backups and restores, each under the leadership term's token, so a term that ends kills its
/// children (the next leader finds them Running and marks them Interrupted).
/// </summary>
public sealed class BackgroundJobs(int maxConcurrent, ILogger logger)
{
    readonly SemaphoreSlim slots = new(Math.Max(1, maxConcurrent));
    readonly ConcurrentDictionary<string, Task> running = new();
    CancellationToken term = new(canceled: true);

    public int Running => running.Count;

    /// <summary>Runs for the term (register as a term loop): jobs may start only while it runs.</summary>
    public async Task RunTermAsync(CancellationToken ct)
    {
        term = ct;
        try
        {
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        // The term is over: wait for its jobs to see the cancellation and stop their children.
        await Task.WhenAll(running.Values.ToArray()).ConfigureAwait(false);
    }

    public bool IsRunning(string id) => running.ContainsKey(id);

    /// <summary>Starts a job unless one of that id runs, the term has not started, or every slot is taken.</summary>
    public bool TryStart(string id, Func<CancellationToken, Task> job)
    {
        var ct = term;
        if (ct.IsCancellationRequested) return false;
        lock (running)
        {
            if (running.ContainsKey(id) || !slots.Wait(0)) return false;
            running[id] = RunAsync(id, job, ct);
            return true;
        }
    }

    async Task RunAsync(string id, Func<CancellationToken, Task> job, CancellationToken ct)
    {
        await Task.Yield(); // the caller's lock is released before the job's first step
        try
        {
            await job(ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A job records its own outcome; what escapes is logged once, never rethrown into the pool.
            if (!ct.IsCancellationRequested) logger.LogError("background job {Id} failed: {Error}", id, e.Message);
        }
        finally
        {
            lock (running) running.TryRemove(id, out _);
            slots.Release();
        }
    }
}
