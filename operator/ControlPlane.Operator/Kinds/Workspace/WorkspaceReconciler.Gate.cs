using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;

namespace ControlPlane.Operator.Kinds;

/// <summary>What is checked before anything is provisioned, and how a refusal or a Postgres failure is shown.</summary>
public sealed partial class WorkspaceReconciler
{
    sealed record Refusal(string Reason, string Message, bool Security, string Condition = WorkspaceConditions.Ready);

    /// <summary>Rules checked before anything is provisioned.</summary>
    Refusal? Gate(Workspace ws, Tenant? tenant, WorkspaceRecord? record, QuotaGrant? grant)
    {
        // The same rule as admission; the tenant prefix and allowlist bind new workspaces only (not yet provisioned).
        var isNew = record is null || record.DeletedAt is not null;
        if (WorkspaceNames.Problem(ws.Metadata.Name, ws.Spec.Tenant, options, isNew, caches.Tenants.List().Select(t => t.Metadata.Name)) is { } badName)
        {
            return new(WorkspaceNames.Reserved(ws.Metadata.Name, options) is null ? WorkspaceReasons.NameNotAllowed : WorkspaceReasons.ReservedName, badName, Security: true, WorkspaceConditions.NamespaceReady);
        }

        if (tenant is null)
        {
            return new(WorkspaceReasons.TenantNotFound, $"spec.tenant: tenant \"{ws.Spec.Tenant}\" does not exist", Security: true);
        }

        if (record is not null && record.DeletedAt is null && record.TenantName != ws.Spec.Tenant)
        {
            return new(WorkspaceReasons.ImmutableFieldChanged, $"spec.tenant: is immutable; it was \"{record.TenantName}\" and is now \"{ws.Spec.Tenant}\". Set it back.", Security: true);
        }

        var region = Placement.WorkspaceRegion(ws, tenant);
        if (!Placement.IsTenantRegion(region, tenant))
        {
            return new(WorkspaceReasons.RegionMismatch, $"spec.region: \"{region}\" differs from tenant {tenant.Metadata.Name}'s region \"{tenant.Spec.Region}\"; a workspace is pinned to its tenant's region", Security: true);
        }

        if (record is not null && record.DeletedAt is null && record.Region != region)
        {
            return new(WorkspaceReasons.ImmutableFieldChanged, $"spec.region: is immutable; it was \"{record.Region}\" and is now \"{region}\". Set it back.", Security: true);
        }

        if (!Placement.Region(options, region).HasServer)
        {
            return new(WorkspaceReasons.InvalidRegion, $"spec.region: \"{region}\" has no database server configured", Security: false);
        }

        var provisioned = record is not null && record.DeletedAt is null;
        if (!provisioned && tenant.Metadata.DeletionTimestamp is not null)
        {
            return new(WorkspaceReasons.TenantTerminating, $"spec.tenant: tenant {tenant.Metadata.Name} is being deleted: it gets no new workspace", Security: false);
        }

        if (!provisioned && tenant.Spec.Suspended)
        {
            return new(WorkspaceReasons.TenantSuspended, $"tenant {tenant.Metadata.Name} is suspended: it gets no new workspace", Security: false);
        }

        if (!provisioned && grant!.OverWorkspaceLimit)
        {
            return new(WorkspaceReasons.MaxWorkspacesExceeded, $"tenant {tenant.Metadata.Name} allows {tenant.Spec.Quota!.MaxWorkspaces} workspace(s) (spec.quota.maxWorkspaces) and this one is past it",
                Security: false, WorkspaceConditions.QuotaReady);
        }

        return null;
    }

    async Task<ReconcileResult> RefuseAsync(Workspace ws, Tenant? tenant, WorkspaceStatus status, ConditionSet conditions, Refusal refusal, CancellationToken ct)
    {
        if (refusal.Condition != WorkspaceConditions.Ready) conditions.Set(refusal.Condition, false, refusal.Reason, refusal.Message);
        conditions.Set(WorkspaceConditions.Ready, false, refusal.Reason, refusal.Message);
        status.Phase = WorkspacePhase.Failed;
        status.Conditions = conditions.ToList();
        var previous = ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.Ready);
        var isNew = previous?.Reason != refusal.Reason || previous.Message != refusal.Message;
        if (isNew && refusal.Security)
        {
            try
            {
                // The cache may lag our own status write: Postgres says whether this refusal is already on record.
                if (!await database.AuditExistsAsync("Workspace", ws.Metadata.Name, "workspace.refused", refusal.Reason, ws.Metadata.Generation, ct).ConfigureAwait(false))
                {
                    await database.AppendAuditAsync(new AuditEntry(CreatedBy(ws), "workspace.refused", "Workspace", ws.Metadata.Name, tenant?.Metadata.Name ?? ws.Spec.Tenant,
                        new JsonObject { ["reason"] = refusal.Reason, ["generation"] = ws.Metadata.Generation, ["specTenant"] = ws.Spec.Tenant, ["specRegion"] = ws.Spec.Region },
                        Severity: "security"), ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return await DatabaseDownAsync(ws, status, conditions, e, ct).ConfigureAwait(false);
            }
        }

        await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
        if (isNew) await events.WarningAsync(ws, refusal.Reason, refusal.Message, ct).ConfigureAwait(false);
        // Re-triggered by the tenant's or the workspace's own changes; nothing to retry meanwhile.
        return ReconcileResult.Done;
    }

    /// <summary>Postgres failed: unreachable is retried with backoff; anything else is terminal until the spec changes.</summary>
    async Task<ReconcileResult> DatabaseDownAsync(Workspace ws, WorkspaceStatus status, ConditionSet conditions, Exception e, CancellationToken ct)
    {
        var failure = PostgresFailure.Of(e, "The system of record or the region's database server");
        conditions.Set(WorkspaceConditions.DatabaseReady, false, failure.Reason, failure.Message).Set(WorkspaceConditions.Ready, false, failure.Reason, failure.Message);
        status.Phase = ws.Status?.Phase ?? WorkspacePhase.Creating;
        status.Conditions = conditions.ToList();
        var updated = await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
        if (!ReferenceEquals(updated, ws)) await events.WarningAsync(ws, failure.Reason, failure.Message, ct).ConfigureAwait(false);
        return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
    }
}
