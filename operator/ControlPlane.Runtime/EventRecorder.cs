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
/// never thrown: Events are best effort. Callers never put secrets in a message. While its sender
/// runs (<see cref="RunAsync"/>, one per leadership term) an Event is queued and sent in the background
/// (EventRecorder.Queue.cs): the reconcile that records it does not wait for the POST.
/// </summary>
public sealed partial class EventRecorder(KubeApi api, string component, string instance, TimeProvider time, ILogger logger)
{
    const int MaxRemembered = 4096;
    readonly ConcurrentDictionary<string, (string Namespace, string Name, int Count)> seen = new();

    public Task NormalAsync(IKubernetesObject<V1ObjectMeta> obj, string reason, string message, CancellationToken ct) =>
        RecordAsync(obj, "Normal", reason, message, ct);

    public Task WarningAsync(IKubernetesObject<V1ObjectMeta> obj, string reason, string message, CancellationToken ct) =>
        RecordAsync(obj, "Warning", reason, message, ct);

    public Task RecordAsync(IKubernetesObject<V1ObjectMeta> obj, string type, string reason, string message, CancellationToken ct)
    {
        var pending = new PendingEvent(Reference(obj), type, reason, message, time.GetUtcNow().UtcDateTime);
        return TryQueueAsync(pending, ct) is { } queued ? queued : SendAsync(pending, 1, ct);
    }

    /// <summary>What an Event names of its object, taken when it is recorded (the object may change before it is sent).</summary>
    static V1ObjectReference Reference(IKubernetesObject<V1ObjectMeta> obj) => new()
    {
        ApiVersion = obj.ApiVersion,
        Kind = obj.Kind,
        Name = obj.Metadata.Name,
        NamespaceProperty = obj.Metadata.NamespaceProperty,
        Uid = obj.Metadata.Uid,
        ResourceVersion = obj.Metadata.ResourceVersion,
    };

    /// <summary>One Event as recorded; <see cref="Key"/> is what makes two of them the same Event (a repeat bumps the count).</summary>
    sealed record PendingEvent(V1ObjectReference Object, string Type, string Reason, string Message, DateTime At)
    {
        public string Key { get; } = string.Join('\u0000', Object.Uid, Type, Reason, Message);
    }

    /// <summary>Writes one Event, or bumps the count of the same one already written by <paramref name="repeats"/>.</summary>
    async Task SendAsync(PendingEvent e, int repeats, CancellationToken ct)
    {
        // Events of cluster-scoped objects live in "default", as client-go records them.
        var ns = string.IsNullOrEmpty(e.Object.NamespaceProperty) ? "default" : e.Object.NamespaceProperty;
        var key = e.Key;
        var (type, reason, message) = (e.Type, e.Reason, e.Message);
        var now = e.At;
        try
        {
            if (seen.TryGetValue(key, out var existing))
            {
                var count = existing.Count + repeats;
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
                catch (KubeApiException gone) when (gone.IsNotFound)
                {
                    seen.TryRemove(key, out _); // expired by the API server's event TTL: create anew
                }
            }

            var name = $"{e.Object.Name}.{Convert.ToHexString(BitConverter.GetBytes(now.Ticks ^ Random.Shared.NextInt64())).ToLowerInvariant()}";
            var ev = new Corev1Event
            {
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
                InvolvedObject = e.Object,
                Type = type,
                Reason = reason,
                Message = message,
                Count = repeats,
                FirstTimestamp = now,
                LastTimestamp = now,
                Source = new V1EventSource { Component = component, Host = instance },
                ReportingComponent = component,
                ReportingInstance = instance,
            };
            // The response is not read: an Event is written and forgotten.
            await api.SendAsync(HttpMethod.Post, ResourceType.Events.CollectionPath(ns), k8s.KubernetesJson.Serialize(ev), "application/json", ct).ConfigureAwait(false);
            if (seen.Count >= MaxRemembered) seen.Clear();
            seen[key] = (ns, name, repeats);
        }
        catch (Exception failure) when (failure is KubeApiException or HttpRequestException or IOException)
        {
            logger.LogWarning("could not record event {Reason} for {Kind} {Name}: {Error}", reason, e.Object.Kind, e.Object.Name, failure.Message);
        }
    }
}
