using k8s.Models;

namespace ControlPlane.Runtime;

public static class ConditionStatus
{
    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";
}

/// <summary>
/// The one place conditions are set. A condition's lastTransitionTime changes only when its
/// status flips; reason, message and observedGeneration are updated in place.
/// </summary>
public static class Conditions
{
    public static List<V1Condition> Set(IReadOnlyList<V1Condition>? existing, string type, string status, string reason, string message,
        long? generation, DateTime now)
    {
        var result = existing?.Select(Clone).ToList() ?? [];
        var index = result.FindIndex(c => c.Type == type);
        var transition = index >= 0 && result[index].Status == status ? result[index].LastTransitionTime : now;
        var condition = new V1Condition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message,
            ObservedGeneration = generation,
            LastTransitionTime = transition,
        };
        if (index >= 0) result[index] = condition;
        else result.Add(condition);
        return result;
    }

    public static V1Condition? Find(IReadOnlyList<V1Condition>? conditions, string type) =>
        conditions?.FirstOrDefault(c => c.Type == type);

    public static bool IsTrue(IReadOnlyList<V1Condition>? conditions, string type) =>
        Find(conditions, type)?.Status == ConditionStatus.True;

    static V1Condition Clone(V1Condition c) => new()
    {
        Type = c.Type,
        Status = c.Status,
        Reason = c.Reason,
        Message = c.Message,
        ObservedGeneration = c.ObservedGeneration,
        LastTransitionTime = c.LastTransitionTime,
    };
}

/// <summary>Builds a status's condition list from the conditions a reconcile computed.</summary>
public sealed class ConditionSet(IReadOnlyList<V1Condition>? existing, long? generation, DateTime now)
{
    List<V1Condition> conditions = existing?.ToList() ?? [];

    public ConditionSet Set(string type, bool ok, string reason, string message)
    {
        conditions = Conditions.Set(conditions, type, ok ? ConditionStatus.True : ConditionStatus.False, reason, message, generation, now);
        return this;
    }

    public ConditionSet SetUnknown(string type, string reason, string message)
    {
        conditions = Conditions.Set(conditions, type, ConditionStatus.Unknown, reason, message, generation, now);
        return this;
    }

    public bool IsTrue(string type) => Conditions.IsTrue(conditions, type);

    public List<V1Condition> ToList() => conditions;
}
