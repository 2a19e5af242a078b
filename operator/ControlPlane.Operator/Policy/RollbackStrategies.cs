namespace ControlPlane.Operator.Policy;

/// <summary>Open rollback strategies, pure: spec.rollbackPlan.strategy against what the intent's plane advertises.</summary>
public static class RollbackStrategies
{
    public const string Default = "previous-version";

    /// <summary>Why the strategy may not be used on this plane (naming the field and listing what the plane supports), or null.</summary>
    public static string? Problem(string? strategy, IReadOnlyList<string> advertised, string planeType)
    {
        var wanted = string.IsNullOrEmpty(strategy) ? Default : strategy;
        if (advertised.Contains(wanted, StringComparer.Ordinal)) return null;
        var supported = advertised.Count == 0 ? "none advertised" : string.Join(", ", advertised);
        return $"spec.rollbackPlan.strategy: \"{wanted}\" is not advertised by the {planeType} execution plane; it supports: {supported}";
    }
}
