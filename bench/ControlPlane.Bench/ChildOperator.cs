using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ControlPlane.LocalEnv;

namespace ControlPlane.Bench;

/// <summary>
/// The operator as its own process (`dotnet ControlPlane.Operator.dll`, with its own runtime
/// settings), so memory and CPU are the operator's and not the harness's. Everything the benchmark
/// reads of it comes from its /metrics endpoint and from /proc.
/// </summary>
public sealed class ChildOperator : IAsyncDisposable
{
    readonly Process process;
    readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(10) };
    readonly ConcurrentQueue<string> output = new();
    readonly string metricsUrl;

    ChildOperator(Process process, int healthPort)
    {
        this.process = process;
        metricsUrl = $"http://127.0.0.1:{healthPort}/metrics";
        HealthUrl = $"http://127.0.0.1:{healthPort}";
    }

    public string HealthUrl { get; }

    public int Pid => process.Id;

    public static ChildOperator Start(string repo, IReadOnlyDictionary<string, string> settings, IReadOnlyDictionary<string, string>? environment = null)
    {
        // BENCH_CHILD_DLL: another build of the operator (e.g. main's, for before/after numbers on the same harness).
        // A variant (BENCH_VARIANTS) may name its own build the same way.
        var dll = environment?.GetValueOrDefault("BENCH_CHILD_DLL") is { Length: > 0 } variant
            ? variant
            : Environment.GetEnvironmentVariable("BENCH_CHILD_DLL") is { Length: > 0 } other
            ? other
            : Path.Combine(repo, "operator", "ControlPlane.Operator", "bin", "Release", "net10.0", "ControlPlane.Operator.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} is missing: `make bench` builds it (dotnet build operator -c Release)", dll);
        var healthPort = Net.FreePort();
        var start = ControlPlane.LocalEnv.Chaos.OperatorProcess.StartInfo(dll, settings, healthPort);
        start.Environment["ControlPlane__Webhook__Enabled"] = "false";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        // For investigation: BENCH_OPERATOR_X=v reaches the operator as X=v (e.g. BENCH_OPERATOR_DOTNET_gcConcurrent=1).
        foreach (var key in Environment.GetEnvironmentVariables().Keys.OfType<string>().Where(k => k.StartsWith("BENCH_OPERATOR_", StringComparison.Ordinal)))
        {
            start.Environment[key["BENCH_OPERATOR_".Length..]] = Environment.GetEnvironmentVariable(key);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the operator");
        var child = new ChildOperator(process, healthPort);
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    void Keep(string? line)
    {
        if (line is null) return;
        output.Enqueue(line);
        while (output.Count > 200) output.TryDequeue(out _);
    }

    /// <summary>The last lines the operator printed (for a failure message).</summary>
    public string Tail => string.Join('\n', output.TakeLast(30));

    public async Task<Scrape> ScrapeAsync()
    {
        if (process.HasExited) throw new InvalidOperationException($"the operator exited with {process.ExitCode}:\n{Tail}");
        return new Scrape(await http.GetStringAsync(metricsUrl));
    }

    public async Task<bool> IsReadyAsync()
    {
        if (process.HasExited) throw new InvalidOperationException($"the operator exited with {process.ExitCode}:\n{Tail}");
        using var response = await http.GetAsync($"{HealthUrl}/readyz");
        return response.IsSuccessStatusCode;
    }

    public async Task WaitIdleAsync(TimeSpan timeout) =>
        await Net.WaitUntilAsync(async () => (await ScrapeAsync()).Sum("controlplane_controllers_idle") == 1, timeout, "operator idle");

    /// <summary>User + system CPU time of the process so far.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            process.Refresh();
            return process.TotalProcessorTime;
        }
    }

    /// <summary>Resident memory from /proc/&lt;pid&gt;/status, in MB: VmRSS (the working set), RssAnon, RssFile.</summary>
    public IReadOnlyDictionary<string, double> ResidentMemory()
    {
        var result = new Dictionary<string, double>();
        foreach (var line in File.ReadAllLines($"/proc/{process.Id}/status"))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) continue;
            var field = line[..colon];
            if (field is not ("VmRSS" or "RssAnon" or "RssFile" or "VmHWM")) continue;
            var kb = double.Parse(line[(colon + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            result[field] = Math.Round(kb / 1024, 1);
        }

        return result;
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            // SIGTERM: the host stops gracefully (informers, queues, connections).
            Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        process.Dispose();
        http.Dispose();
    }
}

/// <summary>One scrape of a Prometheus text exposition.</summary>
public sealed class Scrape(string text)
{
    public string Text { get; } = text;

    /// <summary>Sum of the samples of <paramref name="metric"/> whose labels contain every filter.</summary>
    public double Sum(string metric, params string[] filters)
    {
        double sum = 0;
        foreach (var line in Text.Split('\n'))
        {
            if (line.StartsWith('#') || !line.StartsWith(metric, StringComparison.Ordinal)) continue;
            var rest = line[metric.Length..];
            if (rest.Length == 0 || (rest[0] != '{' && rest[0] != ' ')) continue;
            if (!filters.All(f => rest.Contains(f, StringComparison.Ordinal))) continue;
            sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }

        return sum;
    }

    public static readonly string[] WriteVerbs = ["create", "update", "patch", "delete"];

    public double ApiWrites => WriteVerbs.Sum(v => Sum("rest_client_requests_total", $"verb=\"{v}\""));

    public double ApiRequests => Sum("rest_client_requests_total");

    public double PostgresWrites => Sum("controlplane_postgres_writes_total");
}
