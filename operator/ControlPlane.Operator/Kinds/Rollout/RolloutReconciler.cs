using System.Collections.Concurrent;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The caches the Rollout reconciler reads instead of the API server.</summary>
public sealed record RolloutCaches(
    Informer<Rollout> Rollouts,
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    NamespacedInformer<V1Deployment> Deployments,
    NamespacedInformer<V1Pod> Pods,
    Informer<Approval> Approvals,
    Informer<V1RoleBinding> RoleBindings);

/// <summary>
/// Progressive delivery across workspaces: promotes a Deployment's new container images ring by ring
/// (<see cref="RolloutPlan"/> decides, this class reads the facts and applies the decision). It only
/// patches the images of a Deployment that exists in a ring namespace of the Rollout's own tenant;
/// it never creates, adopts or deletes one.
/// </summary>
public sealed partial class RolloutReconciler(
    RolloutCaches caches,
    KubeApi api,
    SystemDatabase database,
    PrometheusClient prometheus,
    PrometheusOptions prometheusOptions,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger<RolloutReconciler> logger) : IReconciler<Rollout>
{
    public static readonly ResourceType Type = ResourceType.For<Rollout>(namespaced: true);
    public static readonly ResourceType Deployments = new("apps", "v1", "deployments", "Deployment", true);
    public static readonly ResourceType Pods = new("", "v1", "pods", "Pod", true);

    // The last successRate reading per Rollout and ring: pod events must not turn into a query each.
    readonly ConcurrentDictionary<string, (DateTime At, string Query, MetricReading Reading)> readings = new();
    readonly AccessReviewer access = new(api);

    public static void Setup(TermBuilder b, SystemDatabase database, ControlPlaneOptions options)
    {
        var rollouts = b.Informer<Rollout>(Type).AddIndex(RolloutResources.DeploymentIndex, r => r.Spec.Target.Deployment);
        var caches = new RolloutCaches(rollouts, WorkspaceReconciler.WorkspacesOf(b), b.Informer<Tenant>(TenantReconciler.Type),
            // Workspace namespaces only, stripped to what RolloutResources.View reads (see GovernedCaches).
            GovernedCaches.DeploymentsOf(b), GovernedCaches.PodsOf(b), b.Informer<Approval>(ApprovalReconciler.Type), WorkspaceReconciler.RoleBindingsOf(b));
        var writes = new OwnWrites();
        var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        var reconciler = new RolloutReconciler(caches, b.Api, database, new PrometheusClient(options.Prometheus, http), options.Prometheus,
            StalledStatus.Writer(b, writes), b.Events, b.Time, b.Loggers.CreateLogger<RolloutReconciler>());
        // A Rollout gone lets go of its ring namespaces' Deployments and Pods.
        rollouts.AddHandler(e =>
        {
            if (e.Type != InformerEventType.Deleted) return;
            caches.Deployments.Forget(Key(e.Object));
            caches.Pods.Forget(Key(e.Object));
        });
        b.Controller("rollout", rollouts, reconciler)
            .SkipsEchoesOf(writes)
            .Watches(caches.Deployments, d => reconciler.RolloutsOf(d.Metadata.Name, d.Metadata.NamespaceProperty))
            .Watches(caches.Pods, reconciler.RolloutsOfPod)
            .Watches(caches.Approvals, a => a.Spec.Target.Kind == Rollout.KubeKind ? [$"{a.Metadata.NamespaceProperty}/{a.Spec.Target.Name}"] : [])
            .Watches(caches.RoleBindings, rb => caches.Rollouts.InNamespace(rb.Metadata.NamespaceProperty).Where(r => RolloutPlan.IsActive(r.Status))
                .Concat(caches.Rollouts.List().Where(IsRequesterForbidden)).Select(Key).Distinct())
            // Ring membership and suspension: any workspace or tenant spec/label change re-decides the active rollouts.
            .WatchesEvents(caches.Workspaces, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                                                   && SameLabels(e.Old?.Metadata.Labels, e.Object.Metadata.Labels) ? [] : reconciler.ActiveRollouts())
            .WatchesEvents(caches.Tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation ? [] : reconciler.ActiveRollouts())
            // One active Rollout per Deployment: another one finishing (or going) lets a waiting one start.
            .WatchesEvents(rollouts, e => e.Type == InformerEventType.Modified && e.Old?.Status?.Phase == e.Object.Status?.Phase
                ? []
                : reconciler.RolloutsOf(e.Object.Spec.Target.Deployment, null).Where(k => k != Key(e.Object)));
    }

    /// <summary>Held because a requester lacks rights in a ring workspace: a RoleBinding change anywhere may lift it.</summary>
    static bool IsRequesterForbidden(Rollout r) => r.Status?.Conditions?.Any(c => c.Type == RolloutConditions.Ready && c.Reason == RolloutReasons.RequesterForbidden) == true;

    static string Key(Rollout r) => $"{r.Metadata.NamespaceProperty}/{r.Metadata.Name}";

    static bool SameLabels(IDictionary<string, string>? a, IDictionary<string, string>? b) =>
        (a?.Count ?? 0) == (b?.Count ?? 0) && (a ?? new Dictionary<string, string>()).All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value);

    IEnumerable<string> ActiveRollouts() => caches.Rollouts.List().Where(r => RolloutPlan.IsActive(r.Status)).Select(Key);

    /// <summary>Active Rollouts of this Deployment name (in <paramref name="ns"/>'s rings when given).</summary>
    IEnumerable<string> RolloutsOf(string? deployment, string? ns)
    {
        if (deployment is null) return [];
        return caches.Rollouts.ByIndex(RolloutResources.DeploymentIndex, deployment)
            .Where(r => RolloutPlan.IsActive(r.Status) && (ns is null || Touches(r, ns)))
            .Select(Key);
    }

    /// <summary>Started in <paramref name="ns"/> (or about to: the pending ring is resolved on its pass anyway).</summary>
    static bool Touches(Rollout r, string ns) =>
        r.Status?.Previous?.Any(p => p.Namespace == ns) == true || r.Status?.Rings?.Any(x => x.Workspaces?.Contains(ns) == true) == true
        || r.Status?.Rings is null || r.Status.Rings.All(x => x.Workspaces is null);

    IEnumerable<string> RolloutsOfPod(V1Pod pod)
    {
        var hash = pod.Metadata.Labels?.TryGetValue("pod-template-hash", out var h) == true ? h : null;
        var owner = pod.Metadata.OwnerReferences?.FirstOrDefault(o => o.Kind == "ReplicaSet")?.Name;
        if (hash is null || owner is null || !owner.EndsWith("-" + hash, StringComparison.Ordinal)) return [];
        return RolloutsOf(owner[..^(hash.Length + 1)], pod.Metadata.NamespaceProperty);
    }

    public Task<ReconcileResult> ReconcileAsync(Rollout rollout, CancellationToken ct) => ReconcileErrors.RunAsync(rollout, ReconcilePassAsync, ErrorReport, ct);

    ErrorReport<Rollout> ErrorReport => new(writer, Type, RolloutConditions.Ready, r => r.Status?.Conditions, (r, conditions) => WithConditions(r.Status, r.Metadata.Generation, conditions),
        events, time, logger);

    static RolloutStatus WithConditions(RolloutStatus? s, long? generation, List<V1Condition> conditions)
    {
        var copy = s is null ? new RolloutStatus() : k8s.KubernetesJson.Deserialize<RolloutStatus>(k8s.KubernetesJson.Serialize(s));
        copy.ObservedGeneration = generation;
        copy.Conditions = conditions;
        return copy;
    }

    async Task<ReconcileResult> ReconcilePassAsync(Rollout rollout, CancellationToken ct)
    {
        // A Rollout owns nothing (it patches Deployments it was told about): no finalizer, nothing to undo on delete.
        if (rollout.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done;
        // Null: the Rollout was deleted while its namespaces were being listed; nothing to decide.
        if (await FactsAsync(rollout, ct).ConfigureAwait(false) is not { } facts) return ReconcileResult.Done;
        var decision = RolloutPlan.Decide(rollout, facts);
        var result = await ApplyAsync(rollout, facts, decision, ct).ConfigureAwait(false);
        if (result is not null) return result;
        var requeue = decision.RequeueAfter;
        // A metrics gate is asked again on its interval while a ring is in flight.
        if (rollout.Spec.Gates?.SuccessRate is not null && decision.Status.Phase is RolloutPhase.Progressing or RolloutPhase.Paused && !RolloutPlan.IsFinished(decision.Status))
        {
            requeue = requeue is { } r && r < prometheusOptions.Interval ? r : prometheusOptions.Interval;
        }

        return requeue is { } delay ? ReconcileResult.RequeueAfter(delay + TimeSpan.FromMilliseconds(50)) : ReconcileResult.Done;
    }

    /// <summary>Reads what the plan decides on: all from caches, but the successRate query.</summary>
    async Task<RolloutFacts?> FactsAsync(Rollout rollout, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var ns = rollout.Metadata.NamespaceProperty;
        var spec = rollout.Spec;
        var invalid = SpecRules.Rollout(spec);
        if (spec.Target.Deployment is null && invalid.Count == 0)
        {
            invalid.Add("spec.target.deployment: not set; a Rollout of a deploymentIntent gets its deployment and containers from the DeploymentIntent reconciler, which has not filled them in");
        }

        var own = caches.Workspaces.Get(ns);
        var tenantName = own?.Spec.Tenant;
        var tenant = tenantName is null ? null : caches.Tenants.Get(tenantName);
        var tenantWorkspaces = tenantName is null ? [] : caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenantName);
        var rings = spec.Rings.Select(r => tenantName is null ? new RingView([], []) : RolloutResources.Resolve(r, tenantName, caches.Workspaces.Get, tenantWorkspaces)).ToList();
        var target = spec.Target.Containers ?? [];

        var namespaces = rings.SelectMany(r => r.Namespaces)
            .Concat(rollout.Status?.Rings?.SelectMany(r => r.Workspaces ?? []) ?? [])
            .Concat(rollout.Status?.Previous?.Select(p => p.Namespace) ?? [])
            .Distinct(StringComparer.Ordinal).ToList();
        // Deployments and Pods are cached only in namespaces someone holds: these, synced before they are
        // read. Workspace namespaces of the Rollout's own tenant only: a forged status naming another
        // tenant's or a non-workspace namespace gets nothing read there.
        var held = namespaces.Where(n => tenantName is not null && caches.Workspaces.Get(n)?.Spec.Tenant == tenantName).ToList();
        await caches.Deployments.HoldAsync(Key(rollout), held, ct).ConfigureAwait(false);
        await caches.Pods.HoldAsync(Key(rollout), held, ct).ConfigureAwait(false);
        // Deleted while this pass waited for those namespaces (its Deleted handler may already have let go): let go
        // again, or the holds just taken would outlive it.
        if (caches.Rollouts.Get(Key(rollout))?.Metadata.Uid != rollout.Metadata.Uid)
        {
            caches.Deployments.Forget(Key(rollout));
            caches.Pods.Forget(Key(rollout));
            return null;
        }

        var deployments = spec.Target.Deployment is not { } name
            ? new Dictionary<string, DeploymentView>()
            : namespaces.ToDictionary(n => n, n => RolloutResources.View(n, caches.Deployments.Get($"{n}/{name}"), target, caches.Pods.InNamespace(n)));

        var index = RolloutPlan.CurrentRing(spec, rollout.Status);
        var ring = index < spec.Rings.Count ? spec.Rings[index] : null;
        var ringStatus = ring is null ? null : rollout.Status?.Rings?.FirstOrDefault(r => r.Name == ring.Name);
        var started = ringStatus?.Phase is RingPhase.Progressing or RingPhase.Soaking;

        var view = ring is null ? null : rings[index];
        ApprovalState? approval = null;
        var promoting = ring is not null && RolloutPlan.PromoteAsked(spec, ring, ringStatus);
        // The next ring too when it needs approval: a promotion in this pass may leave it waiting, and its ask names who may approve.
        var nextNeedsApproval = index + 1 < spec.Rings.Count && RolloutResources.NeedsApproval(rollout, spec.Rings[index + 1], rings[index + 1]);
        if (ring is not null && ((RolloutResources.NeedsApproval(rollout, ring, view!) && !started) || promoting || nextNeedsApproval) && tenantName is not null)
        {
            // Two approvers when any ring reaches prod, whatever the environment the Rollout itself lives in,
            // each an Approver of the Rollout's workspace and of every prod workspace its rings reach.
            Func<string, IEnumerable<Workspace>> ofTenant = t => caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, t);
            var environment = RolloutResources.ApprovalEnvironment(rollout, caches.Workspaces.Get, ofTenant);
            var prodTargets = RolloutResources.ProdTargets(rollout, caches.Workspaces.Get, ofTenant);
            approval = ApprovalPolicy.Evaluate(rollout, environment, caches.Approvals.InNamespace(ns),
                a => RolloutResources.HoldsApproverRoleForRollout(a, prodTargets, caches.RoleBindings.InNamespace), caches.RoleBindings.InNamespace);
        }

        // Before a ring starts (and only then): may every requester patch the Deployment in each of its
        // namespaces? Asked for the current ring, or for the next one when this pass may promote into it.
        RequesterAccess? access = null;
        if (ring is not null && !spec.Paused && !spec.Abort && !RolloutPlan.IsFinished(rollout.Status) && invalid.Count == 0)
        {
            if (!started && (!RolloutResources.NeedsApproval(rollout, ring, view!) || approval is { Approved: true }) && view!.Namespaces.Count > 0)
            {
                access = await RequesterAccessAsync(rollout, view.Namespaces, ct).ConfigureAwait(false);
            }
            else if (ringStatus is { Phase: RingPhase.Soaking, RolledOutAt: { } rolledOut } && (now >= rolledOut + RolloutPlan.Soak(ring) || (promoting && approval is { Approved: true })) && index + 1 < spec.Rings.Count
                     && !RolloutResources.NeedsApproval(rollout, spec.Rings[index + 1], rings[index + 1]) && rings[index + 1].Namespaces.Count > 0)
            {
                access = await RequesterAccessAsync(rollout, rings[index + 1].Namespaces, ct).ConfigureAwait(false);
            }
        }

        MetricReading? metric = null;
        if (spec.Gates?.SuccessRate is { } gate && started && !RolloutPlan.IsFinished(rollout.Status) && !spec.Abort)
        {
            metric = RolloutResources.Query(gate.Query, ringStatus!.Workspaces ?? []) is { } query
                ? await ReadMetricAsync(Key(rollout) + "/" + ring!.Name, query, now, ct).ConfigureAwait(false)
                : MetricReading.Down($"ring {ring!.Name} has no namespaces: its success-rate query is not run (it would read series of no namespace)");
        }

        return new RolloutFacts(now, invalid, tenantName, tenant?.Spec.Suspended == true, WaitingFor(rollout, rings), rings, deployments, approval, metric, access);
    }

    /// <summary>
    /// A SubjectAccessReview per requester (<see cref="Requesters.OfRollout"/>) and namespace: patch on
    /// the target Deployment. Nobody on record is a denial, never a pass.
    /// </summary>
    async Task<RequesterAccess> RequesterAccessAsync(Rollout rollout, IReadOnlyList<string> namespaces, CancellationToken ct)
    {
        var checkedNamespaces = namespaces.ToHashSet(StringComparer.Ordinal);
        if (Requesters.OfRollout(rollout) is not { Count: > 0 } requesters)
        {
            var nobody = $"no requester is on record (metadata.annotations[{ApiGroup.CreatedByAnnotation}], stamped by the admission webhook, or {ApiGroup.OnBehalfOfAnnotation} for a DeploymentIntent's): the operator acts for nobody";
            return new RequesterAccess(checkedNamespaces, namespaces.Select(ns => new AccessDenial(ns, nobody)).ToList());
        }

        var deployment = rollout.Spec.Target.Deployment;
        var denied = new List<AccessDenial>();
        foreach (var ns in namespaces)
        {
            foreach (var who in requesters)
            {
                var answer = await access.ReviewAsync(who, new AccessCheck(ns, "apps", "deployments", "patch", deployment), ct).ConfigureAwait(false);
                if (!answer.Allowed) denied.Add(new AccessDenial(ns, $"{who.User} may not patch Deployment {deployment} in workspace {ns}"));
            }
        }

        return new RequesterAccess(checkedNamespaces, denied);
    }

    async Task<MetricReading> ReadMetricAsync(string key, string query, DateTime now, CancellationToken ct)
    {
        if (readings.TryGetValue(key, out var last) && last.Query == query && now - last.At < prometheusOptions.Interval) return last.Reading;
        var reading = await prometheus.QueryAsync(query, ct).ConfigureAwait(false);
        readings[key] = (now, query, reading);
        return reading;
    }

    /// <summary>
    /// One active Rollout per Deployment per namespace: the oldest active one whose rings share a
    /// namespace with this one's goes first; this one waits (only to start a ring: one in flight goes on).
    /// </summary>
    string? WaitingFor(Rollout rollout, IReadOnlyList<RingView> rings)
    {
        if (rollout.Spec.Target.Deployment is not { } deployment) return null;
        var mine = rings.SelectMany(r => r.Namespaces).ToHashSet(StringComparer.Ordinal);
        foreach (var other in caches.Rollouts.ByIndex(RolloutResources.DeploymentIndex, deployment)
                     .Where(o => o.Metadata.Uid != rollout.Metadata.Uid && RolloutPlan.IsActive(o.Status))
                     .OrderBy(o => o.Metadata.CreationTimestamp).ThenBy(Key, StringComparer.Ordinal))
        {
            if (!IsOlder(other, rollout)) break;
            var theirs = OtherNamespaces(other);
            if (theirs.Overlaps(mine)) return Key(other);
        }

        return null;
    }

    static bool IsOlder(Rollout a, Rollout b) =>
        a.Metadata.CreationTimestamp < b.Metadata.CreationTimestamp
        || (a.Metadata.CreationTimestamp == b.Metadata.CreationTimestamp && string.CompareOrdinal(Key(a), Key(b)) < 0);

    HashSet<string> OtherNamespaces(Rollout other)
    {
        var tenant = caches.Workspaces.Get(other.Metadata.NamespaceProperty)?.Spec.Tenant;
        var set = new HashSet<string>(other.Status?.Previous?.Select(p => p.Namespace) ?? [], StringComparer.Ordinal);
        if (tenant is null) return set;
        var tenantWorkspaces = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant);
        foreach (var ring in other.Spec.Rings) set.UnionWith(RolloutResources.Resolve(ring, tenant, caches.Workspaces.Get, tenantWorkspaces).Namespaces);
        return set;
    }
}
