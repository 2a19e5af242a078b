using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// NotificationChannel delivery through the operator (no webhook in this collection) to real receivers on 127.0.0.1 that
/// check signatures: platform channels (the operator's namespace, the only ones allowed loopback, by the option the tests
/// set). Every subscribed event arrives once per idempotency key, in commit order, signed, the test delivery once; idle
/// resyncs write nothing; a receiver down then back drains its backlog in order; an operator stopped mid-delivery loses
/// nothing (the next one resumes from Postgres); a failing endpoint is auto-disabled after N attempts (condition, Event,
/// audit row, a channel.auto_disabled event to another platform channel) and re-enabled by a spec change; rotation keeps
/// deliveries verifiable with either secret; the system of record unreachable is a condition, then recovers.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class NotificationChannelTests(ClusterFixture cluster, ITestOutputHelper output) : IAsyncLifetime
{
    // Platform channels hear every later test's events: each test's channels go when it ends, so no later operator in
    // this collection keeps delivering (and recording attempts in Postgres) to a receiver that is gone.
    readonly List<string> created = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var name in created)
        {
            try
            {
                await cluster.Api.DeleteAsync(Channels, Platform, name, CancellationToken.None);
            }
            catch (KubeApiException e) when (e.IsNotFound)
            {
            }
        }
    }

    const string Platform = "controlplane-system";
    static readonly ResourceType Channels = ResourceType.For<NotificationChannel>(true);
    static readonly TimeSpan Long = TimeSpan.FromSeconds(90);

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    TestOperator Start() => TestOperator.Start(cluster, Unique("lease"), output, o =>
    {
        o.NotificationAllowLoopback = true;
        o.NotificationDelivery.PollInterval = TimeSpan.FromMilliseconds(100);
        o.NotificationDelivery.InitialBackoff = TimeSpan.FromMilliseconds(200);
        o.NotificationDelivery.MaxBackoff = TimeSpan.FromSeconds(1);
        o.NotificationDelivery.StatusInterval = TimeSpan.FromMilliseconds(500);
    });

    async Task<string> SigningSecretAsync(string current, string? previous = null)
    {
        var name = Unique("signing");
        var data = new Dictionary<string, string> { ["current"] = current };
        if (previous is not null) data["previous"] = previous;
        await cluster.Api.CreateAsync(ResourceType.Secrets, Platform, new V1Secret { Metadata = new V1ObjectMeta { Name = name }, StringData = data }, CancellationToken.None);
        return name;
    }

    async Task<NotificationChannel> ChannelAsync(NotificationReceiver receiver, string secret, string[] events, int? maxFailures = null, string? nonce = null)
    {
        var name = Unique("nc");
        created.Add(name);
        return await cluster.Api.CreateAsync(Channels, Platform, new NotificationChannel
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Annotations = nonce is null ? null : new Dictionary<string, string> { [ApiGroup.TestDeliveryAnnotation] = nonce },
            },
            Spec = new NotificationChannelSpec
            {
                Type = "webhook", Url = receiver.Url.AbsoluteUri, SigningSecretRef = new SigningSecretReference { Name = secret }, Events = [.. events],
                MaxConsecutiveFailures = maxFailures,
            },
        }, CancellationToken.None);
    }

    async Task<NotificationChannel> WaitAsync(string name, Func<NotificationChannel, bool> condition, string what, TimeSpan? timeout = null)
    {
        NotificationChannel? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await cluster.Api.GetAsync<NotificationChannel>(Channels, Platform, name, CancellationToken.None)),
                timeout ?? Long, $"channel {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"channel {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    static bool Active(NotificationChannel c) =>
        c.Status is { Phase: NotificationChannelPhase.Active } s && s.ObservedGeneration == c.Metadata.Generation
        && s.Conditions?.Any(x => x is { Type: "Ready", Status: "True" }) == true;

    static Task Audit(SystemDatabase db, string tenant, string action, string obj, int n = 0) =>
        db.AppendAuditAsync(new AuditEntry("bob@acme.io", action, "Rollout", $"{tenant}-ws/{obj}", tenant, new JsonObject { ["n"] = n, ["message"] = $"{action} {obj}" }), CancellationToken.None);

    static IReadOnlyList<ReceivedDelivery> Of(IEnumerable<ReceivedDelivery> all, string tenant) => [.. all.Where(r => (string?)r.Body?["tenant"] == tenant)];

    [Fact]
    public async Task EverySubscribedEventArrivesOnce_SignedAndInOrder_TheTestOnce_ThenAResyncWritesNothing()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-one");
        await using var op = Start();
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var secret = await SigningSecretAsync("s3cret-one");
        var channel = await ChannelAsync(receiver, secret, [NotificationEvents.RolloutRolledBack, NotificationEvents.BackupFailed, NotificationEvents.IntentDrift], nonce: "n1");
        var name = channel.Metadata.Name;
        await WaitAsync(name, Active, "Active");
        var tenant = Unique("t");
        var db = op.Runtime.Database;
        await Audit(db, tenant, "rollout.rolled-back", "r1");
        await Audit(db, tenant, "workspace.updated", "w1"); // not an event
        await Audit(db, tenant, "rollout.paused", "r1"); // not subscribed
        await db.AppendAuditAsync(new AuditEntry("op", "backup.failed", "Backup", $"{tenant}-ws/b1", tenant, new JsonObject { ["message"] = "pg_dump failed" }), CancellationToken.None);
        await db.AppendDeploymentEventsAsync([new DeploymentEvent("uid-" + tenant, $"{tenant}-ws", "intent", tenant, "c1", 1, "drift", "Completed", "Completed", "ring-1", "bob@acme.io",
            "DriftDetected", new JsonObject { ["message"] = "image differs" }, $"{tenant}/drift/1")], CancellationToken.None);

        await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Count >= 3 && receiver.Accepted.Any(r => r.EventType == "channel.test")),
            Long, "three events and the test delivered");
        var mine = Of(receiver.Accepted, tenant);
        Assert.Equal([NotificationEvents.RolloutRolledBack, NotificationEvents.BackupFailed, NotificationEvents.IntentDrift], mine.Select(r => r.EventType));
        Assert.Equal(mine.Count, mine.Select(r => r.EventId).Distinct().Count());
        Assert.All(receiver.Received, r => Assert.Equal(["s3cret-one"], r.VerifiedWith));
        Assert.All(mine, r => Assert.Equal(r.EventId, (string?)r.Body!["id"]));
        Assert.Equal($"{tenant}-ws", (string?)mine[0].Body!["workspace"]);
        Assert.Single(receiver.Received, r => r.EventType == "channel.test");

        // Status follows (batched), then idles: a resync writes nothing, and nothing more arrives.
        var settled = await WaitAsync(name, c => c.Status is { Delivered: >= 4, Pending: 0 }, "status counts delivered");
        Assert.Equal(["n1"], settled.Status!.TestNonces!);
        await op.ResyncWritesNothingAsync($"notificationchannel {Platform}/{name}");
        var count = receiver.Received.Count;
        await op.ResyncWritesNothingAsync($"notificationchannel {Platform}/{name}");
        Assert.Equal(count, receiver.Received.Count);
        Assert.Equal(count, receiver.Received.Select(r => r.EventId).Distinct().Count());
    }

    [Fact]
    public async Task AReceiverDownThenBack_DrainsTheBacklogInOrder()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-two");
        receiver.Status = 503;
        await using var op = Start();
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var channel = await ChannelAsync(receiver, await SigningSecretAsync("s3cret-two"), [NotificationEvents.RolloutRolledBack], maxFailures: 1000);
        await WaitAsync(channel.Metadata.Name, Active, "Active");
        var tenant = Unique("t");
        for (var i = 0; i < 20; i++) await Audit(op.Runtime.Database, tenant, "rollout.rolled-back", $"r{i:00}", i);
        await Net.WaitUntilAsync(() => Task.FromResult(receiver.Received.Count >= 3), Long, "three failed attempts");
        var down = await WaitAsync(channel.Metadata.Name, c => c.Status is { Pending: 20, ConsecutiveFailures: > 0 } && c.Status.LastError == "HTTP 503", "backlog of 20 in status");
        Assert.Equal(NotificationChannelPhase.Active, down.Status!.Phase);
        // Ordering: while the first fails, nothing after it is tried.
        Assert.All(receiver.Received, r => Assert.Equal(0, (int)r.Body!["details"]!["n"]!));

        receiver.Status = 200;
        await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Count >= 20), Long, "the backlog drained");
        Assert.Equal(Enumerable.Range(0, 20), Of(receiver.Accepted, tenant).Select(r => (int)r.Body!["details"]!["n"]!));
        await WaitAsync(channel.Metadata.Name, c => c.Status is { Pending: 0, Delivered: 20, ConsecutiveFailures: 0 }, "drained in status");
    }

    [Fact]
    public async Task AnOperatorStoppedMidDelivery_LosesNothing_TheNextOneResumes()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-three");
        receiver.Hold = TimeSpan.FromMilliseconds(150);
        var tenant = Unique("t");
        string name;
        await using (var first = Start())
        {
            await first.WaitUntilLeaderAndSyncedAsync(Long);
            name = (await ChannelAsync(receiver, await SigningSecretAsync("s3cret-three"), [NotificationEvents.RolloutRolledBack], maxFailures: 1000)).Metadata.Name;
            await WaitAsync(name, Active, "Active");
            for (var i = 0; i < 30; i++) await Audit(first.Runtime.Database, tenant, "rollout.rolled-back", $"r{i:00}", i);
            await Net.WaitUntilAsync(() => Task.FromResult(receiver.Received.Count >= 5), Long, "five deliveries made");
        }

        var byFirst = Of(receiver.Accepted, tenant).Count;
        Assert.InRange(byFirst, 1, 29);
        await using var second = Start();
        await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Select(r => r.EventId).Distinct().Count() >= 30), Long, "every event delivered");
        var all = Of(receiver.Accepted, tenant);
        Assert.Equal(Enumerable.Range(0, 30), all.Select(r => (int)r.Body!["details"]!["n"]!).Distinct().Order());
        // At least once: at most the one in flight when the first stopped is delivered twice, and in order.
        Assert.InRange(all.Count, 30, 31);
        Assert.Equal(all.Select(r => (int)r.Body!["details"]!["n"]!).Distinct(), all.Select(r => (int)r.Body!["details"]!["n"]!).Distinct().Order());
        output.WriteLine($"first operator delivered {byFirst}, {all.Count - 30} redelivered after the restart");
    }

    [Fact]
    public async Task AFailingEndpoint_IsAutoDisabledAfterN_ThePlatformHearsIt_ASpecChangeReEnablesIt()
    {
        await using var failing = await NotificationReceiver.StartAsync("s3cret-four");
        failing.Status = 500;
        await using var watcher = await NotificationReceiver.StartAsync("s3cret-five");
        await using var op = Start();
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var bad = await ChannelAsync(failing, await SigningSecretAsync("s3cret-four"), [NotificationEvents.RolloutRolledBack], maxFailures: 3);
        var watch = await ChannelAsync(watcher, await SigningSecretAsync("s3cret-five"), [NotificationEvents.ChannelAutoDisabled]);
        await WaitAsync(bad.Metadata.Name, Active, "Active");
        await WaitAsync(watch.Metadata.Name, Active, "Active");
        var tenant = Unique("t");
        await Audit(op.Runtime.Database, tenant, "rollout.rolled-back", "r1");

        var disabled = await WaitAsync(bad.Metadata.Name, c => c.Status?.Phase == NotificationChannelPhase.AutoDisabled, "AutoDisabled");
        Assert.Contains(disabled.Status!.Conditions!, c => c is { Type: "WebhookAutoDisabled", Status: "True", Reason: NotificationChannelReasons.AutoDisabled });
        Assert.Contains(disabled.Status.Conditions!, c => c is { Type: "Stalled", Status: "True" });
        Assert.Equal(3, disabled.Status.ConsecutiveFailures);
        Assert.Equal("HTTP 500", disabled.Status.LastError);
        await Net.WaitUntilAsync(() => Task.FromResult(watcher.Accepted.Any(r => r.EventType == NotificationEvents.ChannelAutoDisabled
            && (string?)r.Body!["subject"] == $"NotificationChannel/{Platform}/{bad.Metadata.Name}")), Long, "the platform channel heard channel.auto_disabled");
        await using (var ds = cluster.Postgres.DataSourceFor())
        await using (var cmd = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE action = 'channel.auto_disabled' AND object_name = $1"))
        {
            cmd.Parameters.AddWithValue($"{Platform}/{bad.Metadata.Name}");
            Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
        }

        // Disabled means disabled: no more attempts while it stays so.
        var attempts = failing.Received.Count;
        Assert.Equal(3, attempts);
        await Net.WaitUntilAsync(async () => (await cluster.Api.GetAsync<NotificationChannel>(Channels, Platform, bad.Metadata.Name, CancellationToken.None)).Status?.Pending == 1,
            Long, "the event waits");
        Assert.Equal(attempts, failing.Received.Count);

        // The endpoint fixed and the spec changed: enabled again, the waiting event delivered.
        failing.Status = 200;
        await cluster.Api.PatchAsync<NotificationChannel>(Channels, Platform, bad.Metadata.Name, """{"spec":{"maxConsecutiveFailures":4}}""", "application/merge-patch+json", CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(Of(failing.Accepted, tenant).Count == 1), Long, "the waiting event delivered after re-enabling");
        var enabled = await WaitAsync(bad.Metadata.Name, c => Active(c) && c.Status!.Pending == 0, "Active again");
        Assert.Contains(enabled.Status!.Conditions!, c => c is { Type: "WebhookAutoDisabled", Status: "False" });
    }

    [Fact]
    public async Task DuringRotation_BothSignaturesAreSent_AReceiverWithEitherSecretVerifies()
    {
        await using var oldReceiver = await NotificationReceiver.StartAsync("old-secret");
        await using var op = Start();
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var secret = await SigningSecretAsync("new-secret", previous: "old-secret");
        var channel = await ChannelAsync(oldReceiver, secret, [NotificationEvents.BackupFailed]);
        await WaitAsync(channel.Metadata.Name, Active, "Active");
        oldReceiver.Secrets = ["old-secret", "new-secret"];
        var tenant = Unique("t");
        await op.Runtime.Database.AppendAuditAsync(new AuditEntry("op", "backup.failed", "Backup", $"{tenant}-ws/b1", tenant, new JsonObject()), CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(Of(oldReceiver.Accepted, tenant).Count == 1), Long, "delivered during the rotation");
        Assert.Equal(["old-secret", "new-secret"], Of(oldReceiver.Accepted, tenant).Single().VerifiedWith);

        // Rotation over: the previous key removed. Keys are read again within SecretReadInterval (2 s by default), so
        // events keep coming until one is signed with the new key alone; every one before it verifies with the new key too.
        await cluster.Api.PatchAsync<V1Secret>(ResourceType.Secrets, Platform, secret, """{"data":{"previous":null}}""", "application/merge-patch+json", CancellationToken.None);
        var sent = 1;
        await Net.WaitUntilAsync(async () =>
        {
            sent++;
            await op.Runtime.Database.AppendAuditAsync(new AuditEntry("op", "backup.failed", "Backup", $"{tenant}-ws/b{sent}", tenant, new JsonObject()), CancellationToken.None);
            await Net.WaitUntilAsync(() => Task.FromResult(Of(oldReceiver.Accepted, tenant).Count == sent), Long, "delivered after the rotation");
            return Of(oldReceiver.Accepted, tenant)[^1].VerifiedWith.SequenceEqual(["new-secret"]);
        }, Long, "a delivery signed with the new key alone");
        Assert.All(Of(oldReceiver.Accepted, tenant), r => Assert.Contains("new-secret", r.VerifiedWith));
        Assert.InRange(sent, 2, 40);
    }

    [Fact]
    public async Task TheSystemOfRecordUnreachable_IsACondition_ThenRecovers()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-six");
        await using var op = Start();
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var channel = await ChannelAsync(receiver, await SigningSecretAsync("s3cret-six"), [NotificationEvents.BackupFailed]);
        await WaitAsync(channel.Metadata.Name, Active, "Active");
        await using var ds = cluster.Postgres.DataSourceFor();
        await using (var hide = ds.CreateCommand("ALTER TABLE controlplane.notification_channels RENAME TO notification_channels_hidden"))
        {
            await hide.ExecuteNonQueryAsync();
        }

        try
        {
            // A change makes it look again (a resync would too, later).
            await cluster.Api.PatchAsync<NotificationChannel>(Channels, Platform, channel.Metadata.Name, """{"spec":{"maxConsecutiveFailures":11}}""", "application/merge-patch+json", CancellationToken.None);
            var held = await WaitAsync(channel.Metadata.Name, c => c.Status?.Conditions?.Any(x => x is { Type: "Ready", Status: "False", Reason: "DatabaseUnavailable" }) == true,
                "Ready=False/DatabaseUnavailable");
            Assert.Null(held.Status!.Conditions!.FirstOrDefault(c => c.Type == "Stalled" && c.Status == "True"));
        }
        finally
        {
            await using var show = ds.CreateCommand("ALTER TABLE controlplane.notification_channels_hidden RENAME TO notification_channels");
            await show.ExecuteNonQueryAsync();
        }

        await WaitAsync(channel.Metadata.Name, Active, "Active again");
        var tenant = Unique("t");
        await op.Runtime.Database.AppendAuditAsync(new AuditEntry("op", "backup.failed", "Backup", $"{tenant}-ws/b1", tenant, new JsonObject()), CancellationToken.None);
        await Net.WaitUntilAsync(() => Task.FromResult(Of(receiver.Accepted, tenant).Count == 1), Long, "delivered after recovery");
    }
}
