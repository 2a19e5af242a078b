using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>Backups: in a workspace, of a plan that never changes.</summary>
public sealed class BackupAdmission(AdmissionCaches caches) : IAdmissionHandler
{
    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        Task.FromResult<List<string>>([.. ValidateBackup(r), .. InWorkspace(r, caches)]);

    static List<string> ValidateBackup(AdmissionRequest r) =>
        r.Operation == "UPDATE" && r.Object is not null ? Immutable(r.OldObject, r.Object, "backupPlan") : [];
}
