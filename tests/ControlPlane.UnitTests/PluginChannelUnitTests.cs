extern alias cli;
using ControlPlane.Api.V1Alpha1;
using Xunit;
using k8s.Models;
using Cli = cli::ControlPlane.Cli;

namespace ControlPlane.Tests;

/// <summary>The plugin's `channel` commands without a server: arguments, the nonce, the rows `channel list` shows.</summary>
public sealed class PluginChannelUnitTests
{
    static System.CommandLine.ParseResult Parse(params string[] args) => Cli.Program.BuildRoot(new Cli.Globals()).Parse(args);

    [Theory]
    [InlineData("channel", "test", "oncall")]
    [InlineData("channel", "test", "oncall", "-n", "acme-dev", "--timeout", "00:00:30")]
    [InlineData("channel", "test", "oncall", "--no-wait")]
    [InlineData("channel", "list")]
    [InlineData("channel", "list", "-A", "-o", "json")]
    public void TestAndList_Parse(params string[] args) => Assert.Empty(Parse(args).Errors);

    [Theory]
    [InlineData("channel", "test")]
    [InlineData("channel", "test", "a", "b")]
    [InlineData("channel", "test", "oncall", "--timeout", "soon")]
    [InlineData("channel", "list", "extra")]
    public void BadArguments_AreRefused(params string[] args) => Assert.NotEmpty(Parse(args).Errors);

    [Fact]
    public void Completion_OffersTheChannelVerbs()
    {
        var root = Cli.Program.BuildRoot(new Cli.Globals());
        Assert.Contains("channel", Cli.Completion.Suggest(root, [""]));
        Assert.Equal(["history", "list", "test"], Cli.Completion.Suggest(root, ["channel", ""]).Where(w => char.IsLetter(w[0])).Order());
    }

    [Fact]
    public void TheNonce_IsFreshEachTime_AndFitsTheAnnotation()
    {
        var now = new DateTime(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc);
        var a = Cli.Commands.TestNonce(now);
        var b = Cli.Commands.TestNonce(now);
        Assert.NotEqual(a, b);
        Assert.StartsWith("20261207t100000z-", a, StringComparison.Ordinal);
        Assert.InRange(a.Length, 1, 63);
    }

    [Fact]
    public void List_ShowsPhaseTypeCountsAndLastError()
    {
        var c = new NotificationChannel
        {
            Metadata = new V1ObjectMeta { Name = "oncall", NamespaceProperty = "acme-dev" },
            Spec = new NotificationChannelSpec { Type = "webhook" },
            Status = new NotificationChannelStatus
            {
                Phase = NotificationChannelPhase.AutoDisabled, Pending = 3, Delivered = 10, Failed = 5, ConsecutiveFailures = 5, LastError = "HTTP 500",
                LastDeliveredAt = new DateTime(2026, 12, 7, 9, 0, 0, DateTimeKind.Utc),
            },
        };
        var row = Cli.Commands.ChannelRowOf(c);
        Assert.Equal(new Cli.ChannelRow("acme-dev", "oncall", "webhook", "AutoDisabled", 3, 10, 5, 5, c.Status.LastDeliveredAt, "HTTP 500"), row);
        var fresh = Cli.Commands.ChannelRowOf(new NotificationChannel { Metadata = new V1ObjectMeta { Name = "new", NamespaceProperty = "acme-dev" }, Spec = new() { Type = "slack" } });
        Assert.Equal(("Pending", 0L, null), (fresh.Phase, fresh.Pending, fresh.LastError));

        var table = Cli.Commands.RenderChannelList([row, fresh], "acme-dev");
        Assert.StartsWith("NAMESPACE", table, StringComparison.Ordinal);
        foreach (var column in new[] { "TYPE", "PHASE", "PENDING", "DELIVERED", "FAILED", "LAST ERROR", "AutoDisabled", "HTTP 500", "2026-12-07T09:00:00Z" })
        {
            Assert.Contains(column, table, StringComparison.Ordinal);
        }

        Assert.Equal("no notification channels in namespace acme-dev\n", Cli.Commands.RenderChannelList([], "acme-dev"));
    }
}
