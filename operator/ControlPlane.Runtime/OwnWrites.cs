using System.Text.Json;
using k8s.Models;

namespace ControlPlane.Runtime;

/// <summary>
/// The writes one controller's reconciles made, so that their watch echoes queue nothing: the
/// reconcile that wrote already acted on what the echo carries (controller-runtime re-reconciles on
/// every echo, which on a converge of thousands of objects doubles the reconciles). Other writers'
/// changes are queued as before, and other controllers watching the same objects are not affected:
/// each controller has its own record.
/// </summary>
/// <remarks>
/// The echo can arrive before the write's response, so a write is marked before it is sent. Every
/// write the operator makes is guarded (a create, or a resourceVersion-checked update or patch of
/// what the reconcile read), so while it is in flight the first event for that object is its own
/// echo: anyone else's change in between would have failed it with a conflict, and a failed write
/// fails (and requeues) the reconcile or is resolved within it. After the response, the echo is
/// matched by the resourceVersion the write returned; if the event taken was not that version (our
/// write was a no-op on the server, or a relist folded it with a later change), the reconcile fails
/// as on a conflict and runs again.
/// </remarks>
public sealed class OwnWrites
{
    // An echo that never comes (a write the server found to be a no-op, a watch that relisted past
    // it) leaves its entry behind; the record is dropped whole when it grows past this, which costs
    // at most one extra reconcile per object.
    const int Capacity = 50_000;

    sealed class Mark
    {
        public bool InFlight;
        public string? Version;
    }

    readonly Dictionary<string, Mark> marks = new(StringComparer.Ordinal);
    readonly Lock gate = new();

    static string Key(ResourceType type, string? ns, string name) => $"{type.Group}/{type.Plural}/{ns}/{name}";

    public int Count
    {
        get
        {
            lock (gate) return marks.Count;
        }
    }

    /// <summary>Sends a write, tracked when the writer has a record (see <see cref="TrackAsync"/>).</summary>
    public static Task<string> SendAsync(OwnWrites? writes, ResourceType type, string? ns, string name, Func<Task<string>> send) =>
        writes is null ? send() : writes.TrackAsync(type, ns, name, send);

    /// <summary>Sends one guarded write of the object and notes the version it produced; returns the response.</summary>
    public async Task<string> TrackAsync(ResourceType type, string? ns, string name, Func<Task<string>> send)
    {
        var key = Key(type, ns, name);
        lock (gate)
        {
            if (marks.Count >= Capacity) marks.Clear();
            marks[key] = new Mark { InFlight = true };
        }

        string response;
        try
        {
            response = await send().ConfigureAwait(false);
        }
        catch
        {
            // Failed: the reconcile fails and is retried, and sees whatever event was taken meanwhile.
            lock (gate) marks.Remove(key);
            throw;
        }

        var version = VersionOf(response);
        var foreign = false;
        lock (gate)
        {
            if (marks.TryGetValue(key, out var mark) && mark.InFlight)
            {
                if (mark.Version is null && version is not null)
                {
                    mark.InFlight = false;
                    mark.Version = version;
                }
                else
                {
                    // The event taken while in flight was ours, or (a write the server found to be a
                    // no-op, or a relist folding ours with a later one) somebody else's.
                    foreign = mark.Version != version;
                    marks.Remove(key);
                }
            }
        }

        // The event taken for our echo was not ours: fail this reconcile so that it runs again on
        // what the cache now holds (the write itself stands; retrying it is idempotent).
        if (foreign) throw new KubeApiException(System.Net.HttpStatusCode.Conflict, "Conflict", $"{type.Kind} {name} changed by another writer while ours was in flight");
        return response;
    }

    /// <summary>True for the watch event that echoes a write of ours (each echo once).</summary>
    public bool IsEcho(ResourceType type, V1ObjectMeta meta)
    {
        if (meta.Name is null || meta.ResourceVersion is null) return false;
        var key = Key(type, meta.NamespaceProperty, meta.Name);
        lock (gate)
        {
            if (!marks.TryGetValue(key, out var mark)) return false;
            if (mark.InFlight)
            {
                if (mark.Version is not null) return false; // the echo was the first event; this one is not ours
                mark.Version = meta.ResourceVersion;
                return true;
            }

            marks.Remove(key);
            return mark.Version == meta.ResourceVersion;
        }
    }

    /// <summary>The object is gone: no echo of it will come.</summary>
    public void Forget(ResourceType type, V1ObjectMeta meta)
    {
        if (meta.Name is null) return;
        lock (gate) marks.Remove(Key(type, meta.NamespaceProperty, meta.Name));
    }

    /// <summary>The resourceVersion in a write's response, without reading the whole object.</summary>
    static string? VersionOf(string response)
    {
        using var doc = JsonDocument.Parse(response);
        return doc.RootElement.TryGetProperty("metadata", out var meta) && meta.TryGetProperty("resourceVersion", out var v)
            && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }
}
