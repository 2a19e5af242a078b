using System.Text.RegularExpressions;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using Xunit;
using YamlDotNet.Serialization;

namespace ControlPlane.Tests;

/// <summary>
/// The http execution plane against the connector contract's test server (a real HTTP server on
/// loopback; the only fake allowed, as it stands for a third-party SaaS plane). No cluster needed.
/// </summary>
public sealed class HttpExecutionPlaneTests : IAsyncLifetime
{
    const string Token = "tok-7f3a9c2e5b1d4a68";
    ConnectorContractServer server = null!;
    HttpExecutionPlane plane = null!;
    static readonly CancellationToken None = CancellationToken.None;

    public async Task InitializeAsync()
    {
        server = await ConnectorContractServer.StartAsync(Token);
        plane = new HttpExecutionPlane(server.BaseUrl, Token, TimeSpan.FromSeconds(5));
    }

    public async Task DisposeAsync()
    {
        plane.Dispose();
        await server.DisposeAsync();
    }

    internal static PlaneDeployment Deployment(string correlationId = "9b2f0c1e-6f7a-4a51-8c0e-2d7d3f0a1b11", string ring = "ring-1-canary", string version = "2.1.0") =>
        new(correlationId, "acme", "acme-dev", "payroll-2-1-0", "payroll", version, "registry.example/payroll:" + version,
            new string('a', 64), ring, ["acme-dev", "acme-qa"]);

    [Fact]
    public async Task Publish_Query_Remediate_Verify_RoundTrip_WithTheContractsHeaders()
    {
        var d = Deployment();
        Assert.False(await plane.VerifyIdempotencyAsync(d, None));

        var published = await plane.PublishAsync(d, None);
        Assert.Equal(("pending", true, 0), (published.State, published.Assigned, published.Incidents));
        Assert.Equal(["acme-dev", "acme-qa"], published.Workspaces);
        Assert.True(await plane.VerifyIdempotencyAsync(d, None));
        Assert.False(await plane.VerifyIdempotencyAsync(d with { Ring = "ring-2-pilot" }, None));

        Assert.Equal("in_progress", (await plane.QueryStatusAsync(d, None)).State);
        var done = await plane.QueryStatusAsync(d, None);
        Assert.Equal(("succeeded", "2.1.0", 1.0), (done.State, done.ActualVersion, done.SuccessRate));

        var rolledBack = await plane.RemediateAsync(d, PlaneRemediation.Rollback, "2.0.5", None);
        Assert.Equal(("rolled_back", "2.0.5"), (rolledBack.State, rolledBack.ActualVersion));
        Assert.Equal(["rollback:2.0.5"], server.Find(d.CorrelationId, d.Ring)!.Remediations);

        var calls = server.Calls;
        Assert.All(calls, c => Assert.True(c.Authorized));
        Assert.All(calls, c => Assert.Equal(d.CorrelationId, c.CorrelationId));
        var publish = Assert.Single(calls, c => c.Method == "POST" && c.Path == "/deployments");
        Assert.Equal($"{d.CorrelationId}:ring-1-canary", publish.IdempotencyKey);
        var remediate = Assert.Single(calls, c => c.Path.EndsWith("/remediate", StringComparison.Ordinal));
        Assert.Equal($"/deployments/{d.CorrelationId}/ring-1-canary/remediate", remediate.Path);
        Assert.Equal($"{d.CorrelationId}:ring-1-canary:rollback:2.0.5", remediate.IdempotencyKey);
        Assert.Contains(calls, c => c.Method == "GET" && c.Path == $"/idempotency/{d.CorrelationId}:ring-1-canary");
    }

    [Fact]
    public async Task AReplayedPublish_SameKey_MakesOneDeployment_EvenFromARestartedClient_AndADifferentBodyIsRefused()
    {
        var d = Deployment();
        var first = await plane.PublishAsync(d, None);
        var again = await plane.PublishAsync(d, None);
        using (var restarted = new HttpExecutionPlane(server.BaseUrl, Token))
        {
            var afterRestart = await restarted.PublishAsync(d, None);
            AssertSame(first, afterRestart);
        }

        AssertSame(first, again);
        Assert.Equal(1, server.DeploymentsCreated);
        Assert.Equal(3, server.Calls.Count(c => c.Method == "POST" && c.IdempotencyKey == $"{d.CorrelationId}:{d.Ring}"));

        var conflict = await Assert.ThrowsAsync<PlaneError>(() => plane.PublishAsync(d with { Version = "2.2.0" }, None));
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_request"), (conflict.Class, conflict.Code));
        Assert.Contains("409", conflict.Detail);
        Assert.Equal("2.1.0", server.Find(d.CorrelationId, d.Ring)!.Version);

        await plane.PublishAsync(d with { Ring = "ring-2-pilot" }, None);
        Assert.Equal(2, server.DeploymentsCreated);
    }

    [Theory]
    [InlineData("TRANSIENT", "rate_limit", PlaneErrorClass.Transient, 17)]
    [InlineData("TRANSIENT", "timeout", PlaneErrorClass.Transient, 3)]
    [InlineData("TRANSIENT", "service_unavailable", PlaneErrorClass.Transient, 60)]
    [InlineData("PERMANENT", "invalid_credentials", PlaneErrorClass.Permanent, null)]
    [InlineData("PERMANENT", "resource_not_found", PlaneErrorClass.Permanent, null)]
    [InlineData("PERMANENT", "invalid_request", PlaneErrorClass.Permanent, null)]
    [InlineData("POLICY_VIOLATION", "scope_violation", PlaneErrorClass.PolicyViolation, null)]
    [InlineData("POLICY_VIOLATION", "unauthorized", PlaneErrorClass.PolicyViolation, null)]
    [InlineData("POLICY_VIOLATION", "quota_exceeded", PlaneErrorClass.PolicyViolation, null)]
    public async Task EachInjectedError_SurfacesAsAPlaneError_WithItsClassCodeAndRetryAfter_AndDeploysNothing(string wireClass, string code, PlaneErrorClass expected, int? retryAfter)
    {
        var d = Deployment();
        server.InjectError(wireClass, code, retryAfter, message: $"{code} from the plane");
        var e = await Assert.ThrowsAsync<PlaneError>(() => plane.PublishAsync(d, None));
        Assert.Equal((expected, code), (e.Class, e.Code));
        Assert.Equal(retryAfter is { } s ? TimeSpan.FromSeconds(s) : null, e.RetryAfter);
        Assert.Contains($"{code} from the plane", e.Detail);
        Assert.Equal(0, server.DeploymentsCreated);

        // The reconciler's retry of the same publish then succeeds once: the injection is consumed.
        Assert.Equal("pending", (await plane.PublishAsync(d, None)).State);
        Assert.Equal(1, server.DeploymentsCreated);
    }

    [Fact]
    public async Task BareStatuses_AreClassifiedByStatus_HonouringRetryAfter()
    {
        var d = Deployment();
        server.InjectStatus(429, retryAfterHeader: "7");
        var limited = await Assert.ThrowsAsync<PlaneError>(() => plane.PublishAsync(d, None));
        Assert.Equal((PlaneErrorClass.Transient, "rate_limit", TimeSpan.FromSeconds(7)), (limited.Class, limited.Code, limited.RetryAfter));

        server.InjectStatus(503, body: "<html><body>" + new string('z', 50_000) + "</body></html>");
        var down = await Assert.ThrowsAsync<PlaneError>(() => plane.PublishAsync(d, None));
        Assert.Equal((PlaneErrorClass.Transient, "service_unavailable"), (down.Class, down.Code));
        Assert.True(down.Message.Length < 600, $"message of {down.Message.Length} chars");

        server.InjectStatus(403);
        var forbidden = await Assert.ThrowsAsync<PlaneError>(() => plane.QueryStatusAsync(d, None));
        Assert.Equal((PlaneErrorClass.PolicyViolation, "unauthorized"), (forbidden.Class, forbidden.Code));

        var missing = await Assert.ThrowsAsync<PlaneError>(() => plane.QueryStatusAsync(d, None));
        Assert.Equal((PlaneErrorClass.Permanent, "resource_not_found"), (missing.Class, missing.Code));
    }

    [Fact]
    public async Task AnAnswerOutsideTheContract_IsPermanent_AndAHugeOneIsNotBuffered()
    {
        var d = Deployment();
        server.InjectStatus(200, body: "{\"state\":\"exploded\"}");
        var unknown = await Assert.ThrowsAsync<PlaneError>(() => plane.QueryStatusAsync(d, None));
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_request"), (unknown.Class, unknown.Code));
        Assert.Contains("exploded", unknown.Detail);

        server.InjectStatus(200, body: "{\"state\":\"pending\",\"message\":\"" + new string('m', 3 << 20) + "\"}");
        var huge = await Assert.ThrowsAsync<PlaneError>(() => plane.QueryStatusAsync(d, None));
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_request"), (huge.Class, huge.Code));
        Assert.Contains("larger than", huge.Detail);

        server.InjectStatus(200, body: "<html>maintenance</html>");
        var html = await Assert.ThrowsAsync<PlaneError>(() => plane.VerifyIdempotencyAsync(d, None));
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_request"), (html.Class, html.Code));
    }

    [Fact]
    public async Task ASlowPlane_IsATransientTimeout_ButTheCallersCancellationStaysACancellation()
    {
        var d = Deployment();
        using var impatient = new HttpExecutionPlane(server.BaseUrl, Token, TimeSpan.FromMilliseconds(300));
        server.InjectDelay(TimeSpan.FromMinutes(2));
        var e = await Assert.ThrowsAsync<PlaneError>(() => impatient.PublishAsync(d, None));
        Assert.Equal((PlaneErrorClass.Transient, "timeout"), (e.Class, e.Code));

        server.InjectDelay(TimeSpan.FromMinutes(2));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => plane.PublishAsync(d, cts.Token));
    }

    [Fact]
    public async Task NobodyListening_IsTransientServiceUnavailable()
    {
        using var nowhere = new HttpExecutionPlane(new Uri($"http://127.0.0.1:{Net.FreePort()}/"), Token);
        var e = await Assert.ThrowsAsync<PlaneError>(() => nowhere.QueryStatusAsync(Deployment(), None));
        Assert.Equal((PlaneErrorClass.Transient, "service_unavailable"), (e.Class, e.Code));
    }

    [Fact]
    public async Task ABadToken_IsPermanentInvalidCredentials_AndNoTokenEverAppearsInAnException()
    {
        const string wrong = "wrong-token-4d1c9e77";
        using var intruder = new HttpExecutionPlane(server.BaseUrl, wrong);
        var e = await Assert.ThrowsAsync<PlaneError>(() => intruder.PublishAsync(Deployment(), None));
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_credentials"), (e.Class, e.Code));
        Assert.DoesNotContain(wrong, e.ToString());
        Assert.Equal(0, server.DeploymentsCreated);
        Assert.False(server.Calls.Single().Authorized);

        // A plane that echoes our credentials back in its error must not put them into an exception.
        server.InjectError("PERMANENT", "invalid_request", message: $"header was 'Authorization: Bearer {Token}'");
        var echoed = await Assert.ThrowsAsync<PlaneError>(() => plane.PublishAsync(Deployment(), None));
        Assert.DoesNotContain(Token, echoed.ToString());
        Assert.Contains("[redacted]", echoed.Detail);
    }

    [Fact]
    public async Task ARingOrCorrelationIdOfDotDotOrANewline_NeverReachesAnotherPathOrHeaderOfThePlane()
    {
        // "." and ".." survive percent-encoding and the URI would resolve them: ring ".." of a
        // remediation would POST to /deployments/remediate, correlation id ".." to /{ring}.
        var e = await Assert.ThrowsAsync<ArgumentException>(() => plane.QueryStatusAsync(Deployment(ring: ".."), None));
        Assert.Contains("ring", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => plane.RemediateAsync(Deployment(ring: ".."), PlaneRemediation.Uninstall, null, None));
        await Assert.ThrowsAsync<ArgumentException>(() => plane.QueryStatusAsync(Deployment(correlationId: ".."), None));
        await Assert.ThrowsAsync<ArgumentException>(() => plane.RemediateAsync(Deployment(), "reinstall-everything", null, None));
        var smuggled = await Assert.ThrowsAsync<ArgumentException>(() => plane.PublishAsync(Deployment(ring: "ring-1\r\nX-Admin: true"), None));
        Assert.Contains("ring", smuggled.Message);
        Assert.Empty(server.Calls);
    }

    [Fact]
    public async Task ARedirectToAnotherHost_IsNotFollowed_SoNothingIsPublishedThere()
    {
        // A compromised or misconfigured adapter answering 307 must not make the operator publish
        // (with or without its token) to a plane nobody configured.
        await using var elsewhere = await ConnectorContractServer.StartAsync("other-token");
        server.InjectStatus(307, location: new Uri(elsewhere.BaseUrl, "deployments").AbsoluteUri);
        var e = await Assert.ThrowsAsync<PlaneError>(() => plane.PublishAsync(Deployment(), None));
        Assert.Equal((PlaneErrorClass.Permanent, "invalid_request"), (e.Class, e.Code));
        Assert.Empty(elsewhere.Calls);
    }

    [Theory]
    [InlineData("version_mismatch")]
    [InlineData("assignment_missing")]
    [InlineData("scope_mismatch")]
    public async Task Drift_OnThePlane_IsVisibleInTheStatus_AndARedeployRestoresIt(string kind)
    {
        var d = Deployment();
        await plane.PublishAsync(d, None);
        server.Advance(d.CorrelationId, d.Ring, "succeeded");
        server.SetActual(d.CorrelationId, d.Ring, actualVersion: d.Version);
        server.Drift(d.CorrelationId, d.Ring, kind);

        var drifted = await plane.QueryStatusAsync(d, None);
        var inSync = drifted.ActualVersion == d.Version && drifted.Assigned && drifted.Workspaces.SequenceEqual(d.Workspaces);
        Assert.False(inSync, $"{kind} not visible");

        await plane.RemediateAsync(d, PlaneRemediation.Redeploy, null, None);
        server.AutoAdvance = false;
        server.Advance(d.CorrelationId, d.Ring, "succeeded");
        server.SetActual(d.CorrelationId, d.Ring, actualVersion: d.Version);
        var restored = await plane.QueryStatusAsync(d, None);
        Assert.True(restored.ActualVersion == d.Version && restored.Assigned && restored.Workspaces.SequenceEqual(d.Workspaces), $"{kind} not remediated");
        Assert.Equal(1, server.DeploymentsCreated);
    }

    [Fact]
    public async Task TheOpenApiDocument_Parses_AndDescribesEveryPathCodeStateAndActionTheClientUses()
    {
        var path = Path.Combine(Program.FindRepoRoot(), "docs", "execution-plane-connector.openapi.yaml");
        var doc = new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(File.ReadAllText(path));
        Assert.StartsWith("3.0", (string)doc["openapi"]);
        var paths = (Dictionary<object, object>)doc["paths"];
        var schemas = (Dictionary<object, object>)((Dictionary<object, object>)doc["components"])["schemas"];

        // Every request the client really makes, as the contract server recorded it, matches a documented operation.
        var d = Deployment();
        await plane.VerifyIdempotencyAsync(d, None);
        await plane.PublishAsync(d, None);
        await plane.QueryStatusAsync(d, None);
        await plane.CapabilitiesAsync(None);
        foreach (var action in new[] { PlaneRemediation.PinRing, PlaneRemediation.Redeploy, PlaneRemediation.Rollback, PlaneRemediation.Uninstall })
            await plane.RemediateAsync(d, action, action == PlaneRemediation.Rollback ? "2.0.5" : null, None);
        foreach (var call in server.Calls)
        {
            var operation = paths.Where(p => Regex.IsMatch(call.Path, "^" + Regex.Replace((string)p.Key, @"\{[^}]+\}", "[^/]+") + "$"))
                .Select(p => (Dictionary<object, object>)p.Value)
                .SingleOrDefault(p => p.ContainsKey(call.Method.ToLowerInvariant()));
            Assert.True(operation is not null, $"{call.Method} {call.Path} is not in the OpenAPI document");
        }

        var error = (Dictionary<object, object>)Property(schemas["Error"], "error")["properties"];
        Assert.Equal(HttpPlaneErrors.Codes.Values.SelectMany(c => c).Order(), Enum(error["code"]).Order());
        Assert.Equal(Enum<PlaneErrorClass>().Select(HttpPlaneErrors.WireName).Order(), Enum(error["class"]).Order());
        Assert.True(error.ContainsKey("retryAfterSeconds"));
        Assert.Equal(["failed", "in_progress", "pending", "rolled_back", "succeeded"], Enum(Property(schemas["Status"], "state")).Order());
        Assert.Equal([PlaneRemediation.PinRing, PlaneRemediation.Redeploy, PlaneRemediation.Rollback, PlaneRemediation.Uninstall], Enum(Property(schemas["Remediation"], "action")).Order());
        var publishFields = ((List<object>)((Dictionary<object, object>)schemas["Deployment"])["required"]).Cast<string>();
        Assert.Equal(typeof(PlaneDeployment).GetProperties().Select(p => char.ToLowerInvariant(p.Name[0]) + p.Name[1..]).Order(), publishFields.Order());
    }

    /// <summary>Records compare lists by reference: the workspaces are compared by content.</summary>
    static void AssertSame(PlaneStatus expected, PlaneStatus actual)
    {
        Assert.Equal(expected with { Workspaces = [] }, actual with { Workspaces = [] });
        Assert.Equal(expected.Workspaces, actual.Workspaces);
    }

    static Dictionary<object, object> Property(object schema, string name) =>
        (Dictionary<object, object>)((Dictionary<object, object>)((Dictionary<object, object>)schema)["properties"])[name];

    static IEnumerable<string> Enum(object schema) => ((List<object>)((Dictionary<object, object>)schema)["enum"]).Cast<string>();

    static IEnumerable<T> Enum<T>() where T : struct, System.Enum => System.Enum.GetValues<T>();
}
