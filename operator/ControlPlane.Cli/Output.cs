using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ControlPlane.Cli;

/// <summary>-o json|yaml for data; text otherwise. Data goes to stdout, errors to stderr.</summary>
public static class Output
{
    public static readonly string[] Formats = ["json", "yaml"];

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // Text for a terminal, not HTML: quotes, arrows and accents as themselves.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter() },
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    /// <summary>Data as JSON (camelCase, as the API's own objects) or as YAML (the same tree).</summary>
    public static string Render(object data, string format)
    {
        var node = data as JsonNode ?? JsonSerializer.SerializeToNode(data, data.GetType(), Json);
        return format switch
        {
            "json" => (node?.ToJsonString(Json) ?? "null") + "\n",
            "yaml" => Yaml(node),
            _ => throw new CliError($"-o: \"{format}\" is not an output format (json, yaml)"),
        };
    }

    /// <summary>A JSON tree as block YAML; strings as JSON strings (valid YAML double-quoted scalars), so nothing needs YAML escaping rules.</summary>
    public static string Yaml(JsonNode? node)
    {
        var sb = new StringBuilder();
        var compact = new JsonSerializerOptions(Json) { WriteIndented = false };
        void Scalar(JsonNode? n) => sb.Append(n is null ? "null" : n.ToJsonString(compact)).Append('\n');
        void Write(JsonNode? n, int indent, bool inline)
        {
            var pad = new string(' ', indent);
            switch (n)
            {
                case JsonObject o when o.Count > 0:
                    var first = true;
                    foreach (var (key, value) in o)
                    {
                        if (!(first && inline)) sb.Append(pad);
                        first = false;
                        sb.Append(JsonValue.Create(key)!.ToJsonString(compact)).Append(':');
                        if (value is JsonObject { Count: > 0 } or JsonArray { Count: > 0 })
                        {
                            sb.Append('\n');
                            Write(value, indent + 2, false);
                        }
                        else
                        {
                            sb.Append(' ');
                            Write(value, indent + 2, true);
                        }
                    }

                    break;
                case JsonArray a when a.Count > 0:
                    foreach (var item in a)
                    {
                        sb.Append(pad).Append("- ");
                        if (item is JsonObject { Count: > 0 } or JsonArray { Count: > 0 }) Write(item, indent + 2, true);
                        else Scalar(item);
                    }

                    break;
                case JsonObject:
                    sb.Append("{}\n");
                    break;
                case JsonArray:
                    sb.Append("[]\n");
                    break;
                default:
                    Scalar(n);
                    break;
            }
        }

        Write(node, 0, false);
        return sb.ToString();
    }

    /// <summary>A left-aligned table with a header, two spaces between columns (kubectl's look).</summary>
    public static string Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => i < r.Count ? r[i].Length : 0)).ToArray();
        var sb = new StringBuilder();
        foreach (var r in all)
        {
            sb.AppendLine(string.Join("  ", r.Select((c, i) => i == r.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd());
        }

        return sb.ToString();
    }

    /// <summary>A duration as kubectl prints ages: 45s, 12m, 3h5m, 2d4h.</summary>
    public static string Age(TimeSpan t)
    {
        if (t < TimeSpan.Zero) t = TimeSpan.Zero;
        if (t.TotalSeconds < 120) return ((int)t.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s";
        if (t.TotalMinutes < 60) return $"{(int)t.TotalMinutes}m{(t.Seconds > 0 && t.TotalMinutes < 10 ? t.Seconds + "s" : "")}";
        if (t.TotalHours < 48) return $"{(int)t.TotalHours}h{(t.Minutes > 0 ? t.Minutes + "m" : "")}";
        return $"{(int)t.TotalDays}d{(t.Hours > 0 ? t.Hours + "h" : "")}";
    }

    public static string Time(DateTime? t) => t is { } v ? v.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "-";

    public static string Number(double? v) => v is { } d ? d.ToString("0.####", CultureInfo.InvariantCulture) : "-";
}
