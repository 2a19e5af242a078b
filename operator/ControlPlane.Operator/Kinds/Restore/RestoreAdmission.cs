using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>Restores: one source and one destination, fixed once running, and only into the workspace's own database prefix.</summary>
public sealed class RestoreAdmission(AdmissionCaches caches) : IAdmissionHandler
{
    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        Task.FromResult<List<string>>([.. ValidateRestore(r), .. RestoreDatabaseOfWorkspace(r)]);

    static List<string> ValidateRestore(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var restore = As<Restore>(r.Object);
        var problems = new List<string>();
        if ((restore.Spec.TargetTime is null) == (restore.Spec.Backup is null)) problems.Add("spec: set exactly one of targetTime or backup");
        if ((restore.Spec.Into.Database is null) == (restore.Spec.Into.InPlace != true)) problems.Add("spec.into: set exactly one of database or inPlace: true");
        var phase = r.OldObject?["status"]?["phase"]?.GetValue<string>();
        if (r.Operation == "UPDATE" && phase is nameof(RestorePhase.Running) or nameof(RestorePhase.Completed) or nameof(RestorePhase.Failed))
        {
            problems.AddRange(Immutable(r.OldObject, r.Object, "backupPlan", "into", "targetTime", "backup").Select(p => p + $" once the restore is {phase}"));
        }

        return problems;
    }

    List<string> RestoreDatabaseOfWorkspace(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        if (caches.WorkspaceOfNamespace(r.Namespace) is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var into = As<Restore>(r.Object).Spec.Into.Database;
        if (into is null) return [];
        var own = caches.OwnDatabase(r.Namespace);
        if (own is not null && into.StartsWith(own + "_", StringComparison.Ordinal) && into.Length <= 63)
        {
            // Inside the prefix, but the name of another workspace's database (issue 22: a restore squatting it).
            return RestoreResources.WorkspaceNameRefusal(into, caches.Workspaces.List()) is { } taken ? [taken.Message] : [];
        }

        return [$"spec.into.database: \"{into}\" must be inside this workspace's database prefix \"{own ?? "(none provisioned yet)"}_\" (at most 63 characters)"];
    }
}
