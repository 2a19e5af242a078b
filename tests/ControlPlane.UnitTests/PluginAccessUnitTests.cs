extern alias cli;
using ControlPlane.Api.V1Alpha1;
using Xunit;
using k8s.Models;
using Cli = cli::ControlPlane.Cli;

namespace ControlPlane.Tests;

/// <summary>The plugin's `access` commands without a server: arguments, the rows `access list` shows, who must approve.</summary>
public sealed class PluginAccessUnitTests
{
    static System.CommandLine.ParseResult Parse(params string[] args) => Cli.Program.BuildRoot(new Cli.Globals()).Parse(args);

    const string Why = "Investigate the failing payment batch job in its logs";

    [Fact]
    public void Request_TakesWorkspaceRoleDurationJustificationAndTicket()
    {
        var r = Parse("access", "request", "acme-dev", "--role", "Operator", "--duration", "2h", "--justification", Why, "--ticket", "OPS-1", "--wait");
        Assert.Empty(r.Errors);
        Assert.Equal("request", r.CommandResult.Command.Name);
    }

    [Theory]
    [InlineData("--role", "Boss", "Boss")]
    [InlineData("--duration", "two hours", "--duration: \"two hours\" is not a duration")]
    public void Request_BadValues_AreRefusedBeforeAnythingIsSent_NamingTheOption(string option, string value, string expected)
    {
        var args = new Dictionary<string, string> { ["--role"] = "Operator", ["--duration"] = "2h", ["--justification"] = Why };
        args[option] = value;
        var r = Parse(["access", "request", "acme-dev", .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Contains(r.Errors, e => e.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--role")]
    [InlineData("--duration")]
    [InlineData("--justification")]
    public void Request_WithoutARequiredOption_IsAnError_NamingIt(string missing)
    {
        var args = new Dictionary<string, string> { ["--role"] = "Operator", ["--duration"] = "2h", ["--justification"] = Why };
        args.Remove(missing);
        var r = Parse(["access", "request", "acme-dev", .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Contains(r.Errors, e => e.Message.Contains(missing, StringComparison.Ordinal));
        Assert.NotEmpty(Parse("access", "request", "--role", "Operator", "--duration", "2h", "--justification", Why).Errors);
    }

    [Fact]
    public void TheRoles_AreTheApisList()
    {
        Assert.Equal(["WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer"], Cli.Commands.AccessRoles);
        Assert.Equal("workspace-admin", Cli.Commands.Kebab("WorkspaceAdmin"));
    }

    [Theory]
    [InlineData("access", "approve", "debug-1")]
    [InlineData("access", "reject", "debug-1", "-m", "not during the freeze")]
    [InlineData("access", "revoke", "debug-1")]
    [InlineData("access", "list", "-A", "-o", "json")]
    [InlineData("approve", "accessrequest/debug-1")]
    [InlineData("approve", "areq/debug-1")]
    public void ApproveRejectRevokeList_Parse(params string[] args) => Assert.Empty(Parse(args).Errors);

    [Fact]
    public void Completion_OffersTheAccessVerbs()
    {
        var root = Cli.Program.BuildRoot(new Cli.Globals());
        Assert.Contains("access", Cli.Completion.Suggest(root, [""]));
        Assert.Equal(["approve", "list", "reject", "request", "revoke"], Cli.Completion.Suggest(root, ["access", ""]).Where(w => char.IsLetter(w[0])).Order());
    }

    static AccessRequest Request(AccessRequestPhase? phase, DateTime? expires = null, string? requester = "wade@example.com") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "debug-1", NamespaceProperty = "acme-dev", Generation = 1,
            Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "wade@example.com" },
        },
        Spec = new AccessRequestSpec { Role = "Operator", Duration = "2h", Justification = Why, Ticket = "OPS-1" },
        Status = phase is null ? null : new AccessRequestStatus
        {
            Phase = phase, Requester = requester, ExpiresAt = expires, ApprovedBy = phase == AccessRequestPhase.Active ? "olga@example.com" : null,
            Conditions =
            [
                new V1Condition { Type = AccessRequestConditions.Approved, Status = "False", Reason = AccessRequestReasons.AwaitingApproval, Message = "0 of 2 approval(s) for generation 1" },
                new V1Condition { Type = AccessRequestConditions.Ready, Status = "False", Reason = AccessRequestReasons.AwaitingApproval, Message = "awaiting approval" },
            ],
        },
    };

    [Fact]
    public void Row_ShowsTimeRemaining_OnlyWhileActive_FromTheRecordedExpiry()
    {
        var now = new DateTime(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc);
        var active = Cli.Commands.Row(Request(AccessRequestPhase.Active, now.AddMinutes(90)), now);
        Assert.Equal(("Active", "wade@example.com", "Operator", "1h30m", "olga@example.com"), (active.Phase, active.Requester, active.Role, active.Remaining, active.ApprovedBy));
        Assert.Null(Cli.Commands.Row(Request(AccessRequestPhase.Expired, now.AddMinutes(-5)), now).Remaining);

        // Not yet seen by the operator: Pending, the requester from the webhook's stamp.
        var fresh = Cli.Commands.Row(Request(null), now);
        Assert.Equal(("Pending", "wade@example.com", null), (fresh.Phase, fresh.Requester, fresh.Remaining));

        var table = Cli.Commands.RenderAccessList([active], "acme-dev");
        Assert.StartsWith("NAMESPACE  NAME     PHASE   REQUESTER         ROLE      DURATION  EXPIRES               REMAINING", table, StringComparison.Ordinal);
        Assert.Contains("2026-12-07T11:30:00Z  1h30m", table, StringComparison.Ordinal);
        Assert.Equal("no access requests in namespace acme-dev\n", Cli.Commands.RenderAccessList([], "acme-dev"));
    }

    [Fact]
    public void Outlook_SaysHowManyApprovalsAreMissing_FromWhom_AndHow()
    {
        var o = Cli.Commands.Outlook(Request(AccessRequestPhase.Pending), DateTime.UtcNow);
        Assert.Equal((2, 2), (o.Missing, o.Required));
        Assert.Contains("never the requester", o.Approvers, StringComparison.Ordinal);
        Assert.Equal("kubectl controlplane access approve debug-1 -n acme-dev", o.ApproveWith);
        var text = Cli.Commands.DescribeRequest(o);
        Assert.Contains("still needs:  2 approval(s) (of 2) from distinct people holding Approver or WorkspaceAdmin in acme-dev", text, StringComparison.Ordinal);
        Assert.Contains("approve with: kubectl controlplane access approve debug-1 -n acme-dev (by someone else)", text, StringComparison.Ordinal);
    }
}
