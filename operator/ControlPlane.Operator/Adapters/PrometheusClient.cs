using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Adapters;

/// <summary>
/// Asks the configured Prometheus one instant query (GET /api/v1/query). Anything but an answer
/// (not configured, unreachable, timeout, an error status, a malformed body) is "unavailable": a
/// reason to hold a ring, never to roll it back.
/// </summary>
public sealed class PrometheusClient(PrometheusOptions options, HttpClient http)
{
    public bool Configured => !string.IsNullOrWhiteSpace(options.Url);

    public async Task<MetricReading> QueryAsync(string query, CancellationToken ct)
    {
        if (!Configured) return MetricReading.Down("ControlPlane:Prometheus:Url is not set: the operator has no Prometheus to ask");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.Timeout);
        var url = $"{options.Url!.TrimEnd('/')}/api/v1/query?query={Uri.EscapeDataString(query)}";
        try
        {
            using var response = await http.GetAsync(url, timeout.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode && (int)response.StatusCode >= 500) return MetricReading.Down($"Prometheus answered {(int)response.StatusCode}");
            return MetricReading.Of(RolloutResources.ParsePrometheus(body));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return MetricReading.Down($"Prometheus did not answer within {options.Timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException e)
        {
            return MetricReading.Down($"Prometheus unreachable: {e.Message}");
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return MetricReading.Down($"Prometheus answer not understood: {e.Message}");
        }
    }
}
