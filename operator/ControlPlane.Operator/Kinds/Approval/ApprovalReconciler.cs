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
    TimeProvider time) : IReconciler<Approval>
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
        var exceptions = ExceptionReconciler.ExceptionsOf(b);
        var reconciler = new ApprovalReconciler(targets, WorkspaceReconciler.WorkspacesOf(b), roleBindings, approvals, intents, StalledStatus.Writer(b, writes), b.Time);
        b.Controller("approval", approvals, reconciler)
            .SkipsEchoesOf(writes)
            .Watches(exposures, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(intents, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(restores, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            .Watches(exceptions, t => reconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
            // An intent's authors may not approve an Exception of its digest: its approvals are judged again.
            .Watches(intents, t => approvals.InNamespace(t.Metadata.NamespaceProperty).Where(a => a.Spec.Target.Kind == SecurityException.KubeKind)
                .Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}"))
            // A Rollout's status moves all the time; only a spec change (a new generation) re-judges its approvals.
            .WatchesEvents(rollouts, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : reconciler.ApprovalsOf(e.Object, approvals.InNamespace(e.Object.Metadata.NamespaceProperty)))
            .Watches(roleBindings, rb => approvals.InNamespace(rb.Metadata.NamespaceProperty).Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}"))
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
        // An Exception's approvals are a SecurityReviewer's, never its owner's or a covered intent's author's.
        var verdict = approval.Spec.Target.Kind == SecurityException.KubeKind
            ? ExceptionApprovals.Judge(approval, target as SecurityException, intents.InNamespace(approval.Metadata.NamespaceProperty), roleBindings.InNamespace)
            : ApprovalPolicy.Judge(approval, target, HoldsApproverRole, roleBindings.InNamespace);
        var conditions = new ConditionSet(approval.Status?.Conditions, approval.Metadata.Generation, time.GetUtcNow().UtcDateTime)
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
        return ReconcileResult.Done;
    }

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
            return DeploymentIntentResources.ApprovalOf(intent, DeploymentIntentResources.ApprovalRule(home, rings, workspaces.Get), approvals, HoldsApproverRole, roleBindings.InNamespace);
        }

        if (target is SecurityException exception)
        {
            return ExceptionApprovals.Evaluate(exception, approvals, intents.InNamespace(target.Metadata.NamespaceProperty), roleBindings.InNamespace);
        }

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
