using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// The walls between layers (docs/architecture.md). Between projects the compiler refuses a reference
/// that is not declared; these tests refuse the declaration itself, and inside the operator project
/// (one assembly) they refuse a namespace import across a wall, where the compiler cannot.
/// </summary>
public sealed partial class LayerTests
{
    static readonly string Repo = Repository.Root();
    static readonly string OperatorProject = Path.Combine(Repo, "operator", "ControlPlane.Operator");

    /// <summary>What each folder of the operator project may not import (namespaces, and their children).</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Forbidden = new Dictionary<string, string[]>
    {
        // Pure decisions: no I/O, so nothing that reaches a server, and nothing above them.
        ["Policy"] = ["ControlPlane.Runtime", "ControlPlane.Operator.Store", "ControlPlane.Operator.Adapters", "ControlPlane.Operator.Kinds", "ControlPlane.Operator.Admission", "ControlPlane.Operator.Crds", "Npgsql", "k8s.Autorest", "System.Net.Http"],
        ["Kinds"] = ["ControlPlane.Operator.Admission"],
        ["Admission"] = ["ControlPlane.Operator.Kinds"],
        ["AuditApi"] = ["ControlPlane.Operator.Kinds", "ControlPlane.Operator.Admission"],
        ["Adapters"] = ["ControlPlane.Operator.Kinds", "ControlPlane.Operator.Admission"],
        ["Store"] = ["ControlPlane.Operator.Kinds", "ControlPlane.Operator.Admission", "ControlPlane.Operator.Adapters"],
        ["Configuration"] = ["ControlPlane.Runtime", "ControlPlane.Operator.Kinds", "ControlPlane.Operator.Admission", "ControlPlane.Operator.Adapters", "ControlPlane.Operator.Policy"],
    };

    [Theory]
    [InlineData("ControlPlane.Api")]
    [InlineData("ControlPlane.Runtime")]
    public void TheBottomLayers_ReferenceNoProjectOfOurs(string project)
    {
        var csproj = XDocument.Load(Path.Combine(Repo, "operator", project, project + ".csproj"));
        Assert.Empty(csproj.Descendants("ProjectReference"));
        var assembly = AppDomain.CurrentDomain.Load(project);
        Assert.DoesNotContain(assembly.GetReferencedAssemblies(), a => a.Name!.StartsWith("ControlPlane.", StringComparison.Ordinal));
    }

    [Fact]
    public void TheOperator_ReferencesOnlyTheLayersBelowIt()
    {
        var csproj = XDocument.Load(Path.Combine(OperatorProject, "ControlPlane.Operator.csproj"));
        var references = csproj.Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value)).Order().ToList();
        Assert.Equal(["ControlPlane.Api", "ControlPlane.Runtime"], references);
    }

    [Fact]
    public void NoFolder_ImportsAcrossItsWall()
    {
        var violations = new List<string>();
        foreach (var (folder, forbidden) in Forbidden)
        {
            foreach (var file in Directory.GetFiles(Path.Combine(OperatorProject, folder), "*.cs", SearchOption.AllDirectories))
            {
                var text = File.ReadAllText(file);
                foreach (var ns in forbidden)
                {
                    // An import, or a name qualified by the namespace anywhere in the file, also as C# resolves
                    // it relative to the file's own namespace (Runtime.Informer inside ControlPlane.Operator.*).
                    if (Regex.IsMatch(text, $@"(^\s*(global\s+)?using\s+(static\s+)?(\w+\s*=\s*)?{Regex.Escape(ns)}(\.|;))|(\b(?<!using\s+){Regex.Escape(ns)}\.[A-Z])", RegexOptions.Multiline)
                        || RelativeForms(ns).Any(relative => Regex.IsMatch(text, $@"(?<![\w.""]){Regex.Escape(relative)}\.[A-Z]\w*")))
                    {
                        violations.Add($"{Path.GetRelativePath(Repo, file)} uses {ns}");
                    }
                }
            }
        }

        Assert.True(violations.Count == 0, "imports across a wall:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void NoProject_UsesGlobalUsings_ThatWouldHideAnImport()
    {
        var files = Directory.GetFiles(Path.Combine(Repo, "operator"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
        Assert.DoesNotContain(files, f => GlobalUsing().IsMatch(File.ReadAllText(f)));
        foreach (var csproj in Directory.GetFiles(Path.Combine(Repo, "operator"), "*.csproj", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain(XDocument.Load(csproj).Descendants("Using"), u => u.Attribute("Include")?.Value.StartsWith("ControlPlane.", StringComparison.Ordinal) == true);
        }
    }

    [Fact]
    public void EveryFile_SitsInTheNamespaceOfItsFolder()
    {
        var roots = new Dictionary<string, string>
        {
            ["ControlPlane.Api"] = "ControlPlane.Api",
            ["ControlPlane.Runtime"] = "ControlPlane.Runtime",
            ["ControlPlane.Operator"] = "ControlPlane.Operator",
        };
        var wrong = new List<string>();
        foreach (var (project, root) in roots)
        {
            var dir = Path.Combine(Repo, "operator", project);
            foreach (var file in Directory.GetFiles(dir, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
            {
                var folders = Path.GetRelativePath(dir, Path.GetDirectoryName(file)!).Split(Path.DirectorySeparatorChar).Where(s => s != ".").ToList();
                // Kinds/<Kind>/ share one namespace (a namespace named after a kind would hide the kind's type).
                if (folders.Count > 1 && folders[0] is "Kinds" or "Adapters") folders = folders[..1];
                var expected = string.Join('.', new[] { root }.Concat(folders));
                var declared = NamespaceLine().Match(File.ReadAllText(file)).Groups[1].Value;
                if (declared != expected) wrong.Add($"{Path.GetRelativePath(Repo, file)}: namespace {declared}, folder says {expected}");
            }
        }

        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>The shorter names a namespace answers to from inside ControlPlane.Operator.*: Runtime, Operator.Kinds, Kinds.</summary>
    static IEnumerable<string> RelativeForms(string ns)
    {
        if (!ns.StartsWith("ControlPlane.", StringComparison.Ordinal)) yield break;
        var parts = ns.Split('.');
        for (var i = 1; i < parts.Length; i++) yield return string.Join('.', parts[i..]);
    }

    [GeneratedRegex(@"^\s*global\s+using\s", RegexOptions.Multiline)]
    private static partial Regex GlobalUsing();

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();
}
