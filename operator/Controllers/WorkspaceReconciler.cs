using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Runtime;
using ControlPlane.Operator.Store;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Operator.Controllers;

public static class WorkspaceConditions
{
    public const string NamespaceReady = "NamespaceReady";
    public const string AccessReady = "AccessReady";
    public const string QuotaReady = "QuotaReady";
    public const string NetworkReady = "NetworkReady";
    public const string DatabaseReady = "DatabaseReady";
    public const string ProviderKeysReady = "ProviderKeysReady";
    public const string Ready = "Ready";
}

/// <summary>The caches the Workspace reconciler reads instead of the API server.</summary>
public sealed record WorkspaceCaches(
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    Informer<V1Namespace> Namespaces,
    Informer<V1RoleBinding> RoleBindings,
    Informer<V1ResourceQuota> Quotas,
    Informer<V1LimitRange> LimitRanges,
    Informer<V1NetworkPolicy> NetworkPolicies,
    Informer<V1ConfigMap> ConfigMaps,
    Informer<V1Secret> Secrets,
    Informer<PartialObjectMetadata> AllSecretsMetadata);

/// <summary>
/// Converges a Workspace: its namespace, member RBAC, quota and limits, default-deny network policy,
/// settings ConfigMap, a database with its credentials Secret on its region's server, and its
/// provider keys; records it in the system of record. Region and tenant are pinned; a suspended or
/// full tenant gets no new workspace. Every write happens only when the cached state differs.
/// </summary>
public sealed class WorkspaceReconciler(
    WorkspaceCaches caches,
    KubeApi api,
    SystemDatabase database,
    RegionDatabases regions,
    KeyVault? vault,
    ObjectWriter writer,
    ChildApplier applier,
    EventRecorder events,
    ControlPlaneOptions options,
    TimeProvider time,
    ILogger<WorkspaceReconciler> logger) : IReconciler<Workspace>
{
    public static readonly ResourceType Type = ResourceType.For<Workspace>(namespaced: false);
    public static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);
    public static readonly ResourceType Quotas = new("", "v1", "resourcequotas", "ResourceQuota", true);
    public static readonly ResourceType LimitRanges = new("", "v1", "limitranges", "LimitRange", true);
    public static readonly ResourceType NetworkPolicies = new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true);
    public static readonly ResourceType ConfigMaps = new("", "v1", "configmaps", "ConfigMap", true);
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "Secret", true);
    const string Actor = "controlplane-operator";

    // Provider-key Secrets already processed, by resourceVersion: an unchanged Secret is not read again.
    readonly ConcurrentDictionary<string, string> processedKeySecrets = new();

    readonly QuotaLedger quotaLedger = new(caches.Workspaces);

    // ---- watch mappings -------------------------------------------------------------------------

    public static IEnumerable<string> OwnerOf(k8s.IKubernetesObject<V1ObjectMeta> obj) =>
        obj.Metadata.Labels?.TryGetValue(WorkspaceResources.WorkspaceLabel, out var ws) == true ? [ws] : [];

    public IEnumerable<string> WorkspacesOfTenant(Tenant tenant) =>
        caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).Select(w => w.Metadata.Name);

    /// <summary>
    /// Siblings share the tenant's aggregate quota, so some changes of one re-decide others: a quota
    /// change or a deletion frees or takes room from everyone; an admission can only take room from
    /// those not yet admitted (and moves the admitted one ahead of them), and only when the tenant
    /// cannot fit everyone. A newcomer queues behind the admitted ones and changes nothing for them.
    /// </summary>
    public IEnumerable<string> SiblingsAffectedBy(InformerEvent<Workspace> e)
    {
        var tenant = caches.Tenants.Get(e.Object.Spec.Tenant);
        var q = tenant?.Spec.Quota;
        if (q is null || (q.Cpu is null && q.Memory is null && q.Storage is null && q.MaxWorkspaces is null)) return [];
        if (e.Type == InformerEventType.Added) return [];
        var siblings = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Spec.Tenant).Where(w => w.Metadata.Name != e.Object.Metadata.Name);
        var freedOrTaken = e.Type == InformerEventType.Deleted
            || !SameQuota(e.Old?.Spec.Quota, e.Object.Spec.Quota)
            || e.Old?.Metadata.DeletionTimestamp != e.Object.Metadata.DeletionTimestamp;
        if (freedOrTaken) return siblings.Select(w => w.Metadata.Name);
        if (e.Old?.Status?.AdmittedAt == e.Object.Status?.AdmittedAt) return [];
        // While the tenant has room for everyone's full ask, an admission changes no one's grant
        // (a converge of a tenant's workspaces would otherwise re-decide each newcomer per admission).
        var all = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Spec.Tenant);
        if (WorkspaceResources.FitsEveryone(tenant!, all)) return [];
        // The admitted one moves ahead of those still waiting, so its own grant is decided again too.
        return siblings.Where(w => w.Status?.AdmittedAt is null).Select(w => w.Metadata.Name).Append(e.Object.Metadata.Name);
    }

    /// <summary>Whether two quota asks are the same; either may be absent (a workspace without spec.quota).</summary>
    public static bool SameQuota(WorkspaceQuota? a, WorkspaceQuota? b) =>
        ReferenceEquals(a, b) || (a is not null && b is not null && k8s.KubernetesJson.Serialize(a) == k8s.KubernetesJson.Serialize(b));

    public IEnumerable<string> WorkspaceReferencingSecret(PartialObjectMetadata secret)
    {
        var ws = caches.Workspaces.Get(secret.Metadata.NamespaceProperty ?? "");
        return ws?.Spec.ProviderKeys?.Any(k => k.SecretRef.Name == secret.Metadata.Name) == true ? [ws.Metadata.Name] : [];
    }

    // ---- reconcile ------------------------------------------------------------------------------

    public async Task<ReconcileResult> ReconcileAsync(Workspace ws, CancellationToken ct)
    {
        try
        {
            return await ReconcilePassAsync(ws, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (ReconcileErrors.ShouldReport(e, ct))
        {
            // Whatever failed, the status must not keep saying Ready for a generation we could not converge.
            await ReconcileErrors.ReportAsync(writer, Type, ws, w => w.Status?.Conditions, (w, conditions) => new WorkspaceStatus
            {
                ObservedGeneration = w.Metadata.Generation,
                Phase = w.Metadata.DeletionTimestamp is not null ? "Terminating" : w.Status?.Phase ?? "Creating",
                Namespace = w.Status?.Namespace,
                Database = w.Status?.Database,
                ProviderKeys = w.Status?.ProviderKeys,
                AdmittedAt = w.Status?.AdmittedAt,
                Conditions = conditions,
            }, WorkspaceConditions.Ready, ReconcileErrors.Describe(e), events, time, logger, ct).ConfigureAwait(false);
            throw;
        }
    }

    async Task<ReconcileResult> ReconcilePassAsync(Workspace ws, CancellationToken ct)
    {
        if (ws.Metadata.DeletionTimestamp is not null) return await FinalizeAsync(ws, ct).ConfigureAwait(false);

        // The name is the namespace's and the database's: one that is not a DNS label is refused
        // before anything is written (no finalizer, no row), so deleting it never depends on us.
        if (SpecRules.ObjectName(ws.Metadata.Name) is { } badName)
        {
            var refusedStatus = new WorkspaceStatus { ObservedGeneration = ws.Metadata.Generation };
            var refusedConditions = new ConditionSet(ws.Status?.Conditions, ws.Metadata.Generation, time.GetUtcNow().UtcDateTime);
            return await RefuseAsync(ws, null, refusedStatus, refusedConditions, new Refusal("InvalidName", badName, Security: false), ct).ConfigureAwait(false);
        }

        ws = await writer.AddFinalizerAsync(Type, ws, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        var log = new Changes();

        var now = time.GetUtcNow().UtcDateTime;
        var conditions = new ConditionSet(ws.Status?.Conditions, ws.Metadata.Generation, now);
        var status = new WorkspaceStatus
        {
            ObservedGeneration = ws.Metadata.Generation,
            Namespace = ws.Status?.Namespace,
            Database = ws.Status?.Database,
            ProviderKeys = ws.Status?.ProviderKeys,
            AdmittedAt = ws.Status?.AdmittedAt,
        };

        WorkspaceRecord? record;
        try
        {
            record = await database.GetWorkspaceAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return await DatabaseDownAsync(ws, status, conditions, e, ct).ConfigureAwait(false);
        }

        var tenant = caches.Tenants.Get(ws.Spec.Tenant);
        // One quota decision per pass: the gate (maxWorkspaces) and the ResourceQuota both use it.
        var grant = tenant is null ? null : quotaLedger.GrantFor(ws, tenant);
        var gate = Gate(ws, tenant, record, grant);
        if (gate is { } refused) return await RefuseAsync(ws, tenant, status, conditions, refused, ct).ConfigureAwait(false);
        ArgumentNullException.ThrowIfNull(grant); // the gate refuses a missing tenant
        var region = WorkspaceResources.EffectiveRegion(ws, tenant!);

        // The namespace first: one that exists and was not created for this workspace is never adopted.
        try
        {
            await ApplyAsync(log, ws, ResourceType.Namespaces, WorkspaceResources.Namespace(ws, tenant!.Metadata.Name, region),
                caches.Namespaces.Get(ws.Metadata.Name), [], ct).ConfigureAwait(false);
        }
        catch (ForeignObjectException e) when (e.Kind == ResourceType.Namespaces.Kind)
        {
            return await RefuseAsync(ws, tenant, status, conditions,
                new Refusal("NamespaceConflict", $"metadata.name: {e.Message}; choose another workspace name", Security: true, WorkspaceConditions.NamespaceReady), ct).ConfigureAwait(false);
        }

        status.AdmittedAt ??= WorkspaceResources.AdmissionTime(time.GetUtcNow());

        // The row records intent before anything is made outside Kubernetes (the workspace's database).
        // A new workspace without a database makes nothing there, so its row is written once, at the end
        // of the pass, in the state the pass reached: one audited write instead of "creating" then "ready".
        var recordAtEnd = ws.Spec.Database?.Enabled == false && (record is null || record.DeletedAt is not null);
        if (!recordAtEnd)
        {
            try
            {
                record = await SyncRecordAsync(ws, tenant!, region, record, "creating", ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return await DatabaseDownAsync(ws, status, conditions, e, ct).ConfigureAwait(false);
            }
        }

        // Namespace and settings.
        await ApplyAsync(log, ws, ConfigMaps, WorkspaceResources.ConfigMap(ws, tenant), caches.ConfigMaps.Get($"{ws.Metadata.Name}/{WorkspaceResources.ConfigMapName}"), ["data"], ct).ConfigureAwait(false);
        status.Namespace = ws.Metadata.Name;
        // A stable reason: a condition that differs between the creating pass and the next one is a wasted status write.
        conditions.Set(WorkspaceConditions.NamespaceReady, true, "Ready", $"Namespace {ws.Metadata.Name} is labelled for tenant {tenant.Metadata.Name} in region {region}.");

        // Members.
        var bindingFailures = await ApplyBindingsAsync(log, ws, tenant, ct).ConfigureAwait(false);
        var accessOk = bindingFailures.Count == 0;
        if (accessOk)
        {
            conditions.Set(WorkspaceConditions.AccessReady, true, "Bound",
                $"{ws.Spec.Members?.Count ?? 0} member(s) and {tenant.Spec.Owners?.Count ?? 0} tenant owner(s) bound.");
        }
        else
        {
            var message = string.Join("; ", bindingFailures.Select(f => f.Message));
            var previous = ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.AccessReady);
            conditions.Set(WorkspaceConditions.AccessReady, false, "BindingFailed", message);
            if (previous?.Message != message || previous.ObservedGeneration != ws.Metadata.Generation)
            {
                await events.WarningAsync(ws, "BindingFailed", message, ct).ConfigureAwait(false);
            }
        }

        // Quota.
        await ApplyQuotaAsync(log, ws, grant, ct).ConfigureAwait(false);
        if (grant.Exceeded)
        {
            var message = string.Join("; ", grant.Invalid.Concat(grant.Shortfalls));
            var reason = grant.Invalid.Count > 0 ? "InvalidQuantity" : "QuotaExceeded";
            conditions.Set(WorkspaceConditions.QuotaReady, false, reason, message);
            if (ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.QuotaReady)?.Message != message)
            {
                await events.WarningAsync(ws, reason, message, ct).ConfigureAwait(false);
            }
        }
        else
        {
            conditions.Set(WorkspaceConditions.QuotaReady, true, "Granted",
                grant.Granted.Count == 0 ? "No quota requested." : string.Join(", ", grant.Granted.Select(g => $"{g.Key}={g.Value.CanonicalizeString()}")));
        }

        // Network baseline.
        await ApplyAsync(log, ws, NetworkPolicies, WorkspaceResources.DefaultDeny(ws), caches.NetworkPolicies.Get($"{ws.Metadata.Name}/{WorkspaceResources.NetworkPolicyName}"), ["spec"], ct).ConfigureAwait(false);
        conditions.Set(WorkspaceConditions.NetworkReady, true, "DefaultDeny", "Ingress and egress are denied by default; DNS to kube-system is allowed.");

        // Database.
        var databaseOk = await ReconcileDatabaseAsync(log, ws, region, status, conditions, ct).ConfigureAwait(false);

        // Provider keys.
        var keysOk = await ReconcileProviderKeysAsync(ws, tenant, status, conditions, ct).ConfigureAwait(false);

        var allReady = databaseOk && keysOk && accessOk && !grant.Exceeded;
        if (recordAtEnd || (allReady && record!.ProvisioningState != "ready"))
        {
            try
            {
                await SyncRecordAsync(ws, tenant, region, record, allReady ? "ready" : "creating", ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return await DatabaseDownAsync(ws, status, conditions, e, ct).ConfigureAwait(false);
            }
        }

        status.Phase = allReady ? "Ready" : keysOk && accessOk ? "Creating" : "Failed";
        var notReady = conditions.ToList().Where(c => c.Type != WorkspaceConditions.Ready && c.Status != ConditionStatus.True).Select(c => $"{c.Type}: {c.Message}").ToList();
        conditions.Set(WorkspaceConditions.Ready, allReady, allReady ? "Ready" : "NotReady", allReady ? "Workspace is ready." : string.Join("; ", notReady));
        status.Conditions = conditions.ToList();
        var becameReady = allReady && ws.Status?.Phase != "Ready";
        await ReportChangesAsync(log, ws, becameReady, ct).ConfigureAwait(false);
        await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
        if (!databaseOk) return ReconcileResult.Retry("workspace database not ready");
        // A binding the API server refused as invalid waits for a spec change; any other failure is retried.
        return bindingFailures.All(f => f.Permanent) ? ReconcileResult.Done : ReconcileResult.Retry("member bindings not applied");
    }

    sealed record Refusal(string Reason, string Message, bool Security, string Condition = WorkspaceConditions.Ready);

    /// <summary>Rules checked before anything is provisioned.</summary>
    Refusal? Gate(Workspace ws, Tenant? tenant, WorkspaceRecord? record, QuotaGrant? grant)
    {
        if (WorkspaceNames.Reserved(ws.Metadata.Name, options) is { } reserved)
        {
            return new("ReservedName", $"metadata.name: \"{ws.Metadata.Name}\" is reserved ({reserved}); a workspace's name is its namespace's name", Security: true,
                WorkspaceConditions.NamespaceReady);
        }

        if (tenant is null)
        {
            return new("TenantNotFound", $"spec.tenant: tenant \"{ws.Spec.Tenant}\" does not exist", Security: true);
        }

        if (record is not null && record.DeletedAt is null && record.TenantName != ws.Spec.Tenant)
        {
            return new("ImmutableFieldChanged", $"spec.tenant: is immutable; it was \"{record.TenantName}\" and is now \"{ws.Spec.Tenant}\". Set it back.", Security: true);
        }

        var region = WorkspaceResources.EffectiveRegion(ws, tenant);
        if (region != tenant.Spec.Region)
        {
            return new("RegionMismatch", $"spec.region: \"{region}\" differs from tenant {tenant.Metadata.Name}'s region \"{tenant.Spec.Region}\"; a workspace is pinned to its tenant's region", Security: true);
        }

        if (record is not null && record.DeletedAt is null && record.Region != region)
        {
            return new("ImmutableFieldChanged", $"spec.region: is immutable; it was \"{record.Region}\" and is now \"{region}\". Set it back.", Security: true);
        }

        if (!regions.IsConfigured(region))
        {
            return new("InvalidRegion", $"spec.region: \"{region}\" has no database server configured", Security: false);
        }

        var provisioned = record is not null && record.DeletedAt is null;
        if (!provisioned && tenant.Metadata.DeletionTimestamp is not null)
        {
            return new("TenantTerminating", $"spec.tenant: tenant {tenant.Metadata.Name} is being deleted: it gets no new workspace", Security: false);
        }

        if (!provisioned && tenant.Spec.Suspended)
        {
            return new("TenantSuspended", $"tenant {tenant.Metadata.Name} is suspended: it gets no new workspace", Security: false);
        }

        if (!provisioned && grant!.OverWorkspaceLimit)
        {
            return new("MaxWorkspacesExceeded", $"tenant {tenant.Metadata.Name} allows {tenant.Spec.Quota!.MaxWorkspaces} workspace(s) (spec.quota.maxWorkspaces) and this one is past it",
                Security: false, WorkspaceConditions.QuotaReady);
        }

        return null;
    }

    async Task<ReconcileResult> RefuseAsync(Workspace ws, Tenant? tenant, WorkspaceStatus status, ConditionSet conditions, Refusal refusal, CancellationToken ct)
    {
        if (refusal.Condition != WorkspaceConditions.Ready) conditions.Set(refusal.Condition, false, refusal.Reason, refusal.Message);
        conditions.Set(WorkspaceConditions.Ready, false, refusal.Reason, refusal.Message);
        status.Phase = "Failed";
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

    async Task<ReconcileResult> DatabaseDownAsync(Workspace ws, WorkspaceStatus status, ConditionSet conditions, Exception e, CancellationToken ct)
    {
        var message = $"System of record or region database unreachable: {e.Message}";
        conditions.Set(WorkspaceConditions.DatabaseReady, false, "DatabaseUnavailable", message).Set(WorkspaceConditions.Ready, false, "DatabaseUnavailable", message);
        status.Phase = ws.Status?.Phase ?? "Creating";
        status.Conditions = conditions.ToList();
        var updated = await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
        if (!ReferenceEquals(updated, ws)) await events.WarningAsync(ws, "DatabaseUnavailable", message, ct).ConfigureAwait(false);
        return ReconcileResult.Retry(message);
    }

    static string CreatedBy(Workspace ws) =>
        ws.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var who) == true ? who : Actor;

    async Task<WorkspaceRecord> SyncRecordAsync(Workspace ws, Tenant tenant, string region, WorkspaceRecord? existing, string state, CancellationToken ct)
    {
        var dataMode = WorkspaceResources.EffectiveDataMode(ws, tenant);
        var members = new JsonArray((ws.Spec.Members ?? []).Select(m => (JsonNode)new JsonObject { ["kind"] = m.Kind, ["name"] = m.Name, ["role"] = m.Role }).ToArray());
        var membersJson = SystemDatabase.Canonical(members);
        var specHash = SystemDatabase.Sha256Hex(SystemDatabase.Canonical(System.Text.Json.Nodes.JsonNode.Parse(k8s.KubernetesJson.Serialize(ws.Spec))));
        // Written by the database allocation only (recorded once, never derived again from the name).
        var dbName = existing?.DeletedAt is null ? existing?.DatabaseName : null;
        var keepState = existing is not null && existing.DeletedAt is null && existing.ProvisioningState == "ready" && state == "creating";
        var desired = new WorkspaceRecord(existing?.Id ?? Guid.NewGuid(), ws.Metadata.Name, tenant.Metadata.Name, region, ws.Spec.Environment, dataMode,
            keepState ? "ready" : state, specHash, membersJson, dbName, null);
        var unchanged = existing is not null && existing.DeletedAt is null && existing.SpecHash == desired.SpecHash
                        && existing.ProvisioningState == desired.ProvisioningState && existing.DataMode == desired.DataMode
                        && SystemDatabase.Canonical(JsonNode.Parse(existing.MembersJson)) == membersJson;
        if (unchanged) return existing!;

        var created = existing is null || existing.DeletedAt is not null;
        var details = new JsonObject
        {
            ["generation"] = ws.Metadata.Generation,
            ["specHash"] = specHash,
            ["state"] = desired.ProvisioningState,
            ["members"] = ws.Spec.Members?.Count ?? 0,
            ["region"] = region,
            ["dataMode"] = dataMode,
        };
        var action = created ? "workspace.created" : existing!.ProvisioningState != desired.ProvisioningState ? $"workspace.{desired.ProvisioningState}" : "workspace.updated";
        if (!created && existing!.DataMode != dataMode)
        {
            details["dataModeChanged"] = new JsonObject { ["from"] = existing.DataMode, ["to"] = dataMode };
            action = "workspace.dataModeChanged";
        }

        if (!created && existing!.MembersJson is var oldMembers && SystemDatabase.Canonical(JsonNode.Parse(oldMembers)) != membersJson)
        {
            details["membersChanged"] = true;
        }

        await database.UpsertWorkspaceAsync(desired, Guid.TryParse(tenant.Status?.RecordId, out var tid) ? tid : null, ws.Metadata.Uid ?? "",
            new AuditEntry(CreatedBy(ws), action, "Workspace", ws.Metadata.Name, tenant.Metadata.Name, details), ct).ConfigureAwait(false);
        return desired;
    }

    /// <summary>What one reconcile created or repaired, reported as one Event each at its end.</summary>
    sealed class Changes
    {
        public List<string> Created { get; } = [];
        public List<string> Repaired { get; } = [];
    }

    async Task<ApplyOutcome> ApplyAsync<T>(Changes log, Workspace ws, ResourceType type, T desired, T? cached, IReadOnlyList<string> owned, CancellationToken ct,
        IReadOnlyCollection<string>? removeAnnotations = null)
        where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        var outcome = await applier.ApplyAsync(type, desired, cached, owned, ct, removeAnnotations).ConfigureAwait(false);
        var what = $"{type.Kind} {desired.Metadata.Name}";
        if (outcome == ApplyOutcome.Updated) log.Repaired.Add(what + " (changed by hand, restored)");
        else if (outcome == ApplyOutcome.Created && ws.Status?.Phase == "Ready") log.Repaired.Add(what + " (missing, recreated)");
        else if (outcome == ApplyOutcome.Created) log.Created.Add(what);
        return outcome;
    }

    /// <summary>One Event for what this pass created (folded into the Ready Event when it also made the workspace ready), one for what it repaired.</summary>
    async Task ReportChangesAsync(Changes log, Workspace ws, bool becameReady, CancellationToken ct)
    {
        var created = log.Created.Count > 0 ? "created " + string.Join(", ", log.Created) : null;
        if (becameReady) await events.NormalAsync(ws, "Ready", "Workspace is ready" + (created is null ? "" : "; " + created), ct).ConfigureAwait(false);
        else if (created is not null) await events.NormalAsync(ws, "Created", "Created " + string.Join(", ", log.Created), ct).ConfigureAwait(false);
        if (log.Repaired.Count > 0) await events.NormalAsync(ws, "DriftRepaired", "Restored " + string.Join(", ", log.Repaired), ct).ConfigureAwait(false);
    }

    /// <summary>A binding that could not be applied: who, and the API server's reason. Permanent when the server refused it as invalid.</summary>
    sealed record BindingFailure(string Message, bool Permanent);

    /// <summary>
    /// Removals first, then each binding on its own: a member that cannot be bound (an invalid name
    /// stored while the webhook was absent) never stops the others, and never keeps a removed
    /// member's access. Failures are returned for AccessReady, not thrown.
    /// </summary>
    async Task<List<BindingFailure>> ApplyBindingsAsync(Changes log, Workspace ws, Tenant tenant, CancellationToken ct)
    {
        var failures = new List<BindingFailure>();
        var desired = WorkspaceResources.RoleBindings(ws, tenant);
        var wanted = desired.Select(b => b.Metadata.Name).ToHashSet();
        foreach (var stale in caches.RoleBindings.InNamespace(ws.Metadata.Name)
                     .Where(b => OwnerOf(b).Contains(ws.Metadata.Name) && !wanted.Contains(b.Metadata.Name)).ToList())
        {
            try
            {
                await api.DeleteAsync(RoleBindings, ws.Metadata.Name, stale.Metadata.Name, ct).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (!e.IsConflict)
            {
                failures.Add(new BindingFailure($"RoleBinding {stale.Metadata.Name} of a removed member could not be deleted: {e.StatusMessage}", Permanent: false));
                continue;
            }

            await events.NormalAsync(ws, "MemberRemoved", $"RoleBinding {stale.Metadata.Name} removed: its member is no longer in the spec", ct).ConfigureAwait(false);
        }

        foreach (var binding in desired)
        {
            try
            {
                await ApplyAsync(log, ws, RoleBindings, binding, caches.RoleBindings.Get($"{ws.Metadata.Name}/{binding.Metadata.Name}"), ["roleRef", "subjects"], ct).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (!e.IsConflict)
            {
                var subject = binding.Subjects.Single();
                var who = $"{subject.Kind} {(string.IsNullOrEmpty(subject.NamespaceProperty) ? "" : subject.NamespaceProperty + "/")}{subject.Name}";
                failures.Add(new BindingFailure($"{who} ({binding.RoleRef.Name}) could not be bound: {e.StatusMessage}",
                    Permanent: e.StatusCode is System.Net.HttpStatusCode.UnprocessableEntity or System.Net.HttpStatusCode.BadRequest));
            }
        }

        return failures;
    }

    async Task ApplyQuotaAsync(Changes log, Workspace ws, QuotaGrant grant, CancellationToken ct)
    {
        var key = $"{ws.Metadata.Name}/{WorkspaceResources.QuotaName}";
        if (WorkspaceResources.ResourceQuota(ws, grant) is { } quota)
        {
            await ApplyAsync(log, ws, Quotas, quota, caches.Quotas.Get(key), ["spec"], ct).ConfigureAwait(false);
        }
        else if (caches.Quotas.Get(key) is not null)
        {
            await api.DeleteAsync(Quotas, ws.Metadata.Name, WorkspaceResources.QuotaName, ct).ConfigureAwait(false);
        }

        await ApplyAsync(log, ws, LimitRanges, WorkspaceResources.LimitRange(ws), caches.LimitRanges.Get($"{ws.Metadata.Name}/{WorkspaceResources.LimitRangeName}"), ["spec"], ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The database, its login role and the credentials Secret. The name is allocated once and recorded
    /// (controlplane.workspace_databases), then read back; a database or role of that name this
    /// workspace did not make, or one retained from a deleted workspace, is never adopted. The role's
    /// password is reset whenever the Secret is missing, asks for rotation, or no longer holds the
    /// password we set; Postgres is changed first and the Secret written last, so a crash in between
    /// is repaired by the next pass.
    /// </summary>
    async Task<bool> ReconcileDatabaseAsync(Changes log, Workspace ws, string region, WorkspaceStatus status, ConditionSet conditions, CancellationToken ct)
    {
        if (ws.Spec.Database?.Enabled == false)
        {
            status.Database = null;
            conditions.Set(WorkspaceConditions.DatabaseReady, true, "Disabled", "spec.database.enabled is false: no database.");
            return true;
        }

        var extensions = ws.Spec.Database?.Extensions ?? [];
        var disallowed = RegionDatabases.DisallowedExtensions(options, region, extensions);
        if (disallowed.Count > 0)
        {
            var allowed = options.Regions.TryGetValue(region, out var ro) ? ro.EffectiveAllowedExtensions : RegionOptions.DefaultAllowedExtensions;
            return await DatabaseNotReadyAsync(ws, conditions, "ExtensionNotAllowed",
                string.Join("; ", disallowed.Select(d => $"spec.database.extensions[{d.Index}]: \"{d.Name}\" is not allowed in region {region}")) +
                $" (allowed: {string.Join(", ", allowed)})", ct).ConfigureAwait(false);
        }

        var secretKey = $"{ws.Metadata.Name}/{WorkspaceResources.SecretName(ws)}";
        // A missing Secret resets the password, so make sure it is missing and not just not yet in the cache.
        var cached = caches.Secrets.Get(secretKey)
                     ?? await api.TryGetAsync<V1Secret>(Secrets, ws.Metadata.Name, WorkspaceResources.SecretName(ws), ct).ConfigureAwait(false);
        var existingPassword = cached?.Data?.TryGetValue("password", out var pw) == true ? Encoding.UTF8.GetString(pw) : null;
        var rotate = cached?.Metadata.Annotations?.TryGetValue(WorkspaceResources.RotateAnnotation, out var r) == true && r == "true";
        var intact = existingPassword is not null
                     && cached!.Metadata.Annotations?.TryGetValue(WorkspaceResources.PasswordHashAnnotation, out var h) == true
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

            if (changes.DatabaseCreated) await events.NormalAsync(ws, "DatabaseCreated", $"Database {dbName} created on the {region} server", ct).ConfigureAwait(false);
            if (changes.ExtensionsCreated.Count > 0)
            {
                await events.NormalAsync(ws, "ExtensionsCreated", $"Extensions created in {dbName}: {string.Join(", ", changes.ExtensionsCreated)}", ct).ConfigureAwait(false);
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
            await ApplyAsync(log, ws, Secrets, secret, cached, ["data", "type"], ct, removeAnnotations: [WorkspaceResources.RotateAnnotation]).ConfigureAwait(false);
            if (rotate) await events.NormalAsync(ws, "PasswordRotated", $"Password of role {dbName} rotated; Secret {secret.Metadata.Name} updated", ct).ConfigureAwait(false);
            status.Database = new WorkspaceDatabaseStatus { Host = endpoint.Host, Name = dbName, SecretName = secret.Metadata.Name };
            conditions.Set(WorkspaceConditions.DatabaseReady, true, "Ready", $"Database {dbName} on the {region} server; credentials in Secret {secret.Metadata.Name}.");
            return true;
        }
        catch (DatabaseConflictException e)
        {
            return await DatabaseNotReadyAsync(ws, conditions, e.Reason, e.Message, ct).ConfigureAwait(false);
        }
        catch (UnsafeRegionRoleException e)
        {
            logger.LogError("region {Region}: {Problem}", region, e.Message);
            return await DatabaseNotReadyAsync(ws, conditions, "UnsafeRegionRole", e.Message, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (RegionDatabases.IsTransient(e))
        {
            conditions.Set(WorkspaceConditions.DatabaseReady, false, "DatabaseUnavailable", $"Region {region} database server unreachable: {e.Message}");
            return false;
        }
        catch (PostgresException e)
        {
            // The server refused a statement: its class and message (our statements carry no password, only a verifier).
            return await DatabaseNotReadyAsync(ws, conditions, "ProvisioningFailed",
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
                : (null, false, new("DatabaseConflict", $"database {active.Name} is recorded for another tenant's workspace named {name}; it is left untouched"));
        }

        if (recorded.FirstOrDefault(a => a.State == "retained") is { } retained)
        {
            if (retained.Tenant != ws.Spec.Tenant)
            {
                return (null, false, new("RetainedDatabaseExists",
                    $"database {retained.Name} of a deleted workspace named {name} is retained for another tenant and is never given to a new workspace; choose another workspace name (spec.database.reuseRetained cannot take it)"));
            }

            if (ws.Spec.Database?.ReuseRetained != true)
            {
                return (null, false, new("RetainedDatabaseExists",
                    $"database {retained.Name} of a deleted workspace named {name} is retained for this tenant; set spec.database.reuseRetained: true to take it back (with a new password), or have an administrator drop it"));
            }

            await database.UpdateDatabaseAllocationAsync(retained.Id, "active", retained.Provisioned, ws.Metadata.Uid ?? "",
                new AuditEntry(CreatedBy(ws), "workspace.databaseReused", "Workspace", name, ws.Spec.Tenant,
                    new JsonObject { ["database"] = retained.Name, ["region"] = region }, Severity: "security"), ct).ConfigureAwait(false);
            return (retained with { State = "active", WorkspaceUid = ws.Metadata.Uid ?? "" }, true, null);
        }

        string[] candidates = [RegionDatabases.DatabaseName(name), .. Enumerable.Range(0, 4).Select(_ => RegionDatabases.AlternativeDatabaseName(name))];
        var allocated = await database.AllocateDatabaseAsync(region, name, ws.Metadata.Uid ?? "", ws.Spec.Tenant, candidates, ct).ConfigureAwait(false);
        return allocated is null
            ? (null, false, new("DatabaseConflict", $"no free database name for workspace {name} in region {region}"))
            : (allocated, false, null);
    }

    /// <summary>DatabaseReady=False with a reason that retrying will not fix by itself; a Warning Event when the message is new.</summary>
    async Task<bool> DatabaseNotReadyAsync(Workspace ws, ConditionSet conditions, string reason, string message, CancellationToken ct)
    {
        conditions.Set(WorkspaceConditions.DatabaseReady, false, reason, message);
        if (ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.DatabaseReady)?.Message != message)
        {
            await events.WarningAsync(ws, reason, message, ct).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>
    /// Reads each referenced Secret when it changed (its metadata is cached), validates the key's
    /// format, and stores it sealed when its fingerprint differs from the active one. The value never
    /// reaches status, Events, logs or exceptions: only the provider and a fingerprint do.
    /// </summary>
    async Task<bool> ReconcileProviderKeysAsync(Workspace ws, Tenant tenant, WorkspaceStatus status, ConditionSet conditions, CancellationToken ct)
    {
        var specKeys = ws.Spec.ProviderKeys ?? [];
        List<StoredProviderKey> stored;
        try
        {
            stored = specKeys.Count == 0 && (ws.Status?.ProviderKeys?.Count ?? 0) == 0
                ? []
                : await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            conditions.Set(WorkspaceConditions.ProviderKeysReady, false, "DatabaseUnavailable", e.Message);
            return false;
        }

        // A provider listed twice is ambiguous (which key is active?): neither entry is applied, and
        // nothing is written for it, until one is removed.
        var problems = SpecRules.ProviderKeys(specKeys).ToList();
        var duplicated = SpecRules.DuplicateProviders(specKeys).Select(d => specKeys[d.Index].Provider).ToHashSet(StringComparer.Ordinal);
        var grace = options.KeyRotationGrace;
        for (var i = 0; i < specKeys.Count; i++)
        {
            var key = specKeys[i];
            if (duplicated.Contains(key.Provider)) continue;
            var meta = caches.AllSecretsMetadata.Get($"{ws.Metadata.Name}/{key.SecretRef.Name}");
            if (meta is null)
            {
                problems.Add($"spec.providerKeys[{i}].secretRef: Secret {key.SecretRef.Name} not found in namespace {ws.Metadata.Name}");
                continue;
            }

            var memo = $"{ws.Metadata.Name}/{key.Provider}";
            var version = $"{meta.Metadata.ResourceVersion}/{key.SecretRef.Key}/{key.Endpoint}";
            var active = stored.FirstOrDefault(s => s.Provider == key.Provider && s.RetiredAt is null);
            if (active is not null && processedKeySecrets.TryGetValue(memo, out var seen) && seen == version) continue;

            var secret = await api.TryGetAsync<V1Secret>(Secrets, ws.Metadata.Name, key.SecretRef.Name, ct).ConfigureAwait(false);
            if (secret?.Data?.TryGetValue(key.SecretRef.Key, out var raw) != true)
            {
                problems.Add($"spec.providerKeys[{i}].secretRef.key: Secret {key.SecretRef.Name} has no key \"{key.SecretRef.Key}\"");
                continue;
            }

            var value = Encoding.UTF8.GetString(raw!).Trim();
            if (ProviderKeys.Validate(i, key.Provider, key.Endpoint, value) is { } invalid)
            {
                problems.Add(invalid);
                continue;
            }

            if (vault is null)
            {
                problems.Add("ControlPlane:KeyEncryptionKey is not configured: provider keys cannot be stored");
                continue;
            }

            var fingerprint = KeyVault.Fingerprint(value);
            if (active?.Fingerprint != fingerprint)
            {
                try
                {
                    await database.StoreProviderKeyAsync(ws.Metadata.Name, key.Provider, fingerprint, vault.Seal(value), grace,
                        new AuditEntry(Actor, active is null ? "providerKey.stored" : "providerKey.rotated", "Workspace", ws.Metadata.Name, tenant.Metadata.Name,
                            new JsonObject { ["provider"] = key.Provider, ["fingerprint"] = fingerprint, ["previousFingerprint"] = active?.Fingerprint }), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    conditions.Set(WorkspaceConditions.ProviderKeysReady, false, "DatabaseUnavailable", e.Message);
                    return false;
                }

                await events.NormalAsync(ws, active is null ? "ProviderKeyStored" : "ProviderKeyRotated",
                    $"{key.Provider} key {fingerprint} is active{(active is null ? "" : $"; {active.Fingerprint} stays valid for {grace}")}", ct).ConfigureAwait(false);
                stored = await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
            }

            processedKeySecrets[memo] = version;
        }

        // Providers dropped from the spec: their keys retire (and are purged after the grace period).
        foreach (var orphan in stored.Where(s => s.RetiredAt is null && specKeys.All(k => k.Provider != s.Provider)).ToList())
        {
            await database.RetireProviderKeyAsync(ws.Metadata.Name, orphan.Provider, grace,
                new AuditEntry(Actor, "providerKey.retired", "Workspace", ws.Metadata.Name, tenant.Metadata.Name,
                    new JsonObject { ["provider"] = orphan.Provider, ["fingerprint"] = orphan.Fingerprint }), ct).ConfigureAwait(false);
            stored = await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
        }

        status.ProviderKeys = specKeys.DistinctBy(k => k.Provider).Select(k => stored.FirstOrDefault(s => s.Provider == k.Provider && s.RetiredAt is null) is { } s
                ? new ProviderKeyStatus
                {
                    Provider = k.Provider,
                    Fingerprint = s.Fingerprint,
                    ValidatedAt = s.ValidatedAt,
                    RotatedAt = stored.Any(o => o.Provider == k.Provider && o.RetiredAt is not null) ? s.CreatedAt : null,
                }
                : null).OfType<ProviderKeyStatus>().ToList();
        if (status.ProviderKeys.Count == 0) status.ProviderKeys = null;

        if (problems.Count > 0)
        {
            var message = string.Join("; ", problems);
            var previous = ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.ProviderKeysReady)?.Message;
            conditions.Set(WorkspaceConditions.ProviderKeysReady, false, "InvalidProviderKey", message);
            if (previous != message) await events.WarningAsync(ws, "InvalidProviderKey", message, ct).ConfigureAwait(false);
            return false;
        }

        if (specKeys.Count > 0 || ws.Status?.Conditions?.Any(c => c.Type == WorkspaceConditions.ProviderKeysReady) == true)
        {
            conditions.Set(WorkspaceConditions.ProviderKeysReady, true, "Valid", $"{specKeys.Count} provider key(s) validated and stored encrypted.");
        }

        return true;
    }

    // ---- deletion -------------------------------------------------------------------------------

    async Task<ReconcileResult> FinalizeAsync(Workspace ws, CancellationToken ct)
    {
        if (!ObjectWriter.HasFinalizer(ws, ApiGroup.Finalizer)) return ReconcileResult.Done;
        var now = time.GetUtcNow().UtcDateTime;
        var conditions = new ConditionSet(ws.Status?.Conditions, ws.Metadata.Generation, now);
        var status = new WorkspaceStatus { ObservedGeneration = ws.Metadata.Generation, Namespace = ws.Status?.Namespace, Database = ws.Status?.Database, ProviderKeys = ws.Status?.ProviderKeys, Phase = "Terminating" };

        // Children first: the namespace takes every namespaced child with it.
        // Only a namespace this workspace created (controlled by its UID) is deleted; anything else is left alone.
        var ns = caches.Namespaces.Get(ws.Metadata.Name);
        if (ns is not null && ChildApplier.SameController(WorkspaceResources.Namespace(ws, ws.Spec.Tenant, ""), ns))
        {
            if (ns.Metadata.DeletionTimestamp is null)
            {
                await api.DeleteAsync(ResourceType.Namespaces, null, ws.Metadata.Name, ct, preconditionUid: ns.Metadata.Uid).ConfigureAwait(false);
                await events.NormalAsync(ws, "Deleting", $"Namespace {ws.Metadata.Name} deleted", ct).ConfigureAwait(false);
            }

            status.Conditions = conditions.Set(WorkspaceConditions.Ready, false, "Terminating", $"Waiting for namespace {ws.Metadata.Name} to be deleted.").ToList();
            await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
            return ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(2)); // the namespace's delete event usually comes first
        }

        WorkspaceRecord? record;
        try
        {
            record = await database.GetWorkspaceAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
            var deleteDatabase = ws.Spec.Database?.DeletionPolicy == "Delete";
            string? dbName = null;
            if (record is not null && record.DeletedAt is null && regions.IsConfigured(record.Region)
                && (await database.GetDatabaseAllocationsAsync(record.Region, ws.Metadata.Name, ct).ConfigureAwait(false))
                    .FirstOrDefault(a => a.State == "active" && a.Tenant == record.TenantName) is { } allocation)
            {
                dbName = allocation.Name;
                // One never handed out (no Secret was written before it was provisioned) holds no data: it goes.
                if (deleteDatabase || !allocation.Provisioned)
                {
                    try
                    {
                        await regions.DropAsync(record.Region, allocation.Id, allocation.Provisioned, dbName, dbName, ct).ConfigureAwait(false);
                    }
                    catch (ArgumentException) when (!SpecRules.IsDnsLabel(ws.Metadata.Name))
                    {
                        // A row recorded for a name that is not a DNS label (before names were checked):
                        // its identifier is refused, so no database was ever created under it.
                    }

                    await database.UpdateDatabaseAllocationAsync(allocation.Id, "dropped", allocation.Provisioned, null, new AuditEntry(Actor, "workspace.databaseDropped",
                        "Workspace", ws.Metadata.Name, record.TenantName, new JsonObject { ["database"] = dbName, ["region"] = record.Region }), ct).ConfigureAwait(false);
                    await events.NormalAsync(ws, "DatabaseDeleted", $"Database {dbName} and its role dropped (deletionPolicy {ws.Spec.Database?.DeletionPolicy ?? "Retain"})", ct).ConfigureAwait(false);
                }
                else
                {
                    // Retained for its tenant only: nobody logs in until that tenant takes it back (spec.database.reuseRetained).
                    await regions.LockAsync(record.Region, allocation.Id, allocation.Provisioned, dbName, dbName, ct).ConfigureAwait(false);
                    await database.UpdateDatabaseAllocationAsync(allocation.Id, "retained", allocation.Provisioned, null, new AuditEntry(Actor, "workspace.databaseRetained",
                        "Workspace", ws.Metadata.Name, record.TenantName, new JsonObject { ["database"] = dbName, ["region"] = record.Region }), ct).ConfigureAwait(false);
                    await events.NormalAsync(ws, "DatabaseRetained", $"Database {dbName} retained and locked (deletionPolicy Retain): its role cannot log in", ct).ConfigureAwait(false);
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
            status.Conditions = conditions.Set(WorkspaceConditions.DatabaseReady, false, "DatabaseUnavailable", message)
                .Set(WorkspaceConditions.Ready, false, "Terminating", message).ToList();
            var updated = await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
            if (!ReferenceEquals(updated, ws)) await events.WarningAsync(ws, "DeletionWaiting", message, ct).ConfigureAwait(false);
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
