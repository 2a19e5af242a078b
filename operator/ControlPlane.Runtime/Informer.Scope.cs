using System.Text.Json;
using Microsoft.Extensions.Logging;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>
/// The informer's namespace scope (<see cref="InformerOptions.Scope"/>): objects outside it are dropped before they are
/// deserialised, a namespace joining it is caught up by one list, one leaving it drops its objects.
/// </summary>
public sealed partial class Informer<T>
{
    bool InScope(string? ns) => options.Scope is not { } scope || scope.Contains(ns);

    /// <summary>Reads the namespace of a raw object and, when it is out of scope, notes that it was dropped.</summary>
    bool Admit(JsonElement obj)
    {
        if (options.Scope is null) return true;
        var ns = obj.TryGetProperty("metadata", out var meta) && meta.TryGetProperty("namespace", out var n) ? n.GetString() : null;
        if (InScope(ns)) return true;
        if (ns is not null)
        {
            BeforeDropRecorded?.Invoke(ns);
            // Bounded: a cluster with more foreign namespaces than this only loses the late-join catch-up for some.
            if (dropped.Count >= MaxDropped) dropped.Clear();
            dropped[ns] = 0;
            // Recorded first, checked again: a namespace that joined between the check and the record
            // found nothing to catch up (OnScopeEntered ran before the record), so the object is taken
            // here. The scope updates its set before it raises Entered, so one of the two always sees it.
            if (InScope(ns)) return true;
        }

        metrics.OutOfScope.WithLabels(Type.Plural).Inc();
        return false;
    }

    /// <summary>Test seam: runs between the scope check and the drop record (to replay a namespace joining there).</summary>
    internal Action<string>? BeforeDropRecorded { get; set; }

    /// <summary>
    /// The keys of a namespace the watch touched (added, changed or deleted) while a catch-up list of it
    /// was in flight: the watch's state of those keys is newer than or as new as the list's, and the
    /// watch delivers every later event, so the catch-up must not overwrite or resurrect them.
    /// </summary>
    internal sealed class CatchUp(string ns)
    {
        public string Namespace { get; } = ns;
        public HashSet<string> Touched { get; } = new(StringComparer.Ordinal);

        /// <summary>A re-list came after it: that list is newer and covered the namespace, so this one adds nothing.</summary>
        public bool Superseded { get; set; }
    }

    // Store changes by the watch, the catch-up merge and a namespace leaving the scope are serialised
    // by this gate, with the catch-ups in flight (guarded by it too).
    readonly Lock gate = new();
    readonly List<CatchUp> catchUps = [];

    /// <summary>
    /// A namespace joined the scope. Its objects seen before (dropped) would otherwise stay uncached
    /// until they change: list that namespace once. A namespace made empty and joined at once (the
    /// usual case: the operator creates it) costs nothing.
    /// </summary>
    void OnScopeEntered(string ns)
    {
        if (!dropped.TryRemove(ns, out _)) return;
        // Registered before the list is sent, so every watch event after it is seen by the merge.
        var catchUp = BeginCatchUp(ns);
        var ct = running;
        _ = Task.Run(async () =>
        {
            try
            {
                await synced.Task.WaitAsync(ct).ConfigureAwait(false);
                string? continueToken = null;
                do
                {
                    var page = await api.ListAsync<T>(Type, ns, options.LabelSelector, options.PageSize, continueToken, ct, options.MetadataOnly, options.FieldSelector).ConfigureAwait(false);
                    MergeCaughtUp(catchUp, page.Items);
                    continueToken = page.Continue;
                }
                while (continueToken is not null);
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e) when (e is HttpRequestException or KubeApiException or IOException or JsonException)
            {
                logger.LogWarning("list of {Resource} in namespace {Namespace}, which joined the cache's scope, failed ({Error}); its objects are cached as they change",
                    Type.Plural, ns, e.Message);
            }
            finally
            {
                EndCatchUp(catchUp);
            }
        }, CancellationToken.None);
    }

    internal CatchUp BeginCatchUp(string ns)
    {
        var catchUp = new CatchUp(ns);
        lock (gate) catchUps.Add(catchUp);
        return catchUp;
    }

    internal void EndCatchUp(CatchUp catchUp)
    {
        lock (gate) catchUps.Remove(catchUp);
    }

    /// <summary>Adds listed objects the cache lacks, unless the watch touched them since the catch-up began.</summary>
    internal void MergeCaughtUp(CatchUp catchUp, IEnumerable<T> items)
    {
        foreach (var item in items)
        {
            var obj = Trim(item);
            var key = KeyOf(obj);
            lock (gate)
            {
                if (catchUp.Superseded || !InScope(catchUp.Namespace) || catchUp.Touched.Contains(key) || store.ContainsKey(key)) continue;
                Store(key, obj);
            }

            Notify(new(InformerEventType.Added, default, obj));
        }
    }

    /// <summary>Under the gate: notes a watch change of <paramref name="key"/> for the catch-ups of its namespace.</summary>
    void TouchedByWatch(string? ns, string key)
    {
        if (ns is null) return;
        foreach (var catchUp in catchUps)
        {
            if (catchUp.Namespace == ns) catchUp.Touched.Add(key);
        }
    }

    /// <summary>A namespace left the scope: its objects leave the cache as if deleted.</summary>
    void OnScopeLeft(string ns)
    {
        var prefix = ns + "/";
        var removed = new List<T>();
        // Under the gate: a catch-up merge checks the scope and stores under it, so it never adds after this.
        lock (gate)
        {
            foreach (var key in store.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                if (store.TryGetValue(key, out var gone))
                {
                    Remove(key);
                    removed.Add(gone);
                }
            }
        }

        foreach (var gone in removed) Notify(new(InformerEventType.Deleted, gone, gone));
    }
}
