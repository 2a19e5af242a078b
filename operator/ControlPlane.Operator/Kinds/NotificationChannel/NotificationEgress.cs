using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Where a channel may send, by the egress rules (<see cref="EgressRules"/>, <see cref="EgressHttp"/>). A tenant's
/// channel (workspace or tenant-wide): under ControlPlane:NotificationUrlPrefixes or NotificationAllowedHosts, over
/// https, never loopback (whatever NotificationAllowLoopback says: the operator's own ports are there), private
/// addresses only with NotificationAllowPrivateAddresses, link-local (169.254.169.254) never. A platform channel (the
/// operator's namespace, written by platform administrators) is not bound to the lists, but to the same address
/// classes, loopback only with NotificationAllowLoopback (tests and local runs). Checked on the URL at admission, at
/// reconcile and before each run of deliveries (a URL from a Secret too), and on every resolved address at connect time.
/// </summary>
public sealed class NotificationEgress(ControlPlaneOptions options)
{
    readonly EgressPolicy tenant = EgressPolicy.ForNotifications(options) with { AllowLoopback = false };
    readonly EgressPolicy platform = EgressPolicy.ForNotifications(options);

    public EgressHttpOptions HttpOptions { get; } = EgressHttpOptions.ForNotifications(options);

    /// <summary>Why a channel of <paramref name="reach"/> may not send to <paramref name="url"/> (the refusal names <paramref name="field"/>), or null.</summary>
    public string? UrlProblem(string field, string url, ChannelReach reach)
    {
        if (reach != ChannelReach.Platform) return EgressRules.Check(field, url, tenant).Refusal;
        // The platform's own channel: any origin the platform administrator wrote, with the address rules.
        var own = Uri.TryCreate(url, UriKind.Absolute, out var u) && !string.IsNullOrEmpty(u.Host) ? platform with { UrlPrefixes = [u.GetLeftPart(UriPartial.Authority) + "/"] } : platform;
        return EgressRules.Check(field, url, own).Refusal;
    }

    /// <summary>The connection pool of a reach (one per dispatcher term): connect-time address checks, no redirects, bounded time and answer.</summary>
    public HttpClient Client(ChannelReach reach) => EgressHttp.CreateClient(reach == ChannelReach.Platform ? platform : tenant, HttpOptions);
}
