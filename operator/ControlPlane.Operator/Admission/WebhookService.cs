using System.Diagnostics;
using System.Text.Json;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// Runs in every replica: before the server listens it ensures the serving certificate and the
/// webhook configurations; then it keeps the admission caches and renews the certificate.
/// </summary>
public sealed class WebhookService(
    OperatorRuntime runtime,
    WebhookOptions options,
    WebhookCertificates certificates,
    AdmissionDispatcher dispatcher,
    TimeProvider time,
    ILogger<WebhookService> logger) : IHostedService
{
    readonly CancellationTokenSource stopping = new();
    Task? background;

    /// <summary>
    /// Why the webhook configurations are not registered (their Service cannot be verified), or null.
    /// While set, readiness fails with it: a configuration pointing at a Service nobody serves would
    /// fail every write of a controlplane.io object cluster-wide, the operator's own included.
    /// </summary>
    public string? NotRegisteredReason { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        Task? registration = null;
        while (true)
        {
            try
            {
                await certificates.EnsureAsync(cancellationToken).ConfigureAwait(false);
                if (await WebhookConfigurations.UnreachableAsync(runtime.Api, options, cancellationToken).ConfigureAwait(false) is { } problem)
                {
                    // Serve (and fail readiness) rather than block: the Service may appear once this pod runs.
                    NotRegisteredReason = $"admission webhooks not registered: {problem}";
                    logger.LogWarning("{Reason}; retrying until it is", NotRegisteredReason);
                    registration = RegisterWhenReachableAsync(stopping.Token);
                    break;
                }

                await WebhookConfigurations.ApplyAsync(runtime.Api, options, certificates.CaBundlePem, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or CertificateNotIssuedException)
            {
                logger.LogWarning("webhook setup failed ({Error}); retrying in {Delay} ms", e.Message, (int)delay.TotalMilliseconds);
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }

        background = Task.WhenAll([.. dispatcher.Informers.Select(i => i.RunAsync(stopping.Token)), RenewAsync(stopping.Token), registration ?? Task.CompletedTask]);
        logger.LogInformation("admission webhooks served on {Address}:{Port}", options.BindAddress, options.Port);
        if (string.IsNullOrWhiteSpace(options.ClientCaFile))
        {
            logger.LogWarning("ControlPlane:Webhook:ClientCaFile is not set: the webhook port answers any client that reaches it; " +
                              "set it to the CA of the API server's webhook client certificate, and keep the operator's NetworkPolicy (config/network)");
        }
    }

    async Task RegisterWhenReachableAsync(CancellationToken ct)
    {
        try
        {
            while (NotRegisteredReason is not null)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), time, ct).ConfigureAwait(false);
                try
                {
                    if (await WebhookConfigurations.UnreachableAsync(runtime.Api, options, ct).ConfigureAwait(false) is { } problem)
                    {
                        NotRegisteredReason = $"admission webhooks not registered: {problem}";
                        continue;
                    }

                    await WebhookConfigurations.ApplyAsync(runtime.Api, options, certificates.CaBundlePem, ct).ConfigureAwait(false);
                    NotRegisteredReason = null;
                    logger.LogInformation("admission webhooks registered: their Service has endpoints");
                }
                catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or CertificateNotIssuedException)
                {
                    logger.LogWarning("webhook registration failed ({Error}); retrying", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task RenewAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(6), time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await certificates.EnsureAsync(ct).ConfigureAwait(false);
                    await WebhookConfigurations.ApplyAsync(runtime.Api, options, certificates.CaBundlePem, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or CertificateNotIssuedException)
                {
                    logger.LogWarning("webhook certificate renewal check failed: {Error}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        if (background is not null) await background.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The /mutate and /validate endpoints, reachable only on the webhook port.</summary>
    public static void Map(WebApplication app, WebhookOptions options, AdmissionDispatcher dispatcher, OperatorMetrics metrics)
    {
        var host = $"*:{options.Port}";
        app.MapPost("/mutate", (HttpContext http) => Serve(http, dispatcher, metrics, mutate: true)).RequireHost(host);
        app.MapPost("/validate", (HttpContext http) => Serve(http, dispatcher, metrics, mutate: false)).RequireHost(host);
    }

    static async Task Serve(HttpContext http, AdmissionDispatcher dispatcher, OperatorMetrics metrics, bool mutate)
    {
        var operation = mutate ? "mutate" : "validate";
        var watch = Stopwatch.StartNew();
        var review = await JsonSerializer.DeserializeAsync<AdmissionReview>(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false);
        if (review?.Request is null)
        {
            http.Response.StatusCode = 400;
            await http.Response.WriteAsync("AdmissionReview with a request expected", http.RequestAborted).ConfigureAwait(false);
            return;
        }

        AdmissionResponse response;
        string outcome;
        if (!dispatcher.Synced)
        {
            response = AdmissionResponse.Deny(review.Request.Uid, "ControlPlane admission is starting (caches not yet synced); retry shortly", 503, "ServiceUnavailable");
            outcome = "unavailable";
        }
        else
        {
            response = mutate
                ? await dispatcher.MutateAsync(review.Request, http.RequestAborted).ConfigureAwait(false)
                : await dispatcher.ValidateAsync(review.Request, http.RequestAborted).ConfigureAwait(false);
            outcome = response.Allowed ? "allowed" : "denied";
        }

        var reply = new AdmissionReview { Response = response };
        http.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(http.Response.Body, reply, cancellationToken: http.RequestAborted).ConfigureAwait(false);
        metrics.WebhookLatency.WithLabels(operation, review.Request.Kind.Kind, outcome).Observe(watch.Elapsed.TotalSeconds);
    }
}
