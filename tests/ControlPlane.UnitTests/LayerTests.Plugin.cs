using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// The kubectl plugin (operator/ControlPlane.Cli) is a client: it references the API and compiles in
/// only pure Policy files (which themselves import only the API: the Policy rule above), never the
/// operator's assembly, its servers, Postgres, S3 or the runtime. So it can do nothing the caller's
/// kubeconfig could not, and ships as one small file.
/// </summary>
public sealed partial class LayerTests
{
    static readonly string PluginProject = Path.Combine(Repo, "operator", "ControlPlane.Cli");

    [Fact]
    public void ThePlugin_ReferencesOnlyTheApi_AndLinksOnlyPurePolicyFiles()
    {
        var csproj = XDocument.Load(Path.Combine(PluginProject, "ControlPlane.Cli.csproj"));
        var references = csproj.Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value)).ToList();
        Assert.Equal(["ControlPlane.Api"], references);

        var packages = csproj.Descendants("PackageReference").Select(p => p.Attribute("Include")!.Value).Order().ToList();
        Assert.Equal(["KubernetesClient", "System.CommandLine"], packages);

        var policy = Path.Combine(OperatorProject, "Policy") + Path.DirectorySeparatorChar;
        var linked = csproj.Descendants("Compile").Select(c => Path.GetFullPath(Path.Combine(PluginProject, c.Attribute("Include")!.Value))).ToList();
        Assert.NotEmpty(linked);
        Assert.All(linked, file =>
        {
            Assert.StartsWith(policy, file, StringComparison.Ordinal);
            Assert.True(File.Exists(file), file);
            // What Policy may import, the linked file may: the API and the BCL (k8s models), nothing of the operator's.
            Assert.DoesNotMatch(new Regex(@"^\s*using\s+ControlPlane\.(Operator|Runtime)\b(?!\.Policy;)", RegexOptions.Multiline), File.ReadAllText(file));
        });
    }

    [Fact]
    public void ThePluginsOwnFiles_ImportNothingOfTheOperatorButItsLinkedPolicy()
    {
        var violations = new List<string>();
        foreach (var file in Directory.GetFiles(PluginProject, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var text = File.ReadAllText(file);
            if (Regex.IsMatch(text, @"\bControlPlane\.(Runtime|Operator\.(Kinds|Admission|Store|Adapters|Configuration|Crds))\b")) violations.Add(Path.GetRelativePath(Repo, file));
            if (!Regex.IsMatch(text, @"^namespace\s+ControlPlane\.Cli\s*;", RegexOptions.Multiline)) violations.Add(Path.GetRelativePath(Repo, file) + ": namespace is not ControlPlane.Cli");
        }

        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    [Fact]
    public void ThePluginsAssembly_ReferencesNoAssemblyOfOursButTheApi()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "kubectl-controlplane.dll");
        var names = AssemblyName.GetAssemblyName(dll);
        var context = new System.Runtime.Loader.AssemblyLoadContext("plugin-layers", isCollectible: true);
        try
        {
            var assembly = context.LoadFromAssemblyPath(dll);
            var ours = assembly.GetReferencedAssemblies().Where(a => a.Name!.StartsWith("ControlPlane.", StringComparison.Ordinal)).Select(a => a.Name).ToList();
            Assert.Equal(["ControlPlane.Api"], ours);
            Assert.DoesNotContain(assembly.GetReferencedAssemblies(), a => a.Name is "Npgsql" or "AWSSDK.S3" or "Microsoft.AspNetCore" or "prometheus-net");
        }
        finally
        {
            context.Unload();
        }

        Assert.Equal("kubectl-controlplane", names.Name);
    }
}
