using System.Globalization;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>One factor's part of a score: its value in [0,1], its weight and what it added.</summary>
public sealed record RiskContribution(string Name, double Value, double Weight, double Contribution);

/// <summary>A scored intent: the score (0-100, one decimal), the model version, and each factor's part.</summary>
public sealed record RiskAssessment(double Score, string ModelVersion, IReadOnlyList<RiskContribution> Factors, bool RequiresApproval);

/// <summary>
/// The versioned risk model. v1.0 (built in): privilegeImpact 20, supplyChainTrust 15, blastRadius 25,
/// changeComplexity 15, testEvidence 25; each factor adds value x weight, except testEvidence, which
/// lowers risk and adds (1 - value) x weight; a score above the threshold (50) needs CAB approval.
/// A platform admin replaces it with the ConfigMap <see cref="ConfigMapName"/> in the operator's
/// namespace; an intent keeps the version it was scored with.
/// </summary>
public sealed record RiskModel(string Version, IReadOnlyDictionary<string, double> Weights, double ApprovalThreshold)
{
    public const string ConfigMapName = "controlplane-risk-model";

    public static readonly IReadOnlyList<string> FactorNames = ["privilegeImpact", "supplyChainTrust", "blastRadius", "changeComplexity", "testEvidence"];

    /// <summary>The factor whose evidence lowers risk: it counts as (1 - value).</summary>
    public const string Mitigating = "testEvidence";

    public static readonly RiskModel V1 = new("v1.0", new Dictionary<string, double>
    {
        ["privilegeImpact"] = 20,
        ["supplyChainTrust"] = 15,
        ["blastRadius"] = 25,
        ["changeComplexity"] = 15,
        ["testEvidence"] = 25,
    }, 50);

    static double? ValueOf(RiskFactors? f, string name) => name switch
    {
        "privilegeImpact" => f?.PrivilegeImpact,
        "supplyChainTrust" => f?.SupplyChainTrust,
        "blastRadius" => f?.BlastRadius,
        "changeComplexity" => f?.ChangeComplexity,
        "testEvidence" => f?.TestEvidence,
        _ => null,
    };

    /// <summary>
    /// Scores the factors. A factor left out counts at its worst (1; 0 for testEvidence): an unknown
    /// risk is not a low one. Rounded to one decimal, away from zero, as people round.
    /// </summary>
    public RiskAssessment Assess(RiskFactors? factors, bool privilegedTooling)
    {
        var parts = FactorNames.Select(name =>
        {
            var value = Math.Clamp(ValueOf(factors, name) ?? (name == Mitigating ? 0 : 1), 0, 1);
            var weight = Weights[name];
            var contribution = (name == Mitigating ? 1 - value : value) * weight;
            return new RiskContribution(name, value, weight, Math.Round(contribution, 2, MidpointRounding.AwayFromZero));
        }).ToList();
        var score = Math.Round(Math.Clamp(parts.Sum(p => (p.Name == Mitigating ? 1 - p.Value : p.Value) * p.Weight), 0, 100), 1, MidpointRounding.AwayFromZero);
        return new RiskAssessment(score, Version, parts, score > ApprovalThreshold || privilegedTooling);
    }

    /// <summary>
    /// The model a ConfigMap declares (data: version, approvalThreshold, and weight.&lt;factor&gt; for each
    /// factor), or why it is not one, naming the key. Weights are non-negative and sum to 100, so a
    /// score stays within 0-100.
    /// </summary>
    public static (RiskModel? Model, string? Problem) FromConfigMap(V1ConfigMap cm)
    {
        var data = cm.Data ?? new Dictionary<string, string>();
        var where = $"ConfigMap {cm.Metadata.NamespaceProperty}/{cm.Metadata.Name}";
        if (!data.TryGetValue("version", out var version) || string.IsNullOrWhiteSpace(version) || version.Length > 32)
        {
            return (null, $"{where}: data.version is required (at most 32 characters): every model is versioned");
        }

        var weights = new Dictionary<string, double>();
        foreach (var name in FactorNames)
        {
            if (!data.TryGetValue("weight." + name, out var text) || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var w) || !double.IsFinite(w) || w < 0)
            {
                return (null, $"{where}: data[weight.{name}] must be a number >= 0");
            }

            weights[name] = w;
        }

        if (Math.Abs(weights.Values.Sum() - 100) > 1e-9) return (null, $"{where}: the weights sum to {weights.Values.Sum().ToString(CultureInfo.InvariantCulture)}, not 100");
        var threshold = 50d;
        if (data.TryGetValue("approvalThreshold", out var t)
            && (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out threshold) || threshold is < 0 or > 100))
        {
            return (null, $"{where}: data.approvalThreshold must be a number in [0, 100]");
        }

        return (new RiskModel(version.Trim(), weights, threshold), null);
    }

    /// <summary>Whether two models with the same version say the same thing (a version is never reused for other weights).</summary>
    public bool SameAs(RiskModel other) =>
        Version == other.Version && ApprovalThreshold.Equals(other.ApprovalThreshold)
        && FactorNames.All(n => Weights[n].Equals(other.Weights[n]));
}
