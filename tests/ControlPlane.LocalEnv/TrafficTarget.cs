using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

namespace ControlPlane.LocalEnv;

/// <summary>
/// A small scrape target on 127.0.0.1 standing in for an application's /metrics: it exposes
/// <c>http_requests_total{namespace, code}</c> counters that advance at the request rates the test
/// sets per namespace (successes as code 200, errors as code 500), integrated over wall-clock time,
/// so a real Prometheus scraping it computes real rates and ratios.
/// </summary>
public sealed class TrafficTarget : IAsyncDisposable
{
    readonly int port = Net.FreePort();
    readonly Lock gate = new();
    readonly Dictionary<string, Series> series = new(StringComparer.Ordinal);
    readonly HttpListener listener = new();
    Task? loop;

    sealed class Series
    {
        public double OkPerSecond;
        public double ErrorsPerSecond;
        public double Ok;
        public double Errors;
        public long LastTicks = Stopwatch.GetTimestamp();
    }

    /// <summary>host:port, as a Prometheus static_configs target.</summary>
    public string Address => $"127.0.0.1:{port}";

    public static TrafficTarget Start()
    {
        var t = new TrafficTarget();
        t.listener.Prefixes.Add($"http://{t.Address}/");
        t.listener.Start();
        t.loop = Task.Run(t.ServeAsync);
        return t;
    }

    /// <summary>From now on, the namespace serves this many requests per second, this share of them failing (5xx).</summary>
    public void SetTraffic(string ns, double requestsPerSecond, double errorRatio)
    {
        lock (gate)
        {
            var s = Advance(ns);
            s.ErrorsPerSecond = requestsPerSecond * errorRatio;
            s.OkPerSecond = requestsPerSecond - s.ErrorsPerSecond;
        }
    }

    Series Advance(string ns)
    {
        if (!series.TryGetValue(ns, out var s)) series[ns] = s = new Series();
        var now = Stopwatch.GetTimestamp();
        var seconds = Stopwatch.GetElapsedTime(s.LastTicks, now).TotalSeconds;
        s.Ok += s.OkPerSecond * seconds;
        s.Errors += s.ErrorsPerSecond * seconds;
        s.LastTicks = now;
        return s;
    }

    /// <summary>The exposition text a scrape reads now.</summary>
    public string Exposition()
    {
        var text = new StringBuilder("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n");
        lock (gate)
        {
            foreach (var ns in series.Keys.Order(StringComparer.Ordinal).ToList())
            {
                var s = Advance(ns);
                text.Append(CultureInfo.InvariantCulture, $"http_requests_total{{namespace=\"{ns}\",code=\"200\"}} {s.Ok:R}\n");
                text.Append(CultureInfo.InvariantCulture, $"http_requests_total{{namespace=\"{ns}\",code=\"500\"}} {s.Errors:R}\n");
            }
        }

        return text.ToString();
    }

    async Task ServeAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var found = context.Request.Url?.AbsolutePath == "/metrics";
            var bytes = Encoding.UTF8.GetBytes(found ? Exposition() : "not found\n");
            context.Response.StatusCode = found ? 200 : 404;
            context.Response.ContentType = "text/plain; version=0.0.4";
            try
            {
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        listener.Stop();
        listener.Close();
        if (loop is not null) await loop;
    }
}
