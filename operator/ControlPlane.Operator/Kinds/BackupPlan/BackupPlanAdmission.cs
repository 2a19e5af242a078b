using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Cronos;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>BackupPlans: a five-field schedule, a retention that is a duration, storage the tenant may use, and only the workspace's own database.</summary>
public sealed class BackupPlanAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        Task.FromResult<List<string>>([.. ValidateBackupPlan(r), .. BackupDatabaseOfWorkspace(r)]);

    List<string> ValidateBackupPlan(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var plan = As<BackupPlan>(r.Object);
        var problems = new List<string>();
        try
        {
            CronExpression.Parse(plan.Spec.Schedule, CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            problems.Add($"spec.schedule: \"{plan.Spec.Schedule}\" is not a five-field cron expression ({e.Message})");
        }

        if (r.Operation == "CREATE" && BackupRules.PlanNameProblem(plan.Metadata.Name ?? r.Name) is { } name) problems.Add(name);
        if (plan.Spec.Retention?.MaxAge is { } maxAge && !Durations.TryParse(maxAge, out _)) problems.Add($"spec.retention.maxAge: \"{maxAge}\" is not a duration (e.g. 30d)");
        if (BackupRules.TenantStorageRefusal(plan, settings.Options.Backup) is { } refusal) problems.Add(refusal);
        return problems;
    }

    List<string> BackupDatabaseOfWorkspace(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        if (caches.WorkspaceOfNamespace(r.Namespace) is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var database = As<BackupPlan>(r.Object).Spec.Database;
        if (database is null) return [];
        var own = caches.OwnDatabase(r.Namespace);
        return database == own ? [] : [$"spec.database: \"{database}\" is not this workspace's database ({own ?? "none provisioned yet"}); leave it empty to back up the workspace's own"];
    }
}
