using System.Text.Json.Nodes;
using System.Text.Json;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>Completes a status about to be written, in place: <paramref name="current"/> is the object as last read (its status included).</summary>
public delegate void StatusShaper(ResourceType type, JsonObject current, JsonObject status);

/// <summary>
/// The thin layer that writes a reconciler's results: status through the status subresource only
/// when it changed, and finalizers by a merge patch guarded by resourceVersion. It never touches spec.
/// Each write's resulting version goes to <paramref name="writes"/>, so the controller skips its watch echo.
/// <paramref name="shapeStatus"/>, when given, completes every status before it is compared and written
/// (the operator derives kstatus's Stalled there): one place for all writes of a kind, and no extra write.
/// </summary>
public sealed class ObjectWriter(KubeApi api, OwnWrites? writes = null, StatusShaper? shapeStatus = null)
{
    /// <summary>Replaces status when the new one differs; returns the object as the server has it.</summary>
    public async Task<T> UpdateStatusAsync<T>(ResourceType type, T current, object? newStatus, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var currentNode = JsonNode.Parse(KubernetesJson.Serialize(current))!.AsObject();
        var newStatusNode = newStatus is null ? null : JsonNode.Parse(KubernetesJson.Serialize(newStatus));
        if (shapeStatus is not null && newStatusNode is JsonObject shaped) shapeStatus(type, currentNode, shaped);
        if (JsonNode.DeepEquals(currentNode["status"], newStatusNode)) return current;
        currentNode["status"] = newStatusNode;
        var body = currentNode.ToJsonString();
        var ns = current.Metadata.NamespaceProperty;
        var text = await OwnWrites.SendAsync(writes, type, ns, current.Metadata.Name,
            () => api.SendAsync(HttpMethod.Put, type.ItemPath(ns, current.Metadata.Name, "status"), body, "application/json", ct)).ConfigureAwait(false);
        return KubernetesJson.Deserialize<T>(text);
    }

    /// <summary>
    /// Replaces status with one computed from the newest copy of the object (read from the API server,
    /// not a cache), retrying a conflict up to five times: for writers that race the controller, such as
    /// a background job. An object deleted and recreated under the same name is not written.
    /// </summary>
    public async Task<T> UpdateStatusFromLatestAsync<T>(ResourceType type, T obj, Func<T, object?> statusOf, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var ns = obj.Metadata.NamespaceProperty;
        for (var attempt = 0; ; attempt++)
        {
            var current = await api.GetAsync<T>(type, ns, obj.Metadata.Name, ct).ConfigureAwait(false);
            if (current.Metadata.Uid != obj.Metadata.Uid) throw new InvalidOperationException($"{type.Kind} {obj.Metadata.Name} was replaced");
            try
            {
                return await UpdateStatusAsync(type, current, statusOf(current), ct).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (e.IsConflict && attempt < 5)
            {
            }
        }
    }

    public static bool HasFinalizer(IKubernetesObject<V1ObjectMeta> obj, string finalizer) =>
        obj.Metadata.Finalizers?.Contains(finalizer) == true;

    public Task<T> AddFinalizerAsync<T>(ResourceType type, T obj, string finalizer, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (HasFinalizer(obj, finalizer)) return Task.FromResult(obj);
        return PatchFinalizersAsync(type, obj, [.. obj.Metadata.Finalizers ?? [], finalizer], ct);
    }

    public Task<T> RemoveFinalizerAsync<T>(ResourceType type, T obj, string finalizer, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (!HasFinalizer(obj, finalizer)) return Task.FromResult(obj);
        return PatchFinalizersAsync(type, obj, obj.Metadata.Finalizers!.Where(f => f != finalizer).ToList(), ct);
    }

    async Task<T> PatchFinalizersAsync<T>(ResourceType type, T obj, List<string> finalizers, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var patch = JsonSerializer.Serialize(new
        {
            metadata = new { resourceVersion = obj.Metadata.ResourceVersion, finalizers },
        });
        var ns = obj.Metadata.NamespaceProperty;
        var text = await OwnWrites.SendAsync(writes, type, ns, obj.Metadata.Name,
            () => api.SendAsync(HttpMethod.Patch, type.ItemPath(ns, obj.Metadata.Name), patch, PatchTypes.Merge, ct)).ConfigureAwait(false);
        return KubernetesJson.Deserialize<T>(text);
    }
}
