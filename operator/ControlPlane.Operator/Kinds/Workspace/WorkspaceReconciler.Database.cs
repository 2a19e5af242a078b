using System.Text.Json.Nodes;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The workspace's database, its role and credentials Secret, on its region's server.</summary>
public sealed partial class WorkspaceReconciler
{
    /// <summary>
    /// The database, its login role and the credentials Secret. The name is allocated once and recorded
    /// (controlplane.workspace_databases), then read back; a database or role of that name this
    /// workspace did not make, or one retained from a deleted workspace, is never adopted. The role's
    /// password is reset whenever the Secret is missing, asks for rotation, or no longer holds the
    /// password we set; Postgres is changed first and the Secret written last, so a crash in between
    /// is repaired by the next pass.
    /// </summary>
    async Task<DatabaseOutcome> ReconcileDatabaseAsync(Changes log, Workspace ws, string region, WorkspaceStatus status, ConditionSet conditions, CancellationToken ct)
    {
        if (ws.Spec.Database?.Enabled == false)
        {
            status.Database = null;
            conditions.Set(WorkspaceConditions.DatabaseReady, true, WorkspaceReasons.Disabled, "spec.database.enabled is false: no database.");
            return DatabaseOutcome.Ready;
        }

        var extensions = ws.Spec.Database?.Extensions ?? [];
        var placement = Placement.Region(options, region);
        var disallowed = placement.DisallowedExtensions(extensions);
        if (disallowed.Count > 0)
        {
            var allowed = placement.AllowedExtensions;
            return await DatabaseNotReadyAsync(ws, conditions, WorkspaceReasons.ExtensionNotAllowed,
                string.Join("; ", disallowed.Select(d => $"spec.database.extensions[{d.Index}]: \"{d.Name}\" is not allowed in region {region}")) +
                $" (allowed: {string.Join(", ", allowed)})", ct).ConfigureAwait(false);
        }

        var secretKey = $"{ws.Metadata.Name}/{WorkspaceResources.SecretName(ws)}";
        // A missing Secret resets the password, so make sure it is missing and not just not yet in the cache.
        var cached = caches.Secrets.Get(secretKey)
                     ?? await api.TryGetAsync<V1Secret>(Secrets, ws.Metadata.Name, WorkspaceResources.SecretName(ws), ct).ConfigureAwait(false);
        if (cached is not null && cached.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == ws.Metadata.Uid) != true)
        {
            // The tenant can edit this Secret, so a copy without our controller reference is not provably ours: it is
            // not adopted, and backups and restores refuse it (BackupTargets.CredentialsTampering); deleting it has it recreated.
            return await DatabaseNotReadyAsync(ws, conditions, WorkspaceReasons.CredentialsTampered,
                $"Secret {ws.Metadata.Name}/{cached.Metadata.Name} no longer carries this workspace's controller reference: it is not adopted and no backup or restore runs with it; delete it and a new one is written with a new password", ct).ConfigureAwait(false);
        }

        var existingPassword = cached?.Data?.TryGetValue("password", out var pw) == true ? Encoding.UTF8.GetString(pw) : null;
        var rotate = cached?.Metadata.Annotations?.TryGetValue(ApiGroup.RotateAnnotation, out var r) == true && r == "true";
        var intact = existingPassword is not null
                     && cached!.Metadata.Annotations?.TryGetValue(ApiGroup.PasswordHashAnnotation, out var h) == true
                     && h == WorkspaceResources.PasswordHash(existingPassword);
        var reset = cached is null || rotate || !intact;
        string dbName = "";
        try
        {
            var (allocation, reused, refusal) = await DatabaseAllocationAsync(ws, region, ct).ConfigureAwait(false);
            if (refusal is not null) return await DatabaseNotReadyAsync(ws, conditions, refusal.Reason, refusal.Message, ct).ConfigureAwait(false);
            dbName = allocation!.Name;
            reset |= reused; // a retained database comes back only with a new password
            var password = reset ? RegionDatabases.NewPassword() : existingPassword!;
            DatabaseChanges changes;
            try
            {
                changes = await regions.EnsureAsync(region, allocation.Id, allocation.Provisioned, dbName, dbName, reset ? password : null, password, extensions, ct).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidPassword && !reset)
            {
                // The tenant changed its role's password itself: the Secret's no longer works, so reset it.
                reset = true;
                password = RegionDatabases.NewPassword();
                changes = await regions.EnsureAsync(region, allocation.Id, allocation.Provisioned, dbName, dbName, password, password, extensions, ct).ConfigureAwait(false);
            }

            if (changes.DatabaseCreated) await events.NormalAsync(ws, WorkspaceReasons.DatabaseCreated, $"Database {dbName} created on the {region} server", ct).ConfigureAwait(false);
            if (changes.ExtensionsCreated.Count > 0)
            {
                await events.NormalAsync(ws, WorkspaceReasons.ExtensionsCreated, $"Extensions created in {dbName}: {string.Join(", ", changes.ExtensionsCreated)}", ct).ConfigureAwait(false);
            }

            if (changes.Any || reset || !allocation.Provisioned)
            {
                // The pass that completes an allocation records its provisioning, even when a pass cut short
                // (a killed operator) created the role: otherwise that provisioning is never on the trail.
                var audit = new AuditEntry(Actor, allocation.Provisioned && reset && !changes.RoleCreated ? "workspace.databasePasswordReset" : "workspace.databaseProvisioned",
                    "Workspace", ws.Metadata.Name, ws.Spec.Tenant, new JsonObject
                    {
                        ["database"] = dbName, ["region"] = region, ["roleCreated"] = changes.RoleCreated, ["databaseCreated"] = changes.DatabaseCreated,
                        ["extensions"] = changes.ExtensionsCreated.Count, ["rotationRequested"] = rotate, ["reusedRetained"] = reused,
                    });
                // From here on the role and database are this allocation's, whatever their mark says.
                if (!allocation.Provisioned) await database.UpdateDatabaseAllocationAsync(allocation.Id, "active", true, null, audit, ct).ConfigureAwait(false);
                else await database.AppendAuditAsync(audit, ct).ConfigureAwait(false);
            }

            var endpoint = regions.Endpoint(region);
            var secret = WorkspaceResources.DatabaseSecret(ws, endpoint.Host, endpoint.Port, dbName, dbName, password);
            await ApplyAsync(log, ws, Secrets, secret, cached, ["data", "type"], ct, removeAnnotations: [ApiGroup.RotateAnnotation]).ConfigureAwait(false);
            if (rotate) await events.NormalAsync(ws, WorkspaceReasons.PasswordRotated, $"Password of role {dbName} rotated; Secret {secret.Metadata.Name} updated", ct).ConfigureAwait(false);
            status.Database = new WorkspaceDatabaseStatus { Host = endpoint.Host, Name = dbName, SecretName = secret.Metadata.Name };
            conditions.Set(WorkspaceConditions.DatabaseReady, true, WorkspaceReasons.Ready, $"Database {dbName} on the {region} server; credentials in Secret {secret.Metadata.Name}.");
            return DatabaseOutcome.Ready;
        }
        catch (DatabaseConflictException e)
        {
            return await DatabaseNotReadyAsync(ws, conditions, e.Reason, e.Message, ct).ConfigureAwait(false);
        }
        catch (SessionNotVerifiedException e)
        {
            return await DatabaseNotReadyAsync(ws, conditions, WorkspaceReasons.SessionNotVerified, e.Message, ct).ConfigureAwait(false);
        }
        catch (UnsafeRegionRoleException e)
        {
            logger.LogError("region {Region}: {Problem}", region, e.Message);
            return await DatabaseNotReadyAsync(ws, conditions, WorkspaceReasons.UnsafeRegionRole, e.Message, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (PostgresFailure.Of(e, "").Transient)
        {
            conditions.Set(WorkspaceConditions.DatabaseReady, false, WorkspaceReasons.DatabaseUnavailable, $"Region {region} database server unreachable: {e.Message}");
            return DatabaseOutcome.Unavailable;
        }
        catch (PostgresException e)
        {
            // The server refused a statement: its class and message (our statements carry no password, only a verifier).
            return await DatabaseNotReadyAsync(ws, conditions, WorkspaceReasons.ProvisioningFailed,
                $"{(dbName.Length > 0 ? dbName : ws.Metadata.Name)}: SQLSTATE {e.SqlState}: {e.MessageText}", ct).ConfigureAwait(false);
        }
    }

    sealed record DatabaseRefusal(string Reason, string Message);

    /// <summary>
    /// The workspace's recorded database: its active allocation; else a retained one of the same name,
    /// taken back only by the same tenant asking for it (spec.database.reuseRetained); else a new name,
    /// the first candidate no one in the region has recorded.
    /// </summary>
    async Task<(DatabaseAllocation? Allocation, bool Reused, DatabaseRefusal? Refusal)> DatabaseAllocationAsync(Workspace ws, string region, CancellationToken ct)
    {
        var name = ws.Metadata.Name;
        var recorded = await database.GetDatabaseAllocationsAsync(region, name, ct).ConfigureAwait(false);
        if (recorded.FirstOrDefault(a => a.State == "active") is { } active)
        {
            return active.Tenant == ws.Spec.Tenant
                ? (active, false, null)
                : (null, false, new(WorkspaceReasons.DatabaseConflict, $"database {active.Name} is recorded for another tenant's workspace named {name}; it is left untouched"));
        }

        if (recorded.FirstOrDefault(a => a.State == "retained") is { } retained)
        {
            if (retained.Tenant != ws.Spec.Tenant)
            {
                return (null, false, new(WorkspaceReasons.RetainedDatabaseExists,
                    $"database {retained.Name} of a deleted workspace named {name} is retained for another tenant and is never given to a new workspace; choose another workspace name (spec.database.reuseRetained cannot take it)"));
            }

            if (ws.Spec.Database?.ReuseRetained != true)
            {
                return (null, false, new(WorkspaceReasons.RetainedDatabaseExists,
                    $"database {retained.Name} of a deleted workspace named {name} is retained for this tenant; set spec.database.reuseRetained: true to take it back (with a new password), or have an administrator drop it"));
            }

            await database.UpdateDatabaseAllocationAsync(retained.Id, "active", retained.Provisioned, ws.Metadata.Uid ?? "",
                new AuditEntry(CreatedBy(ws), "workspace.databaseReused", "Workspace", name, ws.Spec.Tenant,
                    new JsonObject { ["database"] = retained.Name, ["region"] = region }, Severity: "security"), ct).ConfigureAwait(false);
            return (retained with { State = "active", WorkspaceUid = ws.Metadata.Uid ?? "" }, true, null);
        }

        string[] candidates = [RegionDatabases.DatabaseName(name), .. Enumerable.Range(0, 4).Select(_ => RegionDatabases.AlternativeDatabaseName(name))];
        // A name the server already has (a restore's copy inside another workspace's prefix, anything made by hand) is never
        // given to a workspace; names restores recorded but have not made yet are skipped by the allocation itself.
        var onServer = await regions.ExistingNamesAsync(region, candidates, ct).ConfigureAwait(false);
        var allocated = await database.AllocateDatabaseAsync(region, name, ws.Metadata.Uid ?? "", ws.Spec.Tenant, [.. candidates.Where(c => !onServer.Contains(c))], ct).ConfigureAwait(false);
        return allocated is null
            ? (null, false, new(WorkspaceReasons.DatabaseConflict, $"no free database name for workspace {name} in region {region}"))
            : (allocated, false, null);
    }

    /// <summary>Ready; unreachable for now (retried on a backoff); or refused until the spec (or the server) changes.</summary>
    enum DatabaseOutcome { Ready, Unavailable, Refused }

    /// <summary>DatabaseReady=False with a reason that retrying will not fix by itself; a Warning Event when the message is new.</summary>
    async Task<DatabaseOutcome> DatabaseNotReadyAsync(Workspace ws, ConditionSet conditions, string reason, string message, CancellationToken ct)
    {
        conditions.Set(WorkspaceConditions.DatabaseReady, false, reason, message);
        if (ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.DatabaseReady)?.Message != message)
        {
            await events.WarningAsync(ws, reason, message, ct).ConfigureAwait(false);
        }

        return DatabaseOutcome.Refused;
    }
}
