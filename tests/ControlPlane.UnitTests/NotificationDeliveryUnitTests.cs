using ControlPlane.Operator.AuditApi;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Which waiting channels a host answering again wakes (never another tenant's, each once), and the history endpoint's selector and objects.</summary>
public sealed class NotificationDeliveryUnitTests
{
    const string Host = "https://hooks.example.com:443";
    static readonly string TenantA = HostWaits.ReachOf(false, "acme");
    static readonly string TenantB = HostWaits.ReachOf(false, "globex");
    static readonly string Platform = HostWaits.ReachOf(true, null);

    [Fact]
    public void AHostAnswering_WakesTheChannelsOfTheSameReachWaitingOnIt_NeverAnotherTenantsOrAnotherHosts()
    {
        var waits = new HostWaits();
        waits.Unavailable("a2", Host, TenantA);
        waits.Unavailable("b1", Host, TenantB);
        waits.Unavailable("p1", Host, Platform);
        waits.Unavailable("a3", "https://other.example.com:443", TenantA);

        Assert.Equal(["a2"], waits.Answered("a1", Host, TenantA));
        Assert.Equal(["p1"], waits.Answered("p2", Host, Platform));
        Assert.Empty(waits.Answered("a1", Host, TenantA)); // each woken once
        Assert.Equal(["b1"], waits.Answered("b2", Host, TenantB));
    }

    [Fact]
    public void AWokenChannelFailingAgain_WaitsOutItsOwnBackoff_BeforeItCanBeWokenAgain()
    {
        var waits = new HostWaits();
        waits.Unavailable("b1", Host, TenantA);
        Assert.Equal(["b1"], waits.Answered("a1", Host, TenantA));
        // Its woken retry fails (its own endpoint, say): not waiting on the host any more, so the next success wakes nobody.
        waits.Unavailable("b1", Host, TenantA);
        Assert.Empty(waits.Answered("a1", Host, TenantA));
        // Its own backoff's retry fails again: it waits on the host again.
        waits.Unavailable("b1", Host, TenantA);
        Assert.Equal(["b1"], waits.Answered("a1", Host, TenantA));
        // A channel's own success clears it.
        waits.Unavailable("b1", Host, TenantA);
        Assert.Empty(waits.Answered("b1", Host, TenantA));
        Assert.Empty(waits.Channels);
    }

    [Theory]
    [InlineData("channel=oncall", "oncall")]
    [InlineData("channel==oncall", "oncall")]
    [InlineData(" channel = ops.pager ", "ops.pager")]
    public void TheHistory_IsOfTheChannelTheFieldSelectorNames(string selector, string channel)
    {
        Assert.Equal((channel, null), NotificationDeliveryObjects.ChannelOf(selector));
    }

    [Theory]
    [InlineData(null, "channel=<name> is required")]
    [InlineData("", "channel=<name> is required")]
    [InlineData("name=oncall", "channel=<name> is required")]
    [InlineData("channel=", "channel=<name> is required")]
    [InlineData("channel=a,channel=b", "only channel=<name>")]
    [InlineData("channel=../x", "not a valid object name")]
    [InlineData("channel=Oncall", "not a valid object name")]
    public void AHistoryRequest_WithoutOneValidChannel_IsRefused_NamingTheParameter(string? selector, string message)
    {
        var (channel, error) = NotificationDeliveryObjects.ChannelOf(selector);
        Assert.Null(channel);
        Assert.StartsWith("fieldSelector", error, StringComparison.Ordinal);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void AHistoryRow_IsServedWithoutItsPayload()
    {
        var at = new DateTime(2026, 12, 7, 20, 0, 0, DateTimeKind.Utc);
        var o = NotificationDeliveryObjects.Object("acme-dev", "oncall", new DeliveryRecord(42, "audit/7", "backup.failed", "failed", 3, 503, "HTTP 503", at, null, at));
        Assert.Equal("NotificationDelivery", (string?)o["kind"]);
        Assert.Equal("42", (string?)o["metadata"]!["name"]);
        Assert.Equal("oncall", (string?)o["metadata"]!["labels"]![NotificationDeliveryObjects.ChannelLabel]);
        Assert.Equal(503, (int?)o["lastStatusCode"]);
        Assert.Null(o["deliveredAt"]);
        Assert.False(o.ContainsKey("payload"));
    }
}
