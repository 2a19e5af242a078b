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
                new TenantReconciler(workspaces, bindings, new ChildApplier(b.Api, writes), b.Api, database, StalledStatus.Writer(b, writes), b.Events, options, b.Time,
                    b.Loggers.CreateLogger<TenantReconciler>()))
            .SkipsEchoesOf(writes)
            // Drift repair: a self-service binding edited or deleted by hand is put back.
            .Watches(bindings, TenantOfBinding)
            // A tenant only counts and sums its workspaces: a burst of workspace events is one reconcile.
            .Watches(workspaces, TenantOfWorkspace, coalesce: TimeSpan.FromMilliseconds(500));
    }

    public static IEnumerable<string> TenantOfWorkspace(Workspace ws) =>
        string.IsNullOrEmpty(ws.Spec.Tenant) ? [] : [ws.Spec.Tenant];

    public Task<ReconcileResult> ReconcileAsync(Tenant tenant, CancellationToken ct) => ReconcileErrors.RunAsync(tenant, ReconcilePassAsync, ErrorReport, ct);

    ErrorReport<Tenant> ErrorReport => new(writer, Type, TenantConditions.Ready, t => t.Status?.Conditions, (t, conditions) => new TenantStatus
    {
        ObservedGeneration = t.Metadata.Generation,
        Phase = t.Metadata.DeletionTimestamp is not null ? TenantPhase.Terminating : t.Status?.Phase ?? TenantPhase.Pending,
        Workspaces = t.Status?.Workspaces,
        Usage = t.Status?.Usage,
        RecordId = t.Status?.RecordId,
        Conditions = conditions,
    }, events, time, logger);

    /// <summary>Facts from the caches, decisions by <see cref="TenantPlan"/>, each applied before the next is asked.</summary>
    async Task<ReconcileResult> ReconcilePassAsync(Tenant tenant, CancellationToken ct)
    {
        var facts = Facts(tenant);
        if (tenant.Metadata.DeletionTimestamp is not null) return await FinalizeAsync(tenant, facts, ct).ConfigureAwait(false);
        if (TenantPlan.Refusal(tenant, facts) is { } refused) return await ApplyAsync(tenant, refused, ct).ConfigureAwait(false);

        tenant = await writer.AddFinalizerAsync(Type, tenant, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        if (TenantPlan.RegionRefusal(tenant, facts) is { } badRegion) return await ApplyAsync(tenant, badRegion, ct).ConfigureAwait(false);

        RecordOutcome record;
        try
        {
            var (recordId, change) = await SyncRecordAsync(tenant, ct).ConfigureAwait(false);
            record = new RecordOutcome.Synced(recordId, change);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var failure = PostgresFailure.Of(e, "The system of record");
            record = new RecordOutcome.Failed(failure.Reason, failure.Message, failure.Transient);
        }

        return await ApplyAsync(tenant, TenantPlan.Converge(tenant, facts, record), ct).ConfigureAwait(false);
    }

    TenantFacts Facts(Tenant tenant) =>
        new(workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).ToList(), options.Regions.Keys);

    /// <summary>Events first, then the bindings, the status (only if it changed), and the Warning only when it did.</summary>
    async Task<ReconcileResult> ApplyAsync(Tenant tenant, TenantStep step, CancellationToken ct)
    {
        await events.SendAsync(tenant, step.Before, ct).ConfigureAwait(false);
        if (step.ApplyBindings) await ApplySelfServiceBindingsAsync(tenant, ct).ConfigureAwait(false);
        step.Status.Conditions = new ConditionSet(tenant.Status?.Conditions, tenant.Metadata.Generation, time.GetUtcNow().UtcDateTime).Apply(step.Verdicts).ToList();
        if (await WriteStatusAsync(tenant, step.Status, ct).ConfigureAwait(false) && step.IfWritten is { } warning)
        {
            await events.SendAsync(tenant, [warning], ct).ConfigureAwait(false);
        }

        return step.Result.ToResult();
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

    async Task<ReconcileResult> FinalizeAsync(Tenant tenant, TenantFacts facts, CancellationToken ct)
    {
        // Letting go is irreversible: a cache that has not yet seen a new workspace must not decide it.
        if (facts.Workspaces.Count == 0 && ObjectWriter.HasFinalizer(tenant, ApiGroup.Finalizer))
        {
            facts = facts with { Live = await LiveWorkspacesOfAsync(tenant.Metadata.Name, ct).ConfigureAwait(false) };
        }

        switch (TenantPlan.Finalize(tenant, facts))
        {
            case TenantDeletion.Release:
                return ReconcileResult.Done;
            case TenantDeletion.Hold hold:
                return await ApplyAsync(tenant, hold.Step, ct).ConfigureAwait(false);
            case TenantDeletion.MarkDeleted deleted:
                try
                {
                    await database.MarkTenantDeletedAsync(tenant.Metadata.Name, tenant.Metadata.DeletionTimestamp,
                        new AuditEntry(Actor, "tenant.deleted", "Tenant", tenant.Metadata.Name, tenant.Metadata.Name,
                            new JsonObject { ["recordId"] = tenant.Status?.RecordId, ["generation"] = tenant.Metadata.Generation }), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    return await ApplyAsync(tenant, TenantPlan.DeletionWaits(tenant, facts, e.Message), ct).ConfigureAwait(false);
                }

                await events.SendAsync(tenant, [deleted.Done], ct).ConfigureAwait(false);
                await writer.RemoveFinalizerAsync(Type, tenant, ApiGroup.Finalizer, ct).ConfigureAwait(false);
                return ReconcileResult.Done;
            case var other:
                throw new InvalidOperationException($"unknown decision {other}");
        }
    }
}
