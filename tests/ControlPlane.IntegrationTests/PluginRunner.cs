using System.Diagnostics;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>What one run of the plugin printed and returned.</summary>
public sealed record PluginRun(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";

    /// <summary>Bad input: a non-zero exit and one clear line on stderr, never a stack trace.</summary>
    public PluginRun FailsWithOneLine(string expected)
    {
        Assert.True(ExitCode != 0, ToString());
        var line = Stderr.Trim();
        Assert.False(line.Contains('\n', StringComparison.Ordinal), "more than one line on stderr:\n" + Stderr);
        Assert.DoesNotContain("   at ", Stderr, StringComparison.Ordinal);
        // No .NET exception type (Exception alone is a kind's name, listed among the kinds).
        Assert.DoesNotMatch(@"\w+Exception\b", Stderr);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        return this;
    }

    public PluginRun Succeeds()
    {
        Assert.True(ExitCode == 0, ToString());
        return this;
    }
}

/// <summary>
/// Runs the built kubectl-controlplane binary (operator/ControlPlane.Cli, built with the tests; or
/// $KUBECTL_CONTROLPLANE, e.g. the single file of `make plugin`) as a process, with a kubeconfig of
/// the local control plane's token users: the plugin can do exactly what that user may.
/// </summary>
public static class PluginRunner
{
    public static string Binary()
    {
        if (Environment.GetEnvironmentVariable("KUBECTL_CONTROLPLANE") is { Length: > 0 } given) return given;
        // tests/ControlPlane.IntegrationTests/bin/<Configuration>/<tfm>/ → the same configuration and tfm of the plugin.
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = tfmDir.Parent!.Name;
        var repo = ControlPlane.LocalEnv.Program.FindRepoRoot();
        var path = Path.Combine(repo, "operator", "ControlPlane.Cli", "bin", configuration, tfmDir.Name, "kubectl-controlplane");
        Assert.True(File.Exists(path), $"the plugin is not built at {path} (the integration project builds it: a ProjectReference)");
        return path;
    }

    public static async Task<PluginRun> RunAsync(string? kubeconfig, params string[] args) => await RunAsync(kubeconfig, TimeSpan.FromMinutes(3), null, args);

    public static async Task<PluginRun> RunAsync(string? kubeconfig, TimeSpan timeout, string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(Binary())
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        if (kubeconfig is not null) psi.ArgumentList.Add("--kubeconfig=" + kubeconfig);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Nothing of the machine's own kubectl setup leaks in.
        psi.Environment["KUBECONFIG"] = kubeconfig ?? "/nonexistent/kubeconfig";
        psi.Environment["HOME"] = Path.GetTempPath();
        using var p = Process.Start(psi)!;
        if (stdin is not null) await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl-controlplane {string.Join(' ', args)} ran longer than {timeout}: {await stdout}{await stderr}");
        }

        return new PluginRun(p.ExitCode, await stdout, await stderr);
    }
}
