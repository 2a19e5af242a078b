using System.Diagnostics;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The built operator, started the way a person first starts it: with no configuration at all.</summary>
public sealed class OperatorStartupTests
{
    [Fact]
    public async Task WithoutConfiguration_ItPrintsOneLineNamingTheSetting_AndExits1()
    {
        var home = Directory.CreateTempSubdirectory("cp-noconfig-");
        try
        {
            // The operator's assembly is copied next to this test's (a project reference), with its runtimeconfig.
            var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "ControlPlane.Operator.dll")])
            {
                WorkingDirectory = home.FullName, // no appsettings.json here
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("ControlPlane__", StringComparison.OrdinalIgnoreCase)
                                                                 || k is "KUBECONFIG" or "KUBERNETES_SERVICE_HOST").ToList())
            {
                start.Environment.Remove(name);
            }

            start.Environment["HOME"] = home.FullName; // no ~/.kube/config either

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            var lines = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);

            Assert.True(process.ExitCode == 1, $"exit code {process.ExitCode}; stderr:\n{await stderr}");
            var line = Assert.Single(lines);
            Assert.Contains("ControlPlane:SystemDatabase is not set", line);
            Assert.DoesNotContain("   at ", await stdout);
        }
        finally
        {
            home.Delete(recursive: true);
        }
    }
}
