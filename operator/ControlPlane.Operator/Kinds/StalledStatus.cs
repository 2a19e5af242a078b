using System.Text.Json.Nodes;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The one place every kind's Stalled condition is written: each kind's <see cref="ObjectWriter"/> runs
/// <see cref="Shape"/> on the status a reconciler is about to write, so Stalled follows the phase and
/// Ready of that same write (no extra write; an unchanged status stays unchanged). Stalled is True with
/// the terminal reason while <see cref="StalledRule"/> says so, and removed otherwise (kstatus reads an
/// absent Stalled as not stalled; an object that never stalls keeps the conditions it always had).
/// Also fills status.observedGeneration when a write left it out, so every write of every kind has it.
/// </summary>
public static class StalledStatus
{
    public const string Type = "Stalled";

    /// <summary>The status writer of a kind's reconciler.</summary>
    public static ObjectWriter Writer(TermBuilder b, OwnWrites writes) => new(b.Api, writes, Shaper(b.Time));

    public static StatusShaper Shaper(TimeProvider time) => (type, current, status) => Shape(type.Kind, current, status, time.GetUtcNow().UtcDateTime);

    public static void Shape(string kind, JsonObject current, JsonObject status, DateTime now)
    {
        var generation = current["metadata"]?["generation"]?.GetValue<long>();
        if (status["observedGeneration"] is null && generation is not null) status["observedGeneration"] = generation;

        var conditions = status["conditions"] is JsonArray array ? KubernetesJson.Deserialize<List<V1Condition>>(array.ToJsonString()) : [];
        var ready = conditions.FirstOrDefault(c => c.Type == "Ready");
        var verdict = StalledRule.Of(kind, status["phase"]?.GetValue<string>(), ready);
        var had = conditions.FindIndex(c => c.Type == Type);
        if (verdict is null)
        {
            if (had < 0) return;
            conditions.RemoveAt(had);
        }
        else
        {
            // A reconciler that builds its list afresh drops Stalled: the one written before keeps its transition time.
            if (had < 0 && Conditions.Find(KubernetesJson.Deserialize<List<V1Condition>?>(current["status"]?["conditions"]?.ToJsonString() ?? "null"), Type) is { } before)
            {
                conditions.Add(before);
            }

            conditions = Conditions.Set(conditions, Type, ConditionStatus.True, verdict.Reason, verdict.Message, generation, now);
        }

        if (conditions.Count == 0) status.Remove("conditions");
        else status["conditions"] = JsonNode.Parse(KubernetesJson.Serialize(conditions));
    }
}
