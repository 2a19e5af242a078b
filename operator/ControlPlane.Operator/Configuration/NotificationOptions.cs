namespace ControlPlane.Operator.Configuration;

/// <summary>ControlPlane:NotificationDelivery: how NotificationChannels are delivered (docs/notifications.md, docs/operations.md).</summary>
public sealed class NotificationOptions
{
    /// <summary>How often the leader looks for new events and due retries (an idle look only reads).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a channel's URL and signing keys read from its Secrets are used before they are read again (a spec change reads them at once).</summary>
    public TimeSpan SecretReadInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long delivered history rows are kept (the plugin's `channel history`); undelivered ones stay until delivered.</summary>
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Channels delivering at once (each channel delivers one event at a time, in order).</summary>
    public int MaxConcurrentChannels { get; set; } = 8;

    /// <summary>The first retry's wait; doubled per failed attempt up to <see cref="MaxBackoff"/>, with jitter.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A channel's status (counts, last error) is written at most this often while it delivers.</summary>
    public TimeSpan StatusInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Source rows read per look (per table).</summary>
    public int BatchSize { get; set; } = 500;
}
