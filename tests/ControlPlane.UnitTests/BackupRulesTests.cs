using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The pure backup rules: schedule arithmetic, retention, recovery points, names, listing headers.</summary>
public sealed class BackupRulesTests
{
    static readonly DateTime T0 = new(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc);

    static Backup Completed(string name, DateTime at, bool scheduled = true) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, CreationTimestamp = at.AddMinutes(-1), Labels = scheduled ? new Dictionary<string, string> { [ApiGroup.ScheduledLabel] = "true" } : null },
        Spec = new BackupSpec { BackupPlan = "p" },
        Status = new BackupStatus { Phase = BackupPhase.Completed, CompletedAt = at },
    };

    [Fact]
    public void Schedule_RunsTheNewestMissedTimeOnce_AndKnowsTheNextAndTheInterval()
    {
        var cron = BackupRules.ParseSchedule("0 2 * * *");
        var d = BackupRules.Schedule(cron, T0.AddDays(-3), T0);
        Assert.Equal(new DateTime(2026, 1, 4, 2, 0, 0, DateTimeKind.Utc), d.RunNow);
        Assert.Equal(new DateTime(2026, 1, 5, 2, 0, 0, DateTimeKind.Utc), d.Next);
        Assert.Equal(TimeSpan.FromDays(1), d.Interval);
        var notYet = BackupRules.Schedule(cron, new DateTime(2026, 1, 4, 2, 0, 0, DateTimeKind.Utc), T0);
        Assert.Null(notYet.RunNow);
        Assert.True(BackupRules.Overdue(T0.AddDays(-2.5), T0.AddDays(-10), d.Interval, T0));
        Assert.False(BackupRules.Overdue(T0.AddDays(-1.5), T0.AddDays(-10), d.Interval, T0));
    }

    [Fact]
    public void Retention_KeepLastAndMaxAgeBothApply_TheNewestCompletedIsNeverPruned_HandMadeOnesAreLeft()
    {
        var all = Enumerable.Range(0, 5).Select(i => Completed($"b{i}", T0.AddDays(-i))).ToList();
        all.Add(Completed("by-hand", T0.AddDays(-30), scheduled: false));
        Assert.Equal(["b2", "b3", "b4"], BackupRules.ToPrune(all, 2, null, T0).Select(b => b.Metadata.Name));
        Assert.Equal(["b4"], BackupRules.ToPrune(all, null, TimeSpan.FromDays(3.5), T0).Select(b => b.Metadata.Name));
        Assert.Equal(["b3", "b4"], BackupRules.ToPrune(all, 4, TimeSpan.FromDays(2.5), T0).Select(b => b.Metadata.Name).Order());
        // Everything too old: the newest Completed stays, so a restore is always possible.
        Assert.Equal(["b1", "b2", "b3", "b4"], BackupRules.ToPrune(all, null, TimeSpan.FromHours(1), T0.AddDays(10)).Select(b => b.Metadata.Name));
        var kept = all.Where(b => b.Metadata.Name is "b0" or "b1").ToList();
        Assert.Equal(T0.AddDays(-1), BackupRules.FirstRecoverabilityPoint(kept));
        Assert.Equal("b1", BackupRules.AtOrBefore(all, T0.AddHours(-12))?.Metadata.Name);
        Assert.Null(BackupRules.AtOrBefore(kept, T0.AddDays(-2)));
    }

    [Fact]
    public void Names_Keys_Headers_AndTenantStorage()
    {
        Assert.Equal("nightly-202601041000", BackupRules.ScheduledBackupName("nightly", T0));
        var longName = BackupRules.ScheduledBackupName(new string('a', 60), T0);
        Assert.True(longName.Length <= 63, longName);
        var b = Completed("x", T0);
        b.Metadata.Uid = "u-1";
        Assert.Equal("eu/acme/acme-dev/p/x-u-1.dump", BackupRules.ObjectKey("eu/", "acme", "acme-dev", b));
        var (server, dump) = BackupRules.VersionsFromList(";\n; Archive created at 2026-01-04\n;     Dumped from database version: 15.18 (Debian)\n;     Dumped by pg_dump version: 15.18 (Debian)\n;\n");
        Assert.Equal("15.18 (Debian)", server);
        Assert.Equal("15.18 (Debian)", dump);
        var plan = new BackupPlan { Spec = new BackupPlanSpec { Storage = new BackupStorage { S3 = new S3Storage() } } };
        Assert.Contains("spec.storage.s3", BackupRules.TenantStorageRefusal(plan, new BackupOptions()));
        plan.Spec.Storage.S3.Endpoint = "https://s3.eu.example.com";
        Assert.Contains("spec.storage.s3.endpoint", BackupRules.TenantStorageRefusal(plan, new BackupOptions { AllowTenantStorage = true }));
        Assert.Null(BackupRules.TenantStorageRefusal(plan, new BackupOptions { AllowTenantStorage = true, TenantStorageEndpoints = ["https://s3.eu.example.com/"] }));
        // Issue 22: the endpoint is where the operator connects; a look-alike host or another port is not the listed one.
        plan.Spec.Storage.S3.Endpoint = "https://s3.eu.example.com.attacker.net";
        Assert.Contains("TenantStorageEndpoints", BackupRules.TenantStorageRefusal(plan, new BackupOptions { AllowTenantStorage = true, TenantStorageEndpoints = ["https://s3.eu.example.com"] }));
        plan.Spec.Storage.S3.Endpoint = "http://10.0.0.1:5432";
        Assert.Contains("spec.storage.s3.endpoint", BackupRules.TenantStorageRefusal(plan, new BackupOptions { AllowTenantStorage = true, TenantStorageEndpoints = ["https://s3.eu.example.com"] }));
        Assert.Equal("/opt/pg/bin/pg_restore", new BackupOptions { PgDumpPath = "/opt/pg/bin/pg_dump" }.EffectivePgRestore);
    }
}
