using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// backup.overdue once per overdue episode (<see cref="BackupOverdueEpisodes"/> through <see cref="BackupSchedulePlan"/>):
/// as BackupOverdue turns True, never on a pass where it already is, again only after a backup completes and the plan
/// falls behind anew (a new episode, a new key).
/// </summary>
public sealed class BackupOverdueEpisodeTests
{
    static readonly DateTime Created = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    static readonly DateTime Now = new(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc);

    static BackupPlan Plan(string? overdueRecorded = null, bool suspend = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = "nightly", NamespaceProperty = "team-a", Generation = 3, CreationTimestamp = Created },
        Spec = new BackupPlanSpec { Schedule = "0 2 * * *", Suspend = suspend },
        Status = overdueRecorded is null ? null : new BackupPlanStatus
        {
            LastScheduleTime = new DateTime(2026, 1, 4, 2, 0, 0, DateTimeKind.Utc),
            Conditions = [new V1Condition { Type = BackupPlanConditions.BackupOverdue, Status = overdueRecorded, Reason = "x", Message = "x", LastTransitionTime = Created }],
        },
    };

    static Backup Completed(DateTime at) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "nightly-" + at.Ticks, NamespaceProperty = "team-a", CreationTimestamp = at.AddMinutes(-5), Uid = "u" + at.Ticks,
            Labels = new Dictionary<string, string> { [ApiGroup.ScheduledLabel] = "true", [ApiGroup.BackupPlanLabel] = "nightly" },
        },
        Spec = new BackupSpec { BackupPlan = "nightly" },
        Status = new BackupStatus { Phase = BackupPhase.Completed, CompletedAt = at, StartedAt = at.AddMinutes(-2), SizeBytes = 1 },
    };

    static BackupScheduleDecision.Converge Decide(BackupPlan plan, params Backup[] backups) =>
        Assert.IsType<BackupScheduleDecision.Converge>(BackupSchedulePlan.Decide(plan, new BackupScheduleFacts(Now, new BackupOptions(), backups, null)));

    [Fact]
    public void TurningOverdue_StartsAnEpisode_SinceTheCreationBeforeAnyBackup()
    {
        foreach (var plan in new[] { Plan(), Plan("False"), Plan("Unknown") })
        {
            var episode = Decide(plan).OverdueStarts;
            Assert.NotNull(episode);
            Assert.Equal(Created, episode.Since);
            Assert.Equal(TimeSpan.FromDays(1), episode.Interval);
            Assert.Equal(Created.ToString("O"), episode.Key);
            Assert.Contains("no Completed backup since", episode.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void StillOverdue_RecordsNothing()
    {
        var d = Decide(Plan("True"));
        Assert.Contains(d.Verdicts, v => v is { Type: BackupPlanConditions.BackupOverdue, Status: true });
        Assert.Null(d.OverdueStarts);
    }

    [Fact]
    public void OnSchedule_OrSuspended_RecordsNothing()
    {
        Assert.Null(Decide(Plan("False"), Completed(Now.AddHours(-8))).OverdueStarts);
        Assert.Null(Decide(Plan("True"), Completed(Now.AddHours(-8))).OverdueStarts);
        Assert.Null(Decide(Plan(suspend: true)).OverdueStarts);
    }

    [Fact]
    public void FallingBehindAgainAfterABackup_IsANewEpisode_WithItsOwnKey()
    {
        var lastOk = Now.AddDays(-3);
        var episode = Decide(Plan("False"), Completed(lastOk)).OverdueStarts;
        Assert.NotNull(episode);
        Assert.Equal(lastOk, episode.Since);
        Assert.NotEqual(Decide(Plan()).OverdueStarts!.Key, episode.Key);
    }
}
