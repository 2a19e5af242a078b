using ControlPlane.LocalEnv;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>`make up` tells a person how to reach the helm `make tools` installed off PATH (no server needed).</summary>
public sealed class ToolPathsTests
{
    const string Dir = "/home/dev/.local/share/controlplane-tools/helm";

    [Fact]
    public void HelmOffPath_GetsAnExportLine_OnPathOrNotInstalled_GetsNone()
    {
        var line = ToolPaths.HelmPathLine("/usr/local/bin:/usr/bin", Dir, _ => true);
        Assert.Equal($"export PATH=\"{Dir}:$PATH\"   # helm, as make tools installed it", line);

        Assert.Null(ToolPaths.HelmPathLine($"/usr/bin:{Dir}/", Dir, _ => true));
        Assert.Null(ToolPaths.HelmPathLine("/usr/bin", Dir, _ => false));
        Assert.NotNull(ToolPaths.HelmPathLine(null, Dir, f => f == Path.Combine(Dir, "helm")));
    }

    [Fact]
    public void PluginBuilt_GetsAnExportLine_OnPathOrNotBuilt_GetsNone()
    {
        const string bin = "/src/controlplane/bin";
        Assert.Equal($"export PATH=\"{bin}:$PATH\"   # kubectl controlplane, as make plugin built it", ToolPaths.PluginPathLine("/usr/bin", bin, _ => true));
        Assert.Null(ToolPaths.PluginPathLine($"/usr/bin:{bin}/", bin, _ => true));
        Assert.Null(ToolPaths.PluginPathLine("/usr/bin", bin, _ => false));
        Assert.NotNull(ToolPaths.PluginPathLine(null, bin, f => f == Path.Combine(bin, "kubectl-controlplane")));
    }

    [Fact]
    public void HelmDirectory_IsInstallHelmsDestination()
    {
        Assert.Equal("/opt/helm", ToolPaths.HelmDirectory(name => name == "HELM_INSTALL_DIR" ? "/opt/helm" : null));
        Assert.EndsWith("/.local/share/controlplane-tools/helm", ToolPaths.HelmDirectory(_ => null));
        var script = File.ReadAllText(Path.Combine(ControlPlane.LocalEnv.Program.FindRepoRoot(), "hack", "install-helm.sh"));
        Assert.Contains("DEST=\"${HELM_INSTALL_DIR:-${HOME}/.local/share/controlplane-tools/helm}\"", script);
    }
}
