using System.Xml.Linq;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// `make unit-test` runs no server because this project cannot start one: it references the operator's
/// projects only. ControlPlane.LocalEnv (etcd, kube-apiserver, Postgres, s3rver, Prometheus) and the
/// integration project (which carries LocalEnv with it) stay out, declared or loaded.
/// </summary>
public sealed class UnitProjectTests
{
    static readonly string Project = Path.Combine(Repository.Root(), "tests", "ControlPlane.UnitTests");

    [Fact]
    public void TheUnitProject_ReferencesOnlyTheOperatorsProjects()
    {
        var csproj = XDocument.Load(Path.Combine(Project, "ControlPlane.UnitTests.csproj"));
        var references = csproj.Descendants("ProjectReference")
            .Select(r => Path.GetFullPath(Path.Combine(Project, r.Attribute("Include")!.Value.Replace('\\', Path.DirectorySeparatorChar))))
            .ToList();
        Assert.NotEmpty(references);
        var operatorFolder = Path.Combine(Repository.Root(), "operator") + Path.DirectorySeparatorChar;
        Assert.All(references, r => Assert.StartsWith(operatorFolder, r, StringComparison.Ordinal));
    }

    [Fact]
    public void TheUnitProjectsBuild_DependsOnNeitherLocalEnvNorTheIntegrationTests()
    {
        // What the build resolved, transitive references included (a project reaching LocalEnv, a
        // Directory.Build.props adding one): the deps file is rewritten by every build.
        var deps = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ControlPlane.UnitTests.deps.json"));
        Assert.Contains("\"ControlPlane.Operator/", deps, StringComparison.Ordinal);
        Assert.DoesNotContain("\"ControlPlane.LocalEnv/", deps, StringComparison.Ordinal);
        Assert.DoesNotContain("\"ControlPlane.IntegrationTests/", deps, StringComparison.Ordinal);
    }
}
