using System.Collections.Frozen;
using System.Net.Http.Headers;
using System.Text.Json.Serialization;
using System.Text.Json;
using System.Text;
using k8s.Models;

namespace ControlPlane.Operator.Adapters;

/// <summary>
/// The <c>http</c> execution plane: a client of the connector contract
/// (docs/execution-plane-connector.openapi.yaml) that Intune, Jamf, SCCM, Landscape or AWX adapters
/// implement. Every failure surfaces as a <see cref="PlaneError"/> classified by
/// <see cref="HttpPlaneErrors"/>; the client never retries (the reconciler retries by class, after
/// <see cref="PlaneError.RetryAfter"/>), never follows redirects (the bearer token stays with the
/// configured host), and never puts the token or more than an excerpt of an answer in a message.
/// </summary>
public sealed class HttpExecutionPlane : IExecutionPlane, IDisposable
{
    public const string TokenKey = "token";
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A status answer is small; a plane streaming megabytes at us is refused, not buffered.</summary>
    const int MaxResponseBytes = 1 << 20;

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    static readonly FrozenSet<string> States = FrozenSet.Create("pending", "in_progress", "succeeded", "failed", "rolled_back");
    static readonly FrozenSet<string> Actions = FrozenSet.Create(PlaneRemediation.Rollback, PlaneRemediation.Uninstall, PlaneRemediation.Redeploy, PlaneRemediation.PinRing);

    readonly HttpClient http;
    readonly string token;
    readonly TimeSpan requestTimeout;
    readonly TimeProvider time;

    /// <param name="baseUrl">The adapter's base URL; https, or http only to a loopback host.</param>
    /// <param name="token">The bearer token (read by the caller from the intent's credentials Secret).</param>
    /// <param name="requestTimeout">Per request; default 10 s.</param>
    /// <param name="handler">For tests or a shared pool; the plane disposes it only when it created it.</param>
    public HttpExecutionPlane(Uri baseUrl, string token, TimeSpan? requestTimeout = null, HttpMessageHandler? handler = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        if (!baseUrl.IsAbsoluteUri) throw new ArgumentException($"executionPlane url '{baseUrl}' must be absolute", nameof(baseUrl));
        if (baseUrl.Scheme != Uri.UriSchemeHttps && !(baseUrl.Scheme == Uri.UriSchemeHttp && baseUrl.IsLoopback))
            throw new ArgumentException($"executionPlane url '{baseUrl.GetLeftPart(UriPartial.Authority)}' must be https (plain http only to a loopback host): the bearer token would travel in clear", nameof(baseUrl));
        if (!string.IsNullOrEmpty(baseUrl.UserInfo)) throw new ArgumentException("executionPlane url must not carry credentials: the token comes from the Secret", nameof(baseUrl));
        ValidateToken(token, "the token");
        this.token = token;
        this.requestTimeout = requestTimeout ?? DefaultRequestTimeout;
        if (this.requestTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(requestTimeout), "must be positive");
        this.time = time ?? TimeProvider.System;

        var root = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/");
        http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: handler is null)
        {
            BaseAddress = root,
            Timeout = Timeout.InfiniteTimeSpan, // per request, below, so a timeout is told apart from the caller's cancellation
            MaxResponseContentBufferSize = MaxResponseBytes,
        };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    /// <summary>
    /// The plane of an intent whose credentials are in <paramref name="secret"/> under key <c>token</c>
    /// (surrounding whitespace, e.g. the newline of a file-created Secret, is dropped).
    /// </summary>
    public static HttpExecutionPlane FromSecret(Uri baseUrl, V1Secret secret, TimeSpan? requestTimeout = null, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var name = $"{secret.Metadata?.NamespaceProperty}/{secret.Metadata?.Name}";
        byte[]? raw = null;
        if (secret.Data?.TryGetValue(TokenKey, out var data) == true) raw = data;
        else if (secret.StringData?.TryGetValue(TokenKey, out var s) == true && s is not null) raw = Encoding.UTF8.GetBytes(s);
        if (raw is null) throw new ArgumentException($"Secret {name} has no key '{TokenKey}' (the bearer token of the http execution plane)", nameof(secret));
        var token = Encoding.UTF8.GetString(raw).Trim();
        ValidateToken(token, $"key '{TokenKey}' of Secret {name}");
        return new HttpExecutionPlane(baseUrl, token, requestTimeout, handler);
    }

    static void ValidateToken(string? token, string what)
    {
        if (string.IsNullOrWhiteSpace(token)) throw new ArgumentException($"{what} is empty", nameof(token));
        // Never the value in the message: only what is wrong with it.
        if (token.Any(c => c < 0x21 || c > 0x7e)) throw new ArgumentException($"{what} holds whitespace, control or non-ASCII characters: not a bearer token", nameof(token));
    }

    public Task<PlaneStatus> PublishAsync(PlaneDeployment d, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "deployments")
        {
            Content = JsonContent(new PublishBody(d.CorrelationId, d.Tenant, d.Namespace, d.Intent, d.Application, d.Version, d.Image, d.Sha256, d.Ring, d.Workspaces)),
        };
        request.Headers.Add("Idempotency-Key", IdempotencyKey(d));
        return SendForStatusAsync(request, d, ct);
    }

    public Task<PlaneStatus> QueryStatusAsync(PlaneDeployment d, CancellationToken ct) =>
        SendForStatusAsync(new HttpRequestMessage(HttpMethod.Get, DeploymentPath(d)), d, ct);

    public Task<PlaneStatus> RemediateAsync(PlaneDeployment d, string action, string? version, CancellationToken ct) => RemediateAsync(d, action, version, null, ct);

    public Task<PlaneStatus> RemediateAsync(PlaneDeployment d, string action, string? version, string? strategy, CancellationToken ct)
    {
        if (!Actions.Contains(action)) throw new ArgumentException($"remediation action '{action}' is not one of {string.Join(", ", Actions)}", nameof(action));
        if (strategy is not null && !IsStrategyName(strategy)) throw new ArgumentException($"rollback strategy '{HttpPlaneErrors.Cut(strategy, 64)}' is not a DNS label", nameof(strategy));
        var request = new HttpRequestMessage(HttpMethod.Post, DeploymentPath(d) + "/remediate")
        {
            Content = JsonContent(new RemediateBody(action, version, strategy)),
        };
        // A remediation replayed after a lost answer must not roll back twice: keyed per action and version.
        request.Headers.Add("Idempotency-Key", $"{IdempotencyKey(d)}:{action}:{(version is null ? "" : HeaderValue(version, "version"))}");
        return SendForStatusAsync(request, d, ct);
    }

    /// <summary>
    /// GET capabilities: <c>{"rollbackStrategies": ["previous-version", ...]}</c>. Every name a DNS label, at most
    /// <see cref="MaxStrategies"/>; anything else is an answer outside the contract (permanent).
    /// </summary>
    public async Task<PlaneCapabilities> CapabilitiesAsync(CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "capabilities");
        var body = await SendAsync(request, null, ct);
        var answer = Parse<CapabilitiesBody>(body, "capabilities answer");
        if (answer.RollbackStrategies is not { } strategies) throw Malformed("capabilities answer without 'rollbackStrategies'");
        if (strategies.Count > MaxStrategies) throw Malformed($"capabilities answer with {strategies.Count} rollback strategies (at most {MaxStrategies})");
        var names = new List<string>();
        foreach (var s in strategies)
        {
            if (s is null || !IsStrategyName(s)) throw Malformed($"capabilities answer with rollback strategy '{HttpPlaneErrors.Cut(s ?? "null", 64)}' (not a DNS label)");
            if (!names.Contains(s)) names.Add(s);
        }

        return new PlaneCapabilities(names);
    }

    /// <summary>A plane advertising more strategies than this is answering outside the contract.</summary>
    public const int MaxStrategies = 64;

    /// <summary>A strategy's name as spec.rollbackPlan.strategy allows it: a DNS label.</summary>
    public static bool IsStrategyName(string s) =>
        s.Length is > 0 and <= 63 && s.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-') && s[0] != '-' && s[^1] != '-';

    public async Task<bool> VerifyIdempotencyAsync(PlaneDeployment d, CancellationToken ct)
    {
        var key = IdempotencyKey(d);
        using var request = new HttpRequestMessage(HttpMethod.Get, "idempotency/" + Uri.EscapeDataString(key));
        var body = await SendAsync(request, d, ct);
        var answer = Parse<IdempotencyAnswer>(body, "idempotency answer");
        if (answer.Key is { } k && k != key) throw Malformed($"idempotency answer for key '{HttpPlaneErrors.Cut(k, 200)}', asked '{key}'");
        return answer.Exists ?? throw Malformed("idempotency answer without 'exists'");
    }

    /// <summary>The contract's idempotency key: one per intent (correlation id) and ring.</summary>
    public static string IdempotencyKey(PlaneDeployment d) => $"{HeaderValue(d.CorrelationId, "correlationId")}:{HeaderValue(d.Ring, "ring")}";

    /// <summary>Correlation id and ring travel in headers: printable ASCII only, bounded, so no header can be smuggled.</summary>
    static string HeaderValue(string value, string field)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 253 || value.Any(c => c < 0x21 || c > 0x7e))
            throw new ArgumentException($"{field} must be 1-253 printable ASCII characters without spaces", field);
        return value;
    }

    static string DeploymentPath(PlaneDeployment d) => $"deployments/{Segment(d.CorrelationId, "correlationId")}/{Segment(d.Ring, "ring")}";

    /// <summary>One path segment, escaped; "." and ".." would be resolved away by the URI and reach another resource.</summary>
    static string Segment(string value, string field)
    {
        if (string.IsNullOrEmpty(value) || value is "." or "..")
            throw new ArgumentException($"{field} '{value}' cannot be a path segment of the connector contract", field);
        return Uri.EscapeDataString(value);
    }

    async Task<PlaneStatus> SendForStatusAsync(HttpRequestMessage request, PlaneDeployment d, CancellationToken ct)
    {
        using (request)
        {
            var body = await SendAsync(request, d, ct);
            var status = Parse<StatusBody>(body, "status");
            if (status.State is not { } state || !States.Contains(state))
                throw Malformed($"status with state '{HttpPlaneErrors.Cut(status.State ?? "", 64)}' (expected one of {string.Join(", ", States)})");
            return new PlaneStatus(state, status.ActualVersion, status.Assigned ?? false, status.Workspaces ?? [], status.SuccessRate, status.Incidents ?? 0, status.Message is null ? null : HttpPlaneErrors.Cut(status.Message, HttpPlaneErrors.MaxEcho));
        }
    }

    /// <summary>One request, one attempt: the body of a 2xx answer, or a classified <see cref="PlaneError"/>.</summary>
    async Task<string> SendAsync(HttpRequestMessage request, PlaneDeployment? d, CancellationToken ct)
    {
        // The capabilities call is about the plane, not a deployment: it carries no correlation id.
        if (d is not null) request.Headers.Add("X-Correlation-Id", HeaderValue(d.CorrelationId, "correlationId"));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(requestTimeout);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var body = await ReadBoundedAsync(response.Content, timeout.Token);
            if (response.IsSuccessStatusCode) return body;
            var error = HttpPlaneErrors.Classify(response.StatusCode, body, HttpPlaneErrors.RetryAfterOf(response.Headers.RetryAfter, time.GetUtcNow()));
            throw Redacted(error);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw Redacted(HttpPlaneErrors.ClassifyTransport(e, requestTimeout));
        }
    }

    static async Task<string> ReadBoundedAsync(HttpContent content, CancellationToken ct)
    {
        if (content.Headers.ContentLength > MaxResponseBytes) throw Malformed($"answer larger than {MaxResponseBytes} bytes");
        await using var stream = await content.ReadAsStreamAsync(ct);
        using var body = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer, ct)) > 0)
        {
            if (body.Length + n > MaxResponseBytes) throw Malformed($"answer larger than {MaxResponseBytes} bytes");
            body.Write(buffer, 0, n);
        }

        return Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
    }

    /// <summary>A plane echoing our Authorization header back must not put the token into an exception.</summary>
    PlaneError Redacted(PlaneError e) =>
        e.Detail.Contains(token, StringComparison.Ordinal)
            ? new PlaneError(e.Class, e.Code, e.Detail.Replace(token, "[redacted]", StringComparison.Ordinal), e.RetryAfter) { NoAnswer = e.NoAnswer }
            : e;

    static T Parse<T>(string body, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(body, Json) ?? throw Malformed($"empty {what}");
        }
        catch (JsonException)
        {
            throw Malformed($"{what} that is not the contract's JSON");
        }
    }

    /// <summary>An adapter that answers 2xx outside the contract is broken, not busy: permanent.</summary>
    static PlaneError Malformed(string what) => new(PlaneErrorClass.Permanent, HttpPlaneErrors.InvalidRequest, $"the plane answered with {what}");

    static StringContent JsonContent<T>(T value) => new(JsonSerializer.Serialize(value, Json), Encoding.UTF8, "application/json");

    public void Dispose() => http.Dispose();

    sealed record PublishBody(string CorrelationId, string Tenant, string Namespace, string Intent, string Application, string Version, string Image, string Sha256, string Ring, IReadOnlyList<string> Workspaces);

    sealed record RemediateBody(string Action, string? Version, string? Strategy);

    sealed record CapabilitiesBody(IReadOnlyList<string?>? RollbackStrategies);

    sealed record StatusBody(string? State, string? ActualVersion, bool? Assigned, IReadOnlyList<string>? Workspaces, double? SuccessRate, int? Incidents, string? Message);

    sealed record IdempotencyAnswer(string? Key, bool? Exists);
}
