using System.Globalization;
using System.Text;
using k8s;

namespace ControlPlane.Cli;

/// <summary>-o json|yaml for data; text otherwise. Data goes to stdout, errors to stderr.</summary>
public static class Output
{
    public static readonly string[] Formats = ["json", "yaml"];

    public static string Render(object data, string format) => format switch
    {
        "json" => KubernetesJson.Serialize(data, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n",
        "yaml" => KubernetesYaml.Serialize(data),
        _ => throw new CliError($"-o: \"{format}\" is not an output format (json, yaml)"),
    };

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
