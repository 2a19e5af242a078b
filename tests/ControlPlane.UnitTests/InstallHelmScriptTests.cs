using System.Diagnostics;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>hack/install-helm.sh puts helm off PATH; it must say how to put it on.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // a bash script and a Unix file mode
public sealed class InstallHelmScriptTests
{
    static async Task<(int Code, string Stderr)> RunAsync(string installDir, string path)
    {
        var start = new ProcessStartInfo("bash", [Path.Combine(Repository.Root(), "hack", "install-helm.sh")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["HELM_INSTALL_DIR"] = installDir;
        start.Environment["PATH"] = path;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        await stdout;
        return (process.ExitCode, await stderr);
    }

    [Fact]
    public async Task AnInstalledHelmOffPath_GetsTheExportLine_OnPath_GetsNone()
    {
        var dir = Directory.CreateTempSubdirectory("cp-helm-");
        try
        {
            // The script's own check asks the binary for its version: an installed helm of the pinned
            // version is what it finds here, so it downloads nothing.
            var helm = Path.Combine(dir.FullName, "helm");
            await File.WriteAllTextAsync(helm, "#!/bin/sh\necho v3.17.2\n");
            File.SetUnixFileMode(helm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var system = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";

            var (code, stderr) = await RunAsync(dir.FullName, system);
            Assert.Equal(0, code);
            Assert.Contains($"export PATH=\"{dir.FullName}:$PATH\"", stderr);

            (code, stderr) = await RunAsync(dir.FullName, $"{dir.FullName}:{system}");
            Assert.Equal(0, code);
            Assert.DoesNotContain("export PATH", stderr);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
