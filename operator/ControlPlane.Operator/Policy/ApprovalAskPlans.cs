using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// An audit row asking for approval: its action, the reason it is de-duplicated by (with details.generation:
/// SystemDatabase.AuditExistsAsync) and its details, details.approvers included (<see cref="ApprovalAsks"/>).
/// </summary>
public sealed record ApprovalAsk(string Action, string Reason, JsonObject Details);

/// <summary>
/// When an Exposure, a Rollout ring (or its spec.promote) and an Exception start waiting for approval, the
/// operator audits the ask once per generation (and ring), so approval.requested reaches the approvers
/// (NotificationEvents). The decision is pure and reads the status the last pass wrote: a status that already
/// shows this generation waiting (the condition the pass sets after the row is on record) asks nothing, so a
/// resync writes nothing; one that does not (first look, an edit, a pass whose audit failed) asks, and the
/// apply appends only if no row of this action, reason and generation exists (the cache may lag our own write).
/// </summary>
public static class ApprovalAskPlans
{
    public const string ExposureAction = "exposure.approval-requested";
    public const string RolloutAction = "rollout.approval-requested";
    public const string ExceptionAction = "exception.requested";

    /// <summary>The details.reason of a Rollout's spec.promote ask for <paramref name="ring"/> (a ring's own ask is its name; ':' never is in one).</summary>
    public static string PromoteReason(string ring) => $"promote:{ring}";

    /// <summary>
    /// An Exposure with spec.publish whose current generation is not live, not approved and not rejected waits for
    /// approval. Asked unless its Approved condition already says AwaitingApproval for this generation. No spec values in the
    /// details (a metadataOnly tenant's record keeps none): the generations say what to look at.
    /// </summary>
    public static ApprovalAsk? ForExposure(Exposure e, ApprovalState state, long? liveGeneration)
    {
        var generation = e.Metadata.Generation;
        if (!e.Spec.Publish || state.Approved || state.Rejected || liveGeneration == generation) return null;
        var previous = Find(e.Status?.Conditions, ExposureConditions.Approved);
        if (previous?.Reason == ExposureReasons.AwaitingApproval && previous.ObservedGeneration == generation) return null;
        var details = new JsonObject
        {
            ["reason"] = ExposureReasons.AwaitingApproval,
            ["generation"] = generation,
            ["liveGeneration"] = liveGeneration,
            ["message"] = state.Message,
        };
        return new(ExposureAction, ExposureReasons.AwaitingApproval, ApprovalAsks.With(details, state.Required, state.Approvers, null));
    }

    /// <summary>
    /// A Rollout ring that this pass leaves AwaitingApproval (not rejected) is asked for, unless the last status
    /// already showed that ring awaiting approval of this generation (Paused with reason AwaitingApproval).
    /// </summary>
    public static bool RingAskIsNew(Rollout rollout, string ring)
    {
        var paused = Find(rollout.Status?.Conditions, RolloutConditions.Paused);
        var before = rollout.Status?.Rings?.FirstOrDefault(r => r.Name == ring)?.Phase;
        return !(before == RingPhase.AwaitingApproval && paused?.Reason == RolloutReasons.AwaitingApproval && paused.ObservedGeneration == rollout.Metadata.Generation);
    }

    /// <summary>spec.promote of a soaking ring waits for approval: asked unless the last status already said so for this generation (Progressing, PromotionRefused).</summary>
    public static bool PromoteAskIsNew(Rollout rollout)
    {
        var progressing = Find(rollout.Status?.Conditions, RolloutConditions.Progressing);
        return !(progressing?.Reason == RolloutReasons.PromotionRefused && progressing.ObservedGeneration == rollout.Metadata.Generation);
    }

    /// <summary>The details of a Rollout's ask: the ring, what waits (its start or spec.promote) and who may approve.</summary>
    public static JsonObject RolloutDetails(Rollout rollout, string ring, string step, ApprovalState? state) =>
        ApprovalAsks.With(new JsonObject { ["ring"] = ring, ["step"] = step },
            state?.Required, state?.Approvers ?? [], null);

    /// <summary>
    /// An Exception that this pass leaves Pending waits for a SecurityReviewer. Asked unless the last status already
    /// showed it Pending and awaiting approval for this generation (the Ready reason is set only after the audit rows are on record).
    /// </summary>
    public static ApprovalAsk? ForException(SecurityException e, ExceptionPhase phase, ApprovalState state, JsonObject details)
    {
        if (phase != ExceptionPhase.Pending || state.Rejected) return null;
        var old = e.Status;
        var ready = Find(old?.Conditions, ExceptionConditions.Ready);
        if (old?.Phase == ExceptionPhase.Pending && ready?.Reason == ExceptionReasons.AwaitingApproval && ready.ObservedGeneration == e.Metadata.Generation) return null;
        var d = details.DeepClone().AsObject();
        d["reason"] = ExceptionReasons.AwaitingApproval;
        d["message"] = state.Message;
        return new(ExceptionAction, ExceptionReasons.AwaitingApproval, ApprovalAsks.With(d, state.Required, state.Approvers, null, ExceptionApprovals.ReviewerRoles));
    }

    static k8s.Models.V1Condition? Find(IReadOnlyList<k8s.Models.V1Condition>? conditions, string type) => conditions?.FirstOrDefault(c => c.Type == type);
}
