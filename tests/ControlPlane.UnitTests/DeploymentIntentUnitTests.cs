using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

public sealed class DeploymentIntentUnitTests
{
    static RiskFactors Example => new() { PrivilegeImpact = 1.0, SupplyChainTrust = 0.1, BlastRadius = 0.4, ChangeComplexity = 0.3, TestEvidence = 0.8 };

    [Fact]
    public void RiskModelV1_ScoresTheContractsExample_At41()
    {
        var risk = RiskModel.V1.Assess(Example, privilegedTooling: false);
        Assert.Equal(41.0, risk.Score);
        Assert.Equal("v1.0", risk.ModelVersion);
        Assert.False(risk.RequiresApproval);
        Assert.Equal(
            [("privilegeImpact", 1.0, 20.0, 20.0), ("supplyChainTrust", 0.1, 15.0, 1.5), ("blastRadius", 0.4, 25.0, 10.0), ("changeComplexity", 0.3, 15.0, 4.5), ("testEvidence", 0.8, 25.0, 5.0)],
            risk.Factors.Select(f => (f.Name, f.Value, f.Weight, f.Contribution)));
    }

    [Theory]
    [InlineData(0.8, 50.0, false)]   // exactly 50: not above the threshold
    [InlineData(0.76, 51.0, true)]   // above it
    public void TheApprovalThreshold_IsAbove50_NotAt50(double testEvidence, double score, bool approval)
    {
        // 20 (privilege) + 25 (blast radius) + (1 - testEvidence) x 25
        var f = new RiskFactors { PrivilegeImpact = 1, SupplyChainTrust = 0, BlastRadius = 1, ChangeComplexity = 0, TestEvidence = testEvidence };
        var risk = RiskModel.V1.Assess(f, privilegedTooling: false);
        Assert.Equal(score, risk.Score);
        Assert.Equal(approval, risk.RequiresApproval);
    }

    [Fact]
    public void PrivilegedTooling_NeedsApproval_WhateverTheScore_AndMissingFactorsCountAtTheirWorst()
    {
        var safe = new RiskFactors { PrivilegeImpact = 0, SupplyChainTrust = 0, BlastRadius = 0, ChangeComplexity = 0, TestEvidence = 1 };
        Assert.Equal(0, RiskModel.V1.Assess(safe, false).Score);
        Assert.True(RiskModel.V1.Assess(safe, true).RequiresApproval);
        Assert.Equal(100, RiskModel.V1.Assess(null, false).Score);
    }

    [Fact]
    public void AModelFromAConfigMap_IsVersioned_ItsWeightsSumTo100_AndErrorsNameTheKey()
    {
        V1ConfigMap Cm(Dictionary<string, string> data) => new() { Metadata = new V1ObjectMeta { Name = RiskModel.ConfigMapName, NamespaceProperty = "controlplane-system" }, Data = data };
        var data = new Dictionary<string, string>
        {
            ["version"] = "v1.1", ["approvalThreshold"] = "40",
            ["weight.privilegeImpact"] = "30", ["weight.supplyChainTrust"] = "10", ["weight.blastRadius"] = "20", ["weight.changeComplexity"] = "15", ["weight.testEvidence"] = "25",
        };
        var (model, problem) = RiskModel.FromConfigMap(Cm(data));
        Assert.Null(problem);
        var risk = model!.Assess(Example, false);
        Assert.Equal("v1.1", risk.ModelVersion);
        Assert.Equal(30 + 1 + 8 + 4.5 + 5, risk.Score);
        Assert.True(risk.RequiresApproval); // 48.5 > 40

        Assert.Contains("data.version is required", RiskModel.FromConfigMap(Cm(new Dictionary<string, string>(data.Where(kv => kv.Key != "version")))).Problem);
        var bad = new Dictionary<string, string>(data) { ["weight.blastRadius"] = "-1" };
        Assert.Contains("data[weight.blastRadius] must be a number >= 0", RiskModel.FromConfigMap(Cm(bad)).Problem);
        var sum = new Dictionary<string, string>(data) { ["weight.blastRadius"] = "21" };
        Assert.Contains("sum to 101, not 100", RiskModel.FromConfigMap(Cm(sum)).Problem);
    }

    [Fact]
    public void TheTransitionTable_AllowsTheSeedsPath_AndNothingElse()
    {
        IntentPhase[] all = [IntentPhase.Pending, IntentPhase.RiskAssessed, IntentPhase.ScopeValidated, IntentPhase.AwaitingApproval, IntentPhase.InProgress,
            IntentPhase.Completed, IntentPhase.Failed, IntentPhase.RolledBack, IntentPhase.Denied];
        var legal = new HashSet<(IntentPhase, IntentPhase)>
        {
            (IntentPhase.Pending, IntentPhase.RiskAssessed), (IntentPhase.Pending, IntentPhase.Denied), (IntentPhase.Pending, IntentPhase.Failed),
            (IntentPhase.RiskAssessed, IntentPhase.ScopeValidated), (IntentPhase.RiskAssessed, IntentPhase.Denied), (IntentPhase.RiskAssessed, IntentPhase.Failed),
            (IntentPhase.ScopeValidated, IntentPhase.AwaitingApproval), (IntentPhase.ScopeValidated, IntentPhase.InProgress), (IntentPhase.ScopeValidated, IntentPhase.Denied),
            (IntentPhase.ScopeValidated, IntentPhase.Failed),
            (IntentPhase.AwaitingApproval, IntentPhase.InProgress), (IntentPhase.AwaitingApproval, IntentPhase.Denied), (IntentPhase.AwaitingApproval, IntentPhase.Failed),
            (IntentPhase.AwaitingApproval, IntentPhase.RolledBack),
            (IntentPhase.InProgress, IntentPhase.AwaitingApproval), (IntentPhase.InProgress, IntentPhase.Completed), (IntentPhase.InProgress, IntentPhase.Failed),
            (IntentPhase.InProgress, IntentPhase.RolledBack), (IntentPhase.InProgress, IntentPhase.Denied),
            (IntentPhase.Completed, IntentPhase.RolledBack),
        };
        foreach (var from in all)
        {
            foreach (var to in all)
            {
                Assert.Equal(legal.Contains((from, to)), IntentStateMachine.IsLegal(from, to));
                if (!legal.Contains((from, to))) Assert.Throws<IllegalTransitionException>(() => IntentStateMachine.Transition(from, to));
            }
        }

        Assert.Equal([IntentPhase.RiskAssessed, IntentPhase.ScopeValidated, IntentPhase.InProgress], IntentStateMachine.Path(IntentPhase.Pending, IntentPhase.InProgress));
        Assert.Equal([IntentPhase.Denied], IntentStateMachine.Path(IntentPhase.RiskAssessed, IntentPhase.Denied));
        Assert.Throws<IllegalTransitionException>(() => IntentStateMachine.Path(IntentPhase.Denied, IntentPhase.InProgress));
        Assert.Throws<IllegalTransitionException>(() => IntentStateMachine.Path(IntentPhase.Completed, IntentPhase.InProgress));
    }

    static Tenant TenantWithScope(bool suspended = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec { Suspended = suspended, Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }] },
    };

    static DeploymentIntentSpec Spec(params string[] rings) => new()
    {
        Application = "app", Version = "2.1.0",
        Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = new string('a', 64) },
        TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", Rings = [.. rings] },
    };

    [Fact]
    public void TheDecision_DeniesWithoutADigest_OutOfScope_OrSuspended_RequiresExceptionsWhenVulnerable_AndAsksApprovalWhenRisky()
    {
        var low = new RiskAssessment(20, "v1.0", [], false);
        var high = new RiskAssessment(60, "v1.0", [], true);
        Assert.Equal(("Allow", "Allowed"), Pair(IntentDecisions.Decide(Spec("r1"), TenantWithScope(), [], low, Findings.FromSpec(Spec("r1")))));
        Assert.Equal(("RequireApproval", "RequiresApproval"), Pair(IntentDecisions.Decide(Spec("r1"), TenantWithScope(), [], high, Findings.FromSpec(Spec("r1")))));

        var noDigest = Spec("r1");
        noDigest.Artifact.Sha256 = null;
        Assert.Equal(("Deny", "NoArtifactDigest"), Pair(IntentDecisions.Decide(noDigest, TenantWithScope(), [], low, Findings.FromSpec(noDigest))));
        Assert.Equal(("Deny", "ScopeInvalid"), Pair(IntentDecisions.Decide(Spec("r1"), TenantWithScope(), ["spec.targetScope.x"], low, Findings.FromSpec(Spec("r1")))));
        Assert.Equal(("Deny", "TenantSuspended"), Pair(IntentDecisions.Decide(Spec("r1"), TenantWithScope(suspended: true), [], low, Findings.FromSpec(Spec("r1")))));
        var vulnerable = Spec("r1");
        vulnerable.Artifact.Vulnerabilities = [new Vulnerability { Id = "CVE-2025-1", Severity = "Medium" }, new Vulnerability { Id = "CVE-2025-12345", Severity = "High" }];
        // Serious findings wait for Exceptions (RequireException), never a Deny; a Medium one needs none.
        var held = IntentDecisions.Decide(vulnerable, TenantWithScope(), [], low, Findings.FromSpec(vulnerable));
        Assert.Equal(("RequireException", "RequiresException"), Pair(held));
        Assert.Contains("CVE-2025-12345 (High)", held.Message);
        Assert.DoesNotContain("CVE-2025-1 ", held.Message);
        Assert.Contains("Exception", held.Message);
        Assert.False(held.CabRequired);
        // A risky one needs CAB approval on top, said in the decision.
        var risky = IntentDecisions.Decide(vulnerable, TenantWithScope(), [], high, Findings.FromSpec(vulnerable));
        Assert.Equal("RequireException", risky.Decision);
        Assert.True(risky.CabRequired);
        Assert.Contains("CAB approval", risky.Message);
        // Deny still wins over an Exception: no digest, out of scope, suspended.
        vulnerable.Artifact.Sha256 = null;
        Assert.Equal(("Deny", "NoArtifactDigest"), Pair(IntentDecisions.Decide(vulnerable, TenantWithScope(), [], low, Findings.FromSpec(vulnerable))));
    }

    static (string, string) Pair(IntentDecision d) => (d.Decision, d.Reason);

    [Fact]
    public void AThousandSeriousFindings_MakeADecisionMessageThatFitsACondition_NamingTheFirstFiftyAndHowManyMore()
    {
        var spec = Spec("r1");
        var findings = Enumerable.Range(1, 1000).Select(i => new Finding(FindingType.Vulnerability, $"CVE-2025-{i:00000}", "High", "scan:trivy")).ToList();
        var held = IntentDecisions.Decide(spec, TenantWithScope(), [], new RiskAssessment(10, "v1.0", [], false), findings);
        Assert.Equal("RequireException", held.Decision);
        Assert.Contains("CVE-2025-00050 (High), and 950 more", held.Message);
        Assert.DoesNotContain("CVE-2025-00051", held.Message);
        Assert.True(held.Message.Length < 32768);
    }

    [Fact]
    public void Findings_FromSeveralSources_KeepOnePerId_AtTheHighestSeverity_SoNoSourceHidesOne()
    {
        var merged = Findings.Union([
            new Finding(FindingType.Vulnerability, "CVE-1", "Low", "spec"),
            new Finding(FindingType.Vulnerability, "CVE-1", "Critical", "scan:trivy"),
            new Finding(FindingType.Vulnerability, "CVE-2", "Medium", "scan:trivy"),
            new Finding(FindingType.UnsignedPackage, "registry.example/app", "High", "signature"),
        ]);
        Assert.Equal(3, merged.Count);
        Assert.Equal("Critical", merged.Single(f => f.Id == "CVE-1").Severity);
        Assert.Equal(["CVE-1", "registry.example/app"], merged.Where(f => f.Serious).Select(f => f.Id));
        Assert.Equal(3, Findings.Rank("Unknown"));
    }

    [Fact]
    public void ScopeProblems_NameTheField()
    {
        var spec = Spec("r1");
        spec.TargetScope.SiteClass = "datacenter";
        Assert.Equal(["spec.targetScope.siteClass: \"datacenter\" is outside scope acq-001 (online)"], DeploymentIntentResources.ScopeProblems(spec, TenantWithScope()));
        spec.TargetScope.AcquisitionBoundary = "acq-999";
        Assert.Contains("not one of tenant acme's scopes", Assert.Single(DeploymentIntentResources.ScopeProblems(spec, TenantWithScope())));
        var labels = new Dictionary<string, string> { [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-hr" };
        Assert.Contains("metadata.labels[controlplane.io/business-unit]", Assert.Single(DeploymentIntentResources.WorkspaceScopeProblems(labels, TenantWithScope())));
    }

    static Workspace Ws(string name, string ring, string boundary = "acq-001", string bu = "bu-finance") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            Labels = new Dictionary<string, string>
            {
                [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = boundary, [ApiGroup.BusinessUnitLabel] = bu,
            },
        },
    };

    [Fact]
    public void ARing_IsTheTenantsWorkspacesWithItsLabelAndTheTargetsScope()
    {
        var workspaces = new[] { Ws("a-canary", "canary"), Ws("b-canary", "canary", bu: "bu-hr"), Ws("c-canary", "canary", boundary: "acq-002"), Ws("d-prod", "prod") };
        Assert.Equal(["a-canary"], DeploymentIntentResources.RingWorkspaces(Spec("canary").TargetScope, "canary", workspaces));
        Assert.Equal(["d-prod"], DeploymentIntentResources.RingWorkspaces(Spec("prod").TargetScope, "prod", workspaces));
    }

    [Fact]
    public void ARingWithNoWorkspaceOfTheTenant_IsAProblemNamingItsIndex_WhateverAnotherTenantHas()
    {
        // The caller passes the tenant's own workspaces: "theirs" (another tenant's ring-9) never is one.
        var mine = new[] { Ws("a-canary", "canary"), Ws("b-prod", "prod", bu: "bu-hr") };
        Assert.Empty(DeploymentIntentResources.RingProblems(Spec("canary").TargetScope, "acme", mine));
        var problems = DeploymentIntentResources.RingProblems(Spec("canary", "prod", "ring-9").TargetScope, "acme", mine);
        Assert.Equal(2, problems.Count);
        Assert.StartsWith("spec.targetScope.rings[1]: ring \"prod\" has no workspace of tenant acme labelled controlplane.io/ring=prod and controlplane.io/acquisition-boundary=acq-001, controlplane.io/business-unit=bu-finance", problems[0]);
        Assert.StartsWith("spec.targetScope.rings[2]: ring \"ring-9\"", problems[1]);
    }

    static readonly DateTime Now = new(2026, 1, 5, 12, 0, 0, DateTimeKind.Utc);

    static PlaneStatus State(string state) => new(state, "2.1.0", true, [], 1.0, 0, null);

    [Fact]
    public void PreviousVersionRollback_OnTheHttpPlane_IsTheNewestVersionCompletedInThatRing_OrAnUninstallWhenNone()
    {
        DeploymentIntent Done(string uid, string version, IntentPhase phase, params (string Ring, IntentRingPhase Phase, int Hour)[] rings) => new()
        {
            Metadata = new V1ObjectMeta { Name = "i-" + uid, Uid = uid },
            Spec = new DeploymentIntentSpec { Application = "app", Version = version },
            Status = new DeploymentIntentStatus
            {
                Phase = phase,
                Rings = rings.Select(r => new IntentRingStatus { Name = r.Ring, Phase = r.Phase, CompletedAt = Now.AddHours(r.Hour) }).ToList(),
            },
        };
        var current = Done("me", "3.0.0", IntentPhase.InProgress, ("r1", IntentRingPhase.InProgress, 0));
        var others = new[]
        {
            Done("a", "1.0.0", IntentPhase.Completed, ("r1", IntentRingPhase.Completed, 1), ("r2", IntentRingPhase.Completed, 2)),
            Done("b", "2.0.0", IntentPhase.Completed, ("r1", IntentRingPhase.Completed, 5)),
            Done("c", "2.5.0", IntentPhase.RolledBack, ("r1", IntentRingPhase.RolledBack, 9)), // rolled back: never what runs
            Done("d", "2.9.0", IntentPhase.Failed, ("r1", IntentRingPhase.Completed, 10)), // the intent did not complete
            current,
        };
        Assert.Equal((PlaneRemediation.Rollback, "2.0.0"), DeploymentIntentResources.PreviousVersionRollback(current, "r1", others));
        Assert.Equal((PlaneRemediation.Rollback, "1.0.0"), DeploymentIntentResources.PreviousVersionRollback(current, "r2", others));
        Assert.Equal((PlaneRemediation.Uninstall, (string?)null), DeploymentIntentResources.PreviousVersionRollback(current, "r3", others));
        var otherApplication = Done("e", "9.0.0", IntentPhase.Completed, ("r3", IntentRingPhase.Completed, 1));
        otherApplication.Spec.Application = "other";
        Assert.Equal(PlaneRemediation.Uninstall, DeploymentIntentResources.PreviousVersionRollback(current, "r3", [otherApplication]).Action);
    }

    [Fact]
    public void PromotionGates_FailARing_OnTooManyIncidents_OrASuccessRateUnderTheThreshold_OnceSucceeded()
    {
        var spec = Spec("r1", "r2");
        spec.PromotionGates = new PromotionGates { SuccessRateThreshold = 0.98, MaxIncidents = 1 };
        var running = new List<IntentRingStatus> { new() { Name = "r1", Phase = IntentRingPhase.InProgress, StartedAt = Now } };
        RingStep Step(PlaneStatus state) => DeploymentIntentResources.NextStep(spec, running, new Dictionary<string, PlaneStatus> { ["r1"] = state }, false, null, Now.AddHours(1));

        // Still installing: a low rate is no verdict yet; succeeded at or over the threshold completes.
        Assert.Equal(RingAction.Wait, Step(State("in_progress") with { SuccessRate = 0.4 }).Action);
        Assert.Equal(RingAction.Complete, Step(State("succeeded") with { SuccessRate = 0.98 }).Action);
        Assert.Equal(RingAction.Complete, Step(State("succeeded") with { SuccessRate = null }).Action); // a plane that reports no rate

        var low = Step(State("succeeded") with { SuccessRate = 0.9 });
        Assert.Equal((RingAction.Fail, "r1", "PromotionGateBreached"), (low.Action, low.Ring, low.Reason));
        Assert.Contains("spec.promotionGates.successRateThreshold (0.98)", low.Message);
        Assert.Contains("0.9", low.Message);

        Assert.Equal(RingAction.Wait, Step(State("in_progress") with { Incidents = 1 }).Action);
        var incidents = Step(State("in_progress") with { Incidents = 2 });
        Assert.Equal((RingAction.Fail, "PromotionGateBreached"), (incidents.Action, incidents.Reason));
        Assert.Contains("spec.promotionGates.maxIncidents (1)", incidents.Message);

        // Absent gates: no incident is tolerated, any rate passes.
        spec.PromotionGates = null;
        Assert.Equal(RingAction.Fail, Step(State("in_progress") with { Incidents = 1 }).Action);
        Assert.Equal(RingAction.Complete, Step(State("succeeded") with { SuccessRate = 0.1 }).Action);
    }

    [Fact]
    public void TheSequencer_RunsRingsInOrder_WaitsForTheWindow_TheMinimumSoak_AndCabBeforeRingTwo()
    {
        var spec = Spec("r1", "r2");
        spec.Schedule = new Dictionary<string, RingSchedule>
        {
            ["r1"] = new() { Start = Now.AddHours(1), DurationHours = 2 },
        };
        var none = new Dictionary<string, PlaneStatus>();
        var wait = DeploymentIntentResources.NextStep(spec, [], none, mayPassFirstRing: false, null, Now);
        Assert.Equal((RingAction.Wait, "r1", "ScheduleWindow"), (wait.Action, wait.Ring, wait.Reason));
        Assert.Equal(TimeSpan.FromHours(1), wait.RecheckIn);

        var start = DeploymentIntentResources.NextStep(spec, [], none, false, null, Now.AddHours(1));
        Assert.Equal((RingAction.Start, "r1"), (start.Action, start.Ring));

        var running = new List<IntentRingStatus> { new() { Name = "r1", Phase = IntentRingPhase.InProgress, StartedAt = Now.AddHours(1) } };
        var soak = DeploymentIntentResources.NextStep(spec, running, new Dictionary<string, PlaneStatus> { ["r1"] = State("succeeded") }, false, null, Now.AddHours(2));
        Assert.Equal((RingAction.Wait, "MinimumSoak"), (soak.Action, soak.Reason));
        var done = DeploymentIntentResources.NextStep(spec, running, new Dictionary<string, PlaneStatus> { ["r1"] = State("succeeded") }, false, null, Now.AddHours(3));
        Assert.Equal(RingAction.Complete, done.Action);

        var completed = new List<IntentRingStatus> { new() { Name = "r1", Phase = IntentRingPhase.Completed } };
        var cab = DeploymentIntentResources.NextStep(spec, completed, none, mayPassFirstRing: false, "2 approvals needed", Now.AddHours(3));
        Assert.Equal((RingAction.Wait, "r2", "AwaitingApproval", "2 approvals needed"), (cab.Action, cab.Ring, cab.Reason, cab.Message));
        Assert.Equal(RingAction.Start, DeploymentIntentResources.NextStep(spec, completed, none, mayPassFirstRing: true, null, Now.AddHours(3)).Action);

        var failed = DeploymentIntentResources.NextStep(spec, running, new Dictionary<string, PlaneStatus> { ["r1"] = State("failed") }, true, null, Now.AddHours(3));
        Assert.Equal(RingAction.Fail, failed.Action);
        var all = new List<IntentRingStatus> { new() { Name = "r1", Phase = IntentRingPhase.Completed }, new() { Name = "r2", Phase = IntentRingPhase.Completed } };
        Assert.Equal("AllRingsCompleted", DeploymentIntentResources.NextStep(spec, all, none, true, null, Now).Reason);
    }

    [Fact]
    public void OneChangePerApplicationAndRing_TheOneInProgressGoesOn()
    {
        DeploymentIntent Intent(string name, string uid, int second, params IntentRingStatus[] rings) => new()
        {
            Metadata = new V1ObjectMeta { Name = name, Uid = uid, CreationTimestamp = Now.AddSeconds(second) },
            Spec = Spec("r1", "r2"),
            Status = new DeploymentIntentStatus { Rings = [.. rings] },
        };
        var first = Intent("first", "1", 0, new IntentRingStatus { Name = "r1", Phase = IntentRingPhase.Completed }, new IntentRingStatus { Name = "r2", Phase = IntentRingPhase.InProgress });
        var second = Intent("second", "2", 1);
        var conflict = DeploymentIntentResources.ConflictingChange(second, [first, second]);
        Assert.Equal(("first", "r2"), (conflict!.Value.Other.Metadata.Name, conflict.Value.Ring));
        Assert.Null(DeploymentIntentResources.ConflictingChange(first, [first, second]));
        var other = Intent("other-app", "3", 0, new IntentRingStatus { Name = "r1", Phase = IntentRingPhase.InProgress });
        other.Spec.Application = "another";
        Assert.Null(DeploymentIntentResources.ConflictingChange(second, [other]));
    }

    [Fact]
    public void Drift_IsAVersionMismatch_AMissingAssignment_OrAScopeMismatch()
    {
        Assert.Null(IntentDrift.Of("2.1.0", ["a", "b"], new PlaneStatus("succeeded", "2.1.0", true, ["b", "a"], 1, 0, null)));
        Assert.Equal("version_mismatch", IntentDrift.Of("2.1.0", ["a"], new PlaneStatus("succeeded", "2.0.5", true, ["a"], 1, 0, null))!.Type);
        Assert.Equal("assignment_missing", IntentDrift.Of("2.1.0", ["a"], new PlaneStatus("succeeded", "2.1.0", false, ["a"], 1, 0, null))!.Type);
        var scope = IntentDrift.Of("2.1.0", ["a"], new PlaneStatus("succeeded", "2.1.0", true, ["a", "z"], 1, 0, null))!;
        Assert.Equal(("scope_mismatch", "a", "a,z"), (scope.Type, scope.Desired, scope.Actual));
    }
}
