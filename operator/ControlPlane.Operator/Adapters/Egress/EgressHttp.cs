using System.Net;
using System.Net.Sockets;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Adapters;

/// <summary>Limits of an egress client: how long to connect, how long a whole exchange, how much of an answer is read.</summary>
public sealed record EgressHttpOptions
{
    /// <summary>DNS resolution and the TCP (and TLS) connect.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The whole exchange: connect, send, the answer's headers and its bounded body.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>At most this much of an answer's body is read; the rest is never buffered (the connection is dropped).</summary>
    public int MaxResponseBodyBytes { get; init; } = 64 * 1024;

    /// <summary>A platform proxy every request goes through; null: direct, and never a proxy from the environment.</summary>
    public Uri? Proxy { get; init; }

    public static EgressHttpOptions ForNotifications(ControlPlaneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Uri? proxy = null;
        if (!string.IsNullOrWhiteSpace(options.NotificationProxy)
            && (!Uri.TryCreate(options.NotificationProxy, UriKind.Absolute, out proxy) || proxy.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(proxy.UserInfo)))
        {
            throw new MissingConfigurationException("ControlPlane:NotificationProxy is not an http(s) URL without user info");
        }

        return new EgressHttpOptions { ConnectTimeout = options.NotificationConnectTimeout, RequestTimeout = options.NotificationRequestTimeout, Proxy = proxy };
    }
}

/// <summary>An answer read within the limits: the status, at most MaxResponseBodyBytes of the body, and whether there was more.</summary>
public sealed record EgressResponse(HttpStatusCode StatusCode, ReadOnlyMemory<byte> Body, bool Truncated, Uri? Location)
{
    public bool IsSuccess => (int)StatusCode is >= 200 and < 300;
}

/// <summary>
/// A connection the egress policy refused at connect time: the host resolved to (or is) an address of a class the
/// policy does not allow. Names the host, port and address, never the URL's path or query (they can be credentials).
/// </summary>
public sealed class EgressRefusedException(string host, int port, IPAddress address, string reason)
    : Exception($"egress to {host}:{port} refused: {reason}")
{
    public string Host { get; } = host;

    public int Port { get; } = port;

    public IPAddress Address { get; } = address;

    /// <summary>Why: the address and its class, and the setting that would allow it if any.</summary>
    public string Reason { get; } = reason;
}

/// <summary>
/// HTTP clients for calls to URLs a tenant wrote. <see cref="EgressRules.Check"/> decides on the URL at admission and
/// before each call; this handler decides again on every address at connect time (its ConnectCallback resolves the
/// host itself and connects to the address it checked), so a name that later resolves to loopback, a private or the
/// metadata address (DNS rebinding) reaches nothing. No redirects (a 3xx is an answer, its target never called), no
/// cookies, no credentials, no decompression, no proxy from the environment, bounded connect and total time and a
/// bounded body read.
/// </summary>
public static class EgressHttp
{
    /// <summary>Resolves a host name to addresses (tests substitute one to play DNS rebinding).</summary>
    public delegate Task<IPAddress[]> Resolver(string host, CancellationToken cancellationToken);

    static readonly Resolver SystemDns = Dns.GetHostAddressesAsync;

    /// <summary>The handler: pool it (one per policy), it is thread-safe.</summary>
    public static SocketsHttpHandler CreateHandler(EgressPolicy policy, EgressHttpOptions options, Resolver? resolve = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ConnectTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "ConnectTimeout must be positive");
        if (options.RequestTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "RequestTimeout must be positive");
        if (options.MaxResponseBodyBytes <= 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxResponseBodyBytes must be positive");
        var dns = resolve ?? SystemDns;
        var proxy = options.Proxy;
        return new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            Credentials = null,
            PreAuthenticate = false,
            // Explicitly: UseProxy true with Proxy null would take HTTP(S)_PROXY from the environment.
            UseProxy = proxy is not null,
            Proxy = proxy is null ? null : new WebProxy(proxy),
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = options.ConnectTimeout,
            MaxResponseHeadersLength = 16, // KiB
            MaxResponseDrainSize = 0, // a refused or truncated answer is dropped with its connection, not read to the end
            // Pooled connections stay on the address checked when they were opened; a short life bounds how long a
            // connection outlives a DNS change that the policy would now refuse (it would be refused on reconnect).
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectCallback = (context, cancellationToken) => ConnectAsync(context.DnsEndPoint, policy, proxy, dns, cancellationToken),
        };
    }

    /// <summary>A client over <see cref="CreateHandler"/>; send with <see cref="SendAsync"/> for the total timeout and the bounded read.</summary>
    public static HttpClient CreateClient(EgressPolicy policy, EgressHttpOptions options, Resolver? resolve = null) =>
        new(options.Proxy is null ? CreateHandler(policy, options, resolve)
            : new ProxiedTargetCheck(policy, resolve ?? SystemDns) { InnerHandler = CreateHandler(policy, options, resolve) }, disposeHandler: true)
        {
            // SendAsync applies the timeout itself (telling it apart from the caller's cancellation); this is a backstop.
            Timeout = options.RequestTimeout + options.RequestTimeout,
            MaxResponseContentBufferSize = options.MaxResponseBodyBytes,
        };

    /// <summary>
    /// Sends <paramref name="request"/> and reads at most <see cref="EgressHttpOptions.MaxResponseBodyBytes"/> of the answer,
    /// all within <see cref="EgressHttpOptions.RequestTimeout"/>. Throws <see cref="EgressRefusedException"/> when the
    /// policy refused the connection, <see cref="TimeoutException"/> past the timeout, <see cref="HttpRequestException"/>
    /// when the receiver could not be reached; <see cref="OperationCanceledException"/> only for the caller's token.
    /// </summary>
    public static async Task<EgressResponse> SendAsync(HttpClient http, HttpRequestMessage request, EgressHttpOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(options);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            var buffer = new byte[options.MaxResponseBodyBytes];
            var read = 0;
            while (read < buffer.Length)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), timeout.Token).ConfigureAwait(false);
                if (n == 0) break;
                read += n;
            }

            // One byte more tells a body of exactly the limit from a longer one; nothing past it is read.
            var truncated = read == buffer.Length && await stream.ReadAsync(new byte[1], timeout.Token).ConfigureAwait(false) > 0;
            return new EgressResponse(response.StatusCode, buffer.AsMemory(0, read), truncated, response.Headers.Location);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no complete answer from {request.RequestUri?.GetLeftPart(UriPartial.Authority)} within {options.RequestTimeout}");
        }
        catch (HttpRequestException e) when (RefusalOf(e) is { } refused)
        {
            // Unwrapped, so a caller tells "the policy said no" (not retried) from "unreachable" (retried).
            throw refused;
        }
    }

    /// <summary>
    /// Through a proxy the connection goes to the proxy, so the connect-time check never sees the target: the target's
    /// addresses are resolved and checked before each request instead. The proxy resolves the name again (a rebinding
    /// window between the two lookups that only the proxy's own egress rules close: docs/operations.md says so).
    /// </summary>
    sealed class ProxiedTargetCheck(EgressPolicy policy, Resolver resolve) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri ?? throw new InvalidOperationException("a request without a URI");
            var host = uri.IdnHost.Trim('[', ']');
            var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await resolve(host, cancellationToken).ConfigureAwait(false);
            foreach (var address in addresses)
            {
                if (EgressRules.AddressRefusal(address, policy) is { } why) throw new EgressRefusedException(uri.Host, uri.Port, address, why);
            }

            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The egress refusal somewhere in <paramref name="e"/>'s inner exceptions, if any.</summary>
    public static EgressRefusedException? RefusalOf(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is EgressRefusedException refused) return refused;
        }

        return null;
    }

    static async ValueTask<Stream> ConnectAsync(DnsEndPoint endpoint, EgressPolicy policy, Uri? proxy, Resolver resolve, CancellationToken cancellationToken)
    {
        var host = endpoint.Host.Trim('[', ']');
        // The platform's own proxy is configuration, not a tenant's choice (it usually sits at a private address).
        var isProxy = proxy is not null && string.Equals(host, proxy.IdnHost.Trim('[', ']'), StringComparison.OrdinalIgnoreCase) && endpoint.Port == proxy.Port;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await resolve(host, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
        if (!isProxy)
        {
            // Any forbidden answer refuses the name: mixing a public and a private record must not win by ordering.
            foreach (var address in addresses)
            {
                if (EgressRules.AddressRefusal(address, policy) is { } why) throw new EgressRefusedException(endpoint.Host, endpoint.Port, address, why);
            }
        }

        Exception? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                // The checked address itself: the name is not resolved again between the check and the connect.
                await socket.ConnectAsync(new IPEndPoint(address, endpoint.Port), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last!;
    }
}
