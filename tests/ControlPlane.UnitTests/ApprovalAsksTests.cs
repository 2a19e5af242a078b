using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// approval.requested names who may approve (<see cref="ApprovalAsks"/>): the source rows carry details.approvers (an
/// AccessRequest's and a Restore's count and roles, a DeploymentIntent's assigned CAB approvers), and the event built
/// from the row keeps it.
/// </summary>
public sealed class ApprovalAsksTests
{
    static readonly DateTime Now = new(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void Who_CarriesTheCount_WhatIsStillNeeded_TheRoles_AndTheAssigned()
    {
        var who = ApprovalAsks.Who(2, ["bob@acme.io"], ["carol@acme.io", "dave@acme.io"]);
        Assert.Equal(2, (int)who["required"]!);
        Assert.Equal(1, (int)who["stillNeeded"]!);
        Assert.Equal(ApprovalPolicy.ApproverRoles, who["roles"]!.AsArray().Select(r => (string)r!));
        Assert.Equal(["carol@acme.io", "dave@acme.io"], who["assigned"]!.AsArray().Select(r => (string)r!));

        var unknownCount = ApprovalAsks.Who(null, [], null);
        Assert.Null(unknownCount["required"]);
        Assert.Null(unknownCount["assigned"]);
        Assert.NotEmpty(unknownCount["roles"]!.AsArray());
    }

    [Fact]
    public void With_CopiesTheDetails_AndLeavesTheOriginalAlone()
    {
        var details = new JsonObject { ["message"] = "m" };
        var d = ApprovalAsks.With(details, 1, [], null);
        Assert.Equal("m", (string?)d["message"]);
        Assert.Equal(1, (int)d["approvers"]!["stillNeeded"]!);
        Assert.Null(details["approvers"]);
    }

    [Fact]
    public void AccessRequested_NamesTheCountAndRoles()
    {
        var request = new AccessRequest
        {
            Metadata = new V1ObjectMeta
            {
                Name = "debug", NamespaceProperty = "acme-prod", Generation = 1, Uid = "u1", CreationTimestamp = Now.AddMinutes(-1),
                Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "alice@acme.io" },
            },
            Spec = new AccessRequestSpec { Role = "Operator", Duration = "2h", Justification = "debug the failing payment export job INC-1234" },
        };
        var d = AccessRequestPlan.Decide(new AccessRequestFacts(request, new Tenant { Metadata = new V1ObjectMeta { Name = "acme" } },
            new ApprovalState(false, false, 2, [], [], "0 of 2 approval(s)"), false, Now));
        var audit = Assert.Single(d.Audits);
        Assert.Equal("access.requested", audit.Action);
        var approvers = audit.Details["approvers"]!;
        Assert.Equal(2, (int)approvers["required"]!);
        Assert.Equal(2, (int)approvers["stillNeeded"]!);
        Assert.Equal(ApprovalPolicy.ApproverRoles, approvers["roles"]!.AsArray().Select(r => (string)r!));
    }

    [Fact]
    public void AnIntentMovingToAwaitingApproval_RecordsItsAssignedApprovers_InTheTransition_AndTheEventKeepsThem()
    {
        var intent = new DeploymentIntent { Metadata = new V1ObjectMeta { Name = "release", NamespaceProperty = "acme-dev", Uid = "i1", Generation = 1 } };
        var pass = new IntentPass(intent, new DeploymentIntentStatus { Phase = IntentPhase.ScopeValidated, AssignedApprovers = ["carol@acme.io", "group:cab"] }, Now)
        {
            Tenant = "acme",
        };
        pass.Move(IntentPhase.AwaitingApproval, IntentReasons.AwaitingApproval, "ring canary waits for CAB approval", null, "canary");
        var entry = Assert.Single(pass.Events);
        Assert.Equal(["carol@acme.io", "group:cab"], entry.Details["approvers"]!["assigned"]!.AsArray().Select(a => (string)a!));

        var row = new SourceRow(NotificationSource.Deployment, 42, Now, "transition", "DeploymentIntent", "acme-dev/release", "acme", "acme-dev", "bob@acme.io",
            IntentReasons.AwaitingApproval, "ScopeValidated", "AwaitingApproval", entry.Details, "p", "h", 1, "th");
        var requested = Assert.Single(NotificationEvents.Of(row), e => e.Type == NotificationEvents.ApprovalRequested);
        Assert.Equal(["carol@acme.io", "group:cab"], requested.Details["approvers"]!["assigned"]!.AsArray().Select(a => (string)a!));

        // Other transitions carry no approvers.
        var other = new IntentPass(intent, new DeploymentIntentStatus { Phase = IntentPhase.AwaitingApproval, AssignedApprovers = ["carol@acme.io"] }, Now);
        other.Move(IntentPhase.InProgress, "Approved", "approved", null, "canary");
        Assert.Null(Assert.Single(other.Events).Details["approvers"]);
    }
}
