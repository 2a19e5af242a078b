using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>Whose events a channel hears: its workspace, its tenant's (selected) workspaces, or every tenant's.</summary>
public enum ChannelReach
{
    Workspace,
    Tenant,
    Platform,
}

/// <summary>
/// A channel as routing sees it: its reach, the tenant and workspace it belongs to (from the operator's
/// own records: the namespace's Workspace, never a field the tenant writes), its subscriptions and selector.
/// </summary>
public sealed record ChannelScope(ChannelReach Reach, string? Tenant, string? Workspace, string Type, IReadOnlyList<string> Events, LabelSelector? WorkspaceSelector);

/// <summary>
/// Which channel receives which event (tenant isolation lives here), and the delivery arithmetic: backoff
/// with jitter, signatures. Pure.
/// </summary>
public static class NotificationRouting
{
    /// <summary>The reach of a channel in <paramref name="ns"/>: platform in the operator's namespace, else its spec.scope.</summary>
    public static ChannelReach ReachOf(NotificationChannel c, string operatorNamespace) =>
        c.Metadata.NamespaceProperty == operatorNamespace ? ChannelReach.Platform
        : c.Spec.Scope == "Tenant" ? ChannelReach.Tenant
        : ChannelReach.Workspace;

    /// <summary>
    /// Whether a channel receives an event. A tenant's channel never receives another tenant's event nor one
    /// without a tenant; a workspace channel only its workspace's; platform-only types only platform channels.
    /// </summary>
    public static bool Receives(ChannelScope channel, NotificationEvent e, IDictionary<string, string>? workspaceLabels)
    {
        if (channel.Type == "siem") return false; // siem channels get rows, not events (SiemReceives)
        if (e.Type != NotificationEvents.ChannelTest && channel.Events.Count > 0 && !channel.Events.Contains(e.Type, StringComparer.Ordinal)) return false;
        switch (channel.Reach)
        {
            case ChannelReach.Workspace:
                return !NotificationEvents.PlatformOnly.Contains(e.Type) && channel.Tenant is not null && e.Tenant == channel.Tenant
                    && e.Workspace is not null && e.Workspace == channel.Workspace;
            case ChannelReach.Tenant:
                if (NotificationEvents.PlatformOnly.Contains(e.Type) || channel.Tenant is null || e.Tenant != channel.Tenant) return false;
                return e.Workspace is null || channel.WorkspaceSelector is null || RolloutResources.Matches(channel.WorkspaceSelector, workspaceLabels);
            default:
                return e.Workspace is null || channel.WorkspaceSelector is null || RolloutResources.Matches(channel.WorkspaceSelector, workspaceLabels);
        }
    }

    /// <summary>A siem channel (platform only) streams every row.</summary>
    public static bool SiemReceives(ChannelScope channel) => channel.Type == "siem" && channel.Reach == ChannelReach.Platform;

    /// <summary>
    /// The wait before attempt <paramref name="attempts"/>+1: exponential from <paramref name="initial"/>, capped at
    /// <paramref name="max"/>, with full jitter in [50%, 100%] (<paramref name="random01"/> in [0, 1)) so endpoints
    /// recovering from an outage are not hit by every channel at once.
    /// </summary>
    public static TimeSpan Backoff(int attempts, TimeSpan initial, TimeSpan max, double random01)
    {
        var exp = Math.Min(max.TotalMilliseconds, initial.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempts - 1, 0, 30)));
        return TimeSpan.FromMilliseconds(exp * (0.5 + 0.5 * Math.Clamp(random01, 0, 1)));
    }

    /// <summary>HMAC-SHA256 over "timestamp.body", lower-case hex.</summary>
    public static string Sign(string secret, long unixSeconds, byte[] body)
    {
        var prefix = Encoding.UTF8.GetBytes(unixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
        var message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message, prefix.Length);
        return Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message));
    }

    /// <summary>The signature header: t=&lt;unix&gt;,v1=&lt;current&gt;[,v1=&lt;previous&gt;] (both during a rotation).</summary>
    public static string SignatureHeader(long unixSeconds, byte[] body, string current, string? previous) =>
        $"t={unixSeconds},v1={Sign(current, unixSeconds, body)}" + (string.IsNullOrEmpty(previous) ? "" : $",v1={Sign(previous, unixSeconds, body)}");

    /// <summary>
    /// What a receiver does (docs/notifications.md#verifying): the timestamp within the replay window, and any
    /// v1 equal (in constant time) to its own HMAC with the secret it holds.
    /// </summary>
    public static bool Verify(string header, byte[] body, string secret, long nowUnix, TimeSpan replayWindow)
    {
        long? t = null;
        var signatures = new List<string>();
        foreach (var part in header.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2) continue;
            if (kv[0] == "t" && long.TryParse(kv[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ts)) t = ts;
            else if (kv[0] == "v1") signatures.Add(kv[1]);
        }

        if (t is null || Math.Abs(nowUnix - t.Value) > replayWindow.TotalSeconds) return false;
        var expected = Encoding.ASCII.GetBytes(Sign(secret, t.Value, body));
        return signatures.Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), expected));
    }
}
