using System.Collections.Frozen;
using System.Net;
using System.Text.Json.Nodes;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting.Server;

namespace ControlPlane.LocalEnv;

/// <summary>
/// TEST FAKE of a third-party execution plane (Intune, Jamf, SCCM, Landscape, AWX behind an adapter):
/// a real HTTP server on 127.0.0.1 that implements docs/execution-plane-connector.openapi.yaml in
/// memory. Third-party SaaS planes are the only thing this project fakes; Kubernetes and Postgres
/// are always real. It records every call, checks the bearer token, dedupes publishes by
/// Idempotency-Key, lets a test inject the next errors, set the "actual" state (drift) and drive
/// deployments pending -> in_progress -> succeeded (one step per status query, or on demand).
/// </summary>
public sealed partial class ConnectorContractServer : IAsyncDisposable
{
    /// <summary>One request as the plane saw it. The Authorization header is recorded as whether it matched, never its value.</summary>
    public sealed record RecordedCall(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body, bool Authorized)
    {
        public string? IdempotencyKey => Headers.GetValueOrDefault("Idempotency-Key");
        public string? CorrelationId => Headers.GetValueOrDefault("X-Correlation-Id");
    }

    /// <summary>A deployment as the plane holds it: what was asked, and what is "actually" on the devices.</summary>
    public sealed record Deployment(
        string IdempotencyKey, string CorrelationId, string Ring, string Application, string Version, IReadOnlyList<string> DesiredWorkspaces,
        string State, string? ActualVersion, bool Assigned, IReadOnlyList<string> Workspaces, double? SuccessRate, int Incidents,
        bool Pinned, IReadOnlyList<string> Remediations, string? Message);

    sealed record Injection(int Status, string? Body, string? RetryAfterHeader, TimeSpan? Delay, string? Location = null);

    readonly WebApplication app;
    readonly byte[] expectedAuthorization;
    readonly Lock gate = new();
    readonly List<RecordedCall> calls = [];
    readonly Dictionary<string, Deployment> byKey = [];
    readonly Dictionary<string, JsonObject> publishedBodies = [];
    readonly HashSet<string> remediationKeys = [];
    readonly Queue<Injection> injections = new();
    int deploymentsCreated;

    ConnectorContractServer(WebApplication app, string token, Uri baseUrl)
    {
        this.app = app;
        expectedAuthorization = Encoding.UTF8.GetBytes("Bearer " + token);
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    /// <summary>What GET capabilities advertises as rollbackStrategies (default: the built-in three); null answers 404, as an adapter without the call would.</summary>
    public IReadOnlyList<string>? RollbackStrategies
    {
        get { lock (gate) return rollbackStrategies; }
        set { lock (gate) rollbackStrategies = value; }
    }

    IReadOnlyList<string>? rollbackStrategies = ["previous-version", "specific-version", "none"];
    readonly Dictionary<string, List<string>> strategiesByKey = [];

    /// <summary>The rollback strategies the remediate calls of a deployment named, in order (calls without one are not listed).</summary>
    public IReadOnlyList<string> StrategiesOf(string correlationId, string ring)
    {
        lock (gate) return strategiesByKey.TryGetValue(Key(correlationId, ring), out var list) ? [.. list] : [];
    }

    /// <summary>When true (the default) each status query moves a deployment one step: pending -> in_progress -> succeeded.</summary>
    public bool AutoAdvance { get; set; } = true;

    /// <summary>Deployments really created: a replayed publish (same Idempotency-Key) does not count.</summary>
    public int DeploymentsCreated
    {
        get { lock (gate) return deploymentsCreated; }
    }

    public IReadOnlyList<RecordedCall> Calls
    {
        get { lock (gate) return [.. calls]; }
    }

    /// <summary>Starts the fake on a free loopback port; requests must carry <c>Authorization: Bearer {token}</c>.</summary>
    public static async Task<ConnectorContractServer> StartAsync(string token, CancellationToken ct = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        ConnectorContractServer? server = null;
        app.Run(ctx => server!.HandleAsync(ctx));
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        server = new ConnectorContractServer(app, token, new Uri(address.TrimEnd('/') + "/"));
        return server;
    }

    /// <summary>
    /// The next <paramref name="times"/> authenticated requests fail with the contract's error body
    /// (class TRANSIENT | PERMANENT | POLICY_VIOLATION) at the status that code usually has.
    /// </summary>
    public void InjectError(string errorClass, string code, int? retryAfterSeconds = null, int times = 1, string? message = null, int? status = null)
    {
        var error = new JsonObject { ["class"] = errorClass, ["code"] = code, ["message"] = message ?? $"injected {code}" };
        if (retryAfterSeconds is { } s) error["retryAfterSeconds"] = s;
        var body = new JsonObject { ["error"] = error }.ToJsonString();
        lock (gate)
        {
            for (var i = 0; i < times; i++) injections.Enqueue(new Injection(status ?? StatusOf(code), body, null, null));
        }
    }

    /// <summary>
    /// The next request answers a bare status (any body, e.g. an HTML error page of a proxy),
    /// optionally with a Retry-After header, or a Location (a redirect elsewhere).
    /// </summary>
    public void InjectStatus(int status, string? body = null, string? retryAfterHeader = null, int times = 1, string? location = null)
    {
        lock (gate)
        {
            for (var i = 0; i < times; i++) injections.Enqueue(new Injection(status, body, retryAfterHeader, null, location));
        }
    }

    /// <summary>The next request hangs this long before being served normally (a slow or stuck plane).</summary>
    public void InjectDelay(TimeSpan delay)
    {
        lock (gate) injections.Enqueue(new Injection(0, null, null, delay));
    }

    public Deployment? Find(string correlationId, string ring)
    {
        lock (gate) return byKey.GetValueOrDefault(Key(correlationId, ring));
    }

    /// <summary>Moves a deployment to a state now (pending | in_progress | succeeded | failed | rolled_back).</summary>
    public void Advance(string correlationId, string ring, string state, double? successRate = null, int? incidents = null)
    {
        if (!States.Contains(state)) throw new ArgumentException($"state '{state}' is not one of {string.Join(", ", States)}", nameof(state));
        Update(correlationId, ring, d => d with
        {
            State = state,
            SuccessRate = successRate ?? (state == "succeeded" ? 1.0 : d.SuccessRate),
            Incidents = incidents ?? d.Incidents,
        });
    }

    /// <summary>Sets what is "actually" deployed, as a device-management system would report it after someone changed it by hand.</summary>
    public void SetActual(string correlationId, string ring, string? actualVersion = null, bool? assigned = null, IReadOnlyList<string>? workspaces = null) =>
        Update(correlationId, ring, d => d with
        {
            ActualVersion = actualVersion ?? d.ActualVersion,
            Assigned = assigned ?? d.Assigned,
            Workspaces = workspaces ?? d.Workspaces,
        });

    /// <summary>Simulates one kind of drift: version_mismatch, assignment_missing or scope_mismatch.</summary>
    public void Drift(string correlationId, string ring, string kind)
    {
        switch (kind)
        {
            case "version_mismatch": SetActual(correlationId, ring, actualVersion: "0.0.0-drifted"); break;
            case "assignment_missing": SetActual(correlationId, ring, assigned: false); break;
            case "scope_mismatch": Update(correlationId, ring, d => d with { Workspaces = [.. d.DesiredWorkspaces.Skip(1), "foreign-workspace"] }); break;
            default: throw new ArgumentException($"drift kind '{kind}' is not version_mismatch, assignment_missing or scope_mismatch", nameof(kind));
        }
    }

    void Update(string correlationId, string ring, Func<Deployment, Deployment> change)
    {
        lock (gate)
        {
            var key = Key(correlationId, ring);
            if (!byKey.TryGetValue(key, out var d)) throw new InvalidOperationException($"no deployment {key} on the fake plane");
            byKey[key] = change(d);
        }
    }

    static string Key(string correlationId, string ring) => $"{correlationId}:{ring}";

    static readonly FrozenSet<string> States = FrozenSet.Create("pending", "in_progress", "succeeded", "failed", "rolled_back");

    /// <summary>The HTTP status an adapter would usually answer with for a contract code.</summary>
    public static int StatusOf(string code) => code switch
    {
        "rate_limit" => 429,
        "timeout" => 504,
        "service_unavailable" => 503,
        "invalid_credentials" => 401,
        "resource_not_found" => 404,
        "invalid_request" => 400,
        "scope_violation" or "unauthorized" or "quota_exceeded" => 403,
        _ => 500,
    };

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
