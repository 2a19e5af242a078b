using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

public enum InformerEventType { Added, Modified, Deleted }

/// <summary>What an informer tells its handlers: the event, the object before (for updates) and after.</summary>
public sealed record InformerEvent<T>(InformerEventType Type, T? Old, T Object);

public sealed record InformerOptions
{
    public int PageSize { get; init; } = 500;
    /// <summary>Watches ask the server to end them after a random time in this range, as client-go does.</summary>
    public int MinWatchTimeoutSeconds { get; init; } = 300;
    public int MaxWatchTimeoutSeconds { get; init; } = 600;
    /// <summary>A watch that delivers nothing (no event, no bookmark) for this long past its timeout is restarted.</summary>
    public TimeSpan WatchdogGrace { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Keep an index by namespace (for <see cref="Informer{T}.InNamespace"/> without a scan).</summary>
    public bool IndexByNamespace { get; init; } = true;
    /// <summary>Short strings of cached objects are shared through this pool (one per operator term).</summary>
    public StringPool? Strings { get; init; }
    /// <summary>Only objects with these labels are listed, watched and cached (owned children).</summary>
    public string? LabelSelector { get; init; }
    /// <summary>Only objects whose fields match are listed, watched and cached (e.g. Secrets by type).</summary>
    public string? FieldSelector { get; init; }
    /// <summary>Cache metadata only (PartialObjectMetadata), e.g. for Secrets we must not hold.</summary>
    public bool MetadataOnly { get; init; }

    /// <summary>Cache objects without their status (someone else's bookkeeping the operator never reads).</summary>
    public bool DropStatus { get; init; }

    /// <summary>
    /// Only objects in these namespaces are cached (and handed to handlers); the others are dropped
    /// before they are deserialized. For kinds the operator reads but does not label (a tenant's Pods).
    /// </summary>
    public NamespaceScope? Scope { get; init; }

    /// <summary>List and watch only this namespace (the members of a <see cref="NamespacedInformer{T}"/>); null: cluster-wide.</summary>
    public string? Namespace { get; init; }

    /// <summary>
    /// What is kept of each object, applied before it is stored and compared: a copy with only the
    /// fields its readers use (give one shared instance, as options are compared to share informers).
    /// </summary>
    public Func<IKubernetesObject<V1ObjectMeta>, IKubernetesObject<V1ObjectMeta>>? Transform { get; init; }

    /// <summary>Whether a cached object lacks parts of what the server sent (so updates may change nothing cached).</summary>
    internal bool DropsParts => DropStatus || Transform is not null;
}

/// <summary>An informer whose events handlers (and controllers' watches) can take.</summary>
public interface IInformerEvents<T> : IInformer where T : class, IKubernetesObject<V1ObjectMeta>
{
    /// <summary>Handlers run on the informer's loop: keep them to enqueueing keys.</summary>
    void AddHandler(Action<InformerEvent<T>> handler);
}

public interface IInformer
{
    ResourceType Type { get; }
    bool HasSynced { get; }
    Task WaitForSyncAsync(CancellationToken ct);
    Task RunAsync(CancellationToken ct);
    IEnumerable<string> Keys { get; }
    int Count { get; }

    /// <summary>The cached objects, untyped (for readers that serve every kind, as per-object metrics).</summary>
    IEnumerable<IKubernetesObject<V1ObjectMeta>> Objects { get; }
}

/// <summary>
/// Reflector plus store: a paginated LIST, then a WATCH from the list's resourceVersion with
/// bookmarks and a randomised server timeout. The resourceVersion advances on every event and
/// bookmark; a 410 Gone re-lists and emits deletes for objects that vanished meanwhile; errors back
/// off with jitter; a watchdog restarts a watch that went silent. Readers use the cache, never GET.
/// </summary>
public sealed partial class Informer<T> : IInformerEvents<T> where T : class, IKubernetesObject<V1ObjectMeta>
{
    readonly KubeApi api;
    readonly ILogger logger;
    readonly OperatorMetrics metrics;
    readonly InformerOptions options;
    readonly ConcurrentDictionary<string, T> store = new();
    readonly ConcurrentDictionary<string, Index> indexes = new();

    /// <summary>
    /// A secondary index: index value → (key → object), kept with the store. Plain dictionaries under
    /// one lock: there is a bucket per namespace, and thousands of concurrent dictionaries cost tens of MB.
    /// </summary>
    sealed class Index(Func<T, string?> valueOf, bool versioned)
    {
        public Func<T, string?> ValueOf { get; } = valueOf;
        public bool Versioned { get; } = versioned;
        public Dictionary<string, Dictionary<string, T>> Buckets { get; } = new();

        // A stamp per bucket, taken from one counter on every change to the bucket, so a value never
        // repeats (even after a bucket empties and comes back): callers memoise work on a bucket by it.
        public Dictionary<string, long> Stamps { get; } = new();
        public long Counter { get; set; }
        public Lock Gate { get; } = new();

        public void Touch(string value)
        {
            if (Versioned) Stamps[value] = ++Counter;
        }
    }
    readonly List<Action<InformerEvent<T>>> handlers = [];
    readonly TaskCompletionSource synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    string? resourceVersion;

    // Namespaces whose objects were dropped as out of scope: a namespace that joins the scope after
    // its objects were seen is listed once (see OnScopeEntered).
    readonly ConcurrentDictionary<string, byte> dropped = new(StringComparer.Ordinal);
    const int MaxDropped = 1 << 16;
    CancellationToken running;
    System.Diagnostics.Stopwatch started = new();

    public Informer(KubeApi api, ResourceType type, OperatorMetrics metrics, ILogger logger, InformerOptions? options = null)
    {
        this.api = api;
        Type = type;
        this.metrics = metrics;
        this.logger = logger;
        this.options = options ?? new InformerOptions();
        // One bucket per namespace costs a few hundred bytes per namespace: only where someone asks.
        if (this.options.IndexByNamespace) AddIndex(NamespaceIndex, o => o.Metadata.NamespaceProperty);
        if (this.options.Scope is { } scope)
        {
            scope.Entered += OnScopeEntered;
            scope.Left += OnScopeLeft;
        }
    }

    public ResourceType Type { get; }

    public bool HasSynced => synced.Task.IsCompleted;

    /// <summary>The last resourceVersion seen (list, event or bookmark).</summary>
    public string? ResourceVersion => Volatile.Read(ref resourceVersion);

    public IEnumerable<string> Keys => store.Keys;

    public int Count => store.Count;

    public IEnumerable<T> List() => store.Values;

    public IEnumerable<IKubernetesObject<V1ObjectMeta>> Objects => store.Values;

    public T? Get(string key) => store.TryGetValue(key, out var value) ? value : null;

    /// <summary>
    /// Adds an index (e.g. by namespace or by tenant); add before the informer runs. A versioned index
    /// also keeps <see cref="IndexVersion"/> per value.
    /// </summary>
    public Informer<T> AddIndex(string name, Func<T, string?> valueOf, bool versioned = false)
    {
        // Informers are shared by the kinds of a term: the second kind asking for an index reuses it.
        if (indexes.ContainsKey(name)) return this;
        var index = new Index(valueOf, versioned);
        foreach (var (key, obj) in store) Put(index, key, obj);
        indexes[name] = index;
        return this;
    }

    /// <summary>The cached objects whose index value is <paramref name="value"/>; no scan of the whole cache.</summary>
    public IReadOnlyList<T> ByIndex(string name, string value)
    {
        if (!indexes.TryGetValue(name, out var index)) return [];
        lock (index.Gate) return index.Buckets.TryGetValue(value, out var bucket) ? [.. bucket.Values] : [];
    }

    /// <summary>
    /// A number that changes whenever an object with this index value is added, updated or removed
    /// (0 for an empty bucket): work derived from a bucket can be memoised by it.
    /// </summary>
    public long IndexVersion(string name, string value)
    {
        if (!indexes.TryGetValue(name, out var index) || !index.Versioned) throw new InvalidOperationException($"index {name} of {Type.Plural} is not versioned");
        lock (index.Gate) return index.Stamps.GetValueOrDefault(value);
    }

    public const string NamespaceIndex = "namespace";

    public IReadOnlyList<T> InNamespace(string ns) =>
        indexes.ContainsKey(NamespaceIndex) ? ByIndex(NamespaceIndex, ns) : [.. store.Values.Where(o => o.Metadata.NamespaceProperty == ns)];

    static void Put(Index index, string key, T obj) => Move(index, key, default, obj);

    /// <summary>
    /// Moves <paramref name="key"/> from its old object's bucket to its new one under one lock, so a
    /// reader sees the old state or the new, never neither (a reader counting a tenant's workspaces
    /// must not see one vanish while it is being updated).
    /// </summary>
    static void Move(Index index, string key, T? old, T? now)
    {
        var before = old is null ? null : index.ValueOf(old);
        var after = now is null ? null : index.ValueOf(now);
        if (before is null && after is null) return;
        lock (index.Gate)
        {
            if (before is not null && before != after && index.Buckets.TryGetValue(before, out var left) && left.Remove(key))
            {
                if (left.Count > 0)
                {
                    index.Touch(before);
                }
                else
                {
                    index.Buckets.Remove(before);
                    index.Stamps.Remove(before);
                }
            }

            if (after is not null)
            {
                if (!index.Buckets.TryGetValue(after, out var bucket)) index.Buckets[after] = bucket = new Dictionary<string, T>(1);
                bucket[key] = now!;
                index.Touch(after);
            }
        }
    }

    void Store(string key, T obj)
    {
        store.TryGetValue(key, out var old);
        store[key] = obj;
        foreach (var index in indexes.Values) Move(index, key, old, obj);
    }

    /// <summary>Puts an object in the cache as a watch event would, without telling handlers (unit tests).</summary>
    internal void Seed(T obj) => Store(KeyOf(obj), Trim(obj));

    internal void Evict(T obj) => Remove(KeyOf(obj));

    void Remove(string key)
    {
        if (!store.TryRemove(key, out var old)) return;
        foreach (var index in indexes.Values) Move(index, key, old, default);
    }

    /// <summary>What the cache keeps of an object (see <see cref="CacheCompaction"/>).</summary>
    T Trim(T obj) => CacheCompaction.Compact(options.Transform is { } transform ? (T)transform(obj) : obj, options.Strings, options.DropStatus);


    public static string KeyOf(T obj) =>
        string.IsNullOrEmpty(obj.Metadata.NamespaceProperty) ? obj.Metadata.Name : $"{obj.Metadata.NamespaceProperty}/{obj.Metadata.Name}";

    /// <summary>Handlers run on the informer's loop: keep them to enqueueing keys.</summary>
    public void AddHandler(Action<InformerEvent<T>> handler)
    {
        lock (handlers) handlers.Add(handler);
    }

    public Task WaitForSyncAsync(CancellationToken ct) => synced.Task.WaitAsync(ct);

    public async Task RunAsync(CancellationToken ct)
    {
        running = ct;
        started = System.Diagnostics.Stopwatch.StartNew();
        // Objects are judged by the scope's namespaces: they must be known before the first list.
        if (options.Scope is { } scope)
        {
            try
            {
                await scope.WaitForSyncAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var backoff = options.InitialBackoff;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (resourceVersion is null) await ListAndReplaceAsync(ct).ConfigureAwait(false);
                var reason = await WatchOnceAsync(ct).ConfigureAwait(false);
                metrics.WatchRestarts.WithLabels(Type.Plural, reason).Inc();
                backoff = options.InitialBackoff;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (KubeApiException e) when (e.IsGone)
            {
                logger.LogInformation("watch of {Resource} expired at resourceVersion {ResourceVersion}; re-listing", Type.Plural, resourceVersion);
                metrics.WatchRestarts.WithLabels(Type.Plural, "gone").Inc();
                resourceVersion = null;
            }
            catch (Exception e) when (e is HttpRequestException or KubeApiException or IOException or JsonException or OperationCanceledException)
            {
                metrics.WatchRestarts.WithLabels(Type.Plural, "error").Inc();
                var wait = Jitter(backoff);
                logger.LogWarning("list/watch of {Resource} failed ({Error}); retrying in {Delay} ms", Type.Plural, e.Message, (int)wait.TotalMilliseconds);
                try
                {
                    await Task.Delay(wait, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, options.MaxBackoff.Ticks));
            }
        }
    }

    static TimeSpan Jitter(TimeSpan d) => d + TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * d.TotalMilliseconds);

    async Task ListAndReplaceAsync(CancellationToken ct)
    {
        var fresh = new Dictionary<string, T>();
        string? continueToken = null;
        string listVersion;
        var pages = 0;
        do
        {
            pages++;
            var page = await api.ListAsync<T>(Type, options.Namespace, options.LabelSelector, options.PageSize, continueToken, ct, options.MetadataOnly, options.FieldSelector,
                options.Scope is null ? null : Admit).ConfigureAwait(false);
            foreach (var item in page.Items) fresh[KeyOf(item)] = Trim(item);
            continueToken = page.Continue;
            listVersion = page.ResourceVersion;
        }
        while (continueToken is not null);

        metrics.Relists.WithLabels(Type.Plural).Inc();
        lock (gate)
        {
            foreach (var catchUp in catchUps) catchUp.Superseded = true;
        }

        foreach (var (key, item) in fresh)
        {
            T? old;
            lock (gate)
            {
                store.TryGetValue(key, out old);
                Store(key, item);
                // A re-list is newer than any catch-up list in flight: they must not overwrite it.
                TouchedByWatch(item.Metadata.NamespaceProperty, key);
            }

            if (old is null) Notify(new(InformerEventType.Added, default, item));
            else if (old.Metadata.ResourceVersion != item.Metadata.ResourceVersion && !CacheCompaction.SameAsCached(old, item, options.DropsParts)) Notify(new(InformerEventType.Modified, old, item));
        }

        // Objects deleted while we were not watching: their delete events were never seen.
        foreach (var key in store.Keys.Where(k => !fresh.ContainsKey(k)).ToList())
        {
            T? gone;
            lock (gate)
            {
                if (!store.TryGetValue(key, out gone)) continue;
                Remove(key);
                TouchedByWatch(gone.Metadata.NamespaceProperty, key);
            }

            Notify(new(InformerEventType.Deleted, gone, gone));
        }

        Volatile.Write(ref resourceVersion, listVersion);
        if (!synced.Task.IsCompleted)
        {
            var seconds = started.Elapsed.TotalSeconds;
            var gauge = metrics.SyncSeconds.WithLabels(Type.Plural);
            if (seconds > gauge.Value) gauge.Set(seconds);
            logger.LogDebug("{Resource}{Namespace}: synced {Count} objects in {Pages} pages, {Ms} ms after start", Type.Plural,
                options.Namespace is null ? "" : " in " + options.Namespace, fresh.Count, pages, (int)(seconds * 1000));
        }

        synced.TrySetResult();
    }

    /// <summary>Runs one watch until the server ends it; returns why it ended.</summary>
    async Task<string> WatchOnceAsync(CancellationToken ct)
    {
        var timeout = Random.Shared.Next(options.MinWatchTimeoutSeconds, options.MaxWatchTimeoutSeconds + 1);
        var silence = TimeSpan.FromSeconds(timeout) + options.WatchdogGrace;
        using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(ct);
        watchdog.CancelAfter(silence);
        try
        {
            using var response = await api.WatchAsync(Type, options.Namespace, resourceVersion!, timeout, watchdog.Token, options.LabelSelector, options.MetadataOnly, options.FieldSelector).ConfigureAwait(false);
            await using var stream = await response.Content.ReadAsStreamAsync(watchdog.Token).ConfigureAwait(false);
            using var reader = new StreamReader(stream);
            while (await reader.ReadLineAsync(watchdog.Token).ConfigureAwait(false) is { } line)
            {
                watchdog.CancelAfter(silence);
                if (line.Length == 0) continue;
                HandleLine(line);
            }

            return "timeout";
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && watchdog.IsCancellationRequested)
        {
            logger.LogWarning("watch of {Resource} silent for {Seconds} s; restarting", Type.Plural, (int)silence.TotalSeconds);
            return "watchdog";
        }
    }

    internal void HandleLine(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var type = doc.RootElement.GetProperty("type").GetString();
        var objectJson = doc.RootElement.GetProperty("object");
        switch (type)
        {
            case "ERROR":
                var status = KubernetesJson.Deserialize<V1Status>(objectJson.GetRawText());
                throw new KubeApiException((System.Net.HttpStatusCode)(status.Code ?? 500), status.Reason ?? "WatchError", status.Message ?? "");
            case "BOOKMARK":
                if (objectJson.TryGetProperty("metadata", out var meta) && meta.TryGetProperty("resourceVersion", out var rv))
                {
                    Volatile.Write(ref resourceVersion, rv.GetString());
                }

                return;
        }

        if (!Admit(objectJson))
        {
            // Not ours to cache, but the stream's position moves on.
            if (objectJson.TryGetProperty("metadata", out var m) && m.TryGetProperty("resourceVersion", out var v)) Volatile.Write(ref resourceVersion, v.GetString());
            return;
        }

        var obj = Trim(KubernetesJson.Deserialize<T>(objectJson));
        var key = KeyOf(obj);
        switch (type)
        {
            case "ADDED":
            case "MODIFIED":
                T? old;
                bool changed;
                lock (gate)
                {
                    store.TryGetValue(key, out old);
                    // Compared before it is stored: readers of the cache never see the object mid-comparison.
                    changed = old is null || !CacheCompaction.SameAsCached(old, obj, options.DropsParts);
                    Store(key, obj);
                    TouchedByWatch(obj.Metadata.NamespaceProperty, key);
                }

                if (changed) Notify(new(old is null ? InformerEventType.Added : InformerEventType.Modified, old, obj));
                break;
            case "DELETED":
                lock (gate)
                {
                    Remove(key);
                    // A tombstone for the catch-ups: a delete of an uncached object is otherwise a no-op they cannot see.
                    TouchedByWatch(obj.Metadata.NamespaceProperty, key);
                }

                Notify(new(InformerEventType.Deleted, obj, obj));
                break;
        }

        Volatile.Write(ref resourceVersion, obj.Metadata.ResourceVersion);
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
