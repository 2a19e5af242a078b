using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Tells on each Approval whether it counts (Ready) and why not: target gone or replaced, stale
/// generation, self-approval, or an approver without the role; and whether its target is approved
/// (TargetApproved). Role checks read the RoleBinding cache (the approver's groups were recorded by
/// the admission webhook), so a reconcile makes no API call.
/// </summary>
public sealed class ApprovalReconciler(
    IReadOnlyDictionary<string, Func<string, IKubernetesObject<V1ObjectMeta>?>> targets,
    Informer<Workspace> workspaces,
    Informer<V1RoleBinding> roleBindings,
    Informer<Approval> approvals,
    Informer<DeploymentIntent> intents,
    ObjectWriter writer,
    TimeProvider time,
    Informer<Tenant>? tenants = null) : IReconciler<Approval>
{
    public static readonly ResourceType Type = ResourceType.For<Approval>(namespaced: true);

    /// <summary>How the Approval kind plugs into the runtime: its targets, the workspaces and RoleBindings that judge it.</summary>
    public static void Setup(TermBuilder b)
    {
        var approvals = b.Informer<Approval>(Type);
        // Every kind an Approval can name (ApprovableKinds), read from the term's one informer of it.
        var targets = ApprovableKinds.All.ToDictionary(k => k.Kind, k => k.Accept(new CachedTargets(b)), StringComparer.Ordinal);
        var exposures = b.Informer<Exposure>(ResourceType.For<Exposure>(true));
        var intents = b.Informer<DeploymentIntent>(ResourceType.For<DeploymentIntent>(true));
        var restores = b.Informer<Restore>(ResourceType.For<Restore>(true));
        var rollouts = b.Informer<Rollout>(RolloutReconciler.Type);
        var roleBindings = WorkspaceReconciler.RoleBindingsOf(b);
        var writes = new OwnWrites();
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        var exceptions = ExceptionReconciler.ExceptionsOf(b);
        var workspaceCache = WorkspaceReconciler.WorkspacesOf(b);
        var reconciler = new ApprovalReconciler(targets, workspaceCache, roleBindings, approvals, intents, StalledStatus.Writer(b, writes), b.Time, tenants);
        b.Controller("approval", approvals, reconciler)
            .SkipsEchoesOf(writes)
            .Watches(exposures, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(intents, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(restores, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(exceptions, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            // A grant's approvals are judged again when it changes (granted, ended), not first at the next resync.
            .Watches(b.Informer<AccessRequest>(AccessRequestReconciler.Type), t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(b.Informer<BreakGlass>(BreakGlassReconciler.Type), t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            // An intent's authors may not approve an Exception of its digest: its approvals are judged again.
            .Watches(intents, t => approvals.InNamespace(t.Metadata.NamespaceProperty).Where(a => a.Spec.Target.Kind == SecurityException.KubeKind)
                .Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}"))
            // A Rollout's status moves all the time; only a spec change (a new generation) re-judges its approvals.
            .WatchesEvents(rollouts, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : reconciler.ApprovalsOf(e.Object, approvals.InNamespace(e.Object.Metadata.NamespaceProperty)))
            .WatchesEvents(b.Informer<Application>(ApplicationReconciler.Type), e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : reconciler.ApprovalsOf(e.Object, approvals.InNamespace(e.Object.Metadata.NamespaceProperty)))
            // Only the approvals the binding's subjects (and their targets' other approvals) can be judged differently by.
            .Watches(roleBindings, rb => ApprovalBindingWatch.AffectedBy(rb, approvals.InNamespace(rb.Metadata.NamespaceProperty)))
            // A tenant's CAB routes decide whether an approval of its intents counts.
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : workspaceCache.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name)
                    .SelectMany(w => approvals.InNamespace(w.Metadata.Name)).Where(a => a.Spec.Target.Kind == DeploymentIntent.KubeKind)
                    .Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}"))
            // Another approval of the same target arriving or leaving changes TargetApproved (status writes change nothing).
            .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : SiblingsOf(e.Object, approvals.InNamespace(e.Object.Metadata.NamespaceProperty)));
    }

    /// <summary>On every Approval: whether its target, at its current generation, has the approvals it needs.</summary>
    public const string TargetApprovedCondition = ApprovalConditions.TargetApproved;

    public IKubernetesObject<V1ObjectMeta>? Target(string ns, string kind, string name) =>
        targets.TryGetValue(kind, out var get) ? get($"{ns}/{name}") : null;

    /// <summary>An approvable kind's cached objects by key, from the term's informer of its CRD type.</summary>
    sealed class CachedTargets(TermBuilder b) : IApprovableKindVisitor<Func<string, IKubernetesObject<V1ObjectMeta>?>>
    {
        public Func<string, IKubernetesObject<V1ObjectMeta>?> Visit<T>(IApprovableKind kind) where T : class, IKubernetesObject<V1ObjectMeta>
        {
            var informer = b.Informer<T>(ResourceType.For<T>(namespaced: true));
            return key => informer.Get(key);
        }
    }

    /// <summary>The shared definition (<see cref="ApprovalPolicy.IsApprover"/>) over the RoleBinding cache, with the groups recorded at admission.</summary>
    public bool HoldsApproverRole(Approval approval) =>
        ApprovalPolicy.HoldsApproverRole(approval, roleBindings.InNamespace);

    public IEnumerable<string> ApprovalsOf(IKubernetesObject<V1ObjectMeta> target, IEnumerable<Approval> all) =>
        all.Where(a => a.Spec.Target.Kind == target.Kind && a.Spec.Target.Name == target.Metadata.Name)
            .Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}");

    /// <summary>An approval added, changed or removed changes whether its target is approved, which every approval of that target shows.</summary>
    public static IEnumerable<string> SiblingsOf(Approval approval, IEnumerable<Approval> inNamespace) =>
        inNamespace.Where(a => a.Spec.Target.Kind == approval.Spec.Target.Kind && a.Spec.Target.Name == approval.Spec.Target.Name
                               && a.Metadata.Name != approval.Metadata.Name)
            .Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}");

    public async Task<ReconcileResult> ReconcileAsync(Approval approval, CancellationToken ct)
    {
        var target = Target(approval.Metadata.NamespaceProperty, approval.Spec.Target.Kind, approval.Spec.Target.Name);
        var now = time.GetUtcNow().UtcDateTime;
        // An Exception's approvals are a SecurityReviewer's, never its owner's or a covered intent's author's.
        var verdict = approval.Spec.Target.Kind == SecurityException.KubeKind
            ? ExceptionApprovals.Judge(approval, target as SecurityException, intents.InNamespace(approval.Metadata.NamespaceProperty), roleBindings.InNamespace)
            : approval.Spec.Target.Kind == BreakGlass.KubeKind
                ? ApprovalPolicy.Judge(approval, target, a => BreakGlassReview.HoldsReviewerRole(a, roleBindings.InNamespace), roleBindings.InNamespace)
                : ApprovalPolicy.Judge(approval, target, HoldsApproverRole, roleBindings.InNamespace);
        // An approval of a DeploymentIntent also counts only from an assigned approver (the tenant's CAB routes) and until it expires.
        if (verdict.Counts && target is DeploymentIntent routed && IntentCab.NotCounting(approval, routed, RoutesOf(routed), now) is var (reason, why))
        {
            verdict = new ApprovalVerdict(false, reason, why);
        }

        var conditions = new ConditionSet(approval.Status?.Conditions, approval.Metadata.Generation, now)
            .Set(ApprovalConditions.Ready, verdict.Counts, verdict.Reason, verdict.Message);
        // What the target's approvals add up to (one outside prod, two distinct approvers in prod; a Restore by its own rule), as its reconciler computes it.
        if (target is null)
        {
            conditions.Set(TargetApprovedCondition, false, ApprovalReasons.TargetNotFound, verdict.Message);
        }
        else
        {
            var state = StateOf(target, approvals.InNamespace(approval.Metadata.NamespaceProperty));
            conditions.Set(TargetApprovedCondition, state.Approved, state.Rejected ? ApprovalReasons.Rejected : state.Approved ? ApprovalReasons.Approved : ApprovalReasons.AwaitingApproval, state.Message);
        }

        await writer.UpdateStatusAsync(Type, approval, new ApprovalStatus { ObservedGeneration = approval.Metadata.Generation, Conditions = conditions.ToList() }, ct)
            .ConfigureAwait(false);
        // An expiry is a time, not an event: look again when it passes.
        return verdict.Counts && target is DeploymentIntent && approval.Spec.ExpiresAt?.ToUniversalTime() is { } expires && expires > now
            ? ReconcileResult.RequeueAfter(expires - now + TimeSpan.FromSeconds(1))
            : ReconcileResult.Done;
    }

    /// <summary>The CAB routes of the intent's tenant (none when the tenant is not known here).</summary>
    IReadOnlyList<CabRoute>? RoutesOf(DeploymentIntent intent) =>
        workspaces.Get(intent.Metadata.NamespaceProperty) is { } ws && tenants?.Get(ws.Spec.Tenant) is { } tenant ? tenant.Spec.CabRoutes : null;

    /// <summary>
    /// Is this target approved now? For the Exposure, DeploymentIntent, Restore and Rollout reconcilers: the count its
    /// kind needs (<see cref="IApprovableKind.RequiredApprovals"/>) in its environment, who counts as its reconciler decides.
    /// </summary>
    public ApprovalState StateOf(IKubernetesObject<V1ObjectMeta> target, IEnumerable<Approval> approvals)
    {
        var environment = target is Rollout rollout
            ? RolloutResources.ApprovalEnvironment(rollout, workspaces.Get, t => workspaces.ByIndex(WorkspaceResources.TenantIndex, t))
            : workspaces.Get(target.Metadata.NamespaceProperty) is { } own ? WorkspaceEnvironments.Effective(own) : "dev";
        // A DeploymentIntent's count and approvers come from the workspaces it targets, as its reconciler decides.
        if (target is DeploymentIntent intent && workspaces.Get(target.Metadata.NamespaceProperty) is { } home)
        {
            var rings = DeploymentIntentResources.RingTargets(intent.Spec.TargetScope, workspaces.ByIndex(WorkspaceResources.TenantIndex, home.Spec.Tenant));
            var rule = DeploymentIntentResources.ApprovalRule(home, rings, workspaces.Get);
            // For the ring waiting to start, with routing and the approvals' conditions, as the intent's reconciler counts.
            var next = IntentCab.NextRing(intent.Spec, intent.Status?.Rings) ?? DeploymentIntentResources.Rings(intent.Spec).LastOrDefault();
            var state = next is null
                ? DeploymentIntentResources.ApprovalOf(intent, rule, approvals, HoldsApproverRole, roleBindings.InNamespace)
                : IntentCab.ForRing(intent, rule, approvals, HoldsApproverRole, roleBindings.InNamespace, RoutesOf(intent), next, time.GetUtcNow().UtcDateTime).State;
            // A risky change's approvals do not count while its rollback plan is not validated.
            return state.Approved && DeploymentIntentResources.NeedsCab(intent.Status) && intent.Spec.RollbackPlan?.Validated != true
                ? state with { Approved = false, Message = "spec.rollbackPlan.validated is false: approvals of a risky change do not count until its rollback was rehearsed" }
                : state;
        }

        // An Application's count and approvers come from the scope it asks for, as its reconciler decides.
        if (target is Application app && workspaces.Get(target.Metadata.NamespaceProperty) is { } appHome)
        {
            var rule = ApplicationPlan.RuleFor(app, appHome, workspaces.ByIndex(WorkspaceResources.TenantIndex, appHome.Spec.Tenant).ToList());
            return ApplicationPlan.ApprovalOf(app, rule, approvals, HoldsApproverRole, roleBindings.InNamespace);
        }

        if (target is SecurityException exception)
        {
            return ExceptionApprovals.Evaluate(exception, approvals, intents.InNamespace(target.Metadata.NamespaceProperty), roleBindings.InNamespace);
        }

        if (target is BreakGlass breakGlass) return BreakGlassReview.Evaluate(breakGlass, approvals, roleBindings.InNamespace);

        Func<Approval, bool> holdsApproverRole = HoldsApproverRole;
        if (target is Rollout r)
        {
            // As the Rollout reconciler counts: an Approver of every prod workspace the rings reach, too.
            var prodTargets = RolloutResources.ProdTargets(r, workspaces.Get, t => workspaces.ByIndex(WorkspaceResources.TenantIndex, t));
            holdsApproverRole = a => RolloutResources.HoldsApproverRoleForRollout(a, prodTargets, roleBindings.InNamespace);
        }

        // A Restore's count depends on the restore too (none for a new database outside prod): its kind says so.
        var required = ApprovableKinds.Of(target)?.RequiredApprovals(target, environment) ?? ApprovalPolicy.RequiredApprovals(environment);
        return ApprovalPolicy.Evaluate(target, required, approvals, holdsApproverRole, roleBindings.InNamespace);
    }
}
