using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// The connector contract's capabilities call against its test server (a real HTTP server on loopback): what a
/// plane advertises, an answer outside the contract refused, no answer classified, and the strategy carried by a rollback.
/// </summary>
public sealed class HttpPlaneCapabilitiesTests : IAsyncLifetime
{
    const string Token = "tok-cap-5d1e7a9b3c";
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

    [Fact]
    public async Task Capabilities_ListTheAdvertisedStrategies_WithoutACorrelationId()
    {
        Assert.Equal(PlaneCapabilities.BuiltInStrategies, (await plane.CapabilitiesAsync(None)).RollbackStrategies);
        server.RollbackStrategies = ["previous-version", "intune-supersedence", "intune-supersedence"];
        Assert.Equal(["previous-version", "intune-supersedence"], (await plane.CapabilitiesAsync(None)).RollbackStrategies);
        var call = server.Calls.Last();
        Assert.Equal(("GET", "/capabilities", true), (call.Method, call.Path, call.Authorized));
        Assert.Null(call.CorrelationId);
    }

    [Fact]
    public async Task AnAnswerOutsideTheContract_IsPermanent_AndAMissingCallIsResourceNotFound()
    {
        server.RollbackStrategies = ["Bad_Strategy"];
        var bad = await Assert.ThrowsAsync<PlaneError>(() => plane.CapabilitiesAsync(None));
        Assert.Equal((PlaneErrorClass.Permanent, HttpPlaneErrors.InvalidRequest), (bad.Class, bad.Code));
        Assert.Contains("not a DNS label", bad.Detail);

        server.RollbackStrategies = null;
        var missing = await Assert.ThrowsAsync<PlaneError>(() => plane.CapabilitiesAsync(None));
        Assert.Equal((PlaneErrorClass.Permanent, HttpPlaneErrors.ResourceNotFound, false), (missing.Class, missing.Code, missing.NoAnswer));
    }

    [Fact]
    public async Task APlaneThatDoesNotAnswer_IsTransientAndMarkedUnavailable()
    {
        var closed = new Uri($"http://127.0.0.1:{Net.FreePort()}/");
        using var nowhere = new HttpExecutionPlane(closed, Token, TimeSpan.FromSeconds(5));
        var e = await Assert.ThrowsAsync<PlaneError>(() => nowhere.CapabilitiesAsync(None));
        Assert.Equal((PlaneErrorClass.Transient, true), (e.Class, e.NoAnswer));
    }

    [Fact]
    public async Task ARollback_CarriesTheStrategy_AndAPlaneSpecificOneMayComeWithoutAVersion()
    {
        server.RollbackStrategies = ["previous-version", "intune-supersedence"];
        var d = HttpExecutionPlaneTests.Deployment();
        await plane.PublishAsync(d, None);
        var rolledBack = await plane.RemediateAsync(d, PlaneRemediation.Rollback, null, "intune-supersedence", None);
        Assert.Equal("rolled_back", rolledBack.State);
        Assert.Equal(["intune-supersedence"], server.StrategiesOf(d.CorrelationId, d.Ring));
        var body = JsonNode.Parse(server.Calls.Last(c => c.Path.EndsWith("/remediate", StringComparison.Ordinal)).Body)!;
        Assert.Equal("intune-supersedence", body["strategy"]!.GetValue<string>());
        await Assert.ThrowsAsync<ArgumentException>(() => plane.RemediateAsync(d, PlaneRemediation.Rollback, null, "Not A Label", None));
    }
}
