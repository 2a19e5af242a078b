using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The BackupPlan's pure decision (<see cref="BackupSchedulePlan"/>): what the reconciler creates,
/// prunes, records and writes on each branch it takes, without a server.
/// </summary>
public sealed class BackupSchedulePlanTests
{
    static readonly DateTime Created = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    static readonly DateTime Now = new(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc);

    static BackupPlan Plan(string schedule = "0 2 * * *", bool suspend = false, string name = "nightly", DateTime? lastScheduled = null, BackupRetention? retention = null,
        BackupStorage? storage = null, List<V1Condition>? conditions = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "team-a", Generation = 3, CreationTimestamp = Created },
        Spec = new BackupPlanSpec { Schedule = schedule, Suspend = suspend, Retention = retention, Storage = storage },
        Status = lastScheduled is null && conditions is null ? null : new BackupPlanStatus { LastScheduleTime = lastScheduled, Conditions = conditions },
    };

    static Backup Backup(string name, BackupPhase phase, DateTime? completedAt, DateTime created, string plan = "nightly", List<V1Condition>? conditions = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = "team-a", CreationTimestamp = created, Uid = name + "-uid",
            Labels = new Dictionary<string, string> { [ApiGroup.ScheduledLabel] = "true", [ApiGroup.BackupPlanLabel] = plan },
        },
        Spec = new BackupSpec { BackupPlan = plan },
        Status = new BackupStatus
        {
            Phase = phase, CompletedAt = completedAt, StartedAt = completedAt?.AddMinutes(-2), SizeBytes = completedAt is null ? null : 2048,
            Conditions = conditions,
        },
    };

    static BackupScheduleFacts Facts(IReadOnlyList<Backup>? backups = null, PlanRefusal? source = null, BackupOptions? options = null) =>
        new(Now, options ?? new BackupOptions(), backups ?? [], source);

    static BackupScheduleDecision.Converge Converge(BackupPlan plan, BackupScheduleFacts facts) =>
        Assert.IsType<BackupScheduleDecision.Converge>(BackupSchedulePlan.Decide(plan, facts));

    static ConditionVerdict Verdict(BackupScheduleDecision.Converge d, string type) => Assert.Single(d.Verdicts, v => v.Type == type);

    [Fact]
    public void ADeletedPlan_OnlyForgetsItsMetrics()
    {
        var plan = Plan();
        plan.Metadata.DeletionTimestamp = Now;
        Assert.IsType<BackupScheduleDecision.Forget>(BackupSchedulePlan.Decide(plan, Facts()));
    }

    [Fact]
    public void ADueSchedule_CreatesOneBackupNamedByItsTime_AndRecordsIt()
    {
        var d = Converge(Plan(lastScheduled: new DateTime(2026, 1, 2, 2, 0, 0, DateTimeKind.Utc)), Facts());
        var due = new DateTime(2026, 1, 4, 2, 0, 0, DateTimeKind.Utc);
        Assert.NotNull(d.Create);
        Assert.Equal(BackupRules.ScheduledBackupName("nightly", due), d.Create.Metadata.Name);
        Assert.Equal("team-a", d.Create.Metadata.NamespaceProperty);
        Assert.Equal("nightly", d.Create.Spec.BackupPlan);
        Assert.Equal("nightly", d.Create.Metadata.Labels[ApiGroup.BackupPlanLabel]);
        Assert.Equal("true", d.Create.Metadata.Labels[ApiGroup.ScheduledLabel]);
        Assert.Equal([ApiGroup.Finalizer], d.Create.Metadata.Finalizers);
        Assert.Equal(due, d.Status.LastScheduleTime);
        Assert.Equal(due.AddDays(1), d.Status.NextScheduleTime);
        Assert.Equal(3, d.Status.ObservedGeneration);
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.Ready, true, "Scheduled", $"next backup at {due.AddDays(1):O}"), Verdict(d, BackupPlanConditions.Ready));
        Assert.Null(d.Refusal);
    }

    [Fact]
    public void NothingDue_CreatesNothing_AndWakesAtTheNextTime()
    {
        var last = new DateTime(2026, 1, 4, 2, 0, 0, DateTimeKind.Utc);
        var completed = Backup("b1", BackupPhase.Completed, last.AddMinutes(5), last);
        var d = Converge(Plan(lastScheduled: last), Facts([completed]));
        Assert.Null(d.Create);
        Assert.Equal(last, d.Status.LastScheduleTime);
        Assert.Equal(last.AddDays(1), d.Status.NextScheduleTime);
        // Next run at 02:00 tomorrow (16 h away) is sooner than becoming overdue (two days after the last success).
        Assert.Equal(last.AddDays(1) - Now + TimeSpan.FromMilliseconds(200), d.RequeueAfter);
    }

    [Fact]
    public void ASuspendedPlan_SchedulesNothing_AndIsNeverOverdue()
    {
        var d = Converge(Plan(suspend: true), Facts());
        Assert.Null(d.Create);
        Assert.Null(d.Status.NextScheduleTime);
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.BackupOverdue, false, "Suspended", "spec.suspend is true: nothing is scheduled"), Verdict(d, BackupPlanConditions.BackupOverdue));
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.Ready, true, "Suspended", "suspended: no new backups are scheduled"), Verdict(d, BackupPlanConditions.Ready));
        // Nothing to wake for: an hour.
        Assert.Equal(TimeSpan.FromHours(1) + TimeSpan.FromMilliseconds(200), d.RequeueAfter);
    }

    [Fact]
    public void ANameTooLongForALabel_IsRefused_AndNothingIsScheduled()
    {
        var d = Converge(Plan(name: new string('p', 64)), Facts());
        Assert.Null(d.Create);
        Assert.Null(d.Status.NextScheduleTime);
        var ready = Verdict(d, BackupPlanConditions.Ready);
        Assert.Equal((false, "InvalidName"), (ready.Status!.Value, ready.Reason));
        Assert.Contains("metadata.name", ready.Message, StringComparison.Ordinal);
        Assert.Equal(new Notice("InvalidName", ready.Message, Warning: true), d.Refusal);
    }

    [Fact]
    public void TenantStorage_WhereItIsNotAllowed_IsRefused()
    {
        var storage = new BackupStorage { S3 = new S3Storage { Endpoint = "https://s3.example", Bucket = "mine" } };
        var d = Converge(Plan(storage: storage), Facts(options: new BackupOptions { AllowTenantStorage = false }));
        Assert.Null(d.Create);
        Assert.Equal("TenantStorageNotAllowed", Verdict(d, BackupPlanConditions.Ready).Reason);
        Assert.Equal("TenantStorageNotAllowed", d.Refusal?.Reason);
    }

    [Fact]
    public void AWorkspaceThatDoesNotResolve_RefusesThePlan_WithItsReason()
    {
        var d = Converge(Plan(lastScheduled: new DateTime(2026, 1, 2, 2, 0, 0, DateTimeKind.Utc)), Facts(source: new PlanRefusal("WorkspaceNotReady", "workspace team-a has no database yet (status.database)")));
        Assert.Null(d.Create);
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.Ready, false, "WorkspaceNotReady", "workspace team-a has no database yet (status.database)"), Verdict(d, BackupPlanConditions.Ready));
    }

    [Fact]
    public void AnInvalidSchedule_IsRefused_WhateverElseIs()
    {
        var d = Converge(Plan(schedule: "not a cron", name: new string('p', 64)), Facts(source: new PlanRefusal("NotAWorkspace", "x")));
        var ready = Verdict(d, BackupPlanConditions.Ready);
        Assert.Equal("InvalidSchedule", ready.Reason);
        Assert.StartsWith("spec.schedule: \"not a cron\" is not a five-field cron expression", ready.Message, StringComparison.Ordinal);
        Assert.Null(d.Create);
        Assert.Null(d.Status.NextScheduleTime);
    }

    [Fact]
    public void ARefusal_IsAnEventOnlyWhenItsMessageIsNew()
    {
        var refusal = new PlanRefusal("NotAWorkspace", "metadata.namespace: \"team-a\" is not a workspace");
        var told = Plan(conditions: [new V1Condition { Type = BackupPlanConditions.Ready, Status = "False", Reason = refusal.Reason, Message = refusal.Message }]);
        Assert.Null(Converge(told, Facts(source: refusal)).Refusal);
        Assert.Equal(new Notice(refusal.Reason, refusal.Message, Warning: true), Converge(Plan(), Facts(source: refusal)).Refusal);
    }

    [Fact]
    public void NoFinishedBackup_LastBackupSucceededIsUnknown_AndOverdueCountsFromCreation()
    {
        var d = Converge(Plan(), Facts());
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.LastBackupSucceeded, null, "NoBackupYet", "no backup has finished yet"), Verdict(d, BackupPlanConditions.LastBackupSucceeded));
        var overdue = Verdict(d, BackupPlanConditions.BackupOverdue);
        Assert.Equal((true, "Overdue"), (overdue.Status!.Value, overdue.Reason));
        Assert.Contains($"no Completed backup since {Created:O}", overdue.Message, StringComparison.Ordinal);
        Assert.Null(d.Status.LastBackup);
        Assert.Null(d.Sample);
    }

    [Fact]
    public void TheLastFinishedBackup_SaysWhetherItSucceeded_WithItsReason()
    {
        var ok = Backup("b1", BackupPhase.Completed, Now.AddHours(-10), Now.AddHours(-11));
        var failed = Backup("b2", BackupPhase.Failed, Now.AddHours(-1), Now.AddHours(-2),
            conditions: [new V1Condition { Type = "Ready", Status = "False", Reason = "DumpFailed", Message = "pg_dump exited 1" }]);
        var d = Converge(Plan(lastScheduled: Now.AddHours(-2)), Facts([ok, failed]));
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.LastBackupSucceeded, false, "DumpFailed", "Backup b2 failed: pg_dump exited 1"), Verdict(d, BackupPlanConditions.LastBackupSucceeded));
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.BackupOverdue, false, "OnSchedule", "the last success is within twice the schedule's interval"), Verdict(d, BackupPlanConditions.BackupOverdue));
        Assert.Equal("b2", d.Status.LastBackup?.Name);
        Assert.Equal(Now.AddHours(-10), d.Status.FirstRecoverabilityPoint);
        Assert.Equal(new BackupSample(Now.AddHours(-10), TimeSpan.FromMinutes(2), 2048), d.Sample);

        var d2 = Converge(Plan(lastScheduled: Now.AddHours(-2)), Facts([ok]));
        Assert.Equal(new ConditionVerdict(BackupPlanConditions.LastBackupSucceeded, true, "Completed", $"Backup b1 completed at {Now.AddHours(-10):O}"), Verdict(d2, BackupPlanConditions.LastBackupSucceeded));
    }

    [Fact]
    public void ABackupNotStartedYet_IsTheNewest_AndOtherPlansBackupsAreNotCounted()
    {
        var done = Backup("b1", BackupPhase.Completed, Now.AddHours(-1), Now.AddHours(-2));
        var pending = Backup("b2", BackupPhase.Pending, null, Now.AddHours(-2));
        pending.Status!.StartedAt = null;
        var other = Backup("x1", BackupPhase.Completed, Now.AddMinutes(-1), Now.AddMinutes(-2), plan: "other");
        var d = Converge(Plan(lastScheduled: Now.AddHours(-2)), Facts([done, pending, other]));
        Assert.Equal(("b2", BackupPhase.Pending), (d.Status.LastBackup?.Name, d.Status.LastBackup?.Phase));
        Assert.Equal(Now.AddHours(-1), d.Status.FirstRecoverabilityPoint);
    }

    [Fact]
    public void Retention_PrunesBeyondKeepLast_NeverTheNewest_AndTheStatusCountsOnlyWhatIsKept()
    {
        var all = Enumerable.Range(0, 4).Select(i => Backup($"b{i}", BackupPhase.Completed, Now.AddDays(-i), Now.AddDays(-i).AddMinutes(-5))).ToList();
        var d = Converge(Plan(lastScheduled: Now.AddHours(-8), retention: new BackupRetention { KeepLast = 2 }), Facts(all));
        Assert.Equal(["b2", "b3"], d.Prune.Select(b => b.Metadata.Name));
        Assert.Equal(Now.AddDays(-1), d.Status.FirstRecoverabilityPoint);
    }

    [Fact]
    public void MaxAge_PrunesOldOnes_AndWakesWhenTheOldestKeptAgesOut()
    {
        var recent = Backup("b0", BackupPhase.Completed, Now.AddHours(-3), Now.AddHours(-4));
        var old = Backup("b1", BackupPhase.Completed, Now.AddDays(-3), Now.AddDays(-3).AddMinutes(-5));
        var d = Converge(Plan(schedule: "0 2 1 1 *", lastScheduled: Now.AddHours(-8), retention: new BackupRetention { MaxAge = "1d" }), Facts([recent, old]));
        Assert.Equal(["b1"], d.Prune.Select(b => b.Metadata.Name));
        // The yearly schedule and its overdue point are far off: b0 ageing out (in 21 h) is the first wake.
        Assert.Equal(TimeSpan.FromHours(21) + TimeSpan.FromMilliseconds(200), d.RequeueAfter);
    }

    [Fact]
    public void AWakeWithinASecond_IsASecond()
    {
        // The next per-minute time is 0.5 s away.
        var now = new DateTime(2026, 1, 4, 10, 0, 59, 500, DateTimeKind.Utc);
        var d = Converge(Plan(schedule: "* * * * *", lastScheduled: new DateTime(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc)),
            new BackupScheduleFacts(now, new BackupOptions(), [], null));
        Assert.Null(d.Create);
        Assert.Equal(TimeSpan.FromSeconds(1), d.RequeueAfter);
    }
}
