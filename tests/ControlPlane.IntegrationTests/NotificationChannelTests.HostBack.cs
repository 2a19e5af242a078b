using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using Xunit;

namespace ControlPlane.Tests;

public sealed partial class NotificationChannelTests
{
    /// <summary>
    /// A receiver back after an outage is drained by every channel at once: a delivery that gets through to a host makes
    /// the channels waiting out a backoff because that host was unavailable (here 503) retry now, not at the end of a
    /// backoff of 60–120 s. Without it the waiting channel's event arrives only after its backoff.
    /// </summary>
    [Fact]
    public async Task AHostAnsweringAgain_EndsTheBackoffOfChannelsWaitingOnIt()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-eight");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o =>
        {
            o.NotificationAllowLoopback = true;
            o.NotificationDelivery.PollInterval = TimeSpan.FromMilliseconds(100);
            o.NotificationDelivery.InitialBackoff = TimeSpan.FromSeconds(120);
            o.NotificationDelivery.MaxBackoff = TimeSpan.FromSeconds(120);
            o.NotificationDelivery.StatusInterval = TimeSpan.FromMilliseconds(500);
        });
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var secret = await SigningSecretAsync("s3cret-eight");
        var waiting = await ChannelAsync(receiver, secret, [NotificationEvents.BackupFailed], maxFailures: 1000);
        await WaitAsync(waiting.Metadata.Name, Active, "Active");

        receiver.Status = 503;
        var tenant = Unique("t");
        await Audit(op.Runtime.Database, tenant, "backup.failed", "b1");
        await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Received, tenant).Count == 1), Long, "the first attempt refused with 503");
        var refusedAt = DateTime.UtcNow;

        // The host answers again; another channel to it delivers its test event.
        receiver.Status = 200;
        await ChannelAsync(receiver, secret, [NotificationEvents.RolloutPaused], nonce: "host-back");
        await Net.WaitUntilAsync(() => Task.FromResult(receiver.Accepted.Any(r => r.EventType == "channel.test")), Long, "the other channel's test delivered");

        await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Count == 1), Long, "the waiting event delivered");
        var deliveredAt = Of(receiver.Accepted, tenant).Single().At;
        output.WriteLine($"refused at {refusedAt:HH:mm:ss.fff}, delivered at {deliveredAt:HH:mm:ss.fff}");
        // Its own backoff would have held it at least 60 s after the refusal.
        Assert.True(deliveredAt - refusedAt < TimeSpan.FromSeconds(55), $"delivered {(deliveredAt - refusedAt).TotalSeconds:0.0} s after the refusal");
        Assert.Equal(2, Of(receiver.Received, tenant).Count);
    }
}
