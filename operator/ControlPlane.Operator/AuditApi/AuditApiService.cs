using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.AuditApi;

/// <summary>
/// The audit API's background work in every replica: the front proxy's settings (read at start and
/// every minute: the API server rotates them), the APIService with the serving certificate's CA (when
/// Register is on), and the chain verification.
/// </summary>
public sealed class AuditApiService(KubeApi api, FrontProxy proxy, AuditChainVerifier verifier, AuditApiOptions options, Func<string> caBundle, TimeProvider time,
    ILogger<AuditApiService> logger) : IHostedService
{
    public const string ApiServiceName = AuditObjects.Version + "." + AuditObjects.Group;
    const string ManagedBy = "controlplane-operator";
    public static readonly ResourceType ApiServices = new("apiregistration.k8s.io", "v1", "apiservices", "APIService", false);

    readonly CancellationTokenSource stopping = new();
    Task? background;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        background = Task.WhenAll(RefreshLoopAsync(stopping.Token), verifier.RunAsync(stopping.Token));
        logger.LogInformation("audit API served on {Address}:{Port}", options.BindAddress, options.Port);
        return Task.CompletedTask;
    }

    async Task RefreshLoopAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await proxy.RefreshAsync(ct).ConfigureAwait(false);
                if (options.Register) await RegisterAsync(ct).ConfigureAwait(false);
                delay = TimeSpan.FromMinutes(1);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is KubeApiException or HttpRequestException or InvalidOperationException or IOException)
            {
                logger.LogWarning("audit API setup failed ({Error}); retrying in {Delay} s", e.Message, (int)delay.TotalSeconds);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }

            try
            {
                await Task.Delay(delay, time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The APIService as the operator writes it (pure).</summary>
    public static JsonObject Desired(AuditApiOptions o, string caPem) => new()
    {
        ["apiVersion"] = "apiregistration.k8s.io/v1",
        ["kind"] = "APIService",
        ["metadata"] = new JsonObject
        {
            ["name"] = ApiServiceName,
            ["labels"] = new JsonObject { ["app.kubernetes.io/part-of"] = "controlplane", ["app.kubernetes.io/managed-by"] = ManagedBy },
        },
        ["spec"] = new JsonObject
        {
            ["group"] = AuditObjects.Group,
            ["version"] = AuditObjects.Version,
            ["service"] = new JsonObject { ["namespace"] = o.ServiceNamespace, ["name"] = o.ServiceName, ["port"] = o.ServicePort },
            ["caBundle"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(caPem)),
            ["groupPriorityMinimum"] = 1000,
            ["versionPriority"] = 15,
        },
    };

    /// <summary>Creates the APIService, or updates one the operator made when it differs; never takes over one it did not make.</summary>
    async Task RegisterAsync(CancellationToken ct)
    {
        var ca = caBundle();
        if (string.IsNullOrEmpty(ca)) throw new InvalidOperationException("the serving certificate is not issued yet");
        var desired = Desired(options, ca);
        string? existingText;
        try
        {
            existingText = await api.SendAsync(HttpMethod.Get, ApiServices.ItemPath(null, ApiServiceName), null, "application/json", ct).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound)
        {
            existingText = null;
        }

        if (existingText is null)
        {
            await api.SendAsync(HttpMethod.Post, ApiServices.CollectionPath(null), desired.ToJsonString(), "application/json", ct).ConfigureAwait(false);
            logger.LogInformation("audit API registered: APIService {Name}", ApiServiceName);
            return;
        }

        var existing = JsonNode.Parse(existingText)!.AsObject();
        if (existing["metadata"]?["labels"]?["app.kubernetes.io/part-of"]?.GetValue<string>() != "controlplane")
        {
            // Not ours nor the chart's (a hand-made one): theirs to keep.
            logger.LogWarning("audit API: APIService {Name} exists without app.kubernetes.io/part-of=controlplane: left as it is", ApiServiceName);
            return;
        }

        // The chart's (its labels, release ownership) or the operator's own: only the CA bundle and the Service are the operator's to set.
        var spec = existing["spec"]!.AsObject();
        if (JsonNode.DeepEquals(spec["service"], desired["spec"]!["service"]) && spec["caBundle"]?.GetValue<string>() == desired["spec"]!["caBundle"]!.GetValue<string>()) return;
        spec["service"] = desired["spec"]!["service"]!.DeepClone();
        spec["caBundle"] = desired["spec"]!["caBundle"]!.DeepClone();
        existing.Remove("status");
        await api.SendAsync(HttpMethod.Put, ApiServices.ItemPath(null, ApiServiceName), existing.ToJsonString(), "application/json", ct).ConfigureAwait(false);
        logger.LogInformation("audit API: APIService {Name} updated", ApiServiceName);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        if (background is not null) await background.WaitAsync(cancellationToken).ConfigureAwait(false);
    }
}
