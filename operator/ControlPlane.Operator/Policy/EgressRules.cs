using System.Net;
using System.Net.Sockets;
using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Where the operator may send a request whose URL a tenant wrote (a notification channel's endpoint): the
/// platform's lists, and which address classes are reachable. The same record decides at admission (the URL) and
/// at connect time (every address the host resolves to, Adapters/Egress/EgressHttp), so a name that resolves to a
/// public address when admitted and to 169.254.169.254 later is still refused.
/// </summary>
public sealed record EgressPolicy
{
    /// <summary>URL prefixes (scheme, host, port, path at a segment boundary: <see cref="Configuration.UrlPrefixes"/>) a URL may be under.</summary>
    public IReadOnlyList<string> UrlPrefixes { get; init; } = [];

    /// <summary>Hosts a URL may name, on any path: "host", "host:port", "*.domain" (any subdomain, not the domain itself); without a port only the scheme's default port.</summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>Whether RFC 1918, CGNAT (100.64/10) and unique-local (fc00::/7) addresses may be reached (an in-cluster receiver).</summary>
    public bool AllowPrivateAddresses { get; init; }

    /// <summary>Whether loopback may be reached, and then over plain http too: tests and local runs only (the operator's own ports are there).</summary>
    public bool AllowLoopback { get; init; }

    /// <summary>Prefix of the configuration keys named in refusals (e.g. "ControlPlane:Notification" + "UrlPrefixes").</summary>
    public string OptionPrefix { get; init; } = "ControlPlane:Notification";

    /// <summary>The policy of notification channels, from ControlPlane:Notification* options.</summary>
    public static EgressPolicy ForNotifications(ControlPlaneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new EgressPolicy
        {
            UrlPrefixes = [.. options.NotificationUrlPrefixes],
            AllowedHosts = [.. options.NotificationAllowedHosts],
            AllowPrivateAddresses = options.NotificationAllowPrivateAddresses,
            AllowLoopback = options.NotificationAllowLoopback,
        };
    }
}

/// <summary>What an address is, for egress: only <see cref="Public"/> is reachable without a setting.</summary>
public enum AddressClass
{
    Public,
    Loopback,
    /// <summary>RFC 1918 (10/8, 172.16/12, 192.168/16), IPv6 site-local fec0::/10, local-use NAT64 64:ff9b:1::/48.</summary>
    Private,
    /// <summary>Carrier-grade NAT shared space 100.64.0.0/10 (RFC 6598): often a cluster's pod or service range.</summary>
    SharedCgnat,
    /// <summary>169.254/16 (incl. the cloud metadata address 169.254.169.254) and fe80::/10: never reachable.</summary>
    LinkLocal,
    /// <summary>fc00::/7 (incl. AWS's IPv6 metadata address fd00:ec2::254).</summary>
    UniqueLocal,
    /// <summary>0.0.0.0/8 and ::: on Linux a connect to these reaches the local host.</summary>
    Unspecified,
    Multicast,
    Broadcast,
    /// <summary>Documentation, benchmarking, future-use and other special-purpose ranges; no receiver lives there.</summary>
    Reserved,
}

/// <summary>An egress decision: the parsed target when allowed, else why not (naming the field and the setting).</summary>
public sealed record EgressDecision(Uri? Target, string? Refusal)
{
    public bool Allowed => Refusal is null;

    public static EgressDecision Allow(Uri target) => new(target, null);

    public static EgressDecision Refuse(string refusal) => new(null, refusal);
}

/// <summary>
/// Pure egress rules: a tenant's URL is allowed only over https (plain http only to loopback, and only where
/// loopback is allowed), without user info, under a platform prefix or allowed host, and, when its host is an
/// address literal (in any notation the URL parser accepts), of a class the policy allows. Refusals name the
/// scheme, host and port only: a channel URL's path and query can be a credential (Slack, PagerDuty).
/// </summary>
public static class EgressRules
{
    public const int MaxUrlLength = 2048;

    /// <summary>The decision for <paramref name="url"/>, the value of <paramref name="field"/> (e.g. "spec.url").</summary>
    public static EgressDecision Check(string field, string? url, EgressPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (string.IsNullOrWhiteSpace(url)) return EgressDecision.Refuse($"{field}: a URL is required");
        if (url.Length > MaxUrlLength) return EgressDecision.Refuse($"{field}: the URL is longer than {MaxUrlLength} characters");
        // Whitespace and control characters are stripped or re-encoded by parsers differently; a backslash is a
        // slash to some and not to others. Either makes the URL mean two things.
        if (url.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c == '\\'))
            return EgressDecision.Refuse($"{field}: the URL contains whitespace, a control character or a backslash");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var target) || target.HostNameType == UriHostNameType.Unknown || string.IsNullOrEmpty(target.Host))
            return EgressDecision.Refuse($"{field}: not an absolute URL with a host");
        var origin = Origin(target);
        if (!string.IsNullOrEmpty(target.UserInfo))
            return EgressDecision.Refuse($"{field}: the URL must not carry user info (user:password@): credentials come from a Secret, never from the URL");

        var loopbackHost = IsLoopbackHost(target);
        if (target.Scheme == Uri.UriSchemeHttp)
        {
            if (!(loopbackHost && policy.AllowLoopback))
                return EgressDecision.Refuse($"{field}: {origin} must use https (plain http only to a loopback host where {policy.OptionPrefix}AllowLoopback is true): deliveries and their signatures would travel in clear");
        }
        else if (target.Scheme != Uri.UriSchemeHttps)
        {
            return EgressDecision.Refuse($"{field}: scheme \"{target.Scheme}\" is not allowed; use https");
        }

        if (target.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 && IPAddress.TryParse(target.IdnHost.Trim('[', ']'), out var literal))
        {
            if (AddressRefusal(literal, policy) is { } why) return EgressDecision.Refuse($"{field}: {origin}: {why}");
        }
        else if (loopbackHost && !policy.AllowLoopback)
        {
            return EgressDecision.Refuse($"{field}: {origin}: \"localhost\" is the operator's own host ({policy.OptionPrefix}AllowLoopback is false)");
        }

        if (!Configuration.UrlPrefixes.Allows(url, policy.UrlPrefixes) && !policy.AllowedHosts.Any(h => HostMatches(target, h)))
        {
            return EgressDecision.Refuse(
                $"{field}: {origin} is not under {policy.OptionPrefix}UrlPrefixes ({List(policy.UrlPrefixes)}) nor a host in {policy.OptionPrefix}AllowedHosts ({List(policy.AllowedHosts)}): the operator calls only where the platform allows");
        }

        return EgressDecision.Allow(target);
    }

    /// <summary>Why the policy refuses connecting to <paramref name="address"/>, or null when it may be reached.</summary>
    public static string? AddressRefusal(IPAddress address, EgressPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(policy);
        var kind = Classify(address);
        return kind switch
        {
            AddressClass.Public => null,
            AddressClass.Loopback when policy.AllowLoopback => null,
            AddressClass.Loopback => $"{address} is a loopback address ({policy.OptionPrefix}AllowLoopback is false)",
            AddressClass.Private or AddressClass.SharedCgnat or AddressClass.UniqueLocal when policy.AllowPrivateAddresses => null,
            AddressClass.Private or AddressClass.SharedCgnat or AddressClass.UniqueLocal =>
                $"{address} is a {Describe(kind)} address ({policy.OptionPrefix}AllowPrivateAddresses is false)",
            _ => $"{address} is a {Describe(kind)} address, never reachable",
        };
    }

    /// <summary>The class of an address; IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4) is classified as the IPv4 it reaches.</summary>
    public static AddressClass Classify(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetwork) return ClassifyV4(address.GetAddressBytes());
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return AddressClass.Reserved;

        var b = address.GetAddressBytes();
        if (address.IsIPv4MappedToIPv6) return ClassifyV4(b[12..]);
        if (b.AsSpan(0, 15).IndexOfAnyExcept((byte)0) < 0) return b[15] switch { 0 => AddressClass.Unspecified, 1 => AddressClass.Loopback, _ => AddressClass.Reserved };
        // ::a.b.c.d (IPv4-compatible, deprecated): what it embeds if that is special, else nothing routable.
        if (b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0) return ClassifyV4(b[12..]) is var v and not AddressClass.Public ? v : AddressClass.Reserved;
        // 64:ff9b::/96: NAT64 translates to the embedded IPv4, which is what is reached.
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0) return ClassifyV4(b[12..]);
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01) return AddressClass.Private; // 64:ff9b:1::/48 local-use NAT64
        if (b[0] == 0x20 && b[1] == 0x02) return ClassifyV4(b[2..6]); // 2002::/16 6to4: the relay reaches the embedded IPv4
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) return AddressClass.Reserved; // 2001::/32 Teredo: the client address is obfuscated
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return AddressClass.Reserved; // 2001:db8::/32 documentation
        if (b[0] == 0xff) return AddressClass.Multicast;
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass.LinkLocal; // fe80::/10
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass.Private; // fec0::/10 site-local (deprecated)
        if ((b[0] & 0xfe) == 0xfc) return AddressClass.UniqueLocal; // fc00::/7
        // Only 2000::/3 is global unicast; the rest (100::/64 discard, ::/8 leftovers, unassigned) reaches no receiver.
        return (b[0] & 0xe0) == 0x20 ? AddressClass.Public : AddressClass.Reserved;
    }

    static AddressClass ClassifyV4(ReadOnlySpan<byte> b) => (b[0], b[1], b[2], b[3]) switch
    {
        (0, _, _, _) => AddressClass.Unspecified, // 0.0.0.0/8 "this network"
        (127, _, _, _) => AddressClass.Loopback,
        (10, _, _, _) => AddressClass.Private,
        (172, >= 16 and <= 31, _, _) => AddressClass.Private,
        (192, 168, _, _) => AddressClass.Private,
        (100, >= 64 and <= 127, _, _) => AddressClass.SharedCgnat,
        (169, 254, _, _) => AddressClass.LinkLocal,
        (255, 255, 255, 255) => AddressClass.Broadcast,
        (>= 224 and <= 239, _, _, _) => AddressClass.Multicast,
        (>= 240, _, _, _) => AddressClass.Reserved, // 240/4 future use
        (192, 0, 0, _) or (192, 0, 2, _) or (198, 51, 100, _) or (203, 0, 113, _) => AddressClass.Reserved, // protocol assignments, documentation
        (198, 18 or 19, _, _) => AddressClass.Reserved, // benchmarking
        (192, 88, 99, _) => AddressClass.Reserved, // deprecated 6to4 relay anycast
        _ => AddressClass.Public,
    };

    static string Describe(AddressClass kind) => kind switch
    {
        AddressClass.Private => "private (RFC 1918 or site-local)",
        AddressClass.SharedCgnat => "shared CGNAT (100.64.0.0/10)",
        AddressClass.LinkLocal => "link-local (169.254.0.0/16 or fe80::/10, where cloud metadata services answer)",
        AddressClass.UniqueLocal => "unique-local (fc00::/7)",
        AddressClass.Unspecified => "unspecified (0.0.0.0/8 or ::)",
        AddressClass.Multicast => "multicast",
        AddressClass.Broadcast => "broadcast",
        AddressClass.Reserved => "reserved or special-purpose",
        _ => kind.ToString().ToLowerInvariant(),
    };

    /// <summary>"localhost", its subdomains (RFC 6761: always loopback) or a loopback literal.</summary>
    static bool IsLoopbackHost(Uri target)
    {
        var host = target.IdnHost.TrimEnd('.');
        return target.IsLoopback
               || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
               || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
               || (IPAddress.TryParse(host.Trim('[', ']'), out var a) && Classify(a) == AddressClass.Loopback);
    }

    /// <summary>Whether <paramref name="target"/>'s host and port match an AllowedHosts entry; a malformed entry matches nothing.</summary>
    static bool HostMatches(Uri target, string entry)
    {
        if (string.IsNullOrWhiteSpace(entry)) return false;
        var wildcard = entry.StartsWith("*.", StringComparison.Ordinal);
        if (!Uri.TryCreate(target.Scheme + "://" + (wildcard ? "wildcard" + entry[1..] : entry), UriKind.Absolute, out var pattern)
            || !string.IsNullOrEmpty(pattern.UserInfo) || pattern.PathAndQuery != "/" || entry.Contains('/', StringComparison.Ordinal))
        {
            return false;
        }

        if (pattern.Port != target.Port) return false;
        var host = target.IdnHost;
        if (!wildcard) return string.Equals(host, pattern.IdnHost, StringComparison.OrdinalIgnoreCase);
        var suffix = pattern.IdnHost["wildcard".Length..]; // ".domain"
        return host.Length > suffix.Length && host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) && target.HostNameType == UriHostNameType.Dns;
    }

    static string Origin(Uri target) => $"{target.Scheme}://{target.Authority}";

    static string List(IReadOnlyList<string> values) => values.Count == 0 ? "none configured" : string.Join(", ", values);
}
