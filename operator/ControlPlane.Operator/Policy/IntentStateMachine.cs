using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>A transition the table does not allow: a bug, never a state the intent can reach.</summary>
public sealed class IllegalTransitionException(IntentPhase from, IntentPhase to)
    : InvalidOperationException($"DeploymentIntent phase {from} -> {to} is not a legal transition")
{
    public IntentPhase From { get; } = from;
    public IntentPhase To { get; } = to;
}

/// <summary>
/// The governed state machine: Pending -> RiskAssessed -> ScopeValidated -> AwaitingApproval (when
/// required) -> InProgress (ring by ring; back to AwaitingApproval when the next ring waits for CAB)
/// -> Completed | Failed | RolledBack, or Denied. Every phase change goes through <see cref="Transition"/>,
/// so an illegal one is impossible by construction; each becomes an entry in the event store.
/// Failed is reachable from every live phase (the plane refused, the spec is invalid); the four
/// outcomes are final, except that a completed change can still be rolled back (drift remediation
/// or a later failure of a ring's plane).
/// </summary>
public static class IntentStateMachine
{
    public static readonly IReadOnlyDictionary<IntentPhase, IReadOnlySet<IntentPhase>> Table = new Dictionary<IntentPhase, IReadOnlySet<IntentPhase>>
    {
        [IntentPhase.Pending] = new HashSet<IntentPhase> { IntentPhase.RiskAssessed, IntentPhase.Denied, IntentPhase.Failed },
        [IntentPhase.RiskAssessed] = new HashSet<IntentPhase> { IntentPhase.ScopeValidated, IntentPhase.Denied, IntentPhase.Failed },
        [IntentPhase.ScopeValidated] = new HashSet<IntentPhase> { IntentPhase.AwaitingApproval, IntentPhase.InProgress, IntentPhase.Denied, IntentPhase.Failed },
        [IntentPhase.AwaitingApproval] = new HashSet<IntentPhase> { IntentPhase.InProgress, IntentPhase.Denied, IntentPhase.Failed, IntentPhase.RolledBack },
        [IntentPhase.InProgress] = new HashSet<IntentPhase> { IntentPhase.AwaitingApproval, IntentPhase.Completed, IntentPhase.Failed, IntentPhase.RolledBack, IntentPhase.Denied },
        [IntentPhase.Completed] = new HashSet<IntentPhase> { IntentPhase.RolledBack },
        [IntentPhase.Failed] = new HashSet<IntentPhase>(),
        [IntentPhase.RolledBack] = new HashSet<IntentPhase>(),
        [IntentPhase.Denied] = new HashSet<IntentPhase>(),
    };

    public static bool IsFinal(IntentPhase phase) => phase is IntentPhase.Failed or IntentPhase.RolledBack or IntentPhase.Denied;

    public static bool IsLegal(IntentPhase from, IntentPhase to) => Table.TryGetValue(from, out var next) && next.Contains(to);

    /// <summary>The next phase, checked against the table.</summary>
    public static IntentPhase Transition(IntentPhase from, IntentPhase to) => IsLegal(from, to) ? to : throw new IllegalTransitionException(from, to);

    /// <summary>
    /// The legal path from <paramref name="from"/> to <paramref name="to"/> through the decision steps
    /// (a fresh intent passes RiskAssessed and ScopeValidated on its way), each step checked.
    /// </summary>
    public static IReadOnlyList<IntentPhase> Path(IntentPhase from, IntentPhase to)
    {
        if (from == to) return [];
        if (IsLegal(from, to)) return [to];
        IntentPhase[] pipeline = [IntentPhase.Pending, IntentPhase.RiskAssessed, IntentPhase.ScopeValidated];
        var start = Array.IndexOf(pipeline, from);
        if (start < 0) throw new IllegalTransitionException(from, to);
        var path = new List<IntentPhase>();
        var at = from;
        foreach (var step in pipeline.Skip(start + 1))
        {
            at = Transition(at, step);
            path.Add(at);
            if (IsLegal(at, to)) break;
        }

        path.Add(Transition(at, to));
        return path;
    }
}
