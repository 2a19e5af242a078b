using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Governs an AccessRequest: its phase and conditions are <see cref="AccessRequestPlan.Decide"/> of its
/// facts (its tenant's access policy, its Approvals as <see cref="ApprovalPolicy"/> counts them for the
/// workspace's environment, whether its RoleBinding exists, the time). The apply is thin and shared with
/// BreakGlass (<see cref="GrantApply{T, TStatus}"/>): an ending grant's binding is deleted first, then audit
/// rows (a grant's end once), then the status; a starting grant's times are recorded in status before its
/// binding is made. An Active request is looked at again at its
/// recorded status.expiresAt, so expiry survives restarts (the resync reads the recorded time, no timer).
/// A finalizer lets a deleted request's grant end audited (access.revoked).
/// </summary>
public sealed class AccessRequestReconciler(GrantContext g, ILogger<AccessRequestReconciler> logger, AccessExpiryLag expiryLag) : IReconciler<AccessRequest>
{
    public static readonly ResourceType Type = ResourceType.For<AccessRequest>(namespaced: true);

    readonly GrantApply<AccessRequest, AccessRequestStatus> grants = new(Type, AccessRequestReasons.Granting, r => r.Status, () => new() { Phase = AccessRequestPhase.Pending }, AccessRequestResources.Binding, g, logger,
        s => s.Phase == AccessRequestPhase.Active ? s.ExpiresAt : null, expiryLag.Observe, AccessRequestPlan.Transitions);

    public static void Setup(TermBuilder b, SystemDatabase database)
    {
        var g = GrantContext.Of(b, database);
        GrantApply<AccessRequest, AccessRequestStatus>.Watch(b, "accessrequest", b.Informer<AccessRequest>(Type), new AccessRequestReconciler(g, b.Loggers.CreateLogger<AccessRequestReconciler>(),
            new AccessExpiryLag(b.Metrics.Registry)), g);
    }

    public Task<ReconcileResult> ReconcileAsync(AccessRequest request, CancellationToken ct) => grants.ReconcileAsync(request, GovernAsync, ct);

    ApprovalState ApprovalOf(AccessRequest request, Workspace? ws) =>
        ws is null
            ? new ApprovalState(false, false, 1, [], [], "not in a workspace")
            : ApprovalPolicy.Evaluate(request, WorkspaceEnvironments.Effective(ws), g.Approvals.InNamespace(request.Metadata.NamespaceProperty),
                a => ApprovalPolicy.HoldsApproverRole(a, g.RoleBindings.InNamespace), g.RoleBindings.InNamespace);

    async Task<ReconcileResult> GovernAsync(AccessRequest request, CancellationToken ct)
    {
        (var go, request) = await grants.BeginAsync(request, ct).ConfigureAwait(false);
        if (!go) return ReconcileResult.Done;
        var now = g.Time.GetUtcNow().UtcDateTime;
        var ws = g.Workspaces.Get(request.Metadata.NamespaceProperty);
        var tenant = ws is null ? null : g.Tenants.Get(ws.Spec.Tenant);
        var name = AccessRequestPlan.BindingName(request.Metadata.Name);
        var (cached, ours, foreign) = grants.Binding(request, name);
        var d = AccessRequestPlan.Decide(new AccessRequestFacts(request, tenant, ApprovalOf(request, ws), ours, now));
        var step = new GrantStep<AccessRequestStatus>(d.Status, d.Binding, d.Conditions, d.Notices, d.Audits, d.RecheckIn, d.Phase.ToString());
        return await grants.ApplyAsync(request, tenant?.Metadata.Name, name, step, now, cached, foreign, ct).ConfigureAwait(false);
    }
}
