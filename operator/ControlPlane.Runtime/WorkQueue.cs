namespace ControlPlane.Runtime;

/// <summary>
/// A rate-limited, delaying work queue with client-go's semantics: a key is queued at most once
/// (de-duplicated while waiting), is never handed to two workers at once (a key added while being
/// processed is re-queued when <see cref="Done"/> is called), AddAfter keeps the earliest due time,
/// and AddRateLimited backs off per key exponentially from 5 ms, doubling, to 1000 s.
/// </summary>
public sealed class WorkQueue<T> : IDisposable where T : notnull
{
    public static readonly TimeSpan DefaultBaseDelay = TimeSpan.FromMilliseconds(5);
    public static readonly TimeSpan DefaultMaxDelay = TimeSpan.FromSeconds(1000);

    readonly object gate = new();
    readonly Queue<T> queue = new();
    readonly HashSet<T> dirty = [];
    readonly HashSet<T> processing = [];
    readonly Dictionary<T, DateTimeOffset> waiting = [];
    readonly PriorityQueue<T, DateTimeOffset> waitingByDue = new();
    readonly Dictionary<T, int> failures = [];
    readonly Dictionary<T, DateTimeOffset> addedAt = [];
    readonly Dictionary<T, DateTimeOffset> startedAt = [];
    readonly SemaphoreSlim available = new(0);
    readonly TimeProvider time;
    readonly ITimer timer;
    readonly TimeSpan baseDelay;
    readonly TimeSpan maxDelay;
    readonly QueueMetrics? metrics;
    bool shuttingDown;

    public WorkQueue(TimeProvider? time = null, TimeSpan? baseDelay = null, TimeSpan? maxDelay = null, QueueMetrics? metrics = null)
    {
        this.time = time ?? TimeProvider.System;
        this.baseDelay = baseDelay ?? DefaultBaseDelay;
        this.maxDelay = maxDelay ?? DefaultMaxDelay;
        this.metrics = metrics;
        timer = this.time.CreateTimer(_ => PromoteDue(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        metrics?.Track(this, InProgress);
    }

    /// <summary>
    /// Work handed out and not yet Done, as client-go reports it: the seconds all of it has run so far,
    /// and the seconds the longest of it has run (a stuck reconcile shows here before it ends).
    /// </summary>
    public (double UnfinishedSeconds, double LongestSeconds) InProgress()
    {
        lock (gate)
        {
            var now = time.GetUtcNow();
            double total = 0, longest = 0;
            foreach (var started in startedAt.Values)
            {
                var s = Math.Max(0, (now - started).TotalSeconds);
                total += s;
                longest = Math.Max(longest, s);
            }

            return (total, longest);
        }
    }

    /// <summary>Items ready to be handed out.</summary>
    public int Count
    {
        get
        {
            lock (gate) return queue.Count;
        }
    }

    /// <summary>Items handed to a worker and not yet Done.</summary>
    public int ProcessingCount
    {
        get
        {
            lock (gate) return processing.Count;
        }
    }

    /// <summary>Items waiting for a due time.</summary>
    public int WaitingCount
    {
        get
        {
            lock (gate) return waiting.Count;
        }
    }

    /// <summary>Items waiting for a due time that comes within <paramref name="horizon"/>.</summary>
    public int WaitingDueWithin(TimeSpan horizon)
    {
        lock (gate)
        {
            var limit = time.GetUtcNow() + horizon;
            return waiting.Values.Count(due => due <= limit);
        }
    }

    public bool IsShuttingDown
    {
        get
        {
            lock (gate) return shuttingDown;
        }
    }

    public void Add(T item)
    {
        lock (gate)
        {
            if (shuttingDown) return;
            // Added now: an earlier scheduled add of the same key has nothing left to do.
            waiting.Remove(item);
            if (!dirty.Add(item)) return;
            metrics?.Added();
            addedAt[item] = time.GetUtcNow();
            if (processing.Contains(item)) return;
            queue.Enqueue(item);
            metrics?.Depth(queue.Count);
        }

        available.Release();
    }

    public void AddAfter(T item, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(item);
            return;
        }

        lock (gate)
        {
            if (shuttingDown) return;
            var due = time.GetUtcNow() + delay;
            if (waiting.TryGetValue(item, out var existing) && existing <= due) return;
            waiting[item] = due;
            waitingByDue.Enqueue(item, due);
            ArmTimer();
        }
    }

    /// <summary>Re-adds after this key's next backoff step; see <see cref="Forget"/>.</summary>
    public TimeSpan AddRateLimited(T item, TimeSpan? cap = null)
    {
        TimeSpan delay;
        lock (gate)
        {
            var n = failures.GetValueOrDefault(item);
            failures[item] = n + 1;
            delay = Backoff(n);
            if (cap is { } c && delay > c) delay = c;
        }

        metrics?.Retried();
        AddAfter(item, delay);
        return delay;
    }

    public TimeSpan Backoff(int failuresSoFar)
    {
        var ms = baseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failuresSoFar, 62));
        return ms >= maxDelay.TotalMilliseconds ? maxDelay : TimeSpan.FromMilliseconds(ms);
    }

    public void Forget(T item)
    {
        lock (gate) failures.Remove(item);
    }

    public int NumRequeues(T item)
    {
        lock (gate) return failures.GetValueOrDefault(item);
    }

    /// <summary>Waits for the next item; returns false once the queue shuts down.</summary>
    public async Task<(bool Ok, T Item)> GetAsync(CancellationToken ct)
    {
        while (true)
        {
            await available.WaitAsync(ct).ConfigureAwait(false);
            lock (gate)
            {
                if (queue.Count == 0)
                {
                    if (shuttingDown) return (false, default!);
                    continue;
                }

                var item = queue.Dequeue();
                processing.Add(item);
                startedAt[item] = time.GetUtcNow();
                dirty.Remove(item);
                metrics?.Depth(queue.Count);
                if (addedAt.Remove(item, out var added)) metrics?.Waited(time.GetUtcNow() - added);
                return (true, item);
            }
        }
    }

    /// <summary>Marks an item processed; if it was added meanwhile, it is queued again now.</summary>
    public void Done(T item)
    {
        lock (gate)
        {
            processing.Remove(item);
            startedAt.Remove(item);
            if (!dirty.Contains(item) || shuttingDown) return;
            queue.Enqueue(item);
            metrics?.Depth(queue.Count);
        }

        available.Release();
    }

    public void ShutDown()
    {
        lock (gate)
        {
            if (shuttingDown) return;
            shuttingDown = true;
            queue.Clear();
        }

        timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        available.Release(1024); // wake every waiting worker
    }

    void PromoteDue()
    {
        var ready = new List<T>();
        lock (gate)
        {
            var now = time.GetUtcNow();
            while (waitingByDue.TryPeek(out var item, out var due) && due <= now)
            {
                waitingByDue.Dequeue();
                // Skip heap entries superseded by an earlier AddAfter or by a plain Add.
                if (waiting.TryGetValue(item, out var current) && current == due)
                {
                    waiting.Remove(item);
                    ready.Add(item);
                }
            }

            ArmTimer();
        }

        foreach (var item in ready) Add(item);
    }

    static readonly TimeSpan MaxTimerWait = TimeSpan.FromDays(1);

    void ArmTimer()
    {
        while (waitingByDue.TryPeek(out var item, out var due))
        {
            if (waiting.TryGetValue(item, out var current) && current == due)
            {
                // A timer cannot wait past ~49 days; a later due time (a yearly schedule) is re-armed when it fires.
                var wait = due - time.GetUtcNow();
                timer.Change(wait < TimeSpan.Zero ? TimeSpan.Zero : wait > MaxTimerWait ? MaxTimerWait : wait, Timeout.InfiniteTimeSpan);
                return;
            }

            waitingByDue.Dequeue();
        }

        timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        metrics?.Untrack(this);
        ShutDown();
        timer.Dispose();
        available.Dispose();
    }
}

/// <summary>The workqueue_* metrics of one named queue.</summary>
public sealed class QueueMetrics(OperatorMetrics metrics, string name)
{
    public void Added() => metrics.QueueAdds.WithLabels(name).Inc();
    public void Retried() => metrics.QueueRetries.WithLabels(name).Inc();
    public void Depth(int depth) => metrics.QueueDepth.WithLabels(name).Set(depth);
    public void Waited(TimeSpan wait) => metrics.QueueLatency.WithLabels(name).Observe(wait.TotalSeconds);
    public void Worked(TimeSpan work) => metrics.QueueWorkDuration.WithLabels(name).Observe(work.TotalSeconds);

    /// <summary>Reads the queue's work in progress at every scrape, until <see cref="Untrack"/>.</summary>
    public void Track(object queue, Func<(double UnfinishedSeconds, double LongestSeconds)> inProgress) => metrics.TrackQueue(name, queue, inProgress);

    public void Untrack(object queue) => metrics.UntrackQueue(name, queue);
}
