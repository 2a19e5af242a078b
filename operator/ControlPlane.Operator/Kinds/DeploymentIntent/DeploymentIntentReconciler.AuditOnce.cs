using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// A security audit row is appended before the status that reports it. When that status write is lost (a conflict with a
/// lagging cache, a crash), the next pass decides from the old status again: a row of the same episode already on record
/// is not appended a second time.
/// </summary>
public sealed partial class DeploymentIntentReconciler
{
    const string HashMismatch = "deploymentintent.hashMismatch";
    const string ExceptionExpired = "deploymentintent.exceptionExpired";

    async Task<bool> OnRecordAsync(IntentPass pass, AuditEntry audit, CancellationToken ct)
    {
        switch (audit.Action)
        {
            // Tampering denies for good (Denied is final): once in the intent's life, at its reason and generation.
            case HashMismatch:
                return await database.LatestTransitionIsAsync(audit.Kind, audit.ObjectName, [HashMismatch], audit.Action,
                    new JsonObject { ["reason"] = audit.Details["reason"]?.DeepClone(), ["generation"] = audit.Details["generation"]?.DeepClone() }, ct,
                    pass.Intent.Metadata.CreationTimestamp).ConfigureAwait(false);
            // Cover lost: once per cover held (since ExceptionsCovered last turned True); cover regained and lost again is audited again.
            case ExceptionExpired when Conditions.Find(pass.Intent.Status?.Conditions, IntentConditions.ExceptionsCovered)?.LastTransitionTime is { } coveredSince:
                return await database.LatestTransitionIsAsync(audit.Kind, audit.ObjectName, [ExceptionExpired], audit.Action,
                    new JsonObject { ["sha256"] = audit.Details["sha256"]?.DeepClone() }, ct, coveredSince).ConfigureAwait(false);
            default:
                return false;
        }
    }
}
