using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>
/// Writes core/v1 Events about an object. A repeat of the same (object, type, reason, message) bumps
/// the count of the existing Event instead of creating a new one. A failure to record is logged,
/// never thrown: Events are best effort. Callers never put secrets in a message.
/// </summary>
public sealed class EventRecorder(KubeApi api, string component, string instance, TimeProvider time, ILogger logger)
{
    const int MaxRemembered = 4096;
    readonly ConcurrentDictionary<string, (string Namespace, string Name, int Count)> seen = new();

    public Task NormalAsync(IKubernetesObject<V1ObjectMeta> obj, string reason, string message, CancellationToken ct) =>
        RecordAsync(obj, "Normal", reason, message, ct);

    public Task WarningAsync(IKubernetesObject<V1ObjectMeta> obj, string reason, string message, CancellationToken ct) =>
        RecordAsync(obj, "Warning", reason, message, ct);

    public async Task RecordAsync(IKubernetesObject<V1ObjectMeta> obj, string type, string reason, string message, CancellationToken ct)
    {
        // Events of cluster-scoped objects live in "default", as client-go records them.
        var ns = string.IsNullOrEmpty(obj.Metadata.NamespaceProperty) ? "default" : obj.Metadata.NamespaceProperty;
        var key = string.Join('\u0000', obj.Metadata.Uid, type, reason, message);
        var now = time.GetUtcNow().UtcDateTime;
        try
        {
            if (seen.TryGetValue(key, out var existing))
            {
                var count = existing.Count + 1;
                var patch = JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["count"] = count,
                    ["lastTimestamp"] = now.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                });
                try
                {
                    await api.PatchAsync<Corev1Event>(ResourceType.Events, existing.Namespace, existing.Name, patch, PatchTypes.Merge, ct).ConfigureAwait(false);
                    seen[key] = (existing.Namespace, existing.Name, count);
                    return;
                }
                catch (KubeApiException e) when (e.IsNotFound)
                {
                    seen.TryRemove(key, out _); // expired by the API server's event TTL: create anew
                }
            }

            var name = $"{obj.Metadata.Name}.{Convert.ToHexString(BitConverter.GetBytes(now.Ticks ^ Random.Shared.NextInt64())).ToLowerInvariant()}";
            var ev = new Corev1Event
            {
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
                InvolvedObject = new V1ObjectReference
                {
                    ApiVersion = obj.ApiVersion,
                    Kind = obj.Kind,
                    Name = obj.Metadata.Name,
                    NamespaceProperty = obj.Metadata.NamespaceProperty,
                    Uid = obj.Metadata.Uid,
                    ResourceVersion = obj.Metadata.ResourceVersion,
                },
                Type = type,
                Reason = reason,
                Message = message,
                Count = 1,
                FirstTimestamp = now,
                LastTimestamp = now,
                Source = new V1EventSource { Component = component, Host = instance },
                ReportingComponent = component,
                ReportingInstance = instance,
            };
            // The response is not read: an Event is written and forgotten.
            await api.SendAsync(HttpMethod.Post, ResourceType.Events.CollectionPath(ns), k8s.KubernetesJson.Serialize(ev), "application/json", ct).ConfigureAwait(false);
            if (seen.Count >= MaxRemembered) seen.Clear();
            seen[key] = (ns, name, 1);
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException)
        {
            logger.LogWarning("could not record event {Reason} for {Kind} {Name}: {Error}", reason, obj.Kind, obj.Metadata.Name, e.Message);
        }
    }
}
