namespace ControlPlane.Operator.Policy;

/// <summary>The phases of a DeploymentIntent, as the contract names them.</summary>
public static class IntentPhase
{
    public const string Pending = "Pending";
    public const string RiskAssessed = "RiskAssessed";
    public const string ScopeValidated = "ScopeValidated";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string InProgress = "InProgress";
    public const string Completed = "Completed";
    public const string Failed = "Failed";
    public const string RolledBack = "RolledBack";
    public const string Denied = "Denied";
}

/// <summary>A transition the table does not allow: a bug, never a state the intent can reach.</summary>
public sealed class IllegalTransitionException(string from, string to)
    : InvalidOperationException($"DeploymentIntent phase {from} -> {to} is not a legal transition")
{
    public string From { get; } = from;
    public string To { get; } = to;
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
    public static readonly IReadOnlyDictionary<string, IReadOnlySet<string>> Table = new Dictionary<string, IReadOnlySet<string>>
    {
        [IntentPhase.Pending] = new HashSet<string> { IntentPhase.RiskAssessed, IntentPhase.Denied, IntentPhase.Failed },
        [IntentPhase.RiskAssessed] = new HashSet<string> { IntentPhase.ScopeValidated, IntentPhase.Denied, IntentPhase.Failed },
        [IntentPhase.ScopeValidated] = new HashSet<string> { IntentPhase.AwaitingApproval, IntentPhase.InProgress, IntentPhase.Denied, IntentPhase.Failed },
        [IntentPhase.AwaitingApproval] = new HashSet<string> { IntentPhase.InProgress, IntentPhase.Denied, IntentPhase.Failed, IntentPhase.RolledBack },
        [IntentPhase.InProgress] = new HashSet<string> { IntentPhase.AwaitingApproval, IntentPhase.Completed, IntentPhase.Failed, IntentPhase.RolledBack, IntentPhase.Denied },
        [IntentPhase.Completed] = new HashSet<string> { IntentPhase.RolledBack },
        [IntentPhase.Failed] = new HashSet<string>(),
        [IntentPhase.RolledBack] = new HashSet<string>(),
        [IntentPhase.Denied] = new HashSet<string>(),
    };

    public static bool IsFinal(string phase) => phase is IntentPhase.Failed or IntentPhase.RolledBack or IntentPhase.Denied;

    public static bool IsLegal(string from, string to) => Table.TryGetValue(from, out var next) && next.Contains(to);

    /// <summary>The next phase, checked against the table.</summary>
    public static string Transition(string from, string to) => IsLegal(from, to) ? to : throw new IllegalTransitionException(from, to);

    /// <summary>
    /// The legal path from <paramref name="from"/> to <paramref name="to"/> through the decision steps
    /// (a fresh intent passes RiskAssessed and ScopeValidated on its way), each step checked.
    /// </summary>
    public static IReadOnlyList<string> Path(string from, string to)
    {
        if (from == to) return [];
        if (IsLegal(from, to)) return [to];
        string[] pipeline = [IntentPhase.Pending, IntentPhase.RiskAssessed, IntentPhase.ScopeValidated];
        var start = Array.IndexOf(pipeline, from);
        if (start < 0) throw new IllegalTransitionException(from, to);
        var path = new List<string>();
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
