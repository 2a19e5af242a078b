using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;

namespace ControlPlane.Operator.Kinds;

/// <summary>Deletion: the namespace it created, then its database (Delete) or a locked, retained one, then the record.</summary>
public sealed partial class WorkspaceReconciler
{
    // ---- deletion -------------------------------------------------------------------------------

    static JsonArray Names(IReadOnlyList<string> names) => new(names.Select(n => (JsonNode)JsonValue.Create(n)).ToArray());

    static string AndCopies(IReadOnlyList<string> copies) => copies.Count == 0 ? "" : $" with its restored copies ({string.Join(", ", copies)})";

    /// <summary>Why nothing of this workspace may be deleted yet (it is prod and the guard is not lifted); null when it may.</summary>
    public static string? DeletionHold(Workspace ws) =>
        WorkspaceEnvironments.Effective(ws) == WorkspaceEnvironments.Prod && !DeletionGuardLifted(ws)
            ? $"workspace {ws.Metadata.Name} is prod (spec.environment {ws.Spec.Environment}, recorded {ws.Status?.Environment ?? "not yet"}): its namespace and database are kept " +
              $"until a platform administrator sets the annotation {ApiGroup.AllowDeleteAnnotation}: \"true\""
            : null;

    async Task<ReconcileResult> FinalizeAsync(Workspace ws, CancellationToken ct)
    {
        if (!ObjectWriter.HasFinalizer(ws, ApiGroup.Finalizer)) return ReconcileResult.Done;
        var now = time.GetUtcNow().UtcDateTime;
        var conditions = new ConditionSet(ws.Status?.Conditions, ws.Metadata.Generation, now);
        var status = new WorkspaceStatus { ObservedGeneration = ws.Metadata.Generation, Namespace = ws.Status?.Namespace, Database = ws.Status?.Database, ProviderKeys = ws.Status?.ProviderKeys, Phase = WorkspacePhase.Terminating, Environment = ws.Status?.Environment };

        // The deletion guard, again here: a prod workspace (by spec or as recorded, so a spec lowered past the
        // webhook still counts) keeps its namespace and database until a platform administrator lifts the guard.
        if (DeletionHold(ws) is { } hold)
        {
            status.Conditions = conditions.Set(WorkspaceConditions.Ready, false, WorkspaceReasons.DeletionGuarded, hold).ToList();
            var held = await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
            if (!ReferenceEquals(held, ws)) await events.WarningAsync(ws, WorkspaceReasons.DeletionGuarded, hold, ct).ConfigureAwait(false);
            return ReconcileResult.Done; // the annotation's arrival is a watch event
        }

        // Children first: the namespace takes every namespaced child with it.
        // Only a namespace this workspace created (controlled by its UID) is deleted; anything else is left alone.
        var ns = caches.Namespaces.Get(ws.Metadata.Name);
        if (ns is not null && ChildApplier.SameController(WorkspaceResources.Namespace(ws, ws.Spec.Tenant, ""), ns))
        {
            if (ns.Metadata.DeletionTimestamp is null)
            {
                await api.DeleteAsync(ResourceType.Namespaces, null, ws.Metadata.Name, ct, preconditionUid: ns.Metadata.Uid).ConfigureAwait(false);
                await events.NormalAsync(ws, WorkspaceReasons.Deleting, $"Namespace {ws.Metadata.Name} deleted", ct).ConfigureAwait(false);
            }

            status.Conditions = conditions.Set(WorkspaceConditions.Ready, false, WorkspaceReasons.Terminating, $"Waiting for namespace {ws.Metadata.Name} to be deleted.").ToList();
            await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
            return ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(2)); // the namespace's delete event usually comes first
        }

        WorkspaceRecord? record;
        try
        {
            record = await database.GetWorkspaceAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
            var deleteDatabase = ws.Spec.Database?.DeletionPolicy == "Delete";
            string? dbName = null;
            if (record is not null && record.DeletedAt is null && Placement.Region(options, record.Region).HasServer
                && (await database.GetDatabaseAllocationsAsync(record.Region, ws.Metadata.Name, ct).ConfigureAwait(false))
                    .FirstOrDefault(a => a.State == "active" && a.Tenant == record.TenantName) is { } allocation)
            {
                dbName = allocation.Name;
                // Restored copies and databases in-place restores replaced are the workspace role's too: recorded in controlplane.restores.
                var copies = await regions.RestoredCopiesAsync(record.Region, dbName, dbName,
                    [.. await database.RestoredDatabasesAsync(ws.Metadata.Name, ct).ConfigureAwait(false)], ct).ConfigureAwait(false);
                // One never handed out (no Secret was written before it was provisioned) holds no data: it goes.
                if (deleteDatabase || !allocation.Provisioned)
                {
                    try
                    {
                        // First the copies: a role that still owns a database cannot be dropped (the workspace stayed Terminating).
                        await regions.DropRestoredCopiesAsync(record.Region, allocation.Id, allocation.Provisioned, dbName, dbName, copies, ct).ConfigureAwait(false);
                        await regions.DropAsync(record.Region, allocation.Id, allocation.Provisioned, dbName, dbName, ct).ConfigureAwait(false);
                    }
                    catch (ArgumentException) when (!SpecRules.IsDnsLabel(ws.Metadata.Name))
                    {
                        // A row recorded for a name that is not a DNS label (before names were checked):
                        // its identifier is refused, so no database was ever created under it.
                    }

                    await database.UpdateDatabaseAllocationAsync(allocation.Id, "dropped", allocation.Provisioned, null, new AuditEntry(Actor, "workspace.databaseDropped",
                        "Workspace", ws.Metadata.Name, record.TenantName, new JsonObject { ["database"] = dbName, ["region"] = record.Region, ["restoredCopies"] = Names(copies) }), ct).ConfigureAwait(false);
                    await events.NormalAsync(ws, WorkspaceReasons.DatabaseDeleted, $"Database {dbName}{AndCopies(copies)} and its role dropped (deletionPolicy {ws.Spec.Database?.DeletionPolicy ?? "Retain"})", ct).ConfigureAwait(false);
                }
                else
                {
                    // Retained for its tenant only: nobody logs in until that tenant takes it back (spec.database.reuseRetained).
                    await regions.LockAsync(record.Region, allocation.Id, allocation.Provisioned, dbName, dbName, ct).ConfigureAwait(false);
                    await database.UpdateDatabaseAllocationAsync(allocation.Id, "retained", allocation.Provisioned, null, new AuditEntry(Actor, "workspace.databaseRetained",
                        "Workspace", ws.Metadata.Name, record.TenantName, new JsonObject { ["database"] = dbName, ["region"] = record.Region, ["restoredCopies"] = Names(copies) }), ct).ConfigureAwait(false);
                    await events.NormalAsync(ws, WorkspaceReasons.DatabaseRetained, $"Database {dbName}{AndCopies(copies)} retained and locked (deletionPolicy Retain): its role cannot log in", ct).ConfigureAwait(false);
                }
            }

            foreach (var key in (await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false)).Where(k => k.RetiredAt is null))
            {
                await database.RetireProviderKeyAsync(ws.Metadata.Name, key.Provider, TimeSpan.Zero,
                    new AuditEntry(Actor, "providerKey.retired", "Workspace", ws.Metadata.Name, ws.Spec.Tenant,
                        new JsonObject { ["provider"] = key.Provider, ["fingerprint"] = key.Fingerprint, ["reason"] = "workspace deleted" }), ct).ConfigureAwait(false);
            }

            if (record is not null && record.DeletedAt is null)
            {
                await database.MarkWorkspaceDeletedAsync(ws.Metadata.Name, new AuditEntry(CreatedBy(ws), "workspace.deleted", "Workspace", ws.Metadata.Name, ws.Spec.Tenant,
                    new JsonObject { ["database"] = dbName, ["databaseDeleted"] = deleteDatabase && dbName is not null, ["generation"] = ws.Metadata.Generation }), ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or UnsafeRegionRoleException)
        {
            var message = $"Deletion waits for Postgres: {e.Message}";
            status.Conditions = conditions.Set(WorkspaceConditions.DatabaseReady, false, WorkspaceReasons.DatabaseUnavailable, message)
                .Set(WorkspaceConditions.Ready, false, WorkspaceReasons.Terminating, message).ToList();
            var updated = await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
            if (!ReferenceEquals(updated, ws)) await events.WarningAsync(ws, WorkspaceReasons.DeletionWaiting, message, ct).ConfigureAwait(false);
            return ReconcileResult.Retry(message);
        }

        foreach (var memo in processedKeySecrets.Keys.Where(k => k.StartsWith(ws.Metadata.Name + "/", StringComparison.Ordinal)).ToList())
        {
            processedKeySecrets.TryRemove(memo, out _);
        }

        await writer.RemoveFinalizerAsync(Type, ws, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        logger.LogInformation("workspace {Workspace} finalized", ws.Metadata.Name);
        return ReconcileResult.Done;
    }
}
