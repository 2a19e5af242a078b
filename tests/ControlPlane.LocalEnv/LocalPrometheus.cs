using System.Globalization;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;

namespace ControlPlane.LocalEnv;

/// <summary>
/// A real Prometheus (Debian's package, installed by hack/install-prometheus.sh; $PROMETHEUS picks
/// another binary) on a free loopback port, with its TSDB in a temp folder, scraping the given
/// targets every second. Stopping it makes it unreachable as a Prometheus outage would; starting it
/// again keeps the port and the stored samples.
/// </summary>
public sealed class LocalPrometheus : IAsyncDisposable
{
    readonly string directory;
    readonly int port = Net.FreePort();
    readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(5) };
    ChildProcess? process;

    LocalPrometheus(string directory) => this.directory = directory;

    public string Url => $"http://127.0.0.1:{port}";

    public static string Binary() => Environment.GetEnvironmentVariable("PROMETHEUS") is { Length: > 0 } p ? p
        : new[] { "/usr/bin/prometheus", "/usr/local/bin/prometheus" }.FirstOrDefault(File.Exists)
          ?? throw new InvalidOperationException("prometheus is not installed: run `make tools` (hack/install-prometheus.sh) or set PROMETHEUS");

    /// <summary>
    /// Starts Prometheus scraping <paramref name="targets"/> (host:port, path /metrics) every second,
    /// attaching <paramref name="targetLabels"/> to every series as a ServiceMonitor attaches namespace,
    /// pod and service (a scraped label of the same name becomes exported_&lt;name&gt;).
    /// </summary>
    public static async Task<LocalPrometheus> StartAsync(string root, IEnumerable<string> targets, IReadOnlyDictionary<string, string>? targetLabels = null, CancellationToken ct = default)
    {
        var dir = Path.Combine(root, "prometheus-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        // Scraped every second so a test sees a change in its counters within a few seconds.
        // The query log lets a test read the PromQL it was asked (after templating).
        var config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n  query_log_file: " + Path.Combine(dir, "queries.log") + "\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ["
                     + string.Join(", ", targets.Select(t => $"'{t}'")) + "]\n"
                     + (targetLabels is { Count: > 0 } ? "        labels: {" + string.Join(", ", targetLabels.Select(l => $"{l.Key}: '{l.Value}'")) + "}\n" : "");
        await File.WriteAllTextAsync(Path.Combine(dir, "prometheus.yml"), config, ct);
        var p = new LocalPrometheus(dir);
        await p.ResumeAsync(ct);
        return p;
    }

    public bool Running => process?.Running == true;

    /// <summary>Starts the process (again) and waits until it is ready to answer queries.</summary>
    public async Task ResumeAsync(CancellationToken ct = default)
    {
        if (Running) return;
        if (process is not null) await process.DisposeAsync();
        process = new ChildProcess("prometheus", Binary(),
        [
            "--config.file=" + Path.Combine(directory, "prometheus.yml"),
            "--storage.tsdb.path=" + Path.Combine(directory, "data"),
            "--storage.tsdb.retention.time=1h",
            "--web.listen-address=127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture),
        ], Path.Combine(directory, "prometheus.log"));
        process.Start();
        var started = process;
        await Net.WaitUntilAsync(async () =>
        {
            if (!started.Running) throw new InvalidOperationException($"prometheus exited: {started.Tail()}");
            using var response = await http.GetAsync(Url + "/-/ready", ct);
            return response.IsSuccessStatusCode;
        }, TimeSpan.FromSeconds(60), "prometheus ready", ct);
    }

    /// <summary>Stops the process: queries are refused, as when Prometheus is down.</summary>
    public async Task StopAsync()
    {
        if (process is not null) await process.StopAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>The queries Prometheus answered so far, from its query log.</summary>
    public IReadOnlyList<string> Queries()
    {
        var log = Path.Combine(directory, "queries.log");
        if (!File.Exists(log)) return [];
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => System.Text.Json.Nodes.JsonNode.Parse(line)?["params"]?["query"]?.GetValue<string>())
            .OfType<string>().ToList();
    }

    /// <summary>One instant query: its scalar, or null when it returns no sample.</summary>
    public async Task<double?> QueryAsync(string promql, CancellationToken ct = default)
    {
        var body = await http.GetStringAsync($"{Url}/api/v1/query?query={Uri.EscapeDataString(promql)}", ct);
        return RolloutResources.ParsePrometheus(body);
    }

    public async ValueTask DisposeAsync()
    {
        if (process is not null) await process.DisposeAsync();
        http.Dispose();
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
