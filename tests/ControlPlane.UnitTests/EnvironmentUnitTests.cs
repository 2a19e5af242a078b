using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// A workspace's environment is a classification the requester must not control: the strictest of
/// what applies decides, a lowered spec is not followed unless a platform administrator lifted the
/// deletion guard, and a prod workspace forced past admission keeps its namespace and database.
/// </summary>
public sealed class EnvironmentUnitTests
{
    static Workspace Ws(string spec, string? recorded, bool guardLifted = false) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "acme-prod",
            Annotations = guardLifted ? new Dictionary<string, string> { [ApiGroup.AllowDeleteAnnotation] = "true" } : null,
        },
        Spec = new WorkspaceSpec { Tenant = "acme", Environment = spec },
        Status = recorded is null ? null : new WorkspaceStatus { Environment = recorded },
    };

    [Theory]
    [InlineData("prod", "dev", true)]
    [InlineData("prod", "test", true)]
    [InlineData("test", "dev", true)]
    [InlineData("dev", "prod", false)]
    [InlineData("test", "prod", false)]
    [InlineData("prod", "prod", false)]
    [InlineData("prod", null, true)]   // unset is the default dev
    [InlineData("surprise", "prod", false)] // unknown counts as prod
    public void Lowering_IsFromStricterToLooser(string from, string? to, bool lowers) =>
        Assert.Equal(lowers, WorkspaceEnvironments.Lowers(from, to));

    [Fact]
    public void TheStrictest_Decides()
    {
        Assert.Equal("prod", WorkspaceEnvironments.Strictest("dev", "prod", "test"));
        Assert.Equal("test", WorkspaceEnvironments.Strictest("dev", null, "test"));
        Assert.Equal("dev", WorkspaceEnvironments.Strictest());
        Assert.Equal("prod", WorkspaceEnvironments.Strictest("dev", "qa"));
    }

    [Fact]
    public void ALoweredSpec_ForcedPastAdmission_StaysProd_ForEveryRule_UntilTheGuardIsLifted()
    {
        // Recorded prod, spec patched to dev (webhook down): the operator records and applies prod.
        Assert.Equal("prod", WorkspaceEnvironments.ToRecord("dev", "prod", guardLifted: false));
        var lowered = Ws("dev", "prod");
        Assert.Equal("prod", WorkspaceEnvironments.Effective(lowered));
        Assert.Equal(2, ApprovalPolicy.RequiredApprovals(WorkspaceEnvironments.Effective(lowered)));
        Assert.Equal(2, RestoreResources.RequiredApprovals(WorkspaceEnvironments.Effective(lowered), inPlace: true));
        Assert.Equal("prod", WorkspaceResources.Namespace(lowered, "acme", "eu").Metadata.Labels[ApiGroup.EnvironmentLabel]);
        Assert.NotNull(WorkspaceReconciler.DeletionHold(lowered));

        // Raising is followed at once; lowering only through the guard a platform administrator lifts.
        Assert.Equal("prod", WorkspaceEnvironments.ToRecord("prod", "dev", guardLifted: false));
        Assert.Equal("dev", WorkspaceEnvironments.ToRecord("dev", "prod", guardLifted: true));
        Assert.Equal("test", WorkspaceEnvironments.ToRecord("test", null, guardLifted: false));
        Assert.Null(WorkspaceReconciler.DeletionHold(Ws("dev", "prod", guardLifted: true)));
        Assert.Null(WorkspaceReconciler.DeletionHold(Ws("dev", "dev")));
        Assert.NotNull(WorkspaceReconciler.DeletionHold(Ws("prod", null)));
    }

    static Workspace Target(string name, string environment, string? recorded = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new WorkspaceSpec { Tenant = "acme", Environment = environment },
        Status = recorded is null ? null : new WorkspaceStatus { Environment = recorded },
    };

    static RiskFactors Zero => new() { PrivilegeImpact = 0, SupplyChainTrust = 0, BlastRadius = 0, ChangeComplexity = 0, TestEvidence = 1 };

    [Fact]
    public void AnIntentInDev_ThatReachesProd_NeedsTwoApproversOfTheProdTargets_WhateverItsRisk()
    {
        var all = new[] { Target("acme-dev", "dev"), Target("acme-stage", "test"), Target("acme-prod", "prod"), Target("acme-lowered", "dev", recorded: "prod") }
            .ToDictionary(w => w.Metadata.Name);
        var own = all["acme-dev"];
        var rings = new Dictionary<string, IReadOnlyList<string>> { ["ring-0"] = ["acme-dev"], ["ring-1"] = ["acme-prod", "acme-stage"], ["ring-2"] = ["acme-lowered"] };
        var rule = DeploymentIntentResources.ApprovalRule(own, rings, n => all.GetValueOrDefault(n));
        Assert.Equal(("prod", 2), (rule.Environment, rule.Required));
        Assert.Equal(["acme-lowered", "acme-prod"], rule.ProdTargets);
        Assert.Equal(["ring-1", "ring-2"], rule.ProdRings.Order());

        // Only dev and test targets: the strictest of them (and the intent's own workspace) decides.
        var stage = DeploymentIntentResources.ApprovalRule(own, new Dictionary<string, IReadOnlyList<string>> { ["ring-0"] = ["acme-dev"], ["ring-1"] = ["acme-stage"] }, n => all.GetValueOrDefault(n));
        Assert.Equal(("test", 1), (stage.Environment, stage.Required));
        Assert.Empty(stage.ProdRings);
        // A target no longer known counts as prod.
        Assert.Equal(["gone"], DeploymentIntentResources.ApprovalRule(own, new Dictionary<string, IReadOnlyList<string>> { ["r"] = ["gone"] }, n => all.GetValueOrDefault(n)).ProdTargets);

        // Risk all zero: the decision is Allow, yet the prod ring (even the first) waits; the dev one goes.
        var spec = new DeploymentIntentSpec
        {
            Application = "payments", Version = "9.9.9", Artifact = new Artifact { Image = "attacker.example/payments:9.9.9", Sha256 = new string('a', 64) },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", Rings = ["ring-1", "ring-0"] }, Risk = Zero,
        };
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" }, Spec = new TenantSpec { Region = "eu" } };
        Assert.Equal("Allow", IntentDecisions.Decide(spec, tenant, [], RiskModel.V1.Assess(spec.Risk, false), Findings.FromSpec(spec)).Decision);
        var none = new Dictionary<string, PlaneStatus>();
        var first = DeploymentIntentResources.NextStep(spec, [], none, mayPassFirstRing: true, null, DateTime.UtcNow, r => rule.Hold(r, approved: false, "1 of 2"));
        Assert.Equal((RingAction.Wait, "ring-1", "AwaitingApproval"), (first.Action, first.Ring, first.Reason));
        Assert.Contains("acme-prod", first.Message);
        Assert.Equal(RingAction.Start, DeploymentIntentResources.NextStep(spec, [], none, true, null, DateTime.UtcNow, r => rule.Hold(r, approved: true, "")).Action);
        spec.TargetScope.Rings = ["ring-0"];
        Assert.Equal(RingAction.Start, DeploymentIntentResources.NextStep(spec, [], none, true, null, DateTime.UtcNow, r => rule.Hold(r, approved: false, "0 of 2")).Action);
    }

    [Fact]
    public void AnIntentName_ItsRolloutsCannotCarry_IsRefused_NamingTheFieldAndTheMaximum()
    {
        var problems = DeploymentIntentResources.NameProblems(new string('a', 245), ["ring-1"]);
        Assert.Contains(problems, p => p.StartsWith("metadata.name: 245 characters, at most 63", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("metadata.name: with ring ring-1", StringComparison.Ordinal) && p.Contains("not a DNS subdomain (at most 253)"));
        Assert.Empty(DeploymentIntentResources.NameProblems(new string('a', 63), [new string('r', 63)]));
        Assert.Equal(["spec.targetScope.rings[1]: \"Ring_2\" is not a DNS label (at most 63 lowercase letters, digits and '-'): a ring names and labels the Rollout that deploys it"],
            DeploymentIntentResources.NameProblems("ok", ["ring-1", "Ring_2"]));
    }
}
