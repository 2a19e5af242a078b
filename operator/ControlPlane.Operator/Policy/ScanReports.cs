using System.Text.Json;

namespace ControlPlane.Operator.Policy;

/// <summary>What a scan report says: its vulnerabilities as findings, or why it cannot be used (naming the field).</summary>
public sealed record ScanReportResult(IReadOnlyList<Finding> Findings, string? Problem)
{
    public static ScanReportResult Refused(string problem) => new([], problem);
}

/// <summary>
/// Parses the scanners' published JSON formats into findings and checks the report is about the
/// intent's artifact. Pure: bytes in, findings or a problem out; every problem names
/// spec.artifact.scanReport and the report field that is wrong.
/// <list type="bullet">
/// <item>Trivy (`trivy image --format json`): Results[].Vulnerabilities[].{VulnerabilityID, Severity};
/// the artifact is Metadata.RepoDigests (repo@sha256:…) or a digest in ArtifactName, else ArtifactName as the image reference.</item>
/// <item>CycloneDX 1.4+ JSON: vulnerabilities[].{id, ratings[].severity}; the artifact is
/// metadata.component.hashes (SHA-256) or the digest in metadata.component.purl (pkg:oci/…@sha256%3A…), else its name as the image reference.</item>
/// </list>
/// A severity the scanner did not give, or gave as unknown, counts as Critical (<see cref="Findings.Rank"/>: never lower what cannot be read).
/// </summary>
public static class ScanReports
{
    const string Field = "spec.artifact.scanReport";

    /// <summary>Reports larger than this are refused (a ConfigMap holds at most 1 MiB; a URL is bounded the same).</summary>
    public const int MaxBytes = 10 << 20;

    public static ScanReportResult Parse(string format, ReadOnlySpan<byte> bytes, string image, string? sha256)
    {
        if (bytes.Length > MaxBytes) return ScanReportResult.Refused($"{Field}: {bytes.Length} bytes, more than {MaxBytes}");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            return ScanReportResult.Refused($"{Field}: not JSON ({e.Message.Split('.')[0]}): a {format} report is JSON");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return ScanReportResult.Refused($"{Field}: the report is not a JSON object");
            return format switch
            {
                "trivy" => Trivy(doc.RootElement, image, sha256),
                "cyclonedx" => CycloneDx(doc.RootElement, image, sha256),
                _ => ScanReportResult.Refused($"{Field}.format: \"{format}\" is not trivy or cyclonedx"),
            };
        }
    }

    static ScanReportResult Trivy(JsonElement root, string image, string? sha256)
    {
        if (!root.TryGetProperty("SchemaVersion", out _) || !root.TryGetProperty("ArtifactName", out _))
        {
            return ScanReportResult.Refused($"{Field}: not a Trivy JSON report (no SchemaVersion or ArtifactName)");
        }

        var name = String(root, "ArtifactName");
        var digests = new List<string>();
        if (root.TryGetProperty("Metadata", out var meta) && meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty("RepoDigests", out var repoDigests)
            && repoDigests.ValueKind == JsonValueKind.Array)
        {
            digests.AddRange(repoDigests.EnumerateArray().Where(d => d.ValueKind == JsonValueKind.String).Select(d => DigestOf(d.GetString()!)).OfType<string>());
        }

        if (name is not null && DigestOf(name) is { } own) digests.Add(own);
        if (Mismatch(digests, "Metadata.RepoDigests", name, "ArtifactName", image, sha256) is { } mismatch) return ScanReportResult.Refused(mismatch);

        var findings = new List<Finding>();
        if (root.TryGetProperty("Results", out var results) && results.ValueKind == JsonValueKind.Array)
        {
            var r = 0;
            foreach (var result in results.EnumerateArray())
            {
                if (result.ValueKind == JsonValueKind.Object && result.TryGetProperty("Vulnerabilities", out var vulns) && vulns.ValueKind == JsonValueKind.Array)
                {
                    var v = 0;
                    foreach (var vuln in vulns.EnumerateArray())
                    {
                        var id = vuln.ValueKind == JsonValueKind.Object ? String(vuln, "VulnerabilityID") : null;
                        if (string.IsNullOrWhiteSpace(id)) return ScanReportResult.Refused($"{Field}: Results[{r}].Vulnerabilities[{v}].VulnerabilityID is missing");
                        findings.Add(new Finding(FindingType.Vulnerability, id, Severity(String(vuln, "Severity")), "scan:trivy"));
                        v++;
                    }
                }

                r++;
            }
        }
        else if (root.TryGetProperty("Results", out var other) && other.ValueKind != JsonValueKind.Null)
        {
            return ScanReportResult.Refused($"{Field}: Results is not an array");
        }

        return new(Findings.Union(findings), null);
    }

    static ScanReportResult CycloneDx(JsonElement root, string image, string? sha256)
    {
        if (String(root, "bomFormat") != "CycloneDX") return ScanReportResult.Refused($"{Field}: not a CycloneDX JSON report (bomFormat is not CycloneDX)");
        var digests = new List<string>();
        string? name = null;
        if (root.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty("component", out var component)
            && component.ValueKind == JsonValueKind.Object)
        {
            name = String(component, "name");
            if (component.TryGetProperty("hashes", out var hashes) && hashes.ValueKind == JsonValueKind.Array)
            {
                digests.AddRange(hashes.EnumerateArray()
                    .Where(h => h.ValueKind == JsonValueKind.Object && String(h, "alg") == "SHA-256" && String(h, "content") is not null)
                    .Select(h => String(h, "content")!.ToLowerInvariant()));
            }

            if (String(component, "purl") is { } purl && DigestOf(Uri.UnescapeDataString(purl)) is { } fromPurl) digests.Add(fromPurl);
        }

        if (Mismatch(digests, "metadata.component.hashes/purl", name, "metadata.component.name", image, sha256) is { } mismatch) return ScanReportResult.Refused(mismatch);

        var findings = new List<Finding>();
        if (root.TryGetProperty("vulnerabilities", out var vulns))
        {
            if (vulns.ValueKind != JsonValueKind.Array) return ScanReportResult.Refused($"{Field}: vulnerabilities is not an array");
            var i = 0;
            foreach (var vuln in vulns.EnumerateArray())
            {
                var id = vuln.ValueKind == JsonValueKind.Object ? String(vuln, "id") : null;
                if (string.IsNullOrWhiteSpace(id)) return ScanReportResult.Refused($"{Field}: vulnerabilities[{i}].id is missing");
                // The highest rating any source in the report gives; none at all is unknown (Critical).
                var severities = vuln.TryGetProperty("ratings", out var ratings) && ratings.ValueKind == JsonValueKind.Array
                    ? ratings.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.Object).Select(x => Severity(String(x, "severity"))).ToList()
                    : [];
                var severity = severities.Count == 0 ? "Critical" : severities.OrderByDescending(Findings.Rank).First();
                findings.Add(new Finding(FindingType.Vulnerability, id, severity, "scan:cyclonedx"));
                i++;
            }
        }

        return new(Findings.Union(findings), null);
    }

    /// <summary>
    /// Whether the report is about another artifact: any digest it gives must be the intent's
    /// spec.artifact.sha256; a report with no digest must name the intent's image exactly; a report
    /// naming nothing is refused (it could be about anything).
    /// </summary>
    static string? Mismatch(List<string> digests, string digestField, string? name, string nameField, string image, string? sha256)
    {
        if (digests.Count > 0)
        {
            return sha256 is not null && digests.Contains(sha256, StringComparer.Ordinal)
                ? null
                : $"{Field}: the report is about another artifact: {digestField} gives sha256 {string.Join(", ", digests.Distinct())}, not spec.artifact.sha256 ({sha256 ?? "none"})";
        }

        if (string.IsNullOrEmpty(name)) return $"{Field}: the report names no artifact ({digestField} and {nameField} are missing): it cannot be checked to be about spec.artifact";
        return name == image ? null : $"{Field}: the report is about another artifact: {nameField} is \"{name}\", not spec.artifact.image (\"{image}\")";
    }

    /// <summary>The hex digest in "repo@sha256:hex" or "sha256:hex", lowercased; null when there is none.</summary>
    static string? DigestOf(string reference)
    {
        var at = reference.LastIndexOf("sha256:", StringComparison.OrdinalIgnoreCase);
        if (at < 0) return null;
        var hex = new string(reference[(at + 7)..].TakeWhile(Uri.IsHexDigit).ToArray()).ToLowerInvariant();
        return hex.Length == 64 ? hex : null;
    }

    /// <summary>A scanner's severity in the contract's words; unknown, missing or anything else is Critical.</summary>
    public static string Severity(string? scanner) => scanner?.Trim().ToUpperInvariant() switch
    {
        "LOW" or "INFO" or "NONE" or "NEGLIGIBLE" => "Low",
        "MEDIUM" or "MODERATE" => "Medium",
        "HIGH" => "High",
        _ => "Critical",
    };

    static string? String(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
