using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The build's own settings, as MSBuild evaluates them for every project of ours.</summary>
public sealed class BuildSettingsTests
{
    static async Task<JsonElement> EvaluateAsync(string project, params string[] properties)
    {
        var start = new ProcessStartInfo("dotnet", ["msbuild", project, .. properties.Select(p => $"-getProperty:{p}")])
        {
            WorkingDirectory = Repository.Root(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"dotnet msbuild -getProperty failed: {await stderr}{await stdout}");
        return JsonDocument.Parse(await stdout).RootElement.GetProperty("Properties");
    }

    [Theory]
    [InlineData("operator/ControlPlane.Operator/ControlPlane.Operator.csproj")]
    [InlineData("tests/ControlPlane.IntegrationTests/ControlPlane.IntegrationTests.csproj")]
    public async Task DependencyVulnerabilityAudit_IsOn_FindingsFail_AndOnlyAMissingFeedIsAWarning(string project)
    {
        var p = await EvaluateAsync(Path.Combine(Repository.Root(), project),
            "NuGetAudit", "NuGetAuditMode", "NuGetAuditLevel", "TreatWarningsAsErrors", "WarningsNotAsErrors", "NoWarn");
        string Get(string name) => p.GetProperty(name).GetString() ?? "";
        static string[] Codes(string list) => list.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        Assert.Equal("true", Get("NuGetAudit"));
        Assert.Equal("all", Get("NuGetAuditMode")); // transitive packages too
        Assert.Equal("low", Get("NuGetAuditLevel"));
        Assert.Equal("true", Get("TreatWarningsAsErrors"));
        // A vulnerable package (NU1901 low .. NU1904 critical) fails the build: neither silenced nor downgraded.
        var findings = new[] { "NU1901", "NU1902", "NU1903", "NU1904" };
        Assert.Empty(findings.Intersect(Codes(Get("NoWarn"))));
        Assert.Empty(findings.Intersect(Codes(Get("WarningsNotAsErrors"))));
        // No vulnerability data (offline, or a mirror without it) must not fail a build: it stays a visible warning.
        Assert.Contains("NU1900", Codes(Get("WarningsNotAsErrors")));
        Assert.Contains("NU1905", Codes(Get("WarningsNotAsErrors")));
        Assert.DoesNotContain("NU1900", Codes(Get("NoWarn")));
    }
}
