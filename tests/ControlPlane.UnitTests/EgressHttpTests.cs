using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 26, egress safety at connect time, against a real listener on 127.0.0.1 (no server of the test
/// environment): the address a name resolves to when the connection is opened is what the policy judges.
/// </summary>
public sealed class EgressHttpTests : IAsyncLifetime
{
    static readonly EgressHttpOptions Limits = new() { ConnectTimeout = TimeSpan.FromSeconds(10), RequestTimeout = TimeSpan.FromSeconds(30), MaxResponseBodyBytes = 1024 };

    readonly TinyHttpServer server = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => server.DisposeAsync().AsTask();

    static EgressPolicy Policy(bool loopback) => new() { AllowLoopback = loopback };

    static Task<EgressResponse> Get(HttpClient http, string url, EgressHttpOptions? limits = null) =>
        EgressHttp.SendAsync(http, new HttpRequestMessage(HttpMethod.Get, url), limits ?? Limits, CancellationToken.None);

    [Fact]
    public async Task Loopback_IsRefusedAtConnect_UnlessAllowed()
    {
        using (var refused = EgressHttp.CreateClient(Policy(loopback: false), Limits))
        {
            var e = await Assert.ThrowsAsync<EgressRefusedException>(() => Get(refused, server.Url("/hook")));
            Assert.Equal(IPAddress.Loopback, e.Address);
            Assert.Contains("loopback", e.Message, StringComparison.Ordinal);
        }

        Assert.Empty(server.Requests);

        using var allowed = EgressHttp.CreateClient(Policy(loopback: true), Limits);
        var response = await Get(allowed, server.Url("/hook"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", Encoding.UTF8.GetString(response.Body.Span));
        Assert.Equal(["GET /hook"], server.Requests);
    }

    [Fact]
    public async Task AName_ResolvingToAForbiddenAddressWhenConnecting_IsRefused_DnsRebinding()
    {
        // Admission saw a name; at connect time it resolves to loopback, then to the metadata address.
        var answers = new ConcurrentQueue<IPAddress[]>([[IPAddress.Loopback], [IPAddress.Parse("169.254.169.254")], [IPAddress.Parse("93.184.216.34"), IPAddress.Loopback]]);
        EgressHttp.Resolver rebinding = (_, _) => Task.FromResult(answers.TryDequeue(out var a) ? a : []);
        using var http = EgressHttp.CreateClient(Policy(loopback: false), Limits, rebinding);
        var url = $"http://receiver.example.com:{server.Port}/hook";

        Assert.Contains("loopback", (await Assert.ThrowsAsync<EgressRefusedException>(() => Get(http, url))).Reason, StringComparison.Ordinal);
        Assert.Contains("link-local", (await Assert.ThrowsAsync<EgressRefusedException>(() => Get(http, url))).Reason, StringComparison.Ordinal);
        // One public record does not carry a forbidden one through.
        Assert.Equal(IPAddress.Loopback, (await Assert.ThrowsAsync<EgressRefusedException>(() => Get(http, url))).Address);
        Assert.Empty(server.Requests);

        // The same name, resolved where the policy allows: the connection goes to the address that was checked.
        EgressHttp.Resolver toLoopback = (_, _) => Task.FromResult(new[] { IPAddress.Loopback });
        using var allowed = EgressHttp.CreateClient(Policy(loopback: true), Limits, toLoopback);
        Assert.Equal(HttpStatusCode.OK, (await Get(allowed, url)).StatusCode);
    }

    [Fact]
    public async Task ARedirect_IsAnAnswer_ItsTargetIsNeverCalled()
    {
        server.Answer("/start", "HTTP/1.1 302 Found\r\nLocation: /target\r\nContent-Length: 0\r\n\r\n");
        using var http = EgressHttp.CreateClient(Policy(loopback: true), Limits);
        var response = await Get(http, server.Url("/start"));
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.False(response.IsSuccess);
        Assert.Equal("/target", response.Location?.OriginalString);
        Assert.Equal(["GET /start"], server.Requests);
    }

    [Fact]
    public async Task TheBody_IsReadOnlyUpToTheLimit()
    {
        server.Answer("/big", "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + new string('x', 1_000_000));
        server.Answer("/exact", "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + new string('y', 1024));
        using var http = EgressHttp.CreateClient(Policy(loopback: true), Limits);
        var big = await Get(http, server.Url("/big"));
        Assert.Equal(1024, big.Body.Length);
        Assert.True(big.Truncated);
        var exact = await Get(http, server.Url("/exact"));
        Assert.Equal(1024, exact.Body.Length);
        Assert.False(exact.Truncated);
    }

    [Fact]
    public async Task AReceiverThatNeverAnswers_TimesOut()
    {
        server.Answer("/hang", null);
        using var http = EgressHttp.CreateClient(Policy(loopback: true), Limits);
        var quick = Limits with { RequestTimeout = TimeSpan.FromSeconds(1) };
        var e = await Assert.ThrowsAsync<TimeoutException>(() => Get(http, server.Url("/hang"), quick));
        Assert.Contains("00:00:01", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cookies_AreNeverSentBack()
    {
        server.Answer("/cookie", "HTTP/1.1 200 OK\r\nSet-Cookie: session=abc\r\nContent-Length: 0\r\n\r\n");
        using var http = EgressHttp.CreateClient(Policy(loopback: true), Limits);
        await Get(http, server.Url("/cookie"));
        await Get(http, server.Url("/cookie"));
        Assert.DoesNotContain(server.Headers, h => h.StartsWith("cookie:", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task ThroughAProxy_TheTargetsAddresses_AreCheckedBeforeTheRequest()
    {
        // The proxy would connect on the operator's behalf: without a check of the target, a name resolving to the
        // metadata address would be fetched through it. The proxy here is never reached (nothing listens there).
        EgressHttp.Resolver toMetadata = (_, _) => Task.FromResult(new[] { IPAddress.Parse("169.254.169.254") });
        using var http = EgressHttp.CreateClient(Policy(loopback: true), Limits with { Proxy = new Uri("http://127.0.0.1:9") }, toMetadata);
        var refused = await Assert.ThrowsAsync<EgressRefusedException>(() => Get(http, "https://hooks.example.com/hook"));
        Assert.Contains("link-local", refused.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void TheHandler_FollowsNoRedirect_KeepsNoCookie_AndTakesNoProxyFromTheEnvironment()
    {
        using var handler = EgressHttp.CreateHandler(new EgressPolicy(), Limits);
        Assert.False(handler.AllowAutoRedirect);
        Assert.False(handler.UseCookies);
        Assert.False(handler.UseProxy);
        Assert.Null(handler.Proxy);
        Assert.Equal(DecompressionMethods.None, handler.AutomaticDecompression);
        Assert.Equal(Limits.ConnectTimeout, handler.ConnectTimeout);

        using var proxied = EgressHttp.CreateHandler(new EgressPolicy(), Limits with { Proxy = new Uri("http://proxy.platform.svc:3128") });
        Assert.True(proxied.UseProxy);
        Assert.NotNull(proxied.Proxy);
    }

    [Fact]
    public void TheNotificationOptions_GiveTheLimits_AndABadProxyIsAConfigurationError()
    {
        var limits = EgressHttpOptions.ForNotifications(new ControlPlaneOptions { NotificationConnectTimeout = TimeSpan.FromSeconds(2), NotificationRequestTimeout = TimeSpan.FromSeconds(7) });
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(7), null), (limits.ConnectTimeout, limits.RequestTimeout, limits.Proxy));
        Assert.Throws<MissingConfigurationException>(() => EgressHttpOptions.ForNotifications(new ControlPlaneOptions { NotificationProxy = "socks5://proxy:1080" }));
        Assert.Throws<MissingConfigurationException>(() => EgressHttpOptions.ForNotifications(new ControlPlaneOptions { NotificationProxy = "http://user:pw@proxy:3128" }));
    }

    /// <summary>
    /// An HTTP/1.1 responder on 127.0.0.1 (a free port): records each request line and header, answers a path with
    /// its raw configured response (null: never answers), "ok" otherwise.
    /// </summary>
    sealed class TinyHttpServer : IAsyncDisposable
    {
        readonly TcpListener listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource stop = new();
        readonly ConcurrentDictionary<string, string?> answers = new();
        readonly ConcurrentQueue<string> requests = new();
        readonly ConcurrentQueue<string> headers = new();
        readonly Task loop;

        public TinyHttpServer()
        {
            listener.Start();
            loop = Task.Run(AcceptAsync);
        }

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public IReadOnlyList<string> Requests => [.. requests];

        public IReadOnlyList<string> Headers => [.. headers];

        public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

        public void Answer(string path, string? raw) => answers[path] = raw;

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
                    using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
                    while (!stop.IsCancellationRequested)
                    {
                        var line = await reader.ReadLineAsync(stop.Token);
                        if (line is null) return;
                        var parts = line.Split(' ');
                        requests.Enqueue($"{parts[0]} {parts[1]}");
                        string? header;
                        while (!string.IsNullOrEmpty(header = await reader.ReadLineAsync(stop.Token))) headers.Enqueue(header);
                        if (!answers.TryGetValue(parts[1], out var raw)) raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if (raw is null)
                        {
                            await Task.Delay(Timeout.Infinite, stop.Token);
                            return;
                        }

                        var bytes = Encoding.ASCII.GetBytes(raw);
                        await stream.WriteAsync(bytes, stop.Token);
                    }
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                }
                catch (IOException)
                {
                    // The client dropped the connection (a truncated body): nothing to answer.
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
            await loop;
            stop.Dispose();
        }
    }
}
