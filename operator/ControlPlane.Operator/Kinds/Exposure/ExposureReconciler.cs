using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The caches the Exposure reconciler reads instead of the API server.</summary>
public sealed record ExposureCaches(
    Informer<Exposure> Exposures,
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    Informer<Approval> Approvals,
    Informer<V1RoleBinding> RoleBindings,
    NamespacedInformer<V1Service> Services,
    Informer<V1Ingress> Ingresses);

/// <summary>
/// Publishes an Exposure: Draft while spec.publish is false; PendingApproval until ApprovalPolicy
/// approves the current generation (one approver, two in prod, never an author; any reject wins);
/// then the generation is recorded in the system of record and served by an Ingress it owns. Only
/// approved configuration is ever live: an edit leaves the Ingress serving status.publishedGeneration
/// until the edit is approved, and a rejected edit leaves it there too. A suspended tenant, a missing
/// backend or a route another Exposure holds publish nothing new.
/// </summary>
public sealed partial class ExposureReconciler(
    ExposureCaches caches,
    KubeApi api,
    SystemDatabase database,
    ObjectWriter writer,
    ChildApplier applier,
    EventRecorder events,
    ExposureOptions options,
    TimeProvider time,
    ILogger<ExposureReconciler> logger) : IReconciler<Exposure>
{
    public static readonly ResourceType Type = ResourceType.For<Exposure>(namespaced: true);
    const string Actor = "controlplane-operator";

    /// <summary>Why a new generation is not published now: the condition reason and a message naming the field.</summary>
    sealed record Blocker(string Reason, string Message, bool Security = false);

    /// <summary>What is live: an approved generation and its spec.</summary>
    sealed record Live(long Generation, ExposureSpec Spec);

    public Task<ReconcileResult> ReconcileAsync(Exposure e, CancellationToken ct) => ReconcileErrors.RunAsync(e, ReconcilePassAsync, ErrorReport, ct);

    ErrorReport<Exposure> ErrorReport => new(writer, Type, ExposureConditions.Ready, x => x.Status?.Conditions,
        (x, conditions) => StatusOf(x, LiveOf(x), x.Status?.Phase ?? ExposurePhase.Draft, x.Status?.Approvals, conditions), events, time, logger);

    async Task<ReconcileResult> ReconcilePassAsync(Exposure e, CancellationToken ct)
    {
        if (e.Metadata.DeletionTimestamp is not null) return await FinalizeAsync(e, ct).ConfigureAwait(false);
        var ns = e.Metadata.NamespaceProperty;
        // The backend is a Service of this namespace: its cache is kept (and synced) while an Exposure
        // holds it; in workspace namespaces only (as the cache's scope was).
        await caches.Services.HoldAsync(KeyOf(e), caches.Workspaces.Get(ns) is null ? [] : [ns], ct).ConfigureAwait(false);
        var conditions = new ConditionSet(e.Status?.Conditions, e.Metadata.Generation, time.GetUtcNow().UtcDateTime);
        var live = LiveOf(e);
        var ws = caches.Workspaces.Get(ns);
        var tenant = ws is null ? null : caches.Tenants.Get(ws.Spec.Tenant);
        if (ws is null || tenant is null)
        {
            // Admission refuses an Exposure outside a workspace namespace; one that slipped in publishes nothing.
            var message = $"metadata.namespace: {ns} is not the namespace of a workspace: an Exposure publishes an API of a workspace";
            conditions.Set(ExposureConditions.Published, false, ExposureReasons.WorkspaceNotFound, message).Set(ExposureConditions.Ready, false, ExposureReasons.WorkspaceNotFound, message);
            return await WriteStatusAsync(e, StatusOf(e, live, ExposurePhase.Draft, null, conditions.ToList()), ExposureReasons.WorkspaceNotFound, message, warning: true, ct).ConfigureAwait(false);
        }

        try
        {
            if (!e.Spec.Publish) return await DraftAsync(e, ws, tenant, live, conditions, ct).ConfigureAwait(false);

            var state = ApprovalStateOf(e, ws);
            var counted = CountedApprovals(e);
            // Before the Approved condition is set: a failed audit leaves it as it was, and the next pass asks again.
            if (ApprovalAskPlans.ForExposure(e, state, live?.Generation) is { } ask) await RecordAskAsync(e, tenant, ask, ct).ConfigureAwait(false);
            conditions.Set(ExposureConditions.Approved, state.Approved, state.Rejected ? ExposureReasons.Rejected : state.Approved ? ExposureReasons.Approved : ExposureReasons.AwaitingApproval, state.Message);
            if (state.Rejected) await RecordRejectionAsync(e, tenant, state, live, ct).ConfigureAwait(false);

            var blocker = Blocked(e, tenant);
            if (live?.Generation != e.Metadata.Generation && state.Approved && blocker is null)
            {
                var published = await PublishAsync(e, ws, tenant, live, state, ct).ConfigureAwait(false);
                e = published.Exposure;
                if (published.Refusal is { } refusal) blocker = refusal;
                else live = new Live(e.Metadata.Generation ?? 0, ExposureResources.Copy(e.Spec));
            }
            else if (live is not null)
            {
                var kept = await KeepLiveAsync(e, tenant, live, ct).ConfigureAwait(false);
                live = kept.Live;
                blocker ??= kept.Problem;
            }

            return await SettleAsync(e, live, state, counted, blocker, conditions, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            var failure = PostgresFailure.Of(ex, "The system of record");
            conditions.Set(ExposureConditions.Ready, false, failure.Reason, failure.Message);
            await WriteStatusAsync(e, StatusOf(e, live, e.Status?.Phase ?? ExposurePhase.Draft, e.Status?.Approvals, conditions.ToList()), failure.Reason, failure.Message, warning: true, ct)
                .ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }
    }

    /// <summary>Phase and conditions, set in one place from what is live, the approvals and what blocks the current generation.</summary>
    async Task<ReconcileResult> SettleAsync(Exposure e, Live? live, ApprovalState state, List<ApprovalRecord> counted, Blocker? blocker, ConditionSet conditions,
        CancellationToken ct)
    {
        var ns = e.Metadata.NamespaceProperty;
        var generation = e.Metadata.Generation ?? 0;
        var current = live?.Generation == generation;
        var phase = current ? ExposurePhase.Published : state.Rejected ? ExposurePhase.Rejected : ExposurePhase.PendingApproval;
        string? liveText = live is null ? null : $"generation {live.Generation} is live at {ExposureResources.Endpoint(e.Metadata.Name, ns, live.Spec, options)}";
        if (live is null) conditions.Set(ExposureConditions.Published, false, blocker?.Reason ?? ExposureReasons.NotPublished, blocker?.Message ?? "nothing is published yet");
        else conditions.Set(ExposureConditions.Published, true, ExposureReasons.Published, liveText!);

        // Ready: the current generation is what is served, and nothing stands in its way.
        var liveBackend = live is null ? null : ExposureResources.BackendProblem(ns, live.Spec, caches.Services.Get($"{ns}/{live.Spec.Backend.Service}"));
        var (ready, reason, message) = (current, blocker, state) switch
        {
            (_, { Reason: ExposureReasons.TenantSuspended } b, _) => (false, b.Reason, live is null ? b.Message : $"{b.Message}; {liveText} and stays"),
            (_, { Security: true } b, _) => (false, b.Reason, live is null ? b.Message : $"{b.Message}; {liveText}"),
            (true, _, _) when liveBackend is not null => (false, ExposureReasons.BackendNotFound, liveBackend),
            (true, _, _) => (true, ExposureReasons.Published, liveText!),
            (_, _, { Rejected: true }) => (false, ExposureReasons.Rejected,
                $"generation {generation} was {state.Message}{(live is null ? "; nothing is published" : $"; {liveText} and stays (the last approved)")}"),
            (_, { } b, _) => (false, b.Reason, live is null ? b.Message : $"{b.Message}; {liveText} and stays"),
            _ => (false, ExposureReasons.AwaitingApproval, $"generation {generation}: {state.Message}{(live is null ? "" : $"; {liveText} until then")}"),
        };
        conditions.Set(ExposureConditions.Ready, ready, reason, message);
        var status = StatusOf(e, live, phase, counted, conditions.ToList());
        var previous = e.Status?.Conditions?.FirstOrDefault(c => c.Type == ExposureConditions.Ready);
        if (blocker?.Security == true && (previous?.Reason != reason || previous.Message != message)) await RecordSecurityRefusalAsync(e, blocker, ct).ConfigureAwait(false);
        return await WriteStatusAsync(e, status, reason, message, warning: !ready && reason is not (ExposureReasons.AwaitingApproval or ExposureReasons.Rejected), ct).ConfigureAwait(false);
    }

    /// <summary>Rules checked before a new generation goes live: the tenant, the host, the path, the backend, the route.</summary>
    Blocker? Blocked(Exposure e, Tenant tenant)
    {
        var ns = e.Metadata.NamespaceProperty;
        if (tenant.Spec.Suspended) return new(ExposureReasons.TenantSuspended, $"tenant {tenant.Metadata.Name} is suspended: nothing new is published");
        if (Refusal(e, e.Spec, tenant) is { } refusal) return refusal;
        if (ExposureResources.BackendProblem(ns, e.Spec, caches.Services.Get($"{ns}/{e.Spec.Backend.Service}")) is { } backend) return new(ExposureReasons.BackendNotFound, backend);
        var route = ExposureResources.ClaimedKey(e, options);
        var holder = ExposureResources.RouteHolder(OnHost(route.Host), route, options);
        if (holder is not null && holder.Metadata.Uid != e.Metadata.Uid)
        {
            var held = ExposureResources.ClaimedKey(holder, options).Path == route.Path ? "is already claimed" : "overlaps a prefix held";
            return new(ExposureReasons.Conflict, $"spec.host/spec.path: {route} {held} by Exposure {holder.Metadata.NamespaceProperty}/{holder.Metadata.Name}", Security: true);
        }

        return null;
    }

    /// <summary>
    /// What admission refuses, judged again (the webhook can be bypassed, a delegation can shrink or a
    /// Service change type after admission): a host not delegated, an unsafe path, a backend that is not
    /// a ClusterIP Service with a selector. Any of them keeps <paramref name="spec"/> from being served.
    /// </summary>
    Blocker? Refusal(Exposure e, ExposureSpec spec, Tenant tenant)
    {
        var ns = e.Metadata.NamespaceProperty;
        if (ExposureResources.NameProblem(e.Metadata.Name) is { } name) return new(ExposureReasons.InvalidName, name);
        var host = ExposureResources.Host(e.Metadata.Name, ns, spec, options);
        if (ExposureHosts.HostProblem(host, ns, tenant.Metadata.Name, ExposureHosts.DelegationsOf(caches.Tenants.List()), options) is { } hostProblem)
        {
            return new(ExposureReasons.HostNotDelegated, hostProblem, Security: true);
        }

        if (ExposureHosts.PathProblem(spec.Path) is { } path) return new(ExposureReasons.InvalidPath, path, Security: true);
        return ExposureResources.BackendRefusal(ns, spec.Backend, caches.Services.Get($"{ns}/{spec.Backend.Service}")) is { } backend
            ? new(ExposureReasons.BackendRefused, backend, Security: true)
            : null;
    }

    IEnumerable<Exposure> OnHost(string host) =>
        caches.Exposures.ByIndex(ExposureResources.ClaimedHostIndex, host).Concat(caches.Exposures.ByIndex(ExposureResources.LiveHostIndex, host))
            .DistinctBy(x => x.Metadata.Uid);

    ApprovalState ApprovalStateOf(Exposure e, Workspace ws) =>
        ApprovalPolicy.Evaluate(e, WorkspaceEnvironments.Effective(ws), caches.Approvals.InNamespace(e.Metadata.NamespaceProperty), HoldsApproverRole, caches.RoleBindings.InNamespace);

    bool HoldsApproverRole(Approval approval) =>
        ApprovalPolicy.HoldsApproverRole(approval, caches.RoleBindings.InNamespace);

    /// <summary>The approvals that count for the current generation, one per approver, for status.</summary>
    List<ApprovalRecord> CountedApprovals(Exposure e) =>
        caches.Approvals.InNamespace(e.Metadata.NamespaceProperty)
            .Where(a => a.Spec.Target.Kind == Exposure.KubeKind && a.Spec.Target.Name == e.Metadata.Name && a.Spec.Decision == "approve")
            .Where(a => ApprovalPolicy.Judge(a, e, HoldsApproverRole, caches.RoleBindings.InNamespace).Counts)
            .GroupBy(a => a.Spec.Approver!)
            .Select(g => g.OrderBy(a => a.Metadata.CreationTimestamp).First())
            .OrderBy(a => a.Spec.Approver, StringComparer.Ordinal)
            .Select(a => new ApprovalRecord { Approver = a.Spec.Approver!, At = a.Metadata.CreationTimestamp })
            .ToList();

    static Live? LiveOf(Exposure e) =>
        e.Status is { PublishedGeneration: { } generation, PublishedSpec: { } spec } ? new Live(generation, spec) : null;

    ExposureStatus StatusOf(Exposure e, Live? live, ExposurePhase phase, List<ApprovalRecord>? approvals, List<V1Condition> conditions) => new()
    {
        ObservedGeneration = e.Metadata.Generation,
        Phase = phase,
        Approvals = approvals is { Count: > 0 } ? approvals : null,
        PublishedGeneration = live?.Generation,
        PublishedSpec = live?.Spec,
        Endpoint = live is null ? null : ExposureResources.Endpoint(e.Metadata.Name, e.Metadata.NamespaceProperty, live.Spec, options),
        Conditions = conditions,
    };

    /// <summary>Writes status when it changed; an Event only when the Ready reason or message is new.</summary>
    async Task<ReconcileResult> WriteStatusAsync(Exposure e, ExposureStatus status, string reason, string message, bool warning, CancellationToken ct)
    {
        var previous = e.Status?.Conditions?.FirstOrDefault(c => c.Type == ExposureConditions.Ready);
        await writer.UpdateStatusAsync(Type, e, status, ct).ConfigureAwait(false);
        if (warning && (previous?.Reason != reason || previous.Message != message)) await events.WarningAsync(e, reason, message, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    static string AuthorOf(Exposure e) => ApprovalPolicy.AuthorsOf(e).LastOrDefault() ?? "unknown";

    /// <summary>A rejection of the current generation, recorded once (the cache may lag our own status write: Postgres says).</summary>
    async Task RecordRejectionAsync(Exposure e, Tenant tenant, ApprovalState state, Live? live, CancellationToken ct)
    {
        var previous = e.Status?.Conditions?.FirstOrDefault(c => c.Type == ExposureConditions.Approved);
        if (previous?.Reason == ExposureReasons.Rejected && previous.ObservedGeneration == e.Metadata.Generation) return;
        var key = $"{e.Metadata.NamespaceProperty}/{e.Metadata.Name}";
        if (await database.AuditExistsAsync("Exposure", key, "exposure.rejected", ExposureReasons.Rejected, e.Metadata.Generation, ct).ConfigureAwait(false)) return;
        await database.AppendAuditAsync(new AuditEntry(AuthorOf(e), "exposure.rejected", "Exposure", key, tenant.Metadata.Name, new JsonObject
        {
            ["reason"] = ExposureReasons.Rejected,
            ["generation"] = e.Metadata.Generation,
            ["rejectedBy"] = new JsonArray(state.RejectedBy.Select(r => (JsonNode)JsonValue.Create(r)).ToArray()),
            ["liveGeneration"] = live?.Generation,
        }), ct).ConfigureAwait(false);
        await events.WarningAsync(e, ExposureReasons.Rejected, $"generation {e.Metadata.Generation} {state.Message}" +
            (live is null ? "" : $"; generation {live.Generation} stays live"), ct).ConfigureAwait(false);
    }

    /// <summary>A refusal that is an attack or a race between tenants (a contested route) goes to the audit trail as security, once per generation.</summary>
    async Task RecordSecurityRefusalAsync(Exposure e, Blocker blocker, CancellationToken ct)
    {
        var key = $"{e.Metadata.NamespaceProperty}/{e.Metadata.Name}";
        if (await database.AuditExistsAsync("Exposure", key, "exposure.refused", blocker.Reason, e.Metadata.Generation, ct).ConfigureAwait(false)) return;
        await database.AppendAuditAsync(new AuditEntry(AuthorOf(e), "exposure.refused", "Exposure", key, caches.Workspaces.Get(e.Metadata.NamespaceProperty)?.Spec.Tenant,
            new JsonObject { ["reason"] = blocker.Reason, ["generation"] = e.Metadata.Generation, ["message"] = blocker.Message }, Severity: "security"), ct).ConfigureAwait(false);
    }
}
