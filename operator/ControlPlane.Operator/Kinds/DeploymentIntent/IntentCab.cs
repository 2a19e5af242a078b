using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>A DeploymentIntent's CAB approval for starting one ring, and the approvals that made it.</summary>
public sealed record IntentCabState(string Ring, ApprovalState State, IReadOnlyList<Approval> Counted);

/// <summary>
/// CAB of a DeploymentIntent, pure, ring by ring: an approval counts toward starting a ring when it counts by
/// <see cref="DeploymentIntentResources.ApprovalOf"/> (UID, generation, no author, an Approver of every prod
/// target), its approver is assigned by the tenant's routes (<see cref="CabRouting"/>), and its conditions allow
/// that ring now (<see cref="CabConditions.NotFor"/>: not expired, not past its maxRing). The intent
/// reconciler and the Approval reconciler both ask this.
/// </summary>
public static class IntentCab
{
    public static CabScope ScopeOf(DeploymentIntent intent) => new(intent.Spec.TargetScope.AcquisitionBoundary, intent.Spec.TargetScope.BusinessUnit);

    /// <summary>The first ring not yet started (nor finished), or null when every ring has.</summary>
    public static string? NextRing(DeploymentIntentSpec spec, IReadOnlyList<IntentRingStatus>? rings) =>
        DeploymentIntentResources.Rings(spec).FirstOrDefault(r => rings?.FirstOrDefault(s => s.Name == r)?.Phase is null or IntentRingPhase.Pending);

    public static IntentCabState ForRing(DeploymentIntent intent, IntentApprovalRule rule, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<V1RoleBinding>> bindingsIn, IReadOnlyList<CabRoute>? routes, string ring, DateTime now)
    {
        var rings = DeploymentIntentResources.Rings(intent.Spec);
        var scope = ScopeOf(intent);
        var mine = approvals.Where(a => a.Spec.Target.Kind == DeploymentIntent.KubeKind && a.Spec.Target.Name == intent.Metadata.Name).ToList();
        var excluded = new List<string>();
        var usable = new List<Approval>();
        foreach (var a in mine)
        {
            var why = CabRouting.NotAssigned(a.Spec.Approver, ApprovalPolicy.GroupsOf(a), routes, scope) ?? CabConditions.NotFor(a, ring, rings, now)?.Message;
            if (why is null) usable.Add(a);
            else excluded.Add($"{a.Metadata.Name} ({a.Spec.Approver}): {why}");
        }

        var state = DeploymentIntentResources.ApprovalOf(intent, rule, usable, holdsApproverRole, bindingsIn);
        bool Holds(Approval a) => holdsApproverRole(a) && rule.ProdTargets.All(t => ApprovalPolicy.IsApprover(a.Spec.Approver, ApprovalPolicy.GroupsOf(a), bindingsIn(t)));
        var counted = usable.Where(a => a.Spec.Decision == "approve" && ApprovalPolicy.Judge(a, intent, Holds, bindingsIn).Counts).ToList();
        if (!state.Approved && !state.Rejected && excluded.Count > 0) state = state with { Message = $"{state.Message}; not counting for ring {ring}: {string.Join("; ", excluded)}" };
        return new(ring, state, counted);
    }

    /// <summary>
    /// Why an approval of <paramref name="intent"/> does not count whatever the ring, beyond <see cref="ApprovalPolicy.Judge"/>
    /// (for its own Ready condition): its approver is not assigned by the routes, or it has expired.
    /// </summary>
    public static (string Reason, string Message)? NotCounting(Approval approval, DeploymentIntent intent, IReadOnlyList<CabRoute>? routes, DateTime now)
    {
        if (CabRouting.NotAssigned(approval.Spec.Approver, ApprovalPolicy.GroupsOf(approval), routes, ScopeOf(intent)) is { } unassigned)
        {
            return (ApprovalReasons.NotAssigned, unassigned);
        }

        if (approval.Spec.Decision == "approve" && approval.Spec.ExpiresAt is { } expires && now >= expires.ToUniversalTime())
        {
            return (ApprovalReasons.Expired, $"expired at {expires.ToUniversalTime():u} (spec.expiresAt): it counts for no ring not yet started (rings it let start go on)");
        }

        return null;
    }

    /// <summary>status.assignedApprovers: the Approvers of the intent's namespace and of every prod target, narrowed by the tenant's routes, never an author.</summary>
    public static IReadOnlyList<string> AssignedApprovers(DeploymentIntent intent, IntentApprovalRule rule, Func<string, IEnumerable<V1RoleBinding>> bindingsIn, IReadOnlyList<CabRoute>? routes)
    {
        var namespaces = rule.ProdTargets.Prepend(intent.Metadata.NamespaceProperty).Distinct().Select(bindingsIn).ToList();
        return CabRouting.AssignedApprovers(CabRouting.EligibleApprovers(namespaces), routes, ScopeOf(intent), ApprovalPolicy.EveryAuthorOf(intent).ToHashSet(StringComparer.Ordinal));
    }
}
