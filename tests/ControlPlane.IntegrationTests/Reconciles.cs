using ControlPlane.LocalEnv;
using ControlPlane.Operator;
using ControlPlane.Runtime;

namespace ControlPlane.Tests;

/// <summary>Waiting for an object to be reconciled again, instead of for a fixed time, when a test must show that nothing changed.</summary>
public static class Reconciles
{
    /// <summary>
    /// The object reconciled twice more, one pass after another: the second began after everything written before this
    /// call was in the operator's caches, so a state the test then reads is what the operator decided from them.
    /// </summary>
    public static async Task ReconciledAgainAsync(this OperatorRuntime runtime, string controllerName, string ns, string name)
    {
        var controller = runtime.Controllers.Single(c => c.Name == controllerName);
        var seen = 0;
        void Count(string c, string key, string result)
        {
            if (c == controllerName && key == $"{ns}/{name}") Interlocked.Increment(ref seen);
        }

        runtime.Reconciled += Count;
        try
        {
            for (var round = 1; round <= 2; round++)
            {
                var want = round;
                controller.ResyncNow();
                await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref seen) >= want), TimeSpan.FromSeconds(60), $"{controllerName} {ns}/{name} reconciled again ({round})");
            }
        }
        finally
        {
            runtime.Reconciled -= Count;
        }
    }
}
