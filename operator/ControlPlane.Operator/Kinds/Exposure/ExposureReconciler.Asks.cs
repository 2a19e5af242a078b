using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;

namespace ControlPlane.Operator.Kinds;

/// <summary>A generation waiting for approval is audited once (exposure.approval-requested), so approval.requested reaches its approvers.</summary>
public sealed partial class ExposureReconciler
{
    /// <summary>Appends the ask unless Postgres already has it for this generation (the cache may lag our own status write).</summary>
    async Task RecordAskAsync(Exposure e, Tenant tenant, ApprovalAsk ask, CancellationToken ct)
    {
        var key = KeyOf(e);
        if (await database.AuditExistsAsync(Exposure.KubeKind, key, ask.Action, ask.Reason, e.Metadata.Generation, ct).ConfigureAwait(false)) return;
        await database.AppendAuditAsync(new AuditEntry(AuthorOf(e), ask.Action, Exposure.KubeKind, key, tenant.Metadata.Name, ask.Details), ct).ConfigureAwait(false);
    }
}
