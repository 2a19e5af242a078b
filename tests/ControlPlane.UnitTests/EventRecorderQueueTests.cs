using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using k8s;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Events are written by a background sender while it runs: a reconcile does not wait for the POST,
/// no Event is lost, repeats still waiting are folded into one write, and what is queued at shutdown is written.
/// </summary>
public sealed class EventRecorderQueueTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    static V1ConfigMap Obj(string name) => new() { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "ns", Uid = "uid-" + name } };

    /// <summary>Polls <paramref name="condition"/> until it holds or the deadline passes (no fixed sleep between looks).</summary>
    static async Task Until(Func<bool> condition, string what)
    {
        if (!await Task.Run(() => SpinWait.SpinUntil(condition, Deadline))) throw new TimeoutException(what);
    }

    [Fact]
    public async Task WithoutTheSender_AnEventIsWrittenBeforeRecordReturns()
    {
        await using var server = new EventSink();
        using var api = server.Api();
        var recorder = new EventRecorder(api, "test", "test", TimeProvider.System, NullLogger.Instance);
        await recorder.NormalAsync(Obj("a"), "Ready", "ready", CancellationToken.None);
        Assert.Single(server.Posts);
        Assert.Equal(0, recorder.Pending);
    }

    [Fact]
    public async Task WhileTheSenderRuns_RecordDoesNotWaitForThePost_AndTheEventIsWritten()
    {
        await using var server = new EventSink { Held = true };
        using var api = server.Api();
        var recorder = new EventRecorder(api, "test", "test", TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var sender = recorder.RunAsync(stop.Token);

        // The server answers nothing yet: a recorder that waited for the POST would not return.
        var record = recorder.NormalAsync(Obj("a"), "Ready", "Workspace is ready", CancellationToken.None);
        Assert.Same(record, await Task.WhenAny(record, Task.Delay(Deadline)));
        Assert.Equal(1, recorder.Pending);

        server.Release();
        await Until(() => server.Posts.Count == 1 && recorder.Pending == 0, "the event written");
        var ev = server.Posts.Single();
        Assert.Equal(("Ready", "Workspace is ready", "uid-a", 1), ((string?)ev["reason"], (string?)ev["message"], (string?)ev["involvedObject"]?["uid"], (int?)ev["count"]));

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sender);
    }

    [Fact]
    public async Task RepeatsStillWaiting_AreOneWriteWithTheirCount_InTheOrderRecorded()
    {
        await using var server = new EventSink { Held = true };
        using var api = server.Api();
        var recorder = new EventRecorder(api, "test", "test", TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var sender = recorder.RunAsync(stop.Token);

        var obj = Obj("a");
        await recorder.NormalAsync(obj, "Created", "created x", CancellationToken.None);
        // The first is in flight (held by the server); the same object's next Event waits behind it, and its repeats fold in.
        await Until(() => server.Received == 1, "the first event in flight");
        for (var i = 0; i < 3; i++) await recorder.WarningAsync(obj, "QuotaExceeded", "cpu short", CancellationToken.None);
        Assert.Equal(2, recorder.Pending);

        server.Release();
        await Until(() => server.Posts.Count == 2 && recorder.Pending == 0, "both events written");
        Assert.Equal(["Created", "QuotaExceeded"], server.Posts.Select(p => (string?)p["reason"]));
        Assert.Equal(3, (int?)server.Posts[1]["count"]);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sender);
    }

    [Fact]
    public async Task WhatIsQueuedWhenTheTermEnds_IsStillWritten()
    {
        await using var server = new EventSink { Held = true };
        using var api = server.Api();
        var recorder = new EventRecorder(api, "test", "test", TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var sender = recorder.RunAsync(stop.Token);
        await recorder.NormalAsync(Obj("a"), "Ready", "ready", CancellationToken.None);
        await stop.CancelAsync();
        server.Release();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sender);
        Assert.Single(server.Posts);
        Assert.Equal(0, recorder.Pending);

        // After the sender stopped, an Event is written inline again.
        await recorder.NormalAsync(Obj("b"), "Ready", "ready", CancellationToken.None);
        Assert.Equal(2, server.Posts.Count);
    }

    /// <summary>An HTTP/1.1 stand-in for the API server's events endpoint on 127.0.0.1: records each POSTed Event; answers only once released when held.</summary>
    sealed class EventSink : IAsyncDisposable
    {
        readonly TcpListener listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource stop = new();
        readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly ConcurrentQueue<JsonObject> posts = new();
        int received;

        public EventSink()
        {
            listener.Start();
            _ = Task.Run(AcceptAsync);
        }

        public bool Held { get; init; }

        /// <summary>Requests read so far (answered or held).</summary>
        public int Received => Volatile.Read(ref received);

        /// <summary>Events answered, in the order they arrived.</summary>
        public IReadOnlyList<JsonObject> Posts => [.. posts];

        public void Release() => released.TrySetResult();

        public KubeApi Api() => new(new KubernetesClientConfiguration { Host = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}" });

        async Task AcceptAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(stop.Token);
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                    return;
                }

                _ = Task.Run(() => ServeAsync(client));
            }
        }

        async Task ServeAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
                    while (!stop.IsCancellationRequested)
                    {
                        if (await reader.ReadLineAsync(stop.Token) is null) return;
                        var length = 0;
                        string? header;
                        while (!string.IsNullOrEmpty(header = await reader.ReadLineAsync(stop.Token)))
                        {
                            if (header.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(header[15..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                        }

                        var body = new char[length];
                        var read = 0;
                        while (read < length) read += await reader.ReadAsync(body.AsMemory(read), stop.Token);
                        Interlocked.Increment(ref received);
                        if (Held) await released.Task.WaitAsync(stop.Token);
                        posts.Enqueue(JsonNode.Parse(new string(body))!.AsObject());
                        var bytes = Encoding.ASCII.GetBytes("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
                        await stream.WriteAsync(bytes, stop.Token);
                    }
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                }
                catch (IOException)
                {
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
            stop.Dispose();
        }
    }
}
