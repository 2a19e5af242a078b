using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;
using Xunit;

namespace ControlPlane.Tests;

public sealed partial class NotificationChannelTests
{
    static readonly ResourceType Plans = ResourceType.For<BackupPlan>(true);

    /// <summary>
    /// A BackupPlan that falls behind (minutely schedule, nothing can run: its namespace is no workspace, so it is overdue two
    /// minutes after its creation) records backup.overdue once as BackupOverdue turns True; a channel subscribed to it hears
    /// it; resyncs while it stays overdue write nothing more.
    /// </summary>
    [Fact]
    public async Task APlanTurningOverdue_IsAuditedOnce_AndNotified()
    {
        await using var receiver = await NotificationReceiver.StartAsync("s3cret-overdue");
        await using var op = Start();
        await op.WaitUntilLeaderAndSyncedAsync(Long);
        var channel = await ChannelAsync(receiver, await SigningSecretAsync("s3cret-overdue"), [NotificationEvents.BackupOverdue]);
        await WaitAsync(channel.Metadata.Name, Active, "Active");
        var name = Unique("overdue");
        await cluster.Api.CreateAsync(Plans, Platform, new BackupPlan
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new BackupPlanSpec { Schedule = "* * * * *" },
        }, CancellationToken.None);
        try
        {
            BackupPlan? plan = null;
            await Net.WaitUntilAsync(async () => (plan = await cluster.Api.GetAsync<BackupPlan>(Plans, Platform, name, CancellationToken.None))
                .Status?.Conditions?.Any(c => c is { Type: BackupPlanConditions.BackupOverdue, Status: "True" }) == true,
                TimeSpan.FromMinutes(5), $"backup plan {name} BackupOverdue=True");
            var subject = $"BackupPlan/{Platform}/{name}";
            await Net.WaitUntilAsync(() => Task.FromResult(receiver.Accepted.Any(r => r.EventType == NotificationEvents.BackupOverdue && (string?)r.Body!["subject"] == subject)),
                Long, "the channel heard backup.overdue");
            Assert.Equal(1L, await OverdueRowsAsync(name));

            await op.ResyncWritesNothingAsync($"backupplan {Platform}/{name}");
            await op.ResyncWritesNothingAsync($"backupplan {Platform}/{name}");
            Assert.Equal(1L, await OverdueRowsAsync(name));
            Assert.Single(receiver.Accepted, r => r.EventType == NotificationEvents.BackupOverdue && (string?)r.Body!["subject"] == subject);
            var since = plan!.Metadata.CreationTimestamp!.Value.ToUniversalTime().ToString("O");
            await using var ds = cluster.Postgres.DataSourceFor();
            await using var cmd = ds.CreateCommand("SELECT details->>'since' FROM controlplane.audit_events WHERE action = 'backup.overdue' AND object_name = $1");
            cmd.Parameters.AddWithValue($"{Platform}/{name}");
            Assert.Equal(since, (string?)await cmd.ExecuteScalarAsync());
        }
        finally
        {
            await cluster.Api.DeleteAsync(Plans, Platform, name, CancellationToken.None);
        }
    }

    async Task<long> OverdueRowsAsync(string plan)
    {
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var count = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'BackupPlan' AND action = 'backup.overdue' AND object_name = $1");
        count.Parameters.AddWithValue($"{Platform}/{plan}");
        return (long)(await count.ExecuteScalarAsync())!;
    }
}
