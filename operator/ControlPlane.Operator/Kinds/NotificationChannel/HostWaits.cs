using System.Collections.Concurrent;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Which channels wait out a backoff because their host (scheme, host, port) was unavailable, and which of them a
/// delivery that got through to that host should wake. Only channels of the same reach (one tenant's, or the
/// platform's) are woken: one tenant's deliveries never change when another tenant's channel is retried. A woken
/// channel gets one retry; if it fails, it waits out its own backoff before it can be woken again, so no channel is
/// retried at another channel's delivery rate.
/// </summary>
public sealed class HostWaits
{
    readonly ConcurrentDictionary<string, (string Host, string Reach)> unavailable = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, bool> woken = new(StringComparer.Ordinal);

    /// <summary>The reach key of a channel: the platform's, or its tenant's.</summary>
    public static string ReachOf(bool platform, string? tenant) => platform ? "platform" : "tenant/" + tenant;

    /// <summary>A channel's attempt found its host unavailable: it waits for the host (unless this was the one retry a wake gave it).</summary>
    public void Unavailable(string channel, string host, string reach)
    {
        if (woken.TryRemove(channel, out _)) return;
        unavailable[channel] = (host, reach);
    }

    /// <summary>A delivery of <paramref name="channel"/> to <paramref name="host"/> got through: the channels to wake now.</summary>
    public IReadOnlyList<string> Answered(string channel, string host, string reach)
    {
        unavailable.TryRemove(channel, out _);
        woken.TryRemove(channel, out _);
        if (unavailable.IsEmpty) return [];
        var wake = unavailable.Where(a => a.Value.Host == host && a.Value.Reach == reach).Select(a => a.Key).ToList();
        foreach (var w in wake)
        {
            unavailable.TryRemove(w, out _);
            woken[w] = true;
        }

        return wake;
    }

    public IEnumerable<string> Channels => unavailable.Keys.Concat(woken.Keys).Distinct();

    public void Forget(string channel)
    {
        unavailable.TryRemove(channel, out _);
        woken.TryRemove(channel, out _);
    }
}
