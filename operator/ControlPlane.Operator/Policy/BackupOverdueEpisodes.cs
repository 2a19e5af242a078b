using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// One overdue episode of a BackupPlan: overdue since <see cref="Since"/> (its last Completed backup, or its creation
/// before any). <see cref="Key"/> names the episode in its audit row, so a pass repeated before the status shows the
/// condition (a failed status write, a lagging cache) finds the row and writes nothing twice.
/// </summary>
public sealed record OverdueEpisode(DateTime Since, TimeSpan Interval, string Message)
{
    public string Key => Since.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// When a BackupPlan's pass records <c>backup.overdue</c> (mapped to the notification event of that name): when its
/// BackupOverdue verdict is True and the condition it had was not, i.e. once as the condition turns True, not on every
/// pass while it stays so. A new episode starts only after a backup completes (the condition goes False) and the plan
/// falls behind again.
/// </summary>
public static class BackupOverdueEpisodes
{
    public static OverdueEpisode? Starts(BackupPlan plan, IReadOnlyList<ConditionVerdict> verdicts, DateTime since, TimeSpan interval)
    {
        var verdict = verdicts.FirstOrDefault(v => v.Type == BackupPlanConditions.BackupOverdue);
        if (verdict?.Status != true) return null;
        var recorded = plan.Status?.Conditions?.FirstOrDefault(c => c.Type == BackupPlanConditions.BackupOverdue);
        return recorded?.Status == "True" ? null : new OverdueEpisode(since, interval, verdict.Message);
    }
}
