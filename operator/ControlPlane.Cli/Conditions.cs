using System.Text.Json.Nodes;

namespace ControlPlane.Cli;

/// <summary>A condition as an object's status shows it.</summary>
public sealed record Cond(string Type, string Status, string? Reason, string? Message, long? ObservedGeneration);

/// <summary>Reads what every controlplane.io object has alike: status.phase, conditions, the webhook's stamps.</summary>
public static class Obj
{
    public static IReadOnlyList<Cond> Conditions(JsonObject o) =>
        (o["status"]?["conditions"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(c => new Cond(Str(c["type"]) ?? "", Str(c["status"]) ?? "Unknown", Str(c["reason"]), Str(c["message"]), Long(c["observedGeneration"])))
            .ToList();

    public static Cond? Condition(JsonObject o, string type) => Conditions(o).FirstOrDefault(c => c.Type == type);

    public static string? Phase(JsonObject o) => Str(o["status"]?["phase"]);

    public static long Generation(JsonObject o) => Long(o["metadata"]?["generation"]) ?? 0;

    public static long? ObservedGeneration(JsonObject o) => Long(o["status"]?["observedGeneration"]);

    public static string Name(JsonObject o) => Str(o["metadata"]?["name"]) ?? "";

    public static string? Annotation(JsonObject o, string key) => Str(o["metadata"]?["annotations"]?[key]);

    /// <summary>A number as a long, whether parsed from the wire or built in memory; null when absent or not an integer.</summary>
    public static long? Long(JsonNode? n) => n is not JsonValue v ? null
        : v.TryGetValue<long>(out var l) ? l : v.TryGetValue<int>(out var i) ? i : v.TryGetValue<string>(out var s) && long.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : null;

    public static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : n?.ToJsonString();

    /// <summary>"Ready=True" or "Ready=False (Reason)"; "Stalled (Reason)" appended when kstatus' Stalled is True.</summary>
    public static string Summary(JsonObject o)
    {
        var ready = Condition(o, "Ready");
        var text = ready is null ? "Ready=Unknown" : $"Ready={ready.Status}" + (ready.Status == "True" || ready.Reason is null ? "" : $" ({ready.Reason})");
        if (Condition(o, "Stalled") is { Status: "True" } stalled) text += $"  Stalled ({stalled.Reason})";
        return text;
    }
}
