using System.Reflection;
using System.Text.RegularExpressions;
using System.Text;
using System.Xml.Linq;

namespace ControlPlane.Operator.Crds;

/// <summary>
/// The C# documentation comments of the API types (the compiler's XML documentation file, written
/// next to the assembly by GenerateDocumentationFile): one source for the code and for
/// `kubectl explain`. A missing file yields no text; the CRD description test then fails.
/// </summary>
public sealed partial class XmlDocs
{
    readonly Dictionary<string, string> summaries;

    XmlDocs(Dictionary<string, string> summaries) => this.summaries = summaries;

    public static XmlDocs For(Assembly assembly)
    {
        var path = Path.ChangeExtension(assembly.Location, ".xml");
        if (string.IsNullOrEmpty(assembly.Location) || !File.Exists(path)) return new XmlDocs([]);
        var members = XDocument.Load(path).Root?.Element("members")?.Elements("member") ?? [];
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var member in members)
        {
            if (member.Attribute("name")?.Value is not { } name || member.Element("summary") is not { } summary) continue;
            var text = Text(summary);
            if (text.Length > 0) map[name] = text;
        }

        return new XmlDocs(map);
    }

    public string? Of(PropertyInfo property) =>
        summaries.GetValueOrDefault($"P:{Name(property.DeclaringType!)}.{property.Name}");

    public string? Of(Type type) => summaries.GetValueOrDefault($"T:{Name(type)}");

    static string Name(Type type) => (type.FullName ?? type.Name).Replace('+', '.');

    /// <summary>The summary as plain text: &lt;see cref&gt; becomes its short name, &lt;c&gt; its content, whitespace one space.</summary>
    static string Text(XElement summary)
    {
        var text = new StringBuilder();
        foreach (var node in summary.Nodes())
        {
            text.Append(node switch
            {
                XText t => t.Value,
                XElement { Name.LocalName: "see" or "seealso" } e =>
                    e.Attribute("langword")?.Value ?? (e.Attribute("cref")?.Value is { } cref ? cref[(cref.LastIndexOf('.') + 1)..] : e.Value),
                XElement { Name.LocalName: "paramref" or "typeparamref" } e => e.Attribute("name")?.Value ?? "",
                XElement e => Text(e),
                _ => "",
            });
        }

        return Whitespace().Replace(text.ToString(), " ").Trim();
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
