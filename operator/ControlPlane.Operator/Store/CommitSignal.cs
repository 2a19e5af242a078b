namespace ControlPlane.Operator.Store;

/// <summary>
/// Says "a row was committed to a chained table" to a loop of this process that reads those tables by cursor (the
/// notification delivery loop), so it looks now instead of at its next poll. Only a hint: rows committed by another
/// process are found by the poll; nothing depends on a signal arriving.
/// </summary>
public sealed class CommitSignal
{
    readonly Lock gate = new();
    long version;
    TaskCompletionSource next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Raised commits so far: a waiter passes the value it last saw.</summary>
    public long Version
    {
        get
        {
            lock (gate) return version;
        }
    }

    public void Raise()
    {
        TaskCompletionSource fired;
        lock (gate)
        {
            version++;
            fired = next;
            next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        fired.TrySetResult();
    }

    /// <summary>Completes at once when something was committed after <paramref name="seen"/>, else at the next commit.</summary>
    public Task WaitAsync(long seen)
    {
        lock (gate) return version != seen ? Task.CompletedTask : next.Task;
    }
}
