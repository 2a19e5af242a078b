using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net;
using System.Text;
using ControlPlane.Operator.Adapters;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The connector contract's error classification and the client's input checks, as pure functions (no server).</summary>
public sealed class HttpPlaneClassifyTests
{
    [Theory]
    [InlineData(429, PlaneErrorClass.Transient, "rate_limit")]
    [InlineData(408, PlaneErrorClass.Transient, "timeout")]
    [InlineData(502, PlaneErrorClass.Transient, "service_unavailable")]
    [InlineData(503, PlaneErrorClass.Transient, "service_unavailable")]
    [InlineData(504, PlaneErrorClass.Transient, "service_unavailable")]
    [InlineData(500, PlaneErrorClass.Transient, "service_unavailable")]
    [InlineData(401, PlaneErrorClass.Permanent, "invalid_credentials")]
    [InlineData(404, PlaneErrorClass.Permanent, "resource_not_found")]
    [InlineData(400, PlaneErrorClass.Permanent, "invalid_request")]
    [InlineData(409, PlaneErrorClass.Permanent, "invalid_request")]
    [InlineData(422, PlaneErrorClass.Permanent, "invalid_request")]
    [InlineData(418, PlaneErrorClass.Permanent, "invalid_request")]
    [InlineData(302, PlaneErrorClass.Permanent, "invalid_request")]
    [InlineData(403, PlaneErrorClass.PolicyViolation, "unauthorized")]
    public void WithoutAnErrorBody_TheStatusDecides(int status, PlaneErrorClass expectedClass, string expectedCode)
    {
        foreach (var body in new[] { null, "", "<html><body>Bad Gateway</body></html>", "{\"detail\":\"not the contract\"}", "{not json" })
        {
            var e = HttpPlaneErrors.Classify((HttpStatusCode)status, body, null);
            Assert.Equal((expectedClass, expectedCode), (e.Class, e.Code));
            Assert.Contains($"HTTP {status}", e.Detail);
        }
    }

    [Theory]
    [InlineData("TRANSIENT", "rate_limit", PlaneErrorClass.Transient)]
    [InlineData("TRANSIENT", "timeout", PlaneErrorClass.Transient)]
    [InlineData("TRANSIENT", "service_unavailable", PlaneErrorClass.Transient)]
    [InlineData("PERMANENT", "invalid_credentials", PlaneErrorClass.Permanent)]
    [InlineData("PERMANENT", "resource_not_found", PlaneErrorClass.Permanent)]
    [InlineData("PERMANENT", "invalid_request", PlaneErrorClass.Permanent)]
    [InlineData("POLICY_VIOLATION", "scope_violation", PlaneErrorClass.PolicyViolation)]
    [InlineData("POLICY_VIOLATION", "unauthorized", PlaneErrorClass.PolicyViolation)]
    [InlineData("POLICY_VIOLATION", "quota_exceeded", PlaneErrorClass.PolicyViolation)]
    public void TheErrorBody_WinsOverTheStatus_ForEveryCode(string wireClass, string code, PlaneErrorClass expected)
    {
        // 500 alone would be Transient service_unavailable: the body must win whatever the status.
        foreach (var status in new[] { 400, 403, 500 })
        {
            var e = HttpPlaneErrors.Classify((HttpStatusCode)status, Body(wireClass, code, "the plane says no", 30), TimeSpan.FromSeconds(5));
            Assert.Equal((expected, code), (e.Class, e.Code));
            Assert.Contains("the plane says no", e.Detail);
            // Only a transient error is retried, so only it carries a delay; the body's beats the header's.
            Assert.Equal(expected == PlaneErrorClass.Transient ? TimeSpan.FromSeconds(30) : null, e.RetryAfter);
        }

        Assert.Equal(expected, HttpPlaneErrors.ParseClass(wireClass));
        Assert.Equal(wireClass, HttpPlaneErrors.WireName(expected));
        Assert.Contains(code, HttpPlaneErrors.Codes[expected]);
    }

    [Fact]
    public void RetryAfter_FromTheHeader_WhenTheBodyHasNone_Capped_AndNeverOverflowing()
    {
        Assert.Equal(TimeSpan.FromSeconds(7), HttpPlaneErrors.Classify(HttpStatusCode.TooManyRequests, null, TimeSpan.FromSeconds(7)).RetryAfter);
        Assert.Null(HttpPlaneErrors.Classify(HttpStatusCode.TooManyRequests, null, null).RetryAfter);
        Assert.Equal(HttpPlaneErrors.MaxRetryAfter, HttpPlaneErrors.Classify(HttpStatusCode.TooManyRequests, null, TimeSpan.FromDays(3)).RetryAfter);
        Assert.Equal(HttpPlaneErrors.MaxRetryAfter, HttpPlaneErrors.Classify(HttpStatusCode.ServiceUnavailable, Body("TRANSIENT", "rate_limit", "x", 1e30), null).RetryAfter);
        Assert.Equal(TimeSpan.Zero, HttpPlaneErrors.Classify(HttpStatusCode.ServiceUnavailable, Body("TRANSIENT", "rate_limit", "x", -5), null).RetryAfter);
        Assert.Null(HttpPlaneErrors.Classify(HttpStatusCode.Unauthorized, null, TimeSpan.FromSeconds(7)).RetryAfter);

        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromSeconds(12), HttpPlaneErrors.RetryAfterOf(new RetryConditionHeaderValue(TimeSpan.FromSeconds(12)), now));
        Assert.Equal(TimeSpan.FromMinutes(2), HttpPlaneErrors.RetryAfterOf(new RetryConditionHeaderValue(now.AddMinutes(2)), now));
        Assert.Equal(TimeSpan.Zero, HttpPlaneErrors.RetryAfterOf(new RetryConditionHeaderValue(now.AddMinutes(-2)), now));
        Assert.Null(HttpPlaneErrors.RetryAfterOf(null, now));
    }

    [Fact]
    public void AnUnknownCode_KeepsTheDeclaredClass_WithItsCatchAllCode_AndAnUnknownClass_FallsBackToTheStatus()
    {
        var transient = HttpPlaneErrors.Classify(HttpStatusCode.BadRequest, Body("TRANSIENT", "device_sync_busy", "busy", null), null);
        Assert.Equal((PlaneErrorClass.Transient, "service_unavailable"), (transient.Class, transient.Code));
        Assert.Contains("device_sync_busy", transient.Detail);
        var policy = HttpPlaneErrors.Classify(HttpStatusCode.BadRequest, Body("policy_violation", "outside_boundary", "no", null), null);
        Assert.Equal((PlaneErrorClass.PolicyViolation, "unauthorized"), (policy.Class, policy.Code));
        var permanent = HttpPlaneErrors.Classify(HttpStatusCode.ServiceUnavailable, Body("PERMANENT", "bad_package", "no", null), null);
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_request"), (permanent.Class, permanent.Code));

        var unknownClass = HttpPlaneErrors.Classify(HttpStatusCode.Forbidden, Body("FATAL", "quota_exceeded", "no", null), null);
        Assert.Equal((PlaneErrorClass.PolicyViolation, "unauthorized"), (unknownClass.Class, unknownClass.Code));
    }

    [Fact]
    public void AHugeAnswer_IsEchoedAsAnExcerpt()
    {
        var page = "<html>" + new string('x', 100_000) + "</html>";
        var bare = HttpPlaneErrors.Classify(HttpStatusCode.BadGateway, page, null);
        Assert.True(bare.Message.Length < 600, $"message of {bare.Message.Length} chars");
        var body = HttpPlaneErrors.Classify(HttpStatusCode.BadRequest, Body("PERMANENT", "invalid_request", new string('y', 100_000), null), null);
        Assert.True(body.Message.Length < 600, $"message of {body.Message.Length} chars");
    }

    [Fact]
    public void TransportFailures_AreTransient()
    {
        var timeout = HttpPlaneErrors.ClassifyTransport(new TaskCanceledException(), TimeSpan.FromSeconds(10));
        Assert.Equal((PlaneErrorClass.Transient, "timeout"), (timeout.Class, timeout.Code));
        Assert.Contains("10 s", timeout.Detail);
        var refused = HttpPlaneErrors.ClassifyTransport(new HttpRequestException(HttpRequestError.ConnectionError, "refused", new SocketException((int)SocketError.ConnectionRefused)), TimeSpan.FromSeconds(10));
        Assert.Equal((PlaneErrorClass.Transient, "service_unavailable"), (refused.Class, refused.Code));
        var dns = HttpPlaneErrors.ClassifyTransport(new HttpRequestException(HttpRequestError.NameResolutionError, "dns"), TimeSpan.FromSeconds(10));
        Assert.Equal((PlaneErrorClass.Transient, "service_unavailable"), (dns.Class, dns.Code));
        var reset = HttpPlaneErrors.ClassifyTransport(new IOException("reset"), TimeSpan.FromSeconds(10));
        Assert.Equal((PlaneErrorClass.Transient, "service_unavailable"), (reset.Class, reset.Code));
    }

    [Fact]
    public void FromSecret_ReadsKeyToken_AndRefusesAMissingOrBadOne_NamingTheSecretAndKey_NeverTheValue()
    {
        var url = new Uri("https://adapter.example.com/v1");
        using (var plane = HttpExecutionPlane.FromSecret(url, Secret(("token", "s3cr3t-token\n")))) Assert.NotNull(plane);
        using (var plane = HttpExecutionPlane.FromSecret(url, new V1Secret { Metadata = new V1ObjectMeta { Name = "jamf", NamespaceProperty = "acme-dev" }, StringData = new Dictionary<string, string> { ["token"] = "abc" } }))
            Assert.NotNull(plane);

        var missing = Assert.Throws<ArgumentException>(() => HttpExecutionPlane.FromSecret(url, Secret(("password", "s3cr3t-token"))));
        Assert.Contains("acme-dev/jamf", missing.Message);
        Assert.Contains("'token'", missing.Message);
        var empty = Assert.Throws<ArgumentException>(() => HttpExecutionPlane.FromSecret(url, Secret(("token", "  \n"))));
        Assert.Contains("acme-dev/jamf", empty.Message);
        var spaced = Assert.Throws<ArgumentException>(() => HttpExecutionPlane.FromSecret(url, Secret(("token", "s3cr3t token-value"))));
        Assert.DoesNotContain("s3cr3t", spaced.ToString());
        var injected = Assert.Throws<ArgumentException>(() => HttpExecutionPlane.FromSecret(url, Secret(("token", "abc\r\nX-Evil: 1"))));
        Assert.DoesNotContain("X-Evil", injected.ToString());
    }

    [Fact]
    public void TheToken_NeverTravelsInClear_OrWithCredentialsInTheUrl()
    {
        var http = Assert.Throws<ArgumentException>(() => new HttpExecutionPlane(new Uri("http://adapter.example.com/v1"), "tok"));
        Assert.Contains("https", http.Message);
        Assert.Throws<ArgumentException>(() => new HttpExecutionPlane(new Uri("https://user:pw@adapter.example.com/v1"), "tok"));
        Assert.Throws<ArgumentException>(() => new HttpExecutionPlane(new Uri("ftp://adapter.example.com/"), "tok"));
        using var loopback = new HttpExecutionPlane(new Uri("http://127.0.0.1:8080/"), "tok");
        using var tls = new HttpExecutionPlane(new Uri("https://adapter.example.com/v1"), "tok");
    }

    static V1Secret Secret(params (string Key, string Value)[] data) => new()
    {
        Metadata = new V1ObjectMeta { Name = "jamf", NamespaceProperty = "acme-dev" },
        Data = data.ToDictionary(d => d.Key, d => Encoding.UTF8.GetBytes(d.Value)),
    };

    internal static string Body(string errorClass, string code, string message, double? retryAfterSeconds)
    {
        var error = new System.Text.Json.Nodes.JsonObject { ["class"] = errorClass, ["code"] = code, ["message"] = message };
        if (retryAfterSeconds is { } s) error["retryAfterSeconds"] = s;
        return new System.Text.Json.Nodes.JsonObject { ["error"] = error }.ToJsonString();
    }
}
