using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Store;

/// <summary>
/// The difference between two JSON documents as an RFC 6902 JSON Patch (add, remove, replace), the
/// form the system of record keeps each change of a published spec in. Objects are compared member
/// by member; an array that changed is replaced whole (its items have no identity to diff by).
/// </summary>
public static class JsonPatch
{
    public static JsonArray Diff(JsonNode? before, JsonNode? after)
    {
        var ops = new JsonArray();
        Walk("", before, after, ops);
        return ops;
    }

    static void Walk(string path, JsonNode? before, JsonNode? after, JsonArray ops)
    {
        if (JsonNode.DeepEquals(before, after)) return;
        if (before is JsonObject b && after is JsonObject a)
        {
            foreach (var (key, value) in b.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var child = path + "/" + Escape(key);
                if (!a.TryGetPropertyValue(key, out var now)) ops.Add(Op("remove", child));
                else Walk(child, value, now, ops);
            }

            foreach (var (key, value) in a.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (!b.ContainsKey(key)) ops.Add(Op("add", path + "/" + Escape(key), value));
            }

            return;
        }

        ops.Add(Op("replace", path, after));
    }

    static JsonObject Op(string op, string path, JsonNode? value = null)
    {
        var o = new JsonObject { ["op"] = op, ["path"] = path };
        if (op != "remove") o["value"] = value?.DeepClone();
        return o;
    }

    /// <summary>RFC 6901: "~" and "/" in a member name are escaped.</summary>
    public static string Escape(string segment) => segment.Replace("~", "~0").Replace("/", "~1");

    /// <summary>
    /// The same patch with every value replaced by the SHA-256 of its canonical JSON: what changed and
    /// where, never what it was (a metadataOnly tenant's record).
    /// </summary>
    public static JsonArray Redact(JsonArray patch)
    {
        var redacted = new JsonArray();
        foreach (var node in patch)
        {
            var op = node!.AsObject().DeepClone().AsObject();
            if (op.TryGetPropertyValue("value", out var value))
            {
                op["value"] = new JsonObject { ["sha256"] = SystemDatabase.Sha256Hex(SystemDatabase.Canonical(value)) };
            }

            redacted.Add(op);
        }

        return redacted;
    }
}
