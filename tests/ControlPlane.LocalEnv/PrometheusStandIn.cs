using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;

namespace ControlPlane.LocalEnv;

/// <summary>
/// Stands in for Prometheus in tests (no Prometheus binary is installed here): an HTTP server on
/// 127.0.0.1 answering GET /api/v1/query with the real response shape (a one-sample vector, or an
/// empty one when the test set no value). The test sets the ratio the next queries return, stops it
/// to make Prometheus unreachable, and reads the queries it was asked (to check the templating).
/// </summary>
public sealed class PrometheusStandIn : IAsyncDisposable
{
    readonly int port = Net.FreePort();
    HttpListener? listener;
    Task? loop;

    public string Url => $"http://127.0.0.1:{port}";

    /// <summary>What the next queries answer; null: an empty vector (no traffic).</summary>
    public double? Value { get; set; }

    public ConcurrentQueue<string> Queries { get; } = new();

    public static PrometheusStandIn Start(double? value = null)
    {
        var p = new PrometheusStandIn { Value = value };
        p.Resume();
        return p;
    }

    /// <summary>Listens (again): connections are accepted.</summary>
    public void Resume()
    {
        if (listener is not null) return;
        listener = new HttpListener();
        listener.Prefixes.Add(Url + "/");
        listener.Start();
        var l = listener;
        loop = Task.Run(() => ServeAsync(l));
    }

    /// <summary>Stops listening: connections are refused, as when Prometheus is down.</summary>
    public async Task StopAsync()
    {
        if (listener is null) return;
        listener.Stop();
        listener.Close();
        listener = null;
        if (loop is not null) await loop;
    }

    async Task ServeAsync(HttpListener l)
    {
        while (l.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await l.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var query = context.Request.QueryString["query"] ?? "";
            Queries.Enqueue(query);
            var now = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0).ToString(CultureInfo.InvariantCulture);
            var result = Value is { } v ? $"[{{\"metric\":{{}},\"value\":[{now},\"{v.ToString(CultureInfo.InvariantCulture)}\"]}}]" : "[]";
            var body = context.Request.Url?.AbsolutePath == "/api/v1/query"
                ? $"{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":{result}}}}}"
                : "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"unknown path\"}";
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Response.ContentType = "application/json";
            context.Response.StatusCode = context.Request.Url?.AbsolutePath == "/api/v1/query" ? 200 : 404;
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

    public async ValueTask DisposeAsync() => await StopAsync();
}
