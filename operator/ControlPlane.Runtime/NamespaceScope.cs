using System.Collections.Concurrent;
using k8s;
using k8s.Models;

namespace ControlPlane.Runtime;

/// <summary>
/// The namespaces an informer may cache objects in, kept from another informer (e.g. the namespaces
/// the operator made). The API server cannot select objects by their namespace's labels, so a scoped
/// informer still lists and watches cluster-wide but drops every object outside the scope before it
/// is deserialized: memory and reconciles follow the governed namespaces, not the cluster.
/// </summary>
public sealed class NamespaceScope
{
    readonly ConcurrentDictionary<string, byte> names = new(StringComparer.Ordinal);
    readonly IInformer source;

    NamespaceScope(IInformer source) => this.source = source;

    /// <summary>A scope holding <paramref name="namespaceOf"/> of every object cached by <paramref name="source"/> (add before it runs).</summary>
    public static NamespaceScope Of<T>(Informer<T> source, Func<T, string?> namespaceOf) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var scope = new NamespaceScope(source);
        source.AddHandler(e =>
        {
            var before = e.Old is null ? null : namespaceOf(e.Old);
            var after = e.Type == InformerEventType.Deleted ? null : namespaceOf(e.Object);
            if (e.Type == InformerEventType.Deleted) before = namespaceOf(e.Object);
            if (before == after) return;
            if (before is not null && scope.names.TryRemove(before, out _)) scope.Left?.Invoke(before);
            if (after is not null && scope.names.TryAdd(after, 0)) scope.Entered?.Invoke(after);
        });
        return scope;
    }

    public bool Contains(string? ns) => ns is not null && names.ContainsKey(ns);

    public int Count => names.Count;

    /// <summary>Until the source has listed, no object can be judged in or out.</summary>
    public Task WaitForSyncAsync(CancellationToken ct) => source.WaitForSyncAsync(ct);

    /// <summary>A namespace joined (raised on the source informer's loop: keep handlers short).</summary>
    public event Action<string>? Entered;

    /// <summary>A namespace left (raised on the source informer's loop: keep handlers short).</summary>
    public event Action<string>? Left;
}
