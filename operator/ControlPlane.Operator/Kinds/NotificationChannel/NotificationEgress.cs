using System.Net;
using System.Net.Sockets;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Where a channel may send: the one seam between notifications and the egress rules. A tenant channel's URL
/// must be under ControlPlane:Notifications:UrlPrefixes and never reach a private, loopback or link-local
/// address; a platform channel may reach private addresses only when ControlPlane:Notifications:AllowPrivateAddresses
/// is set. The same rule is applied at admission (the URL as written) and at connect time (every resolved
/// address, so DNS rebinding cannot steer a delivery inside).
/// </summary>
public sealed class NotificationEgress(NotificationOptions options)
{
    /// <summary>Why a channel of <paramref name="reach"/> may not send to <paramref name="url"/>, or null.</summary>
    public string? UrlProblem(string url, ChannelReach reach)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")) return "not an absolute http(s) URL";
        if (!string.IsNullOrEmpty(uri.UserInfo)) return "credentials in the URL are refused: use spec.urlSecretRef";
        if (reach != ChannelReach.Platform)
        {
            if (uri.Scheme != "https") return "a tenant channel sends over https only";
            if (!UrlPrefixes.Allows(url, options.UrlPrefixes))
            {
                return $"not under ControlPlane:Notifications:UrlPrefixes ({(options.UrlPrefixes.Count == 0 ? "none configured" : string.Join(", ", options.UrlPrefixes))})";
            }
        }

        if (IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var ip) && Forbidden(ip, reach) is { } why) return $"{why} addresses are refused";
        if (uri.IdnHost.Equals("localhost", StringComparison.OrdinalIgnoreCase) && !AllowsPrivate(reach)) return "loopback addresses are refused";
        return null;
    }

    bool AllowsPrivate(ChannelReach reach) => reach == ChannelReach.Platform && options.AllowPrivateAddresses;

    /// <summary>The address class that makes <paramref name="ip"/> unreachable for a channel of <paramref name="reach"/>, or null.</summary>
    public string? Forbidden(IPAddress ip, ChannelReach reach)
    {
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        var cls = AddressClass(ip);
        return cls is null || AllowsPrivate(reach) ? null : cls;
    }

    /// <summary>loopback, private, link-local (169.254.0.0/16, the cloud metadata address among them), unique-local, unspecified, or null for a public address.</summary>
    public static string? AddressClass(IPAddress ip)
    {
        if (IPAddress.IsLoopback(ip)) return "loopback";
        if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)) return "unspecified";
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = ip.GetAddressBytes();
            if (b[0] == 10 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127)) return "private";
            if (b[0] == 169 && b[1] == 254) return "link-local";
            if (b[0] == 0 || b[0] >= 224) return "reserved";
            return null;
        }

        if (ip.IsIPv6LinkLocal || ip.IsIPv6SiteLocal) return "link-local";
        if ((ip.GetAddressBytes()[0] & 0xfe) == 0xfc) return "unique-local";
        if (ip.IsIPv6Multicast) return "reserved";
        return null;
    }

    /// <summary>
    /// One connection pool per reach: no redirects (a receiver cannot bounce a signed delivery elsewhere), every
    /// resolved address checked when connecting, bounded connect time.
    /// </summary>
    public SocketsHttpHandler Handler(ChannelReach reach) => new()
    {
        AllowAutoRedirect = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = options.Timeout,
        MaxResponseHeadersLength = 64,
        ConnectCallback = async (context, ct) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct).ConfigureAwait(false);
            var allowed = addresses.Where(a => Forbidden(a, reach) is null).ToArray();
            if (allowed.Length == 0 || allowed.Length != addresses.Length)
            {
                throw new HttpRequestException($"{context.DnsEndPoint.Host} resolves to an address a {reach.ToString().ToLowerInvariant()} channel may not reach");
            }

            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, ct).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}
