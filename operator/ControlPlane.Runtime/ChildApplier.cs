using System.Text.Json.Nodes;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

public enum ApplyOutcome { Unchanged, Created, Updated }

/// <summary>
/// An object with the desired child's name exists but was not made for this owner (another owner's
/// UID, or none): the operator never adopts, and so never later deletes, what it did not create.
/// </summary>
public sealed class ForeignObjectException(string kind, string? ns, string name, string owner)
    : Exception($"{kind} {(ns is null ? "" : ns + "/")}{name} already exists and was not created for {owner}: it is not adopted")
{
    public string Kind { get; } = kind;
    public string Name { get; } = name;
}

/// <summary>
/// Converges one owned child toward its desired form. It compares only what the operator owns
/// (the named top-level fields, plus its labels, annotations and owner reference) against the cached
/// object, and writes only on a difference: create when missing, else a resourceVersion-guarded
/// update that keeps everything it does not own. An existing object found on create (409) is taken
/// over only when it already names the same controlling owner (our own earlier create, not yet in
/// the cache); anything else is a <see cref="ForeignObjectException"/>. Each write's resulting
/// version goes to <paramref name="writes"/>, so the controller skips its watch echo.
/// </summary>
public sealed class ChildApplier(KubeApi api, OwnWrites? writes = null)
{
    public async Task<ApplyOutcome> ApplyAsync<T>(ResourceType type, T desired, T? cached, IReadOnlyList<string> ownedFields, CancellationToken ct,
        IReadOnlyCollection<string>? removeAnnotations = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        removeAnnotations ??= [];
        var ns = desired.Metadata.NamespaceProperty;
        if (cached is null)
        {
            try
            {
                var body = KubernetesJson.Serialize(desired);
                await OwnWrites.SendAsync(writes, type, ns, desired.Metadata.Name, () => api.SendAsync(HttpMethod.Post, type.CollectionPath(ns), body, "application/json", ct)).ConfigureAwait(false);
                return ApplyOutcome.Created;
            }
            catch (KubeApiException e) when (e.IsConflict || e.Reason == "AlreadyExists")
            {
                cached = await api.GetAsync<T>(type, ns, desired.Metadata.Name, ct).ConfigureAwait(false);
            }
        }

        if (!SameController(desired, cached))
        {
            var owner = desired.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true);
            throw new ForeignObjectException(type.Kind, ns, desired.Metadata.Name, owner is null ? "the operator" : $"{owner.Kind} {owner.Name}");
        }

        var want = JsonNode.Parse(KubernetesJson.Serialize(desired))!.AsObject();
        var have = JsonNode.Parse(KubernetesJson.Serialize(cached))!.AsObject();
        var strayAnnotations = removeAnnotations.Where(a => have["metadata"]?["annotations"]?[a] is not null).ToList();
        if (strayAnnotations.Count == 0 && Matches(want, have, ownedFields)) return ApplyOutcome.Unchanged;

        var merged = have.DeepClone().AsObject();
        var meta = merged["metadata"]!.AsObject();
        meta["labels"] = Union(meta["labels"], want["metadata"]?["labels"]);
        meta["annotations"] = Union(meta["annotations"], want["metadata"]?["annotations"]);
        foreach (var a in strayAnnotations) meta["annotations"]!.AsObject().Remove(a);
        if (want["metadata"]?["ownerReferences"] is { } owners) meta["ownerReferences"] = owners.DeepClone();
        foreach (var field in ownedFields)
        {
            if (want[field] is { } value) merged[field] = value.DeepClone();
            else merged.Remove(field);
        }

        var text = merged.ToJsonString();
        await OwnWrites.SendAsync(writes, type, ns, desired.Metadata.Name, () => api.SendAsync(HttpMethod.Put, type.ItemPath(ns, desired.Metadata.Name), text, "application/json", ct)).ConfigureAwait(false);
        return ApplyOutcome.Updated;
    }

    /// <summary>Whether <paramref name="existing"/> is controlled by the same owner (by UID) the desired object names.</summary>
    public static bool SameController(IKubernetesObject<V1ObjectMeta> desired, IKubernetesObject<V1ObjectMeta> existing)
    {
        var want = desired.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true);
        if (want is null) return true; // objects without an owner (webhook configurations) are singletons the operator names
        return existing.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == want.Uid) == true;
    }

    public static bool Matches(JsonObject want, JsonObject have, IReadOnlyList<string> ownedFields)
    {
        if (!Subset(want["metadata"]?["labels"], have["metadata"]?["labels"])) return false;
        if (!Subset(want["metadata"]?["annotations"], have["metadata"]?["annotations"])) return false;
        if (want["metadata"]?["ownerReferences"] is { } owners && !JsonNode.DeepEquals(owners, have["metadata"]?["ownerReferences"])) return false;
        return ownedFields.All(f => JsonNode.DeepEquals(want[f], have[f]));
    }

    static bool Subset(JsonNode? small, JsonNode? big)
    {
        if (small is not JsonObject s || s.Count == 0) return true;
        if (big is not JsonObject b) return false;
        return s.All(kv => b.TryGetPropertyValue(kv.Key, out var v) && JsonNode.DeepEquals(kv.Value, v));
    }

    static JsonObject? Union(JsonNode? existing, JsonNode? wanted)
    {
        if (existing is null && wanted is null) return null;
        var result = existing?.DeepClone().AsObject() ?? new JsonObject();
        if (wanted is JsonObject w)
        {
            foreach (var (k, v) in w) result[k] = v?.DeepClone();
        }

        return result;
    }

    public static V1OwnerReference OwnerReference(IKubernetesObject<V1ObjectMeta> owner) => new()
    {
        ApiVersion = owner.ApiVersion,
        Kind = owner.Kind,
        Name = owner.Metadata.Name,
        Uid = owner.Metadata.Uid,
        Controller = true,
    };
}
