using System.Collections.Concurrent;
using System.Text.Json;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.LocalEnv;

/// <summary>
/// Plays the kubelet's part for the test environment and `make up`, the way kwok does: there is no
/// kubelet and no scheduler here, so it registers one fake Node, binds every pending pod to it
/// (the binding subresource, as the scheduler would) and reports each bound pod Running and Ready,
/// or crash-looping (restartCount climbing, not ready) when its image is marked bad. It never runs
/// anything. It lives only in the test environment; the operator knows nothing of it.
/// </summary>
public sealed class NodeStandIn : IAsyncDisposable
{
    public const string NodeName = "node-stand-in";

    /// <summary>Images whose name contains this crash-loop unless the test says otherwise (used by `make up`'s sample).</summary>
    public const string CrashLoopMarker = "crashloop";

    static readonly ResourceType Pods = new("", "v1", "pods", "Pod", true);
    static readonly ResourceType Nodes = new("", "v1", "nodes", "Node", false);

    readonly KubeApi api;
    readonly TimeSpan interval;
    readonly CancellationTokenSource stop = new();
    readonly ConcurrentDictionary<string, byte> badImages = new(StringComparer.Ordinal);
    // When each crash-looping pod last "restarted", so restarts climb at a steady pace.
    readonly ConcurrentDictionary<string, DateTime> lastRestart = new(StringComparer.Ordinal);
    Task? loop;

    NodeStandIn(KubeApi api, TimeSpan interval)
    {
        this.api = api;
        this.interval = interval;
    }

    /// <summary>How often a crash-looping container restarts.</summary>
    public TimeSpan RestartEvery { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Pods this stand-in bound so far (diagnostics).</summary>
    public int Bound { get; private set; }

    /// <summary>Registers the Node and starts reporting; the stand-in owns <paramref name="api"/> from then on.</summary>
    public static async Task<NodeStandIn> StartAsync(KubeApi api, TimeSpan? interval = null, CancellationToken ct = default)
    {
        var standIn = new NodeStandIn(api, interval ?? TimeSpan.FromMilliseconds(250));
        await standIn.RegisterNodeAsync(ct);
        standIn.loop = Task.Run(() => standIn.RunAsync(standIn.stop.Token), CancellationToken.None);
        return standIn;
    }

    /// <summary>Marks an image bad: its containers crash-loop from now on.</summary>
    public void MarkBad(string image) => badImages[image] = 1;

    public bool IsBad(string image) => badImages.ContainsKey(image) || image.Contains(CrashLoopMarker, StringComparison.Ordinal);

    async Task RegisterNodeAsync(CancellationToken ct)
    {
        if (await api.TryGetAsync<V1Node>(Nodes, null, NodeName, ct) is null)
        {
            await api.CreateAsync(Nodes, null, new V1Node
            {
                ApiVersion = "v1", Kind = "Node",
                Metadata = new V1ObjectMeta { Name = NodeName, Labels = new Dictionary<string, string> { ["type"] = "stand-in", ["kubernetes.io/hostname"] = NodeName } },
            }, ct);
        }

        var status = new
        {
            status = new
            {
                conditions = new[] { new { type = "Ready", status = "True", reason = "StandInReady", message = "node stand-in (no kubelet: pods are reported, never run)", lastHeartbeatTime = DateTime.UtcNow, lastTransitionTime = DateTime.UtcNow } },
                capacity = new Dictionary<string, string> { ["cpu"] = "64", ["memory"] = "256Gi", ["pods"] = "1000" },
                allocatable = new Dictionary<string, string> { ["cpu"] = "64", ["memory"] = "256Gi", ["pods"] = "1000" },
            },
        };
        await api.PatchAsync<V1Node>(Nodes, null, NodeName, JsonSerializer.Serialize(status), PatchTypes.Merge, ct, "status");
    }

    async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await PassAsync(ct);
                }
                catch (Exception e) when (e is KubeApiException or HttpRequestException or TimeoutException or TaskCanceledException && !ct.IsCancellationRequested)
                {
                    // The API server may be stopped by a test; the next tick tries again.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task PassAsync(CancellationToken ct)
    {
        string? next = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        do
        {
            var page = await api.ListAsync<V1Pod>(Pods, null, null, 500, next, ct);
            foreach (var pod in page.Items)
            {
                var key = $"{pod.Metadata.NamespaceProperty}/{pod.Metadata.Name}";
                seen.Add(key);
                if (pod.Metadata.DeletionTimestamp is not null) continue;
                try
                {
                    if (string.IsNullOrEmpty(pod.Spec.NodeName))
                    {
                        await BindAsync(pod, ct);
                        continue; // reported on the next pass, as a kubelet sees it after the bind
                    }

                    if (pod.Spec.NodeName == NodeName) await ReportAsync(pod, key, ct);
                }
                catch (KubeApiException e) when (e.IsNotFound || e.IsConflict)
                {
                    // deleted or bound meanwhile
                }
            }

            next = page.Continue;
        }
        while (!string.IsNullOrEmpty(next));

        foreach (var gone in lastRestart.Keys.Where(k => !seen.Contains(k)).ToList()) lastRestart.TryRemove(gone, out _);
    }

    async Task BindAsync(V1Pod pod, CancellationToken ct)
    {
        var binding = new V1Binding
        {
            ApiVersion = "v1", Kind = "Binding",
            Metadata = new V1ObjectMeta { Name = pod.Metadata.Name, NamespaceProperty = pod.Metadata.NamespaceProperty },
            Target = new V1ObjectReference { ApiVersion = "v1", Kind = "Node", Name = NodeName },
        };
        await api.SendAsync(HttpMethod.Post, Pods.ItemPath(pod.Metadata.NamespaceProperty, pod.Metadata.Name, "binding"),
            KubernetesJson.Serialize(binding), "application/json", ct);
        Bound++;
    }

    async Task ReportAsync(V1Pod pod, string key, CancellationToken ct)
    {
        var now = DateTime.UtcNow;
        var crashing = pod.Spec.Containers.Where(c => IsBad(c.Image)).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var ready = crashing.Count == 0;
        var previous = pod.Status?.ContainerStatuses?.ToDictionary(c => c.Name, StringComparer.Ordinal) ?? [];
        var restartDue = !ready && (!lastRestart.TryGetValue(key, out var last) || now - last >= RestartEvery);
        var alreadyReported = pod.Status?.Phase == "Running"
                              && pod.Spec.Containers.All(c => previous.TryGetValue(c.Name, out var s) && s.Image == c.Image && s.Ready == !crashing.Contains(c.Name))
                              && pod.Status.Conditions?.Any(c => c.Type == "Ready" && c.Status == (ready ? "True" : "False")) == true;
        if (alreadyReported && !restartDue) return;
        if (restartDue) lastRestart[key] = now;

        var containers = pod.Spec.Containers.Select(c =>
        {
            var restarts = previous.TryGetValue(c.Name, out var s) ? s.RestartCount : 0;
            var crash = crashing.Contains(c.Name);
            var restarted = crash && restartDue && previous.ContainsKey(c.Name);
            if (restarted) restarts++;
            // As a kubelet reports it: when the last crash ended (what a rollback's latency is measured from).
            var finishedAt = restarted ? now : s?.LastState?.Terminated?.FinishedAt;
            return new
            {
                lastState = finishedAt is { } at ? new { terminated = new { exitCode = 1, reason = "Error", finishedAt = at } } : null,
                name = c.Name,
                image = c.Image,
                imageID = "stand-in://" + c.Image,
                ready = !crash,
                started = !crash,
                restartCount = restarts,
                state = crash
                    ? (object)new { waiting = new { reason = "CrashLoopBackOff", message = $"back-off restarting failed container {c.Name} (image marked bad for the node stand-in)" } }
                    : new { running = new { startedAt = s?.State?.Running?.StartedAt ?? now } },
            };
        }).ToList();
        string Flag(bool b) => b ? "True" : "False";
        var patch = new
        {
            status = new
            {
                phase = "Running",
                hostIP = "127.0.0.1",
                podIP = "127.0.0.1",
                startTime = pod.Status?.StartTime ?? now,
                conditions = new[]
                {
                    new { type = "Initialized", status = "True", lastTransitionTime = now },
                    new { type = "PodScheduled", status = "True", lastTransitionTime = now },
                    new { type = "ContainersReady", status = Flag(ready), lastTransitionTime = now },
                    new { type = "Ready", status = Flag(ready), lastTransitionTime = now },
                },
                containerStatuses = containers,
            },
        };
        await api.PatchAsync<V1Pod>(Pods, pod.Metadata.NamespaceProperty, pod.Metadata.Name, JsonSerializer.Serialize(patch), PatchTypes.Merge, ct, "status");
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        if (loop is not null)
        {
            try
            {
                await loop.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
            }
        }

        stop.Dispose();
        api.Dispose();
    }
}
