using System.Text.Json.Nodes;
using System.Xml.Linq;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// `make unit-test` runs no server because this project cannot start one: it references the operator's
/// projects only. ControlPlane.LocalEnv (etcd, kube-apiserver, Postgres, s3rver, Prometheus) and the
/// integration project (which carries LocalEnv with it) stay out, declared or resolved.
/// </summary>
public sealed class UnitProjectTests
{
    static readonly string Root = Repository.Root();
    static readonly string Project = Path.Combine(Root, "tests", "ControlPlane.UnitTests");
    static readonly string[] Forbidden = ["ControlPlane.LocalEnv", "ControlPlane.IntegrationTests"];

    [Fact]
    public void TheUnitProject_ReferencesOnlyTheOperatorsProjects()
    {
        var csproj = XDocument.Load(Path.Combine(Project, "ControlPlane.UnitTests.csproj"));
        var references = csproj.Descendants("ProjectReference")
            .Select(r => Path.GetFullPath(Path.Combine(Project, r.Attribute("Include")!.Value.Replace('\\', Path.DirectorySeparatorChar))))
            .ToList();
        Assert.NotEmpty(references);
        var operatorFolder = Path.Combine(Root, "operator") + Path.DirectorySeparatorChar;
        var outside = references.Where(r => !r.StartsWith(operatorFolder, StringComparison.Ordinal)).Select(r => Path.GetRelativePath(Root, r)).ToList();
        Assert.True(outside.Count == 0, "the unit project must reference operator/ projects only, not: " + string.Join(", ", outside));
    }

    [Fact]
    public void TheUnitProjectsBuild_ResolvesNeitherLocalEnvNorTheIntegrationTests()
    {
        // What the build resolved, transitive references included (a project that reaches LocalEnv, a
        // Directory.Build.props that adds one): the deps file is rewritten by every build.
        var deps = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ControlPlane.UnitTests.deps.json")))!;
        var libraries = deps["libraries"]!.AsObject().Select(l => l.Key.Split('/')[0]).ToList();
        Assert.Contains("ControlPlane.Operator", libraries);
        var found = libraries.Intersect(Forbidden).ToList();
        Assert.True(found.Count == 0, "the unit project's build resolves " + string.Join(", ", found) + ": it could start servers");
    }
}
