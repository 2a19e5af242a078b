using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>CAB ring by ring: routing (status.assignedApprovers), approval conditions and expiry, the rollback plan's validation, and what a ring records of the approvals that let it start.</summary>
public sealed partial class DeploymentIntentReconciler
{
    const string RollbackNotValidated =
        "spec.rollbackPlan.validated is false: CAB approvals of a risky change do not count until its rollback was rehearsed; create a new intent with a validated rollback plan";

    /// <summary>
    /// The approval for starting a ring, computed once per ring and pass. Also sets status.assignedApprovers while a
    /// ring still waits for CAB (cleared once every ring has started or no approval is needed).
    /// </summary>
    Func<string, IntentCabState> CabGate(IntentPass pass, Tenant tenant, IntentApprovalRule rule, bool approvalRequired)
    {
        var intent = pass.Intent;
        var routes = tenant.Spec.CabRoutes;
        var approvals = caches.Approvals.InNamespace(intent.Metadata.NamespaceProperty).ToList();
        var byRing = new Dictionary<string, IntentCabState>(StringComparer.Ordinal);
        var waiting = approvalRequired && IntentCab.NextRing(intent.Spec, pass.Status.Rings) is not null;
        pass.Status.AssignedApprovers = waiting ? [.. IntentCab.AssignedApprovers(intent, rule, caches.RoleBindings.InNamespace, routes)] : null;
        return ring => byRing.TryGetValue(ring, out var known)
            ? known
            : byRing[ring] = IntentCab.ForRing(intent, rule, approvals, HoldsApproverRole, caches.RoleBindings.InNamespace, routes, ring, pass.Now);
    }

    /// <summary>Whether any approve names the intent at all (only then is its evidence pack read).</summary>
    bool AnyApprove(DeploymentIntent intent) =>
        caches.Approvals.InNamespace(intent.Metadata.NamespaceProperty)
            .Any(a => a.Spec.Decision == "approve" && a.Spec.Target.Kind == DeploymentIntent.KubeKind && a.Spec.Target.Name == intent.Metadata.Name);

    /// <summary>
    /// Why a ring may not start for lack of CAB: a ring past the first of a change needing CAB, or a ring reaching
    /// prod, without the approvals that count for that ring now (and, for CAB, a validated rollback and the evidence).
    /// </summary>
    static string? RingHold(DeploymentIntent intent, IntentApprovalRule rule, bool cab, bool unvalidated, string? evidenceProblem, IntentCabState approval)
    {
        var first = DeploymentIntentResources.Rings(intent.Spec).FirstOrDefault() == approval.Ring;
        var counts = approval.State.Approved && !unvalidated;
        var ok = counts && (!cab || evidenceProblem is null);
        var wait = unvalidated ? RollbackNotValidated : !approval.State.Approved ? $"CAB approval: {approval.State.Message}" : evidenceProblem;
        if (cab && !first && !ok) return wait ?? $"ring {approval.Ring} waits for CAB approval";
        return rule.Hold(approval.Ring, ok, wait ?? approval.State.Message);
    }

    /// <summary>
    /// A ring started with CAB (a ring past the first of a change needing it, or a prod ring) keeps the approvals that
    /// let it start and the least soak they asked: later reconciles read these, not the Approvals as they are then.
    /// </summary>
    static IReadOnlyList<RingApproval> RecordApprovals(IntentRingStatus ring, DeploymentIntent intent, IntentApprovalRule rule, bool cab, IntentCabState approval)
    {
        var first = DeploymentIntentResources.Rings(intent.Spec).FirstOrDefault() == ring.Name;
        if (!((cab && !first) || rule.ProdRings.Contains(ring.Name)) || approval.Counted.Count == 0) return [];
        ring.ApprovedBy = approval.Counted.Select(a => CabConditions.Record(a, ring.Name)).ToList();
        ring.MinSoak = CabConditions.RecordedSoak(approval.Counted, ring.Name);
        return ring.ApprovedBy;
    }

    /// <summary>
    /// A ring that started before CAB approved (the first ring) takes the least soak the approvals for the next ring ask
    /// of it, once: recorded with the ring, so it is not re-decided.
    /// </summary>
    static void RecordSoaks(IntentPass pass, Func<string, IntentCabState> cabFor)
    {
        var rings = DeploymentIntentResources.Rings(pass.Intent.Spec);
        for (var i = 0; i + 1 < rings.Count; i++)
        {
            var ring = pass.Status.Rings?.FirstOrDefault(r => r.Name == rings[i]);
            if (ring is not { Phase: IntentRingPhase.InProgress, MinSoak: null }) continue;
            var next = cabFor(rings[i + 1]);
            if (!next.State.Approved || CabConditions.RecordedSoak(next.Counted, ring.Name) is not { } soak) continue;
            ring.MinSoak = soak;
            pass.Record("approval", ring.Name, IntentReasons.MinimumSoak, $"ring {ring.Name}: least soak {soak} (spec.conditions.minSoak of the approvals for ring {rings[i + 1]})",
                WithApprovals(new JsonObject { ["ring"] = ring.Name }, next.Counted.Select(a => CabConditions.Record(a, ring.Name)).ToList(), soak), $"ring/{ring.Name}/minsoak");
        }
    }

    /// <summary>A ring event's details with the approvals that let it start (the deployment event keeps them with the ring).</summary>
    static JsonObject WithApprovals(JsonObject details, IReadOnlyList<RingApproval> approvedBy, string? minSoak)
    {
        if (approvedBy.Count == 0) return details;
        details["approvals"] = new JsonArray(approvedBy.Select(a => (JsonNode)new JsonObject
        {
            ["approver"] = a.Approver,
            ["approval"] = a.Approval,
            ["maxRing"] = a.MaxRing,
            ["minSoak"] = a.MinSoak,
            ["expiresAt"] = a.ExpiresAt?.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        }).ToArray());
        if (minSoak is not null) details["minSoak"] = minSoak;
        return details;
    }
}
