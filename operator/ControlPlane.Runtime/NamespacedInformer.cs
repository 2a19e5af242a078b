using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>
/// A cache of a namespaced kind kept only in the namespaces its readers hold: one
/// <see cref="Informer{T}"/> per held namespace, listing and watching that namespace alone, started
/// when the first reader holds it and stopped when the last lets go. For kinds the operator reads
/// in a few namespaces of a cluster full of others (a tenant's Pods): the other namespaces are never
/// listed or watched, so they cost neither memory, CPU nor restart time.
/// <para>
/// A reader calls <see cref="HoldAsync"/> with every namespace it is about to read, before it reads:
/// it returns once each of them is synced, so nothing acts on a cache that has not listed yet. The
/// set itself is synced as soon as it runs (it has nothing to list up front): readiness and the start
/// of the controllers that watch it never wait for namespaces only some objects need later.
/// </para>
/// <para>
/// Handlers see every change after a namespace has synced, not the objects of its first list: no one
/// read that namespace before, and its holder reads it whole once the list is in.
/// </para>
/// </summary>
public sealed class NamespacedInformer<T> : IInformerEvents<T> where T : class, IKubernetesObject<V1ObjectMeta>
{
    readonly Func<string, Informer<T>> make;
    readonly ILogger logger;
    readonly Lock gate = new();
    // Readers take members without the gate; changes are made under it.
    readonly ConcurrentDictionary<string, Member> members = new(StringComparer.Ordinal);
    readonly Dictionary<string, HashSet<string>> holds = new(StringComparer.Ordinal);
    readonly List<Action<InformerEvent<T>>> handlers = [];
    readonly TaskCompletionSource running = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource<Exception> failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    CancellationToken term;

    sealed class Member(Informer<T> informer, CancellationTokenSource stop)
    {
        public Informer<T> Informer { get; } = informer;
        public CancellationTokenSource Stop { get; } = stop;
        public int Holders { get; set; }
        public Task Run { get; set; } = Task.CompletedTask;
    }

    /// <param name="make">Makes the informer of one namespace (its options name the namespace).</param>
    public NamespacedInformer(ResourceType type, Func<string, Informer<T>> make, ILogger logger)
    {
        if (!type.Namespaced) throw new ArgumentException($"{type.Plural} is not namespaced", nameof(type));
        Type = type;
        this.make = make;
        this.logger = logger;
    }

    public ResourceType Type { get; }

    /// <summary>Synced once running: each namespace is waited for by whoever holds it (<see cref="HoldAsync"/>).</summary>
    public bool HasSynced => running.Task.IsCompleted;

    public Task WaitForSyncAsync(CancellationToken ct) => running.Task.WaitAsync(ct);

    /// <summary>The namespaces listed and watched now.</summary>
    public IReadOnlyCollection<string> Namespaces => [.. members.Keys];

    public IEnumerable<string> Keys => members.Values.SelectMany(m => m.Informer.Keys);

    public int Count => members.Values.Sum(m => m.Informer.Count);

    public IEnumerable<T> List() => members.Values.SelectMany(m => m.Informer.List());

    public IEnumerable<IKubernetesObject<V1ObjectMeta>> Objects => List();

    /// <summary>The cached object with this key (namespace/name); null when absent or its namespace is not held.</summary>
    public T? Get(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 && members.TryGetValue(key[..slash], out var m) ? m.Informer.Get(key) : null;
    }

    /// <summary>The cached objects of a namespace; empty when it is not held.</summary>
    public IReadOnlyList<T> InNamespace(string ns) => members.TryGetValue(ns, out var m) ? [.. m.Informer.List()] : [];

    /// <summary>Whether this namespace is held and its informer has listed.</summary>
    public bool IsSynced(string ns) => members.TryGetValue(ns, out var m) && m.Informer.HasSynced;

    public void AddHandler(Action<InformerEvent<T>> handler)
    {
        lock (handlers) handlers.Add(handler);
    }

    /// <summary>
    /// Makes <paramref name="namespaces"/> exactly what <paramref name="holder"/> holds (starting the
    /// namespaces no one held, letting go of those it no longer names) and waits until each is synced.
    /// Call before reading them; an empty set lets go of everything.
    /// </summary>
    public async Task HoldAsync(string holder, IEnumerable<string> namespaces, CancellationToken ct)
    {
        await running.Task.WaitAsync(ct).ConfigureAwait(false);
        var want = new HashSet<string>(namespaces.Where(n => !string.IsNullOrEmpty(n)), StringComparer.Ordinal);
        List<Member> pending;
        lock (gate)
        {
            // Taken before the old ones go: a namespace held before and after is never restarted.
            holds.TryGetValue(holder, out var had);
            foreach (var ns in want)
            {
                if (had is null || !had.Contains(ns)) Acquire(ns);
            }

            foreach (var ns in had ?? [])
            {
                if (!want.Contains(ns)) Release(ns);
            }

            if (want.Count == 0) holds.Remove(holder);
            else holds[holder] = want;
            pending = [.. want.Select(ns => members[ns]).Where(m => !m.Informer.HasSynced)];
        }

        // A namespace let go meanwhile (its holder deleted) never syncs: its informer's end ends the wait too, and the
        // caller, finding its holder gone, reads nothing.
        foreach (var m in pending) await Task.WhenAny(m.Informer.WaitForSyncAsync(ct), m.Run).Unwrap().ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>The holder is gone (e.g. the object was deleted): its namespaces are let go.</summary>
    public void Forget(string holder)
    {
        lock (gate)
        {
            if (!holds.Remove(holder, out var had)) return;
            foreach (var ns in had) Release(ns);
        }
    }

    /// <summary>How many readers hold a namespace (tests, diagnostics).</summary>
    public int HoldersOf(string ns)
    {
        lock (gate) return members.TryGetValue(ns, out var m) ? m.Holders : 0;
    }

    void Acquire(string ns)
    {
        if (members.TryGetValue(ns, out var existing))
        {
            existing.Holders++;
            return;
        }

        var informer = make(ns);
        // The first list's objects are not news to anyone: no one read the namespace before it synced.
        informer.AddHandler(e =>
        {
            if (informer.HasSynced) Notify(e);
        });
        var member = new Member(informer, CancellationTokenSource.CreateLinkedTokenSource(term)) { Holders = 1 };
        members[ns] = member;
        logger.LogDebug("{Resource}: watching namespace {Namespace} ({Count} namespaces)", Type.Plural, ns, members.Count);
        member.Run = Task.Run(() => informer.RunAsync(member.Stop.Token), CancellationToken.None);
        _ = member.Run.ContinueWith(t =>
        {
            // An informer ends only when stopped; one that died takes the term with it, as any informer's loop does.
            if (t.Exception is { } e && !member.Stop.IsCancellationRequested) failed.TrySetResult(e.GetBaseException());
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    void Release(string ns)
    {
        if (!members.TryGetValue(ns, out var member) || --member.Holders > 0) return;
        members.TryRemove(ns, out _);
        logger.LogDebug("{Resource}: no longer watching namespace {Namespace} ({Count} namespaces)", Type.Plural, ns, members.Count);
        // Disposed only here, once its informer has ended: a holder may let go after the term ended too.
        member.Stop.Cancel();
        _ = member.Run.ContinueWith(_ => member.Stop.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public async Task RunAsync(CancellationToken ct)
    {
        term = ct;
        running.TrySetResult();
        try
        {
            var died = await failed.Task.WaitAsync(ct).ConfigureAwait(false);
            throw new InvalidOperationException($"the informer of {Type.Plural} in a namespace died: {died.Message}", died);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        Task[] runs;
        lock (gate) runs = [.. members.Values.Select(m => m.Run)];
        await Task.WhenAll(runs).ConfigureAwait(false);
    }

    void Notify(InformerEvent<T> e)
    {
        Action<InformerEvent<T>>[] snapshot;
        lock (handlers) snapshot = [.. handlers];
        foreach (var handler in snapshot)
        {
            try
            {
                handler(e);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "informer handler for {Resource} failed", Type.Plural);
            }
        }
    }
}
