using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Converges a Tenant into the system of record: validates its region against the configured
/// ones, upserts its row (audited) when the spec changed, and reports phase, workspace count and
/// usage. Its finalizer holds deletion while workspaces remain, then marks the row deleted.
/// </summary>
public sealed partial class TenantReconciler(
    Informer<Workspace> workspaces,
    Informer<V1ClusterRoleBinding> bindings,
    ChildApplier children,
    KubeApi api,
    SystemDatabase database,
    ObjectWriter writer,
    EventRecorder events,
    ControlPlaneOptions options,
    TimeProvider time,
    ILogger<TenantReconciler> logger) : IReconciler<Tenant>
{
    public static readonly ResourceType Type = ResourceType.For<Tenant>(namespaced: false);
    const string Actor = "controlplane-operator";

    /// <summary>How the Tenant kind plugs into the runtime: its cache, and the workspaces it counts.</summary>
    public static void Setup(TermBuilder b, SystemDatabase database, ControlPlaneOptions options)
    {
        var workspaces = WorkspaceReconciler.WorkspacesOf(b);
        var bindings = b.Informer<V1ClusterRoleBinding>(ClusterRoleBindings, WorkspaceReconciler.Owned(b) with { IndexByNamespace = false });
        var writes = new OwnWrites();
        b.Controller("tenant", b.Informer<Tenant>(Type),
                new TenantReconciler(workspaces, bindings, new ChildApplier(b.Api, writes), b.Api, database, new ObjectWriter(b.Api, writes), b.Events, options, b.Time,
                    b.Loggers.CreateLogger<TenantReconciler>()))
            .SkipsEchoesOf(writes)
            // Drift repair: a self-service binding edited or deleted by hand is put back.
            .Watches(bindings, TenantOfBinding)
            // A tenant only counts and sums its workspaces: a burst of workspace events is one reconcile.
            .Watches(workspaces, TenantOfWorkspace, coalesce: TimeSpan.FromMilliseconds(500));
    }

    public static IEnumerable<string> TenantOfWorkspace(Workspace ws) =>
        string.IsNullOrEmpty(ws.Spec.Tenant) ? [] : [ws.Spec.Tenant];

    public async Task<ReconcileResult> ReconcileAsync(Tenant tenant, CancellationToken ct)
    {
        try
        {
            return await ReconcilePassAsync(tenant, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (ReconcileErrors.ShouldReport(e, ct))
        {
            // Whatever failed, the status must not keep saying Ready for a generation we could not converge.
            var message = ReconcileErrors.Describe(e);
            await ReconcileErrors.ReportAsync(writer, Type, tenant, t => t.Status?.Conditions, (t, conditions) => new TenantStatus
            {
                ObservedGeneration = t.Metadata.Generation,
                Phase = t.Metadata.DeletionTimestamp is not null ? TenantPhase.Terminating : t.Status?.Phase ?? TenantPhase.Pending,
                Workspaces = t.Status?.Workspaces,
                Usage = t.Status?.Usage,
                RecordId = t.Status?.RecordId,
                Conditions = conditions,
            }, TenantConditions.Ready, message, events, time, logger, ct).ConfigureAwait(false);
            throw;
        }
    }

    async Task<ReconcileResult> ReconcilePassAsync(Tenant tenant, CancellationToken ct)
    {
        var owned = workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).Select(w => w.Metadata.Name).OrderBy(n => n).ToList();
        if (tenant.Metadata.DeletionTimestamp is not null) return await FinalizeAsync(tenant, owned, ct).ConfigureAwait(false);

        // A name that is not a DNS label cannot label namespaces; refuse it before anything is written.
        if (SpecRules.ObjectName(tenant.Metadata.Name) is { } badName)
        {
            var refused = new TenantStatus { ObservedGeneration = tenant.Metadata.Generation, Phase = TenantPhase.Failed };
            refused.Conditions = new ConditionSet(tenant.Status?.Conditions, tenant.Metadata.Generation, time.GetUtcNow().UtcDateTime)
                .Set(TenantConditions.Ready, false, TenantReasons.InvalidName, badName).ToList();
            if (await WriteStatusAsync(tenant, refused, ct).ConfigureAwait(false)) await events.WarningAsync(tenant, TenantReasons.InvalidName, badName, ct).ConfigureAwait(false);
            return ReconcileResult.Terminal(badName);
        }

        tenant = await writer.AddFinalizerAsync(Type, tenant, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        var now = time.GetUtcNow().UtcDateTime;
        var status = NewStatus(tenant, owned);
        var conditions = new ConditionSet(tenant.Status?.Conditions, tenant.Metadata.Generation, now);

        if (!options.Regions.ContainsKey(tenant.Spec.Region))
        {
            var message = $"spec.region: \"{tenant.Spec.Region}\" is not a configured region (configured: {string.Join(", ", options.Regions.Keys.Order())})";
            conditions.Set(TenantConditions.RecordSynced, false, TenantReasons.InvalidRegion, message).Set(TenantConditions.Ready, false, TenantReasons.InvalidRegion, message);
            status.Phase = TenantPhase.Failed;
            status.Conditions = conditions.ToList();
            if (await WriteStatusAsync(tenant, status, ct).ConfigureAwait(false))
            {
                await events.WarningAsync(tenant, TenantReasons.InvalidRegion, message, ct).ConfigureAwait(false);
            }

            return ReconcileResult.Terminal(message);
        }

        try
        {
            var (recordId, change) = await SyncRecordAsync(tenant, ct).ConfigureAwait(false);
            status.RecordId = recordId.ToString();
            conditions.Set(TenantConditions.RecordSynced, true, TenantReasons.Synced, "The tenant row in the system of record matches the spec.");
            if (change is not null) await events.NormalAsync(tenant, change, $"Tenant record {recordId} {(change == TenantReasons.RecordCreated ? "created" : "updated")}", ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Unreachable is retried with backoff; a refusal (permission, constraint, ...) waits for a spec change.
            var failure = PostgresFailure.Of(e, "The system of record");
            status.RecordId = tenant.Status?.RecordId;
            conditions.Set(TenantConditions.RecordSynced, false, failure.Reason, failure.Message)
                .Set(TenantConditions.Ready, false, failure.Reason, failure.Message);
            status.Phase = tenant.Status?.Phase ?? TenantPhase.Pending;
            status.Conditions = conditions.ToList();
            if (await WriteStatusAsync(tenant, status, ct).ConfigureAwait(false))
            {
                await events.WarningAsync(tenant, TenantReasons.RecordSyncFailed, failure.Message, ct).ConfigureAwait(false);
            }

            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }

        // Quantities out of bounds (the tenant's own, or a workspace's stored while the webhook was
        // absent) are counted as zero by the ledger; the tenant says so instead of looking healthy.
        var invalid = InvalidQuantities(tenant);
        if (invalid.Count > 0)
        {
            var message = string.Join("; ", invalid.Take(10)) + (invalid.Count > 10 ? $"; and {invalid.Count - 10} more" : "");
            conditions.Set(TenantConditions.QuotaReady, false, TenantReasons.InvalidQuantity, message).Set(TenantConditions.Ready, false, TenantReasons.InvalidQuantity, message);
            status.Phase = TenantPhase.Failed;
            status.Conditions = conditions.ToList();
            var previous = tenant.Status?.Conditions?.FirstOrDefault(c => c.Type == TenantConditions.QuotaReady)?.Message;
            if (await WriteStatusAsync(tenant, status, ct).ConfigureAwait(false) && previous != message)
            {
                await events.WarningAsync(tenant, TenantReasons.InvalidQuantity, message, ct).ConfigureAwait(false);
            }

            return ReconcileResult.Done; // a change of the tenant or of a workspace re-triggers us
        }

        if (tenant.Status?.Conditions?.Any(c => c.Type == TenantConditions.QuotaReady) == true)
        {
            conditions.Set(TenantConditions.QuotaReady, true, TenantReasons.Valid, "Every quantity of the tenant and its workspaces is within bounds.");
        }

        await ApplySelfServiceBindingsAsync(tenant, ct).ConfigureAwait(false);
        status.Phase = tenant.Spec.Suspended ? TenantPhase.Suspended : TenantPhase.Ready;
        conditions.Set(TenantConditions.Ready, true, tenant.Spec.Suspended ? TenantReasons.Suspended : TenantReasons.Ready,
            tenant.Spec.Suspended ? "Tenant is suspended: no new workspaces, rollouts or publications." : "Tenant is ready.");
        status.Conditions = conditions.ToList();
        await WriteStatusAsync(tenant, status, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    List<string> InvalidQuantities(Tenant tenant)
    {
        var problems = SpecRules.TenantQuota(tenant.Spec.Quota).ToList();
        foreach (var ws in workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).OrderBy(w => w.Metadata.Name, StringComparer.Ordinal))
        {
            problems.AddRange(SpecRules.WorkspaceQuota(ws.Spec.Quota).Select(p => $"workspace {ws.Metadata.Name}: {p} (counted as 0)"));
        }

        return problems;
    }

    TenantStatus NewStatus(Tenant tenant, IReadOnlyCollection<string> owned) => new()
    {
        ObservedGeneration = tenant.Metadata.Generation,
        Workspaces = owned.Count,
        Usage = Usage(tenant),
        RecordId = tenant.Status?.RecordId,
    };

    /// <summary>What the tenant's workspaces are granted (their requests, capped by the tenant's aggregate quota).</summary>
    TenantUsage? Usage(Tenant tenant)
    {
        var own = workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).ToList();
        if (own.All(w => w.Spec.Quota is null)) return null;
        decimal cpu = 0, memory = 0, storage = 0;
        foreach (var grant in Quota.AllocateAll(tenant, own).Values)
        {
            // Grants are bounded (out-of-bounds asks are granted 0), and the sums saturate.
            cpu = SpecRules.Add(cpu, grant.Granted.TryGetValue("cpu", out var c) && SpecRules.TryQuantity("cpu", c, out var cv) ? cv : 0);
            memory = SpecRules.Add(memory, grant.Granted.TryGetValue("memory", out var m) && SpecRules.TryQuantity("memory", m, out var mv) ? mv : 0);
            storage = SpecRules.Add(storage, grant.Granted.TryGetValue("storage", out var st) && SpecRules.TryQuantity("storage", st, out var sv) ? sv : 0);
        }

        return new TenantUsage
        {
            Cpu = new ResourceQuantity(new ResourceQuantity(cpu, 0, ResourceQuantity.SuffixFormat.DecimalSI).CanonicalizeString()),
            Memory = new ResourceQuantity(new ResourceQuantity(memory, 0, ResourceQuantity.SuffixFormat.BinarySI).CanonicalizeString()),
            Storage = new ResourceQuantity(new ResourceQuantity(storage, 0, ResourceQuantity.SuffixFormat.BinarySI).CanonicalizeString()),
        };
    }

    async Task<bool> WriteStatusAsync(Tenant tenant, TenantStatus status, CancellationToken ct)
    {
        var updated = await writer.UpdateStatusAsync(Type, tenant, status, ct).ConfigureAwait(false);
        return !ReferenceEquals(updated, tenant);
    }

    /// <summary>The row as the spec wants it; in metadataOnly mode free text is kept only as a hash.</summary>
    internal static TenantRecord DesiredRecord(Tenant tenant, Guid id)
    {
        var metadataOnly = tenant.Spec.DataMode != "full";
        var spec = JsonNode.Parse(k8s.KubernetesJson.Serialize(tenant.Spec))!.AsObject();
        if (metadataOnly && spec["displayName"] is { } shown)
        {
            spec["displayName"] = "sha256:" + SystemDatabase.Sha256Hex(shown.GetValue<string>());
        }

        var specJson = SystemDatabase.Canonical(spec);
        return new TenantRecord(id, tenant.Metadata.Name, tenant.Spec.Region, tenant.Spec.DataMode,
            metadataOnly ? null : tenant.Spec.DisplayName, tenant.Spec.Suspended, specJson, SystemDatabase.Sha256Hex(specJson), null);
    }

    /// <summary>Writes only when the row differs from the spec: an unchanged tenant costs one SELECT.</summary>
    async Task<(Guid Id, string? Change)> SyncRecordAsync(Tenant tenant, CancellationToken ct)
    {
        var existing = await database.GetTenantAsync(tenant.Metadata.Name, ct).ConfigureAwait(false);
        var desired = DesiredRecord(tenant, existing?.Id ?? Guid.NewGuid());
        if (existing is not null && existing.DeletedAt is null && existing.SpecHash == desired.SpecHash) return (existing.Id, null);

        var created = existing is null || existing.DeletedAt is not null;
        var details = new JsonObject
        {
            ["generation"] = tenant.Metadata.Generation,
            ["specHash"] = desired.SpecHash,
            ["region"] = desired.Region,
            ["dataMode"] = desired.DataMode,
        };
        if (!created && existing!.DataMode != desired.DataMode)
        {
            details["dataModeChanged"] = new JsonObject { ["from"] = existing.DataMode, ["to"] = desired.DataMode };
        }

        var action = created ? "tenant.created" : existing!.DataMode != desired.DataMode ? "tenant.dataModeChanged" : "tenant.updated";
        var id = await database.UpsertTenantAsync(desired, tenant.Metadata.Uid ?? "",
            new AuditEntry(CreatedBy(tenant), action, "Tenant", tenant.Metadata.Name, tenant.Metadata.Name, details), ct).ConfigureAwait(false);
        logger.LogInformation("tenant {Tenant} record {Action} ({RecordId})", tenant.Metadata.Name, action, id);
        return (id, created ? TenantReasons.RecordCreated : TenantReasons.RecordUpdated);
    }

    static string CreatedBy(Tenant tenant) =>
        tenant.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var who) == true ? who : Actor;

    /// <summary>The tenant's workspaces as the API server has them now (a paginated LIST, not the cache).</summary>
    async Task<IReadOnlyList<string>> LiveWorkspacesOfAsync(string tenant, CancellationToken ct)
    {
        var names = new List<string>();
        string? page = null;
        do
        {
            var list = await api.ListAsync<Workspace>(WorkspaceReconciler.Type, null, null, 500, page, ct).ConfigureAwait(false);
            names.AddRange(list.Items.Where(w => w.Spec.Tenant == tenant).Select(w => w.Metadata.Name));
            page = list.Continue;
        }
        while (page is not null);
        return names;
    }

    async Task<ReconcileResult> FinalizeAsync(Tenant tenant, IReadOnlyList<string> owned, CancellationToken ct)
    {
        if (!ObjectWriter.HasFinalizer(tenant, ApiGroup.Finalizer)) return ReconcileResult.Done;
        var now = time.GetUtcNow().UtcDateTime;
        var conditions = new ConditionSet(tenant.Status?.Conditions, tenant.Metadata.Generation, now);
        var status = NewStatus(tenant, owned);
        status.Phase = TenantPhase.Terminating;
        // Letting go is irreversible: a cache that has not yet seen a new workspace must not decide it.
        if (owned.Count == 0) owned = await LiveWorkspacesOfAsync(tenant.Metadata.Name, ct).ConfigureAwait(false);
        if (owned.Count > 0)
        {
            var message = $"Deletion held: tenant still has {owned.Count} workspace(s): {string.Join(", ", owned.Take(10))}{(owned.Count > 10 ? ", ..." : "")}. Delete them first.";
            status.Conditions = conditions.Set(TenantConditions.Ready, false, TenantReasons.DeletionBlocked, message).ToList();
            if (await WriteStatusAsync(tenant, status, ct).ConfigureAwait(false))
            {
                await events.WarningAsync(tenant, TenantReasons.DeletionBlocked, message, ct).ConfigureAwait(false);
            }

            return ReconcileResult.Done; // a workspace event re-triggers us
        }

        try
        {
            await database.MarkTenantDeletedAsync(tenant.Metadata.Name,
                new AuditEntry(Actor, "tenant.deleted", "Tenant", tenant.Metadata.Name, tenant.Metadata.Name,
                    new JsonObject { ["recordId"] = tenant.Status?.RecordId, ["generation"] = tenant.Metadata.Generation }), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var message = $"Deletion waits for the system of record: {e.Message}";
            status.Conditions = conditions.Set(TenantConditions.RecordSynced, false, TenantReasons.DatabaseUnavailable, message).ToList();
            await WriteStatusAsync(tenant, status, ct).ConfigureAwait(false);
            return ReconcileResult.Retry(message);
        }

        await events.NormalAsync(tenant, TenantReasons.RecordDeleted, "Tenant record marked deleted; finalizer removed", ct).ConfigureAwait(false);
        await writer.RemoveFinalizerAsync(Type, tenant, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }
}
