using System.Reflection;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>
/// A pool of short strings shared by the informers of one operator term. A cached object repeats
/// strings its siblings hold too (label keys and values, its namespace, its owner's name, kind and
/// uid, condition types and reasons); at thousands of workspaces those copies are most of the heap.
/// The pool is bounded: past its capacity it starts afresh (objects keep the strings they have), so
/// names of deleted objects cannot pile up in it.
/// </summary>
public sealed class StringPool(int capacity = 1 << 17, Action<object, Func<string?, string?>>? internOwn = null)
{
    /// <summary>
    /// How a kind shares its own strings (beyond metadata), given by whoever knows the kinds: the
    /// runtime names none of them.
    /// </summary>
    public Action<object, Func<string?, string?>>? InternOwn { get; } = internOwn;

    /// <summary>Longer strings are rarely shared (messages, JSON in annotations) and are left alone.</summary>
    public const int MaxLength = 96;

    readonly Dictionary<string, string> pool = new(StringComparer.Ordinal);
    readonly Lock gate = new();

    public int Count
    {
        get
        {
            lock (gate) return pool.Count;
        }
    }

    public string? Intern(string? value)
    {
        if (value is null || value.Length > MaxLength) return value;
        lock (gate)
        {
            if (pool.TryGetValue(value, out var shared)) return shared;
            if (pool.Count >= capacity) pool.Clear();
            pool[value] = value;
            return value;
        }
    }

    // Parts of built-in objects that siblings repeat whole (a workspace's children carry the same labels
    // and owner reference; quotas and limit ranges the same quantities), kept once, read-only: a reader
    // that tried to change a cached object's shared part would throw instead of changing its siblings'.
    readonly HashSet<IDictionary<string, string>> labelSets = new(SharedParts.Maps);
    readonly HashSet<IList<V1OwnerReference>> ownerLists = new(SharedParts.Owners);
    readonly HashSet<IDictionary<string, ResourceQuantity>> quantityMaps = new(SharedParts.Quantities);

    /// <summary>One shared read-only instance per distinct content (keys and values already interned).</summary>
    internal IDictionary<string, string> Share(IDictionary<string, string> map) =>
        Share(labelSets, map, m => new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(m));

    internal IList<V1OwnerReference> Share(IList<V1OwnerReference> owners) =>
        Share(ownerLists, owners, o => new System.Collections.ObjectModel.ReadOnlyCollection<V1OwnerReference>(o));

    internal IDictionary<string, ResourceQuantity> Share(IDictionary<string, ResourceQuantity> map) =>
        Share(quantityMaps, map, m => new System.Collections.ObjectModel.ReadOnlyDictionary<string, ResourceQuantity>(m));

    TPart Share<TPart>(HashSet<TPart> set, TPart part, Func<TPart, TPart> readOnly)
    {
        lock (gate)
        {
            if (set.TryGetValue(part, out var shared)) return shared;
            if (set.Count >= capacity) set.Clear();
            var kept = readOnly(part);
            set.Add(kept);
            return kept;
        }
    }
}

/// <summary>Content equality of the parts a <see cref="StringPool"/> shares.</summary>
static class SharedParts
{
    public static readonly MapComparer<string> Maps = new(StringComparer.Ordinal);
    public static readonly MapComparer<ResourceQuantity> Quantities = new(EqualityComparer<ResourceQuantity>.Default);
    public static readonly OwnerComparer Owners = new();

    public sealed class MapComparer<TValue>(IEqualityComparer<TValue> values) : IEqualityComparer<IDictionary<string, TValue>>
    {
        public bool Equals(IDictionary<string, TValue>? x, IDictionary<string, TValue>? y)
        {
            if (ReferenceEquals(x, y)) return true;
            if (x is null || y is null || x.Count != y.Count) return false;
            foreach (var (key, value) in x)
            {
                if (!y.TryGetValue(key, out var other) || !values.Equals(value, other)) return false;
            }

            return true;
        }

        public int GetHashCode(IDictionary<string, TValue> map)
        {
            // Order-independent: the same pairs in another order are the same map.
            var hash = map.Count;
            foreach (var (key, value) in map) hash ^= HashCode.Combine(StringComparer.Ordinal.GetHashCode(key), value is null ? 0 : values.GetHashCode(value));
            return hash;
        }
    }

    public sealed class OwnerComparer : IEqualityComparer<IList<V1OwnerReference>>
    {
        public bool Equals(IList<V1OwnerReference>? x, IList<V1OwnerReference>? y)
        {
            if (ReferenceEquals(x, y)) return true;
            if (x is null || y is null || x.Count != y.Count) return false;
            for (var i = 0; i < x.Count; i++)
            {
                var (a, b) = (x[i], y[i]);
                if (a.ApiVersion != b.ApiVersion || a.Kind != b.Kind || a.Name != b.Name || a.Uid != b.Uid || a.Controller != b.Controller
                    || a.BlockOwnerDeletion != b.BlockOwnerDeletion) return false;
            }

            return true;
        }

        public int GetHashCode(IList<V1OwnerReference> owners)
        {
            var hash = new HashCode();
            foreach (var o in owners)
            {
                hash.Add(o.Uid, StringComparer.Ordinal);
                hash.Add(o.Name, StringComparer.Ordinal);
                hash.Add(o.Controller);
            }

            return hash.ToHashCode();
        }
    }
}

/// <summary>What an informer keeps of an object: only what the operator reads, with shared strings.</summary>
public static class CacheCompaction
{
    static class StatusOf<T>
    {
        // Set once per type: the status property an informer with DropStatus clears.
        public static readonly PropertyInfo? Property = typeof(T).GetProperty("Status");
    }

    /// <summary>
    /// Whether a new version, as cached, says nothing the cached old one did not: only parts the
    /// cache drops changed (a quota's usage, which kube-controller-manager writes right after every
    /// quota is made). Such an update refreshes the cached resourceVersion but notifies no one, so it
    /// queues no reconcile. <paramref name="now"/> must not be in the cache yet (its resourceVersion is
    /// swapped for the comparison).
    /// </summary>
    public static bool SameAsCached<T>(T old, T now, bool dropsParts) where T : IKubernetesObject<V1ObjectMeta>
    {
        // Only caches that drop a part the server writes on its own (a status, or what a transform leaves out) can see such an update.
        if (!dropsParts || now.Metadata.DeletionTimestamp != old.Metadata.DeletionTimestamp) return false;
        var version = now.Metadata.ResourceVersion;
        try
        {
            now.Metadata.ResourceVersion = old.Metadata.ResourceVersion;
            return KubernetesJson.Serialize(old) == KubernetesJson.Serialize(now);
        }
        finally
        {
            now.Metadata.ResourceVersion = version;
        }
    }

    /// <param name="dropStatus">
    /// Drop the status: for kinds whose status is someone else's bookkeeping (a quota's usage) that the
    /// operator never reads; an update of the main resource never writes status.
    /// </param>
    public static T Compact<T>(T obj, StringPool? strings, bool dropStatus = false) where T : IKubernetesObject<V1ObjectMeta>
    {
        // managedFields are most of an object's size and nothing here reads them.
        obj.Metadata.ManagedFields = null;
        if (dropStatus) StatusOf<T>.Property?.SetValue(obj, null);
        if (strings is null) return obj;

        InternMetadata(obj.Metadata, strings);
        // Built-in kinds only (the operator's children and the namespaces it reads): what siblings repeat
        // is kept once. The platform's own kinds keep their own (mutable) parts.
        if (obj.GetType().Assembly == typeof(V1ObjectMeta).Assembly) ShareMetadata(obj.Metadata, strings);
        switch (obj)
        {
            case V1RoleBinding binding:
                if (binding.RoleRef is { } role)
                {
                    role.ApiGroup = strings.Intern(role.ApiGroup);
                    role.Kind = strings.Intern(role.Kind);
                    role.Name = strings.Intern(role.Name);
                }

                foreach (var subject in binding.Subjects ?? [])
                {
                    subject.ApiGroup = strings.Intern(subject.ApiGroup);
                    subject.Kind = strings.Intern(subject.Kind);
                    subject.NamespaceProperty = strings.Intern(subject.NamespaceProperty);
                }

                break;
            case V1ResourceQuota q when q.Spec?.Hard is { } hard:
                q.Spec.Hard = strings.Share(InternKeys(hard, strings));
                break;
            case V1LimitRange limits:
                foreach (var item in limits.Spec?.Limits ?? [])
                {
                    item.Type = strings.Intern(item.Type);
                    if (item.DefaultProperty is { } d) item.DefaultProperty = strings.Share(InternKeys(d, strings));
                    if (item.DefaultRequest is { } r) item.DefaultRequest = strings.Share(InternKeys(r, strings));
                    if (item.Max is { } max) item.Max = strings.Share(InternKeys(max, strings));
                    if (item.Min is { } min) item.Min = strings.Share(InternKeys(min, strings));
                }

                break;
            default:
                strings.InternOwn?.Invoke(obj, strings.Intern);
                break;
        }

        return obj;
    }

    static void InternMetadata(V1ObjectMeta meta, StringPool strings)
    {
        meta.NamespaceProperty = strings.Intern(meta.NamespaceProperty);
        if (meta.Labels is { } labels) meta.Labels = InternPairs(labels, strings);
        if (meta.Annotations is { } annotations) meta.Annotations = InternPairs(annotations, strings);
        if (meta.Finalizers is { } finalizers)
        {
            for (var i = 0; i < finalizers.Count; i++) finalizers[i] = strings.Intern(finalizers[i])!;
        }

        foreach (var owner in meta.OwnerReferences ?? [])
        {
            owner.ApiVersion = strings.Intern(owner.ApiVersion);
            owner.Kind = strings.Intern(owner.Kind);
            owner.Name = strings.Intern(owner.Name);
            owner.Uid = strings.Intern(owner.Uid);
        }
    }

    /// <summary>
    /// A namespaced child's name repeats in every workspace namespace (its labels and owner reference
    /// among its siblings): one copy each.
    /// </summary>
    static void ShareMetadata(V1ObjectMeta meta, StringPool strings)
    {
        if (meta.NamespaceProperty is not null) meta.Name = strings.Intern(meta.Name);
        if (meta.Labels is { } labels) meta.Labels = strings.Share(labels);
        if (meta.Annotations is { } annotations) meta.Annotations = strings.Share(annotations);
        if (meta.OwnerReferences is { Count: > 0 } owners) meta.OwnerReferences = strings.Share(owners);
    }

    /// <summary>A right-sized copy whose keys and (short) values come from the pool.</summary>
    static Dictionary<string, string> InternPairs(IDictionary<string, string> map, StringPool strings)
    {
        var result = new Dictionary<string, string>(map.Count, StringComparer.Ordinal);
        foreach (var (key, value) in map) result[strings.Intern(key)!] = strings.Intern(value)!;
        return result;
    }

    static Dictionary<string, TValue> InternKeys<TValue>(IDictionary<string, TValue> map, StringPool strings)
    {
        var result = new Dictionary<string, TValue>(map.Count, StringComparer.Ordinal);
        foreach (var (key, value) in map) result[strings.Intern(key)!] = value;
        return result;
    }
}
