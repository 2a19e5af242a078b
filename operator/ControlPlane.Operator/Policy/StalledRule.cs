using System.Collections.Frozen;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>Why an object is stalled: the terminal reason and what would have to change.</summary>
public sealed record StalledVerdict(string Reason, string Message);

/// <summary>
/// kstatus's Stalled, derived from the status a reconciler is about to write: an object is stalled when
/// it will not progress without a change (of its spec, or of what the message names), that is when its
/// phase is terminal or its Ready condition is False for a reason no retry can fix. The reason and
/// message are Ready's, so Stalled says the same as the rest of the status. Transient failures
/// (a database unreachable, a plane unavailable) are never stalled: the operator retries them.
/// </summary>
public static class StalledRule
{
    // Per kind: the phases that end the object's life for its current spec, and the Ready reasons that
    // refuse the spec (or the object's place) whatever the phase. Strings, because the status is read
    // as JSON before it is written; the names come from the typed phases and reasons.
    static readonly FrozenDictionary<string, (FrozenSet<string> Phases, FrozenSet<string> Reasons)> Terminal = new Dictionary<string, (FrozenSet<string>, FrozenSet<string>)>(StringComparer.Ordinal)
    {
        [Tenant.KubeKind] = ([nameof(TenantPhase.Failed)], []),
        [Workspace.KubeKind] = ([nameof(WorkspacePhase.Failed)], []),
        [Exposure.KubeKind] = ([nameof(ExposurePhase.Rejected)],
            [ExposureReasons.Conflict, ExposureReasons.IngressConflict, ExposureReasons.HostNotDelegated, ExposureReasons.InvalidName,
             ExposureReasons.InvalidPath, ExposureReasons.BackendRefused]),
        [Rollout.KubeKind] = ([nameof(RolloutPhase.RolledBack), nameof(RolloutPhase.Failed)], []),
        [DeploymentIntent.KubeKind] = ([nameof(IntentPhase.Denied), nameof(IntentPhase.Failed), nameof(IntentPhase.RolledBack)], [IntentReasons.NotInAWorkspace, IntentReasons.ExceptionExpired]),
        // Expired and Rejected never count again for this spec: a new review (a new Exception or generation) is needed.
        [SecurityException.KubeKind] = ([nameof(ExceptionPhase.Expired), nameof(ExceptionPhase.Rejected)], [ExceptionReasons.NotInAWorkspace, ExceptionReasons.PolicyViolation]),
        // An ended request is never granted again: a new AccessRequest needs a new approval.
        [AccessRequest.KubeKind] = ([nameof(AccessRequestPhase.Expired), nameof(AccessRequestPhase.Revoked), nameof(AccessRequestPhase.Rejected)],
            [AccessRequestReasons.NotInAWorkspace, AccessRequestReasons.PolicyViolation, AccessRequestReasons.NotAPerson]),
        // An ended or refused break-glass is never granted again: emergency access needs a new BreakGlass.
        [BreakGlass.KubeKind] = ([nameof(BreakGlassPhase.Expired), nameof(BreakGlassPhase.Ended), nameof(BreakGlassPhase.Refused)],
            [BreakGlassReasons.NotInAWorkspace, BreakGlassReasons.PolicyViolation, BreakGlassReasons.NotAPerson, BreakGlassReasons.BreakGlassDisabled,
             BreakGlassReasons.NotAnInvoker, BreakGlassReasons.AlreadyActive]),
        // A refused spec, or a channel disabled by its failures: only a spec change moves it (a missing Secret is waited for).
        [NotificationChannel.KubeKind] = ([nameof(NotificationChannelPhase.Invalid), nameof(NotificationChannelPhase.AutoDisabled)],
            [NotificationChannelReasons.InvalidSpec, NotificationChannelReasons.AutoDisabled]),
        [Backup.KubeKind] = ([nameof(BackupPhase.Failed)], []),
        [Restore.KubeKind] = ([nameof(RestorePhase.Failed)], []),
        [BackupPlan.KubeKind] = ([], [BackupPlanReasons.InvalidSchedule, BackupPlanReasons.InvalidName, BackupPlanReasons.TenantStorageNotAllowed]),
        [WorkspaceNetworkPolicy.KubeKind] = ([], [NetworkPolicyReasons.PolicyConflict, NetworkPolicyReasons.InvalidName, NetworkPolicyReasons.InvalidSelector]),
        [Application.KubeKind] = ([nameof(ApplicationPhase.Rejected), nameof(ApplicationPhase.Failed)], [ApplicationReasons.NotInAWorkspace, ApplicationReasons.ScopeOutsideTenant]),
        // An approval that does not count never will for this target generation: a new approval is needed.
        [Approval.KubeKind] = ([], [ApprovalReasons.NoApprover, ApprovalReasons.NotAPerson, ApprovalReasons.SelfApproval, ApprovalReasons.NotAnApprover,
            ApprovalReasons.TargetReplaced, ApprovalReasons.StaleGeneration,
            ApprovalReasons.Expired]),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // Never stalled whatever the phase: a suspended tenant is a hold a person lifts (Argo CD says Suspended),
    // a terminating tenant takes its workspaces with it, an unreachable database is retried.
    static readonly FrozenSet<string> Progresses = new[]
    {
        WorkspaceReasons.TenantSuspended, WorkspaceReasons.TenantTerminating, WorkspaceReasons.DatabaseUnavailable,
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The kinds the rule knows: every kind of the API.</summary>
    public static IReadOnlyCollection<string> Kinds => Terminal.Keys;

    /// <summary>Stalled or not (null) for a status of <paramref name="kind"/> with this phase and Ready condition.</summary>
    public static StalledVerdict? Of(string kind, string? phase, V1Condition? ready)
    {
        if (!Terminal.TryGetValue(kind, out var terminal)) return null;
        if (ready?.Reason is { } waits && Progresses.Contains(waits)) return null;
        if (phase is not null && terminal.Phases.Contains(phase))
        {
            // Ready False carries the terminal reason; a terminal phase without one still says which phase.
            return ready is { Status: "False" } && !string.IsNullOrEmpty(ready.Reason)
                ? new(ready.Reason, string.IsNullOrEmpty(ready.Message) ? $"{kind} is {phase}" : ready.Message)
                : new(phase, $"{kind} is {phase}: it will not progress without a change of its spec");
        }

        return ready is { Status: "False", Reason: { } reason } && terminal.Reasons.Contains(reason)
            ? new(reason, string.IsNullOrEmpty(ready.Message) ? reason : ready.Message)
            : null;
    }
}
