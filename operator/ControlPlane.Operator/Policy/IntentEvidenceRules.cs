using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Admission's rules for a DeploymentIntent's evidence, scan report and signature (the reconciler
/// checks the same again, and the bytes, which admission never reads): each problem names the field.
/// </summary>
public static class IntentEvidenceRules
{
    /// <param name="creating">A new intent (CREATE); an UPDATE is held to the same rules only for what it removes.</param>
    /// <param name="old">The spec before an UPDATE (null on CREATE).</param>
    public static List<string> Problems(DeploymentIntentSpec spec, DeploymentIntentSpec? old, DeploymentIntentOptions options)
    {
        var problems = new List<string>();
        var creating = old is null;
        if (spec.EvidencePackRef is null && (creating || old!.EvidencePackRef is not null))
        {
            problems.Add("spec.evidencePackRef: required: every intent carries an evidence pack (configMap or url, and its sha256), checked and kept before the first ring starts");
        }

        if (spec.Artifact.ScanReport is { } report)
        {
            if ((report.ConfigMap is null) == (report.Url is null)) problems.Add("spec.artifact.scanReport: name exactly one of configMap and url");
            if (report.Url is { } url && !UrlPrefixes.Allows(url, options.EvidenceUrlPrefixes))
            {
                problems.Add($"spec.artifact.scanReport.url: {url} is not under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes: the operator fetches only from where the platform allows");
            }

            if (report.Format is not ("trivy" or "cyclonedx")) problems.Add($"spec.artifact.scanReport.format: \"{report.Format}\" is not trivy or cyclonedx");
            if (string.IsNullOrEmpty(report.Sha256)) problems.Add("spec.artifact.scanReport.sha256: required: the report is pinned by its SHA-256");
        }
        else if (options.RequireScanReport && (creating || old!.Artifact.ScanReport is not null))
        {
            problems.Add("spec.artifact.scanReport: required: findings come from a scanner's report (Trivy or CycloneDX JSON with its sha256), not from the author alone");
        }

        if (spec.EvidencePackRef is { Url: { } packUrl } && !UrlPrefixes.Allows(packUrl, options.EvidenceUrlPrefixes))
        {
            problems.Add($"spec.evidencePackRef.url: {packUrl} is not under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes: the operator fetches only from where the platform allows");
        }

        if (spec.Artifact.Signature is { } signature && !IsBase64(signature)) problems.Add("spec.artifact.signature: not base64");
        return problems;
    }

    static bool IsBase64(string s)
    {
        var buffer = new byte[(s.Length * 3 / 4) + 3];
        return Convert.TryFromBase64String(s, buffer, out var written) && written > 0;
    }
}
