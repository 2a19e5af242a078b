using System.Diagnostics;
using System.Globalization;

namespace ControlPlane.LocalEnv.Chaos;

/// <summary>
/// One incarnation of the operator as its own process (`dotnet ControlPlane.Operator.dll`), so it
/// can be killed with SIGKILL exactly as a node failure or an OOM kill would end it. Its output
/// goes to a log file shared by every incarnation; what the scenario reads of it comes from its
/// /metrics and /readyz endpoints.
/// </summary>
public sealed class OperatorProcess : IAsyncDisposable
{
    readonly Process process;
    readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(5) };
    readonly string baseUrl;
    int errorLines;
    volatile bool disposed;
    int? exitCode;
    readonly System.Collections.Concurrent.ConcurrentQueue<string> errors = new();

    OperatorProcess(Process process, int healthPort, int incarnation)
    {
        this.process = process;
        baseUrl = $"http://127.0.0.1:{healthPort}";
        Incarnation = incarnation;
    }

    public int Incarnation { get; }
    public int Pid => process.Id;
    // Read by the supervisor's watcher while the harness may be replacing (and disposing) this incarnation.
    public bool HasExited => disposed || process.HasExited;
    public int? ExitCode => exitCode ?? (!disposed && process.HasExited ? process.ExitCode : null);
    public bool KilledByHarness { get; private set; }

    /// <summary>Error- and critical-level lines this incarnation logged.</summary>
    public int ErrorLines => Volatile.Read(ref errorLines);

    /// <summary>The first error-level lines (the operator never logs a secret), for the report.</summary>
    public IReadOnlyList<string> Errors => [.. errors];

    /// <summary>
    /// The operator's entry point: next to this assembly when a project referencing the operator was
    /// built (its runtimeconfig and deps are copied along), else operator/ControlPlane.Operator/bin of the repository.
    /// </summary>
    public static string FindDll(string repo)
    {
        var here = Path.Combine(AppContext.BaseDirectory, "ControlPlane.Operator.dll");
        if (File.Exists(here) && File.Exists(Path.ChangeExtension(here, ".runtimeconfig.json"))) return here;
        var built = new[] { "Release", "Debug" }
            .Select(c => Path.Combine(repo, "operator", "ControlPlane.Operator", "bin", c, "net10.0", "ControlPlane.Operator.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        return built ?? throw new FileNotFoundException("ControlPlane.Operator.dll is missing: build the operator first (dotnet build operator/ControlPlane.Operator)");
    }

    /// <summary>
    /// How to run the published operator as its own process: `dotnet ControlPlane.Operator.dll`, its
    /// configuration as environment variables (ControlPlane:X as ControlPlane__X), health and metrics on
    /// <paramref name="healthPort"/>, output captured. Shared by the chaos suite and the benchmark.
    /// </summary>
    public static ProcessStartInfo StartInfo(string dll, IReadOnlyDictionary<string, string> settings, int healthPort)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var (key, value) in settings) start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        start.Environment["ControlPlane__HealthUrls"] = $"http://127.0.0.1:{healthPort}";
        return start;
    }

    public static OperatorProcess Start(string dll, IReadOnlyDictionary<string, string> settings, int incarnation, StreamWriter log)
    {
        var healthPort = Net.FreePort();
        var start = StartInfo(dll, settings, healthPort);
        start.Environment["ControlPlane__LeaderElection__Identity"] = $"chaos-{incarnation}";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the operator");
        var child = new OperatorProcess(process, healthPort, incarnation);
        void Keep(string? line)
        {
            if (line is null) return;
            if (line.Contains(" fail: ", StringComparison.Ordinal) || line.Contains(" crit: ", StringComparison.Ordinal))
            {
                if (Interlocked.Increment(ref child.errorLines) <= 20) child.errors.Enqueue(line);
            }

            lock (log) log.WriteLine($"[{incarnation}] {line}");
        }

        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>SIGKILL: no shutdown, no lease release, a reconcile cut wherever it was.</summary>
    public async Task KillAsync()
    {
        KilledByHarness = true;
        if (process.HasExited) return;
        process.Kill(entireProcessTree: false);
        await process.WaitForExitAsync();
    }

    /// <summary>Leader, caches synced and every controller idle, from the process's own endpoints (false while it cannot answer).</summary>
    public async Task<OperatorState> StateAsync(CancellationToken ct)
    {
        if (HasExited) return OperatorState.Down;
        try
        {
            var metrics = await http.GetStringAsync($"{baseUrl}/metrics", ct);
            using var ready = await http.GetAsync($"{baseUrl}/readyz", ct);
            return new OperatorState(
                Up: true,
                Leader: Sum(metrics, "leader_election_master_status") > 0,
                Ready: ready.IsSuccessStatusCode,
                Idle: Sum(metrics, "controlplane_controllers_idle") == 1,
                WorkspaceReconciles: Sum(metrics, "controller_runtime_reconcile_total", "controller=\"workspace\""));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException or ObjectDisposedException)
        {
            // not answering, or this incarnation was replaced meanwhile
            return OperatorState.Down;
        }
    }

    /// <summary>Sum of the samples of a Prometheus metric whose labels contain every filter.</summary>
    static double Sum(string text, string metric, params string[] filters)
    {
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#') || !line.StartsWith(metric, StringComparison.Ordinal)) continue;
            var rest = line[metric.Length..];
            if (rest.Length == 0 || (rest[0] != '{' && rest[0] != ' ')) continue;
            if (!filters.All(f => rest.Contains(f, StringComparison.Ordinal))) continue;
            sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }

        return sum;
    }

    /// <summary>SIGTERM and a graceful stop (the lease is released), SIGKILL after 20 s.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])) await term!.WaitForExitAsync();
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }

        exitCode = process.ExitCode;
        disposed = true;
        process.Dispose();
        http.Dispose();
    }
}

public sealed record OperatorState(bool Up, bool Leader, bool Ready, bool Idle, double WorkspaceReconciles)
{
    public static readonly OperatorState Down = new(false, false, false, false, 0);
}
