using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

public sealed partial class DeploymentIntentReconciler
{
    /// <summary>
    /// Everything found wrong with the intent's artifact, from every source the operator reads
    /// (<see cref="Findings.Union"/>): today what the author declared in spec.artifact.vulnerabilities.
    /// </summary>
    Task<IReadOnlyList<Finding>> FindingsAsync(IntentPass pass, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(Findings.Union(Findings.FromSpec(pass.Intent.Spec)));
    }
}
