using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

public sealed partial class DeploymentIntentReconciler
{
    /// <summary>
    /// Everything found wrong with the intent's artifact, from every source the operator reads
    /// (<see cref="Findings.Union"/>): what <see cref="ScanReportAsync"/> recorded for this generation
    /// (the scan report, the author's list, the signature check); for an intent assessed before
    /// findings were recorded, the author's list and the signature check.
    /// </summary>
    Task<IReadOnlyList<Finding>> FindingsAsync(IntentPass pass, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var status = pass.Status;
        if (status.FindingsGeneration == pass.Intent.Metadata.Generation && status.Findings is { } recorded)
        {
            return Task.FromResult<IReadOnlyList<Finding>>(recorded
                .Select(f => new Finding(Enum.TryParse<FindingType>(f.Type, out var t) ? t : FindingType.Vulnerability, f.Id, f.Severity, f.Source)).ToList());
        }

        var spec = pass.Intent.Spec;
        var signature = ArtifactSignatures.Check(spec.Artifact.Sha256, spec.Artifact.Signature, options.DeploymentIntent.TrustedSigningKeys);
        return Task.FromResult(Findings.Union([.. Findings.FromSpec(spec), .. signature is null ? [] : new[] { signature }]));
    }
}
