namespace ControlPlane.Operator.Policy;

// The vocabulary the pure decisions (TenantPlan, BackupRunPlan, BackupSchedulePlan) answer in: the
// reconciler turns it into conditions, Events and a ReconcileResult in one place (Kinds/Decisions.cs),
// so Policy needs nothing of the runtime.

/// <summary>A condition as the decision wants it; a null Status is Unknown.</summary>
public sealed record ConditionVerdict(string Type, bool? Status, string Reason, string Message);

/// <summary>An Event the decision asks for.</summary>
public sealed record Notice(string Reason, string Message, bool Warning = false);

/// <summary>How a pass ends: done, look again after a time, retry with backoff, or terminal (a condition says why).</summary>
public sealed record PassResult(PassResult.Outcome Kind, string? Message = null, TimeSpan? After = null)
{
    public enum Outcome
    {
        Done,
        RequeueAfter,
        Retry,
        Terminal,
    }

    public static readonly PassResult Done = new(Outcome.Done);

    public static PassResult RequeueAfter(TimeSpan delay) => new(Outcome.RequeueAfter, After: delay);

    public static PassResult Retry(string message) => new(Outcome.Retry, message);

    public static PassResult Terminal(string message) => new(Outcome.Terminal, message);
}
