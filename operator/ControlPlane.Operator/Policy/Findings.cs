using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>What a finding is about: the design's exception types.</summary>
public enum FindingType { Vulnerability, UnsignedPackage, ScopeViolation }

/// <summary>
/// One thing found wrong with an intent's artifact or scope: a vulnerability (id, severity), an
/// artifact whose signature is missing or does not verify, or a scope violation. <see cref="Source"/>
/// says who reported it (spec: the author declared it; scan:&lt;format&gt;: the scan report the
/// operator parsed; signature: the operator's own check). The decision reads findings, never the
/// author's list alone: the author can add findings, never hide them.
/// </summary>
public sealed record Finding(FindingType Type, string Id, string Severity, string Source)
{
    /// <summary>Findings that block an intent until an approved Exception covers them.</summary>
    public bool Serious => Type != FindingType.Vulnerability || Severity is "High" or "Critical";

    public override string ToString() => Type == FindingType.Vulnerability ? $"{Id} ({Severity})" : $"{Id} ({Type})";
}

/// <summary>Pure helpers over findings.</summary>
public static class Findings
{
    /// <summary>The vulnerabilities the author declared in spec.artifact.vulnerabilities.</summary>
    public static IReadOnlyList<Finding> FromSpec(DeploymentIntentSpec spec) =>
        (spec.Artifact.Vulnerabilities ?? []).Select(v => new Finding(FindingType.Vulnerability, v.Id, v.Severity, "spec")).ToList();

    /// <summary>
    /// The union of several reports: one finding per (type, id), the highest severity any source gave it,
    /// so a source can only add or raise, never lower or remove.
    /// </summary>
    public static IReadOnlyList<Finding> Union(IEnumerable<Finding> findings) =>
        findings.GroupBy(f => (f.Type, f.Id))
            .Select(g => g.OrderByDescending(f => Rank(f.Severity)).ThenBy(f => f.Source, StringComparer.Ordinal).First())
            .OrderBy(f => f.Type).ThenBy(f => f.Id, StringComparer.Ordinal)
            .ToList();

    /// <summary>The most findings a message names; a condition message is at most 32768 characters, and a scan report can list thousands.</summary>
    public const int NamedInMessages = 50;

    /// <summary>Findings for a message: the first <see cref="NamedInMessages"/>, then how many more (all of them are in status.findings).</summary>
    public static string Summary(IReadOnlyCollection<Finding> findings, string separator = ", ") =>
        string.Join(separator, findings.Take(NamedInMessages)) + (findings.Count > NamedInMessages ? $"{separator}and {findings.Count - NamedInMessages} more" : "");

    /// <summary>Severity order: Low &lt; Medium &lt; High &lt; Critical (unknown counts as Critical: never lower a finding we cannot read).</summary>
    public static int Rank(string severity) => severity switch
    {
        "Low" => 0,
        "Medium" => 1,
        "High" => 2,
        _ => 3,
    };
}
