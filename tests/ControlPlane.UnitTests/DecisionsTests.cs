using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Where the plans' verdicts and results become conditions and a ReconcileResult (Kinds/Decisions.cs).</summary>
public sealed class DecisionsTests
{
    [Fact]
    public void Verdicts_AreSetInOrder_ANullStatusIsUnknown()
    {
        var now = new DateTime(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc);
        var conditions = new ConditionSet(null, 7, now).Apply([new("A", true, "Yes", "a"), new("B", false, "No", "b"), new("C", null, "Maybe", "c")]).ToList();
        Assert.Equal(["A", "B", "C"], conditions.Select(c => c.Type));
        Assert.Equal(["True", "False", "Unknown"], conditions.Select(c => c.Status));
        Assert.All(conditions, c => Assert.Equal(7, c.ObservedGeneration));
    }

    [Fact]
    public void PassResults_MapOneToOne()
    {
        Assert.Equal(ReconcileResult.Done, PassResult.Done.ToResult());
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(3)), PassResult.RequeueAfter(TimeSpan.FromSeconds(3)).ToResult());
        Assert.Equal(ReconcileResult.Retry("down"), PassResult.Retry("down").ToResult());
        Assert.Equal(ReconcileResult.Terminal("bad"), PassResult.Terminal("bad").ToResult());
    }
}
