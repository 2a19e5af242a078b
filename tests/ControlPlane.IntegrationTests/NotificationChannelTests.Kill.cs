using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 26 "the operator SIGKILLed mid-delivery loses nothing": the operator runs as its own process (ChildOperator) and is
/// killed -9 while the receiver holds a delivery (sent, not yet answered); a new operator process resumes from Postgres.
/// </summary>
public sealed partial class NotificationChannelTests
{
    /// <summary>The delivery options of <see cref="Start"/>, as a child process's configuration.</summary>
    static readonly IReadOnlyDictionary<string, string> ChildNotificationSettings = new Dictionary<string, string>
    {
        ["ControlPlane:NotificationAllowLoopback"] = "true",
        ["ControlPlane:NotificationDelivery:PollInterval"] = "00:00:00.100",
        ["ControlPlane:NotificationDelivery:InitialBackoff"] = "00:00:00.200",
        ["ControlPlane:NotificationDelivery:MaxBackoff"] = "00:00:01",
        ["ControlPlane:NotificationDelivery:StatusInterval"] = "00:00:00.500",
    };

    [Fact]
    public async Task AnOperatorProcessSigkilledMidDelivery_LosesNothing_ANewProcessRedeliversWithTheSameKey_InOrder()
    {
        const int events = 30;
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-kill");
        // Each delivery held: at any moment one is sent and unanswered, so the kill lands mid-delivery.
        receiver.Hold = TimeSpan.FromMilliseconds(400);
        var tenant = Unique("t");
        var lease = Unique("lease");
        var secret = await SigningSecretAsync("s3cret-kill");
        await using var ds = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString());
        var db = new SystemDatabase(ds, NullLogger.Instance);
        var log = Path.Combine(Path.GetTempPath(), $"controlplane-{lease}-operator.log");
        string name;
        int acceptedBeforeKill, inFlightAtKill;
        await using (var writer = new StreamWriter(log))
        {
            var killed = ChildOperator.Start(cluster, lease, writer, 1, ChildNotificationSettings);
            await using (killed)
            {
                await Net.WaitUntilAsync(async () => await killed.StateAsync(CancellationToken.None) is { Leader: true, Ready: true }, Long,
                    "the operator process leads with synced caches");
                name = (await ChannelAsync(receiver, secret, [NotificationEvents.RolloutRolledBack], maxFailures: 1000)).Metadata.Name;
                await WaitAsync(name, Active, "Active");
                for (var i = 0; i < events; i++)
                {
                    await db.AppendAuditAsync(new AuditEntry("bob@acme.io", "rollout.rolled-back", "Rollout", $"{tenant}-ws/r{i:00}", tenant,
                        new JsonObject { ["n"] = i, ["message"] = $"rolled back r{i:00}" }), CancellationToken.None);
                }

                await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Count >= 5 && receiver.InFlight > 0), Long,
                    "five deliveries answered and the next one held by the receiver");
                inFlightAtKill = receiver.InFlight;
                await killed.KillAsync();
                acceptedBeforeKill = Of(receiver.Accepted, tenant).Count;
                output.WriteLine($"operator process {killed.Pid} SIGKILLed with {inFlightAtKill} delivery held, {acceptedBeforeKill} answered before");
            }
        }

        Assert.InRange(acceptedBeforeKill, 5, events - 1);
        // The held delivery completes at the receiver (it records it) although its sender is gone: the new process cannot
        // know it arrived, so it sends it again, with the same idempotency key.
        await Net.WaitUntilAsync(() => Task.FromResult(receiver.InFlight == 0), Long, "the held delivery answered into the void");
        var beforeRestart = Of(receiver.Accepted, tenant).Count;

        var writer2 = new StreamWriter(log, append: true);
        await using (writer2)
        {
            var next = ChildOperator.Start(cluster, lease, writer2, 2, ChildNotificationSettings);
            await using (next)
            {
                await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Select(r => r.EventId).Distinct().Count() >= events), Long,
                    "every event delivered by the new operator process");
                await WaitAsync(name, c => c.Status is { Pending: 0, Delivered: events }, "status: nothing pending, every event delivered once in the counts");
            }
        }

        var all = Of(receiver.Accepted, tenant);
        var numbers = all.Select(r => (int)r.Body!["details"]!["n"]!).ToList();
        // Nothing missing.
        Assert.Equal(Enumerable.Range(0, events), numbers.Distinct().Order());
        // A redelivery carries the key of its first arrival: one key per event, never two.
        Assert.All(all.GroupBy(r => (int)r.Body!["details"]!["n"]!), g => Assert.Single(g.Select(r => r.EventId).Distinct()));
        Assert.Equal(events, all.Select(r => r.EventId).Distinct().Count());
        // Order per channel kept for first arrivals.
        Assert.Equal(Enumerable.Range(0, events), numbers.Distinct());
        // At least once: only what was in flight at the kill may arrive twice.
        Assert.InRange(all.Count - events, 0, inFlightAtKill);
        Assert.True(all.Count - events >= beforeRestart - acceptedBeforeKill,
            "what the receiver recorded after the kill was never acknowledged to the operator, so the new process sent it again");
        Assert.All(all, r => Assert.Equal(["s3cret-kill"], r.VerifiedWith));
        output.WriteLine($"{acceptedBeforeKill} answered before the kill, {beforeRestart - acceptedBeforeKill} completed at the receiver after it, " +
                         $"{all.Count - events} redelivered by the new process (same key)");
    }
}
