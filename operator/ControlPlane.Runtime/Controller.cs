using System.Diagnostics;
using Microsoft.Extensions.Logging;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>What a reconcile asks of the runtime next.</summary>
public abstract record ReconcileResult
{
    public static readonly ReconcileResult Done = new DoneResult();

    public static ReconcileResult RequeueAfter(TimeSpan delay) => new RequeueAfterResult(delay);

    /// <summary>Transient: retry with the key's rate-limited backoff (no exception to log).</summary>
    public static ReconcileResult Retry(string reason) => new RetryResult(reason);

    /// <summary>Nothing will change until the spec does: no retry. The reconciler has set a condition.</summary>
    public static ReconcileResult Terminal(string reason) => new TerminalResult(reason);

    public sealed record DoneResult : ReconcileResult;
    public sealed record RequeueAfterResult(TimeSpan Delay) : ReconcileResult;
    public sealed record RetryResult(string Reason) : ReconcileResult;
    public sealed record TerminalResult(string Reason) : ReconcileResult;
}

public interface IReconciler<in T>
{
    Task<ReconcileResult> ReconcileAsync(T obj, CancellationToken ct);
}

public sealed record ControllerOptions
{
    public int Workers { get; init; } = 2;
    /// <summary>Every object is reconciled again this often, changed or not (drift safety net).</summary>
    public TimeSpan ResyncPeriod { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Cap on the backoff of <see cref="ReconcileResult.Retry"/> (a dependency that is down).</summary>
    public TimeSpan MaxTransientRetryDelay { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>No reconcile runs longer: past it, its token is cancelled and the key retried on its backoff.</summary>
    public TimeSpan ReconcileTimeout { get; init; } = TimeSpan.FromMinutes(2);
}

public interface IController
{
    string Name { get; }
    Task RunAsync(CancellationToken ct);
    /// <summary>Queues every cached object, as a periodic resync does.</summary>
    void ResyncNow();
    /// <summary>Nothing queued, nothing being reconciled and nothing scheduled for later.</summary>
    bool IsIdle { get; }

    /// <summary>Raised after each reconcile with the key and its result (diagnostics and benchmarks).</summary>
    event Action<string, string>? Reconciled;
}

/// <summary>
/// One controller per kind: a work queue fed by the primary informer and by mapped watches of
/// secondary kinds, and workers that reconcile the cached object for each key.
/// </summary>
public sealed class Controller<T> : IController where T : class, IKubernetesObject<V1ObjectMeta>
{
    readonly Informer<T> primary;
    readonly IReconciler<T> reconciler;
    readonly OperatorMetrics metrics;
    readonly ILogger logger;
    readonly ControllerOptions options;
    readonly List<IInformer> sources = [];
    readonly QueueMetrics queueMetrics;

    public Controller(string name, Informer<T> primary, IReconciler<T> reconciler, OperatorMetrics metrics, ILogger logger,
        ControllerOptions? options = null, TimeProvider? time = null)
    {
        Name = name;
        this.primary = primary;
        this.reconciler = reconciler;
        this.metrics = metrics;
        this.logger = logger;
        this.options = options ?? new ControllerOptions();
        queueMetrics = new QueueMetrics(metrics, name);
        Queue = new WorkQueue<string>(time, metrics: queueMetrics);
        sources.Add(primary);
        primary.AddHandler(e =>
        {
            if (IsOwnEcho(primary, e)) return;
            if (e.Type == InformerEventType.Deleted) return;
            if (e.Type == InformerEventType.Modified && !SpecOrMetadataChanged(e.Old!, e.Object)) return;
            Queue.Add(Informer<T>.KeyOf(e.Object));
        });
    }

    OwnWrites? ownWrites;

    /// <summary>
    /// The watch echo of a write this controller's reconciler made (through an <see cref="ObjectWriter"/>
    /// or <see cref="ChildApplier"/> given <paramref name="writes"/>) queues nothing: that reconcile already acted on it.
    /// </summary>
    public Controller<T> SkipsEchoesOf(OwnWrites writes)
    {
        ownWrites = writes;
        return this;
    }

    bool IsOwnEcho<TOther>(IInformerEvents<TOther> informer, InformerEvent<TOther> e) where TOther : class, IKubernetesObject<V1ObjectMeta>
    {
        if (ownWrites is null) return false;
        if (e.Type == InformerEventType.Deleted)
        {
            ownWrites.Forget(informer.Type, e.Object.Metadata);
            return false;
        }

        return ownWrites.IsEcho(informer.Type, e.Object.Metadata);
    }

    public string Name { get; }

    public WorkQueue<string> Queue { get; }

    /// <summary>Raised after each reconcile with the key and its result (diagnostics and benchmarks).</summary>
    public event Action<string, string>? Reconciled;

    public void ResyncNow()
    {
        foreach (var key in primary.Keys) Queue.Add(key);
    }

    /// <summary>
    /// Nothing to do now or soon: no key queued, none in a worker, none due within <see cref="IdleHorizon"/>
    /// (a retry's backoff, a poll). Work scheduled later (a soak's end, a backup schedule, a drift check) is not work now.
    /// </summary>
    public bool IsIdle => Queue.Count == 0 && Queue.ProcessingCount == 0 && Queue.WaitingDueWithin(IdleHorizon) == 0;

    public static readonly TimeSpan IdleHorizon = TimeSpan.FromSeconds(15);

    /// <summary>Watch a secondary kind; each event is mapped to the keys of the primary objects to reconcile.</summary>
    /// <param name="coalesce">When set, keys are queued this much later, so a burst of events becomes one reconcile.</param>
    /// <param name="skipOwnEchoes">
    /// Whether this watch takes the echoes of this controller's own writes (see <see cref="SkipsEchoesOf"/>).
    /// Each echo is taken once, so of two watches of the same resource only one may.
    /// </param>
    public Controller<T> Watches<TOther>(IInformerEvents<TOther> informer, Func<TOther, IEnumerable<string>> map, TimeSpan? coalesce = null,
        bool skipOwnEchoes = true)
        where TOther : class, IKubernetesObject<V1ObjectMeta>
    {
        sources.Add(informer);
        void Enqueue(string key)
        {
            if (coalesce is { } delay) Queue.AddAfter(key, delay);
            else Queue.Add(key);
        }

        informer.AddHandler(e =>
        {
            if (skipOwnEchoes && IsOwnEcho(informer, e)) return;
            foreach (var key in map(e.Object)) Enqueue(key);
            if (e.Old is not null)
            {
                foreach (var key in map(e.Old)) Enqueue(key);
            }
        });
        return this;
    }

    /// <summary>Watch a kind where the mapping needs the whole event (e.g. only spec changes of siblings matter).</summary>
    /// <param name="skipOwnEchoes">As for <see cref="Watches{TOther}"/>: this watch takes the echoes of this controller's own writes.</param>
    public Controller<T> WatchesEvents<TOther>(IInformerEvents<TOther> informer, Func<InformerEvent<TOther>, IEnumerable<string>> map, bool skipOwnEchoes = false)
        where TOther : class, IKubernetesObject<V1ObjectMeta>
    {
        if (!ReferenceEquals(informer, primary)) sources.Add(informer);
        informer.AddHandler(e =>
        {
            if (skipOwnEchoes && IsOwnEcho(informer, e)) return;
            foreach (var key in map(e)) Queue.Add(key);
        });
        return this;
    }

    // Our own status writes change only status and resourceVersion: no reconcile for those.
    static bool SpecOrMetadataChanged(T old, T now) =>
        old.Metadata.Generation != now.Metadata.Generation
        || old.Metadata.DeletionTimestamp != now.Metadata.DeletionTimestamp
        || !SameSet(old.Metadata.Finalizers, now.Metadata.Finalizers)
        || !SameMap(old.Metadata.Labels, now.Metadata.Labels)
        || !SameMap(old.Metadata.Annotations, now.Metadata.Annotations);

    static bool SameSet(IList<string>? a, IList<string>? b) => (a ?? []).OrderBy(x => x).SequenceEqual((b ?? []).OrderBy(x => x));

    static bool SameMap(IDictionary<string, string>? a, IDictionary<string, string>? b) =>
        (a?.Count ?? 0) == (b?.Count ?? 0) && (a ?? new Dictionary<string, string>()).All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value);

    public async Task RunAsync(CancellationToken ct)
    {
        foreach (var source in sources) await source.WaitForSyncAsync(ct).ConfigureAwait(false);
        logger.LogInformation("controller {Controller} started with {Workers} workers", Name, options.Workers);
        metrics.MaxConcurrentReconciles.WithLabels(Name).Set(options.Workers);
        ResyncNow();
        using var stop = ct.Register(Queue.ShutDown);
        var workers = Enumerable.Range(0, options.Workers).Select(_ => Task.Run(() => WorkerAsync(ct), CancellationToken.None)).ToList();
        workers.Add(ResyncAsync(ct));
        await Task.WhenAll(workers).ConfigureAwait(false);
        logger.LogInformation("controller {Controller} stopped", Name);
    }

    async Task ResyncAsync(CancellationToken ct)
    {
        try
        {
            using var timer = new PeriodicTimer(options.ResyncPeriod);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false)) ResyncNow();
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task WorkerAsync(CancellationToken ct)
    {
        while (true)
        {
            (bool ok, string key) next;
            try
            {
                next = await Queue.GetAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (!next.ok) return;
            try
            {
                await ProcessAsync(next.key, ct).ConfigureAwait(false);
            }
            finally
            {
                Queue.Done(next.key);
            }
        }
    }

    internal async Task ProcessAsync(string key, CancellationToken ct)
    {
        var obj = primary.Get(key);
        if (obj is null)
        {
            Queue.Forget(key); // gone: finalizers ran while it still existed
            return;
        }

        var correlationId = Guid.NewGuid().ToString("N")[..12];
        using var scope = logger.BeginScope(new ReconcileScope(Name, key, correlationId));
        metrics.ActiveWorkers.WithLabels(Name).Inc();
        var watch = Stopwatch.StartNew();
        string result;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(options.ReconcileTimeout);
        try
        {
            var outcome = await reconciler.ReconcileAsync(obj, deadline.Token).ConfigureAwait(false);
            switch (outcome)
            {
                case ReconcileResult.RequeueAfterResult r:
                    Queue.Forget(key);
                    Queue.AddAfter(key, r.Delay);
                    result = "requeue_after";
                    break;
                case ReconcileResult.RetryResult r:
                    var delay = Queue.AddRateLimited(key, options.MaxTransientRetryDelay);
                    logger.LogInformation("reconcile of {Key} will retry in {Delay} ms: {Reason}", key, (int)delay.TotalMilliseconds, r.Reason);
                    result = "requeue";
                    break;
                case ReconcileResult.TerminalResult r:
                    Queue.Forget(key);
                    metrics.TerminalReconcileErrors.WithLabels(Name).Inc();
                    logger.LogWarning("reconcile of {Key} stopped until its spec changes: {Reason}", key, r.Reason);
                    result = "terminal";
                    break;
                default:
                    Queue.Forget(key);
                    result = "success";
                    break;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            result = "canceled";
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            metrics.ReconcileErrors.WithLabels(Name).Inc();
            var delay = Queue.AddRateLimited(key);
            logger.LogError("reconcile of {Key} timed out after {Timeout}; retry in {Delay} ms", key, options.ReconcileTimeout, (int)delay.TotalMilliseconds);
            result = "error";
        }
        catch (KubeApiException e) when (e.IsConflict)
        {
            // Optimistic concurrency: the cache was behind. Retry on the key's backoff; not an error.
            Queue.AddRateLimited(key);
            logger.LogDebug("reconcile of {Key} hit a conflict ({Error}); retrying", key, e.StatusMessage);
            result = "conflict";
        }
        catch (Exception e)
        {
            metrics.ReconcileErrors.WithLabels(Name).Inc();
            var delay = Queue.AddRateLimited(key);
            // Exceptions carry API statuses and Postgres errors, never request bodies or secrets.
            logger.LogError("reconcile of {Key} failed ({Type}: {Error}); retry in {Delay} ms", key, e.GetType().Name, e.Message, (int)delay.TotalMilliseconds);
            result = "error";
        }
        finally
        {
            metrics.ActiveWorkers.WithLabels(Name).Dec();
        }

        metrics.ReconcileTotal.WithLabels(Name, result).Inc();
        Reconciled?.Invoke(key, result);
        metrics.ReconcileTime.WithLabels(Name).Observe(watch.Elapsed.TotalSeconds);
        queueMetrics.Worked(watch.Elapsed);
    }
}

/// <summary>Structured log scope of one reconcile: the object key and a correlation id.</summary>
public sealed record ReconcileScope(string Controller, string Key, string CorrelationId) : IReadOnlyList<KeyValuePair<string, object>>
{
    KeyValuePair<string, object>[] Pairs => [new("controller", Controller), new("key", Key), new("correlationId", CorrelationId)];

    public KeyValuePair<string, object> this[int index] => Pairs[index];

    public int Count => 3;

    public IEnumerator<KeyValuePair<string, object>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object>>)Pairs).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"controller={Controller} key={Key} correlationId={CorrelationId}";
}
