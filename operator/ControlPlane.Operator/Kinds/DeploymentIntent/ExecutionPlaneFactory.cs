using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The plane an intent deploys through, and the checks made before any request leaves the operator.</summary>
public interface IExecutionPlaneFactory
{
    /// <summary>Why this intent's plane may not be used (naming the field), or null.</summary>
    string? Problem(DeploymentIntent intent);

    Task<IExecutionPlane> ForAsync(DeploymentIntent intent, CancellationToken ct);

    /// <summary>An evidence pack's bytes from an allowed URL (bounded in size and time), or null when it cannot be read.</summary>
    Task<byte[]?> FetchEvidenceAsync(string url, CancellationToken ct);
}

/// <summary>
/// The planes: `kubernetes` (a Rollout the intent owns, per ring) and `http` (the connector contract,
/// only at URLs under ControlPlane:DeploymentIntent:PlaneUrlPrefixes, with the bearer token from the
/// intent's credentials Secret: a tenant's intent never makes the operator call an address, or
/// present a credential, the platform did not configure).
/// </summary>
/// <param name="handler">One connection pool for every http plane, owned by the process (a client per reconcile would exhaust sockets).</param>
public sealed class ExecutionPlaneFactory(KubeApi api, DeploymentIntentOptions options, HttpMessageHandler handler, Func<DeploymentIntent, IExecutionPlane> kubernetes)
    : IExecutionPlaneFactory
{
    const int MaxEvidenceBytes = 10 << 20;

    /// <summary>The shared pool: no redirects (a plane cannot send the token elsewhere), connections renewed for DNS changes.</summary>
    public static SocketsHttpHandler NewHandler() => new() { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };

    public string? Problem(DeploymentIntent intent)
    {
        var plane = intent.Spec.ExecutionPlane;
        if (plane?.Type != "http") return null;
        if (string.IsNullOrEmpty(plane.Url)) return "spec.executionPlane.url: required when type is http";
        if (!Configuration.UrlPrefixes.Allows(plane.Url, options.PlaneUrlPrefixes))
        {
            return $"spec.executionPlane.url: {plane.Url} is not under ControlPlane:DeploymentIntent:PlaneUrlPrefixes ({(options.PlaneUrlPrefixes.Count == 0 ? "none configured" : string.Join(", ", options.PlaneUrlPrefixes))})";
        }

        return plane.CredentialsSecret is null ? "spec.executionPlane.credentialsSecret: required when type is http" : null;
    }

    public async Task<IExecutionPlane> ForAsync(DeploymentIntent intent, CancellationToken ct)
    {
        if (intent.Spec.ExecutionPlane?.Type != "http") return kubernetes(intent);
        if (Problem(intent) is { } problem) throw new PlaneError(PlaneErrorClass.PolicyViolation, "scope_violation", problem);
        var ns = intent.Metadata.NamespaceProperty;
        var name = intent.Spec.ExecutionPlane.CredentialsSecret!.Name;
        var secret = await api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, name, ct).ConfigureAwait(false)
                     ?? throw new PlaneError(PlaneErrorClass.Permanent, "invalid_credentials", $"spec.executionPlane.credentialsSecret: Secret {ns}/{name} does not exist");
        try
        {
            return HttpExecutionPlane.FromSecret(new Uri(intent.Spec.ExecutionPlane.Url!), secret, options.PlaneTimeout, handler);
        }
        catch (ArgumentException e)
        {
            throw new PlaneError(PlaneErrorClass.Permanent, "invalid_credentials", $"spec.executionPlane: {e.Message}");
        }
    }

    public async Task<byte[]?> FetchEvidenceAsync(string url, CancellationToken ct)
    {
        // Checked here again, as parsed URLs: the caller's check may be a string prefix.
        if (!Configuration.UrlPrefixes.Allows(url, options.EvidenceUrlPrefixes)) return null;
        using var http = new HttpClient(handler, disposeHandler: false) { Timeout = options.PlaneTimeout, MaxResponseContentBufferSize = MaxEvidenceBytes };
        try
        {
            return await http.GetByteArrayAsync(new Uri(url), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or UriFormatException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }
}
