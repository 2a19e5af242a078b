using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Tests;

/// <summary>One request the receiver got: the event id header, the parsed body, which of its secrets verified the signature, and what it answered.</summary>
public sealed record ReceivedDelivery(string EventId, string EventType, JsonNode? Body, IReadOnlyList<string> VerifiedWith, int Answered, DateTime At);

/// <summary>
/// A webhook receiver on 127.0.0.1 that checks signatures as docs/notifications.md tells a receiver to (its own HMAC-SHA256
/// over "t.body", compared in constant time, t within a 5 minute window), written here independently of the operator's code.
/// It answers <see cref="Status"/> (settable: an endpoint that is down answers 503), optionally after <see cref="Hold"/>.
/// </summary>
public sealed class NotificationReceiver : IAsyncDisposable
{
    readonly WebApplication app;
    readonly Lock gate = new();
    readonly List<ReceivedDelivery> received = [];

    NotificationReceiver(WebApplication app, Uri url)
    {
        this.app = app;
        Url = url;
    }

    public Uri Url { get; }

    /// <summary>The secrets a signature may verify with (a receiver during rotation holds either).</summary>
    public IReadOnlyList<string> Secrets { get; set; } = [];

    public int Status { get; set; } = 200;

    public TimeSpan Hold { get; set; } = TimeSpan.Zero;

    int inFlight;

    /// <summary>Requests received and not yet answered (held): what a sender killed now has sent without learning the answer.</summary>
    public int InFlight => Volatile.Read(ref inFlight);

    public IReadOnlyList<ReceivedDelivery> Received
    {
        get { lock (gate) return [.. received]; }
    }

    /// <summary>Deliveries answered 2xx, in arrival order.</summary>
    public IReadOnlyList<ReceivedDelivery> Accepted => [.. Received.Where(r => r.Answered is >= 200 and < 300)];

    public static async Task<NotificationReceiver> StartAsync(params string[] secrets)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        NotificationReceiver? receiver = null;
        app.Run(ctx => receiver!.HandleAsync(ctx));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        receiver = new NotificationReceiver(app, new Uri(address.TrimEnd('/') + "/hooks/controlplane")) { Secrets = secrets };
        return receiver;
    }

    async Task HandleAsync(HttpContext ctx)
    {
        Interlocked.Increment(ref inFlight);
        try
        {
            await RecordAsync(ctx);
        }
        finally
        {
            Interlocked.Decrement(ref inFlight);
        }
    }

    async Task RecordAsync(HttpContext ctx)
    {
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var header = ctx.Request.Headers["X-ControlPlane-Signature"].ToString();
        var verified = Secrets.Where(s => Verifies(header, body, s)).ToList();
        if (Hold > TimeSpan.Zero) await Task.Delay(Hold);
        var status = Status;
        JsonNode? parsed;
        try
        {
            parsed = JsonNode.Parse(body);
        }
        catch (System.Text.Json.JsonException)
        {
            parsed = null;
        }

        // Answered only once the delivery is recorded: what the operator counts as delivered, the receiver has.
        lock (gate)
        {
            received.Add(new ReceivedDelivery(ctx.Request.Headers["Idempotency-Key"].ToString(), ctx.Request.Headers["X-ControlPlane-Event-Type"].ToString(), parsed, verified, status,
                DateTime.UtcNow));
        }

        ctx.Response.StatusCode = status;
    }

    /// <summary>The documented check: t=&lt;unix&gt;,v1=&lt;hex&gt;[,v1=...]; any v1 equal to HMAC-SHA256(secret, t + "." + body) and t within 5 minutes.</summary>
    public static bool Verifies(string header, byte[] body, string secret)
    {
        string? t = null;
        var v1 = new List<string>();
        foreach (var part in header.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2) continue;
            if (kv[0] == "t") t = kv[1];
            else if (kv[0] == "v1") v1.Add(kv[1]);
        }

        if (t is null || !long.TryParse(t, out var unix) || Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - unix) > 300) return false;
        var expected = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), (byte[])[.. Encoding.UTF8.GetBytes(t + "."), .. body])));
        return v1.Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), expected));
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
