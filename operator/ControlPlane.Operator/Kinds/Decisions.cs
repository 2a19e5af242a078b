using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>Where a pure decision's verdicts and results become conditions and a <see cref="ReconcileResult"/>.</summary>
public static class Decisions
{
    /// <summary>Sets the verdicts in order (the order the condition list keeps).</summary>
    public static ConditionSet Apply(this ConditionSet set, IEnumerable<ConditionVerdict> verdicts)
    {
        foreach (var v in verdicts)
        {
            if (v.Status is { } ok) set.Set(v.Type, ok, v.Reason, v.Message);
            else set.SetUnknown(v.Type, v.Reason, v.Message);
        }

        return set;
    }

    public static ReconcileResult ToResult(this PassResult result) => result.Kind switch
    {
        PassResult.Outcome.Done => ReconcileResult.Done,
        PassResult.Outcome.RequeueAfter => ReconcileResult.RequeueAfter(result.After!.Value),
        PassResult.Outcome.Retry => ReconcileResult.Retry(result.Message!),
        PassResult.Outcome.Terminal => ReconcileResult.Terminal(result.Message!),
        _ => throw new ArgumentOutOfRangeException(nameof(result), result.Kind, "not a pass result"),
    };

    /// <summary>Sends the decision's Events, in order.</summary>
    public static async Task SendAsync(this EventRecorder events, k8s.IKubernetesObject<k8s.Models.V1ObjectMeta> obj, IEnumerable<Notice> notices, CancellationToken ct)
    {
        foreach (var n in notices)
        {
            if (n.Warning) await events.WarningAsync(obj, n.Reason, n.Message, ct).ConfigureAwait(false);
            else await events.NormalAsync(obj, n.Reason, n.Message, ct).ConfigureAwait(false);
        }
    }
}
