using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using Cronos;

namespace ControlPlane.Operator.Policy;

/// <summary>When a plan's schedule fires: the newest missed time to run now (if any) and the next one.</summary>
public sealed record ScheduleDecision(DateTime? RunNow, DateTime? Next, TimeSpan Interval);

/// <summary>
/// Pure rules of backups and restores, shared by the webhook and the reconcilers: storage admission,
/// object keys, schedule arithmetic, retention and recovery-point selection. No I/O here.
/// </summary>
public static class BackupRules
{

    /// <summary>A plan naming its own bucket where tenant storage is not allowed: refused, naming the field and the setting.</summary>
    public static string? TenantStorageRefusal(BackupPlan plan, BackupOptions options) => plan.Spec.Storage?.S3 switch
    {
        null => null,
        _ when !options.AllowTenantStorage =>
            "spec.storage.s3: a plan's own bucket is not allowed here (ControlPlane:Backup:AllowTenantStorage is false); leave spec.storage empty to use the region's platform storage",
        // The endpoint is where the operator connects with the plan's credentials: only one the platform lists (issue 22, class 1).
        { } s3 when !Configuration.UrlPrefixes.Allows(s3.Endpoint, options.TenantStorageEndpoints) =>
            $"spec.storage.s3.endpoint: \"{s3.Endpoint}\" is not under ControlPlane:Backup:TenantStorageEndpoints ({(options.TenantStorageEndpoints.Count == 0 ? "none configured" : string.Join(", ", options.TenantStorageEndpoints))}); the operator connects only to storage the platform lists",
        _ => null,
    };

    /// <summary>
    /// The object key of a backup: prefix/tenant/workspace/plan/name-uid.dump. The Backup's UID makes it
    /// unique by construction: a Backup deleted and recreated under the same name never shares an object.
    /// </summary>
    public static string ObjectKey(string keyPrefix, string tenant, string workspace, Backup backup) =>
        $"{keyPrefix}{tenant}/{workspace}/{backup.Spec.BackupPlan}/{backup.Metadata.Name}-{backup.Metadata.Uid}.dump";

    /// <summary>
    /// Why a plan's name cannot be rendered, naming the field; null when it can: the name is the value of
    /// the label controlplane.io/backup-plan on every scheduled Backup (a label value has at most 63
    /// characters), so a longer one would be admitted and then never back anything up.
    /// </summary>
    public static string? PlanNameProblem(string? name) =>
        name is { Length: > 63 }
            ? $"metadata.name: {name.Length} characters, at most 63: the plan's name is the value of the label {ApiGroup.BackupPlanLabel} on the Backups it schedules (a label value has at most 63)"
            : null;

    /// <summary>The name of the Backup a plan's schedule makes for a time: one per schedule time, so a retried create is idempotent.</summary>
    public static string ScheduledBackupName(string plan, DateTime scheduled)
    {
        var stamp = scheduled.ToString("yyyyMMddHHmm", System.Globalization.CultureInfo.InvariantCulture);
        var head = plan.Length <= 48 ? plan : plan[..39].TrimEnd('-') + "-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(plan)))[..8];
        return $"{head}-{stamp}";
    }

    public static CronExpression ParseSchedule(string schedule) => CronExpression.Parse(schedule, CronFormat.Standard);

    /// <summary>
    /// From the last schedule time (or the plan's creation): the newest time already due, if any (missed
    /// ones before it are skipped, as a CronJob does), and the next time after now. UTC throughout.
    /// </summary>
    public static ScheduleDecision Schedule(CronExpression cron, DateTime lastScheduled, DateTime now)
    {
        DateTime? runNow = null;
        var next = cron.GetNextOccurrence(DateTime.SpecifyKind(lastScheduled, DateTimeKind.Utc));
        // Bounded: a plan that missed months of a per-minute schedule steps over them once.
        var steps = 0;
        while (next is { } n && n <= now && steps++ < 100_000)
        {
            runNow = n;
            next = cron.GetNextOccurrence(n);
        }

        if (next is { } x && x <= now) next = cron.GetNextOccurrence(now);
        var after = next is { } m ? cron.GetNextOccurrence(m) : null;
        var interval = next is { } a && after is { } b ? b - a : TimeSpan.FromDays(1);
        return new ScheduleDecision(runNow, next, interval);
    }

    /// <summary>Overdue: the last success (or, before any, the plan's creation) is older than twice the schedule's interval.</summary>
    public static bool Overdue(DateTime? lastSuccess, DateTime planCreated, TimeSpan interval, DateTime now) =>
        now - (lastSuccess ?? planCreated) > 2 * interval;

    static DateTime? CompletedAt(Backup b) => b.Status?.CompletedAt;

    /// <summary>
    /// The Backups retention removes: Completed ones beyond keepLast (newest first) or older than maxAge,
    /// and Failed ones older than maxAge or beyond keepLast failures; never the newest Completed one,
    /// never one still Pending or Running, never one not made by the schedule.
    /// </summary>
    public static IReadOnlyList<Backup> ToPrune(IEnumerable<Backup> ofPlan, int? keepLast, TimeSpan? maxAge, DateTime now)
    {
        var scheduled = ofPlan.Where(b => b.Metadata.Labels?.TryGetValue(ApiGroup.ScheduledLabel, out var s) == true && s == "true" && b.Metadata.DeletionTimestamp is null).ToList();
        var completed = scheduled.Where(b => b.Status?.Phase == BackupPhase.Completed && CompletedAt(b) is not null)
            .OrderByDescending(b => CompletedAt(b)).ThenByDescending(b => b.Metadata.Name, StringComparer.Ordinal).ToList();
        var failed = scheduled.Where(b => b.Status?.Phase == BackupPhase.Failed)
            .OrderByDescending(b => b.Status?.CompletedAt ?? b.Metadata.CreationTimestamp).ToList();
        bool Old(DateTime? at) => maxAge is { } age && at is { } t && now - t > age;
        var prune = completed.Skip(1).Where((b, i) => (keepLast is { } k && i + 1 >= k) || Old(CompletedAt(b))).ToList();
        prune.AddRange(failed.Where((b, i) => (keepLast is { } k && i >= k) || Old(b.Status?.CompletedAt ?? b.Metadata.CreationTimestamp)));
        return prune;
    }

    /// <summary>The oldest Completed backup kept: the earliest point a restore can return to.</summary>
    public static DateTime? FirstRecoverabilityPoint(IEnumerable<Backup> retainedOfPlan) =>
        retainedOfPlan.Where(b => b.Status?.Phase == BackupPhase.Completed && b.Metadata.DeletionTimestamp is null).Select(CompletedAt).Min();

    /// <summary>The newest Completed backup at or before a time; null when none is.</summary>
    public static Backup? AtOrBefore(IEnumerable<Backup> ofPlan, DateTime target) =>
        ofPlan.Where(b => b.Status?.Phase == BackupPhase.Completed && b.Metadata.DeletionTimestamp is null && CompletedAt(b) <= target)
            .MaxBy(b => CompletedAt(b));

    /// <summary>Lines of a `pg_restore --list` header: ";     Dumped from database version: 15.18 (...)" and ";     Dumped by pg_dump version: 15.18 (...)".</summary>
    public static (string? Server, string? PgDump) VersionsFromList(string listing)
    {
        string? Find(string label) => listing.Split('\n').Where(l => l.StartsWith(';')).Select(l => l.TrimStart(';').Trim())
            .Where(l => l.StartsWith(label, StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()).FirstOrDefault();
        return (Find("Dumped from database version"), Find("Dumped by pg_dump version"));
    }
}
