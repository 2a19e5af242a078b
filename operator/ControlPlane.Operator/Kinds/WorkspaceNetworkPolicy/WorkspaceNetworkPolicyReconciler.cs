using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Renders a WorkspaceNetworkPolicy into the NetworkPolicies it owns (controller ownerReference; the
/// garbage collector removes them with it, so no finalizer), within its tenant's bounds as they are
/// now: a peer the tenant no longer allows is removed at once, shown as Degraded, with a Warning
/// Event and a security audit event. Owned policies edited or deleted by hand are restored; an
/// object with a rendered name that it did not create is never adopted.
/// </summary>
public sealed partial class WorkspaceNetworkPolicyReconciler(
    Informer<WorkspaceNetworkPolicy> policies,
    Informer<Workspace> workspaces,
    Informer<Tenant> tenants,
    Informer<V1NetworkPolicy> networkPolicies,
    KubeApi api,
    SystemDatabase database,
    ObjectWriter writer,
    ChildApplier applier,
    EventRecorder events,
    TimeProvider time,
    ILogger<WorkspaceNetworkPolicyReconciler> logger) : IReconciler<WorkspaceNetworkPolicy>
{
    public static readonly ResourceType Type = ResourceType.For<WorkspaceNetworkPolicy>(namespaced: true);
    const string Actor = "controlplane-operator";

    /// <summary>How the kind plugs into the runtime: the policies, the workspaces and tenants that bound them, and the NetworkPolicies they own.</summary>
    public static void Setup(TermBuilder b, SystemDatabase database)
    {
        var policies = b.Informer<WorkspaceNetworkPolicy>(Type);
        var workspaces = WorkspaceReconciler.WorkspacesOf(b);
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        // The same cache the Workspace kind keeps of the NetworkPolicies the operator made (read by key).
        var networkPolicies = b.Informer<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, WorkspaceReconciler.Owned(b) with { IndexByNamespace = false });
        var writes = new OwnWrites();
        var reconciler = new WorkspaceNetworkPolicyReconciler(policies, workspaces, tenants, networkPolicies, b.Api, database,
            StalledStatus.Writer(b, writes), new ChildApplier(b.Api, writes), b.Events, b.Time, b.Loggers.CreateLogger<WorkspaceNetworkPolicyReconciler>());
        b.Controller("workspacenetworkpolicy", policies, reconciler)
            .SkipsEchoesOf(writes)
            // A tenant's spec bounds its policies (allowlists); its status updates change nothing here.
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : reconciler.PoliciesOfTenant(e.Object.Metadata.Name))
            .WatchesEvents(workspaces, reconciler.PoliciesAffectedBy)
            .Watches(networkPolicies, OwnerOf);
    }

    // ---- watch mappings -------------------------------------------------------------------------

    /// <summary>The WorkspaceNetworkPolicy controlling a NetworkPolicy (by its controller ownerReference), if any.</summary>
    public static IEnumerable<string> OwnerOf(V1NetworkPolicy np) =>
        np.Metadata.OwnerReferences?.Where(o => o.Controller == true && o.Kind == WorkspaceNetworkPolicy.KubeKind && o.ApiVersion == ApiGroup.ApiVersion)
            .Select(o => $"{np.Metadata.NamespaceProperty}/{o.Name}") ?? [];

    IEnumerable<string> Keys(IEnumerable<WorkspaceNetworkPolicy> found) => found.Select(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}");

    /// <summary>Every policy in a workspace of the tenant (its allowlists and its set of workspaces bound them all).</summary>
    public IEnumerable<string> PoliciesOfTenant(string tenant) =>
        workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant).SelectMany(w => Keys(policies.InNamespace(w.Metadata.Name))).ToList();

    /// <summary>
    /// A workspace appearing, leaving or changing tenant changes which peers are allowed: its own
    /// policies, and those naming it as a peer (searched in its old and new tenant's workspaces).
    /// Its status updates change nothing.
    /// </summary>
    public IEnumerable<string> PoliciesAffectedBy(InformerEvent<Workspace> e)
    {
        if (e.Type == InformerEventType.Modified && e.Old?.Spec.Tenant == e.Object.Spec.Tenant) return [];
        var name = e.Object.Metadata.Name;
        var tenantsToSearch = new[] { e.Old?.Spec.Tenant, e.Object.Spec.Tenant }.OfType<string>().Distinct();
        var peering = tenantsToSearch
            .SelectMany(t => workspaces.ByIndex(WorkspaceResources.TenantIndex, t))
            .SelectMany(w => policies.InNamespace(w.Metadata.Name))
            .Where(p => NamesPeer(p.Spec, name));
        return Keys(policies.InNamespace(name).Concat(peering)).Distinct().ToList();
    }

    static bool NamesPeer(WorkspaceNetworkPolicySpec spec, string workspace) =>
        (spec.Ingress ?? []).SelectMany(r => r.From ?? []).Concat((spec.Egress ?? []).SelectMany(r => r.To ?? [])).Any(p => p.Workspace == workspace);

    // ---- reconcile ------------------------------------------------------------------------------

    public Task<ReconcileResult> ReconcileAsync(WorkspaceNetworkPolicy policy, CancellationToken ct) => ReconcileErrors.RunAsync(policy, ReconcilePassAsync, ErrorReport, ct);

    ErrorReport<WorkspaceNetworkPolicy> ErrorReport => new(writer, Type, NetworkPolicyConditions.Ready, p => p.Status?.Conditions, (p, conditions) => new WorkspaceNetworkPolicyStatus
    {
        ObservedGeneration = p.Metadata.Generation,
        RenderedPolicies = p.Status?.RenderedPolicies,
        PolicyCount = p.Status?.PolicyCount,
        Conditions = conditions,
    }, events, time, logger);

    async Task<ReconcileResult> ReconcilePassAsync(WorkspaceNetworkPolicy policy, CancellationToken ct)
    {
        // Its NetworkPolicies name it as controller: the garbage collector deletes them with it.
        if (policy.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done;

        var ns = policy.Metadata.NamespaceProperty;
        var conditions = new ConditionSet(policy.Status?.Conditions, policy.Metadata.Generation, time.GetUtcNow().UtcDateTime);
        var workspace = workspaces.Get(ns);
        var tenant = workspace is null ? null : tenants.Get(workspace.Spec.Tenant);
        var gate = WorkspaceNetworkPolicyResources.NameProblem(policy.Metadata.Name) is { } badName ? (NetworkPolicyReasons.InvalidName, badName)
            : workspace is null ? (NetworkPolicyReasons.WorkspaceNotFound, $"metadata.namespace: \"{ns}\" is not a workspace")
            : tenant is null ? (NetworkPolicyReasons.TenantNotFound, $"tenant \"{workspace.Spec.Tenant}\" of workspace {ns} does not exist")
            // A selector the API server refuses would fail every pass: nothing is rendered, and status says which field.
            : WorkspaceNetworkPolicyResources.MalformedSelectors(policy.Spec) is { Count: > 0 } malformed ? (NetworkPolicyReasons.InvalidSelector, string.Join("; ", malformed))
            : ((string Reason, string Message)?)null;

        // Without a workspace and its tenant nothing is known to be allowed: nothing is rendered (fail closed).
        var plan = gate is null
            ? WorkspaceNetworkPolicyResources.Desired(policy, TenantNetworkBounds.Of(tenant!, w => workspaces.Get(w)?.Spec.Tenant == tenant!.Metadata.Name))
            : new NetworkPolicyPlan([], []);

        var log = new Changes();
        var expected = policy.Status?.ObservedGeneration != policy.Metadata.Generation || DroppedMessage(plan.Dropped) != PreviousDropped(policy);
        // Removals first, so a failure applying the others never keeps a policy that is no longer allowed.
        var wanted = plan.Policies.Select(p => p.Metadata.Name).ToHashSet();
        foreach (var name in WorkspaceNetworkPolicyResources.PolicyNames(policy.Metadata.Name).Where(n => !wanted.Contains(n)))
        {
            // Only what this very policy (by UID) created is deleted.
            if (networkPolicies.Get($"{ns}/{name}") is not { } stale || !ChildApplier.SameController(Owned(policy), stale)) continue;
            try
            {
                await api.DeleteAsync(WorkspaceReconciler.NetworkPolicies, ns, name, ct, preconditionUid: stale.Metadata.Uid).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (e.IsNotFound)
            {
            }

            log.Removed.Add($"NetworkPolicy {name}");
        }

        var rendered = new List<string>();
        var conflicts = new List<string>();
        foreach (var desired in plan.Policies)
        {
            try
            {
                await ApplyAsync(log, policy, desired, expected, ct).ConfigureAwait(false);
                rendered.Add(desired.Metadata.Name);
            }
            catch (ForeignObjectException e)
            {
                conflicts.Add($"{e.Message}; rename this WorkspaceNetworkPolicy, or have the cluster admin remove that object");
            }
        }

        rendered.Sort(StringComparer.Ordinal);
        var status = new WorkspaceNetworkPolicyStatus { ObservedGeneration = policy.Metadata.Generation, RenderedPolicies = rendered.Count == 0 ? null : rendered,
            PolicyCount = rendered.Count };
        return await ReportAsync(policy, tenant, status, conditions, plan.Dropped, conflicts, gate, log, ct).ConfigureAwait(false);
    }

    /// <summary>An object carrying only the controller ownerReference this policy puts on what it renders.</summary>
    static V1NetworkPolicy Owned(WorkspaceNetworkPolicy policy) =>
        new() { Metadata = new V1ObjectMeta { OwnerReferences = [ChildApplier.OwnerReference(policy)] } };

    /// <summary>What one reconcile created, updated, repaired and removed, reported as one Event each at its end.</summary>
    sealed class Changes
    {
        public List<string> Created { get; } = [];
        public List<string> Repaired { get; } = [];
        public List<string> Updated { get; } = [];
        public List<string> Removed { get; } = [];
    }

    /// <param name="expected">The spec or the tenant's bounds changed since the last pass: an update is that change, not a repair.</param>
    async Task ApplyAsync(Changes log, WorkspaceNetworkPolicy policy, V1NetworkPolicy desired, bool expected, CancellationToken ct)
    {
        var cached = networkPolicies.Get($"{desired.Metadata.NamespaceProperty}/{desired.Metadata.Name}");
        var outcome = await applier.ApplyAsync(WorkspaceReconciler.NetworkPolicies, desired, cached, ["spec"], ct).ConfigureAwait(false);
        var what = $"NetworkPolicy {desired.Metadata.Name}";
        var wasRendered = policy.Status?.RenderedPolicies?.Contains(desired.Metadata.Name) == true;
        if (outcome == ApplyOutcome.Created) (wasRendered && !expected ? log.Repaired : log.Created).Add(what + (wasRendered && !expected ? " (missing, recreated)" : ""));
        else if (outcome == ApplyOutcome.Updated) (expected ? log.Updated : log.Repaired).Add(what + (expected ? "" : " (changed by hand, restored)"));
    }
}
