using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using System.Net.Sockets;
using System.Net;
using System.Text.Json;

namespace ControlPlane.Operator.Adapters;

/// <summary>
/// The connector contract's error classification (docs/execution-plane-connector.openapi.yaml),
/// as pure functions: the plane's own error body wins when it names a valid class, else the HTTP
/// status decides; transport failures are transient.
/// </summary>
public static class HttpPlaneErrors
{
    public const string RateLimit = "rate_limit";
    public const string Timeout = "timeout";
    public const string ServiceUnavailable = "service_unavailable";
    public const string InvalidCredentials = "invalid_credentials";
    public const string ResourceNotFound = "resource_not_found";
    public const string InvalidRequest = "invalid_request";
    public const string ScopeViolation = "scope_violation";
    public const string Unauthorized = "unauthorized";
    public const string QuotaExceeded = "quota_exceeded";

    /// <summary>Every code of the contract, by class (the wire names of the classes are upper snake case).</summary>
    public static readonly FrozenDictionary<PlaneErrorClass, ImmutableArray<string>> Codes = new Dictionary<PlaneErrorClass, ImmutableArray<string>>
    {
        [PlaneErrorClass.Transient] = [RateLimit, Timeout, ServiceUnavailable],
        [PlaneErrorClass.Permanent] = [InvalidCredentials, ResourceNotFound, InvalidRequest],
        [PlaneErrorClass.PolicyViolation] = [ScopeViolation, Unauthorized, QuotaExceeded],
    }.ToFrozenDictionary();

    /// <summary>A plane cannot park the operator for longer than this, whatever it says (and 1e30 cannot overflow).</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromHours(1);

    /// <summary>Message excerpts of a plane's answer are cut here: a plane's body is not ours to echo.</summary>
    public const int MaxEcho = 512;

    public static string WireName(PlaneErrorClass c) => c switch
    {
        PlaneErrorClass.Transient => "TRANSIENT",
        PlaneErrorClass.Permanent => "PERMANENT",
        _ => "POLICY_VIOLATION",
    };

    public static PlaneErrorClass? ParseClass(string? wire) => wire?.Trim().ToUpperInvariant() switch
    {
        "TRANSIENT" => PlaneErrorClass.Transient,
        "PERMANENT" => PlaneErrorClass.Permanent,
        "POLICY_VIOLATION" => PlaneErrorClass.PolicyViolation,
        _ => null,
    };

    /// <summary>
    /// Classifies a non-2xx answer. <paramref name="body"/> is the response body (the contract's
    /// <c>{error: {class, code, message, retryAfterSeconds}}</c> or anything else);
    /// <paramref name="retryAfterHeader"/> is the Retry-After header already turned into a delay.
    /// The body's retryAfterSeconds wins over the header; both are capped at <see cref="MaxRetryAfter"/>.
    /// </summary>
    public static PlaneError Classify(HttpStatusCode status, string? body, TimeSpan? retryAfterHeader)
    {
        var fromBody = ParseErrorBody(body);
        var retryAfter = Cap(fromBody?.RetryAfterSeconds is { } s ? Seconds(s) : retryAfterHeader);
        var (byStatusClass, byStatusCode) = ByStatus(status);
        var statusText = $"HTTP {(int)status}";

        if (fromBody?.Class is { } declared)
        {
            // The plane knows its failure best, but only the contract's codes reach the reconciler:
            // an unknown code keeps the plane's class with that class's catch-all code.
            var known = fromBody.Code is { } c && Codes[declared].Contains(c);
            var code = known ? fromBody.Code! : CatchAll(declared);
            var message = fromBody.Message ?? statusText;
            if (!known && fromBody.Code is { Length: > 0 } other) message = $"plane code '{Cut(other, 64)}': {message}";
            return new PlaneError(declared, code, $"{statusText}: {Cut(message, MaxEcho)}", declared == PlaneErrorClass.Transient ? retryAfter : null);
        }

        var detail = fromBody?.Message ?? (string.IsNullOrWhiteSpace(body) ? null : body);
        return new PlaneError(byStatusClass, byStatusCode, detail is null ? statusText : $"{statusText}: {Cut(detail, MaxEcho)}",
            byStatusClass == PlaneErrorClass.Transient ? retryAfter : null);
    }

    /// <summary>The class and code an HTTP status alone implies.</summary>
    public static (PlaneErrorClass Class, string Code) ByStatus(HttpStatusCode status) => (int)status switch
    {
        429 => (PlaneErrorClass.Transient, RateLimit),
        408 => (PlaneErrorClass.Transient, Timeout),
        502 or 503 or 504 => (PlaneErrorClass.Transient, ServiceUnavailable),
        >= 500 => (PlaneErrorClass.Transient, ServiceUnavailable), // a server error is presumed passing
        401 => (PlaneErrorClass.Permanent, InvalidCredentials),
        404 => (PlaneErrorClass.Permanent, ResourceNotFound),
        403 => (PlaneErrorClass.PolicyViolation, Unauthorized),
        _ => (PlaneErrorClass.Permanent, InvalidRequest),           // 400, 409, 422, other 4xx, and redirects (never followed)
    };

    /// <summary>
    /// Classifies a failure before any answer: the per-request timeout, a refused or reset
    /// connection, DNS. All transient: the plane may be back on the next attempt.
    /// </summary>
    public static PlaneError ClassifyTransport(Exception e, TimeSpan requestTimeout) => Unanswered(e switch
    {
        TimeoutException or TaskCanceledException or OperationCanceledException =>
            new PlaneError(PlaneErrorClass.Transient, Timeout, $"no answer within {requestTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s"),
        HttpRequestException { InnerException: SocketException se } =>
            new PlaneError(PlaneErrorClass.Transient, ServiceUnavailable, $"connection failed: {se.SocketErrorCode}"),
        HttpRequestException h when h.HttpRequestError is HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError =>
            new PlaneError(PlaneErrorClass.Transient, ServiceUnavailable, $"connection failed: {h.HttpRequestError}"),
        HttpRequestException h =>
            new PlaneError(PlaneErrorClass.Transient, ServiceUnavailable, $"request failed: {h.HttpRequestError}"),
        IOException =>
            new PlaneError(PlaneErrorClass.Transient, ServiceUnavailable, "connection lost"),
        _ => new PlaneError(PlaneErrorClass.Transient, ServiceUnavailable, $"request failed: {e.GetType().Name}"),
    });

    static PlaneError Unanswered(PlaneError e) => new(e.Class, e.Code, e.Detail, e.RetryAfter) { NoAnswer = true };

    /// <summary>A Retry-After header (delta seconds or an HTTP date) as a delay from <paramref name="now"/>.</summary>
    public static TimeSpan? RetryAfterOf(System.Net.Http.Headers.RetryConditionHeaderValue? header, DateTimeOffset now) => header switch
    {
        { Delta: { } d } => Cap(d),
        { Date: { } at } => Cap(at - now),
        _ => null,
    };

    static string CatchAll(PlaneErrorClass c) => c switch
    {
        PlaneErrorClass.Transient => ServiceUnavailable,
        PlaneErrorClass.Permanent => InvalidRequest,
        _ => Unauthorized,
    };

    static TimeSpan? Seconds(double s) => double.IsFinite(s) ? TimeSpan.FromSeconds(Math.Clamp(s, 0, MaxRetryAfter.TotalSeconds)) : null;

    static TimeSpan? Cap(TimeSpan? t) => t switch
    {
        null => null,
        { } v when v < TimeSpan.Zero => TimeSpan.Zero,
        { } v when v > MaxRetryAfter => MaxRetryAfter,
        { } v => v,
    };

    internal static string Cut(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    sealed record ErrorBody(PlaneErrorClass? Class, string? Code, string? Message, double? RetryAfterSeconds);

    static ErrorBody? ParseErrorBody(string? body)
    {
        if (string.IsNullOrWhiteSpace(body) || body.TrimStart()[0] != '{') return null;
        try
        {
            using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            if (!doc.RootElement.TryGetProperty("error", out var e) || e.ValueKind != JsonValueKind.Object) return null;
            return new ErrorBody(
                ParseClass(Str(e, "class")),
                Str(e, "code")?.Trim().ToLowerInvariant(),
                Str(e, "message"),
                e.TryGetProperty("retryAfterSeconds", out var r) && r.ValueKind == JsonValueKind.Number && r.TryGetDouble(out var d) ? d : null);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
