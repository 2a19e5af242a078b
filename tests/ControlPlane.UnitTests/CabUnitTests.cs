using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>CAB routing, approval conditions (maxRing, minSoak), expiry, justification and rollback strategies, as pure functions.</summary>
public sealed class CabUnitTests
{
    static readonly DateTime Now = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
    static readonly string[] Rings = ["ring-0", "ring-1", "ring-2"];

    static DeploymentIntent Intent(string businessUnit = "bu-finance") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "app-2", NamespaceProperty = "acme-dev", Uid = "uid-1", Generation = 1,
            Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "bob" },
        },
        Spec = new DeploymentIntentSpec
        {
            Application = "app", Version = "2", Artifact = new Artifact { Image = "i", Sha256 = new string('a', 64) },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = businessUnit, Rings = [.. Rings] },
        },
    };

    static Approval Approve(string approver, string? maxRing = null, DateTime? expiresAt = null, IEnumerable<string>? groups = null, params (string Ring, string Duration)[] soaks) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "apr-" + approver, NamespaceProperty = "acme-dev",
            Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups(groups) },
        },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = DeploymentIntent.KubeKind, Name = "app-2" }, Decision = "approve", Approver = approver, TargetUID = "uid-1", TargetGeneration = 1,
            ExpiresAt = expiresAt,
            Conditions = maxRing is null && soaks.Length == 0 ? null
                : new ApprovalLimits { MaxRing = maxRing, MinSoak = soaks.Length == 0 ? null : [.. soaks.Select(s => new RingSoak { Ring = s.Ring, Duration = s.Duration })] },
        },
    };

    static V1RoleBinding Binding(string role, params (string Kind, string Name)[] subjects) => new()
    {
        Metadata = new V1ObjectMeta { Name = role, NamespaceProperty = "acme-dev" },
        RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role), ApiGroup = "rbac.authorization.k8s.io" },
        Subjects = [.. subjects.Select(s => new Rbacv1Subject { Kind = s.Kind, Name = s.Name })],
    };

    static readonly IntentApprovalRule Dev = new("dev", 1, [], new HashSet<string>());

    static IntentCabState For(string ring, IReadOnlyList<CabRoute>? routes, params Approval[] approvals) =>
        IntentCab.ForRing(Intent(), Dev, approvals, _ => true, _ => [], routes, ring, Now);

    [Fact]
    public void MaxRing_CountsForRingsUpToIt_AndNotTheNext()
    {
        var limited = Approve("carol", maxRing: "ring-1");
        Assert.True(For("ring-1", null, limited).State.Approved);
        var beyond = For("ring-2", null, limited);
        Assert.False(beyond.State.Approved);
        Assert.Contains("spec.conditions.maxRing", beyond.State.Message);
        Assert.Equal(ApprovalReasons.BeyondMaxRing, CabConditions.NotFor(limited, "ring-2", Rings, Now)?.Reason);
    }

    [Fact]
    public void AnExpiredApproval_CountsForNoRingNotYetStarted_AndAnUnexpiredOneDoes()
    {
        Assert.True(For("ring-1", null, Approve("carol", expiresAt: Now.AddMinutes(1))).State.Approved);
        var expired = For("ring-1", null, Approve("carol", expiresAt: Now));
        Assert.False(expired.State.Approved);
        Assert.Contains("spec.expiresAt", expired.State.Message);
        Assert.Equal(ApprovalReasons.Expired, IntentCab.NotCounting(Approve("carol", expiresAt: Now.AddSeconds(-1)), Intent(), null, Now)?.Reason);
        // It never counts again: kstatus Stalled, as any approval that will not count for this generation.
        Assert.Equal(ApprovalReasons.Expired, StalledRule.Of(Approval.KubeKind, null, new V1Condition { Type = "Ready", Status = "False", Reason = ApprovalReasons.Expired, Message = "expired" })?.Reason);
    }

    [Fact]
    public void MinSoak_IsRecordedWithTheRing_TheLongestWins_AndTheRingCompletesNoEarlier()
    {
        var started = For("ring-1", null, Approve("carol", soaks: ("ring-1", "36h")), Approve("erin", soaks: ("ring-1", "2d")));
        Assert.Equal("172800s", CabConditions.RecordedSoak(started.Counted, "ring-1"));
        var ring = new IntentRingStatus { Name = "ring-1", Phase = IntentRingPhase.InProgress, StartedAt = Now, MinSoak = "172800s" };
        var succeeded = new Dictionary<string, PlaneStatus> { ["ring-1"] = new("succeeded", "2", true, [], 1.0, 0, null) };
        var spec = Intent().Spec;
        spec.Schedule = new Dictionary<string, RingSchedule> { ["ring-1"] = new() { Start = Now.AddDays(-1), DurationHours = 1 } };
        var rings = new List<IntentRingStatus> { new() { Name = "ring-0", Phase = IntentRingPhase.Completed }, ring };
        var waiting = DeploymentIntentResources.NextStep(spec, rings, succeeded, true, null, Now.AddHours(47));
        Assert.Equal(RingAction.Wait, waiting.Action);
        Assert.Equal(IntentReasons.MinimumSoak, waiting.Reason);
        Assert.Contains("minSoak", waiting.Message);
        Assert.Equal(RingAction.Complete, DeploymentIntentResources.NextStep(spec, rings, succeeded, true, null, Now.AddHours(48)).Action);
        var recorded = CabConditions.Record(Approve("carol", maxRing: "ring-2", expiresAt: Now.AddDays(7), soaks: ("ring-1", "36h")), "ring-1");
        Assert.Equal(("carol", "ring-2", "36h", Now.AddDays(7)), (recorded.Approver, recorded.MaxRing, recorded.MinSoak, recorded.ExpiresAt));
    }

    [Fact]
    public void WithoutRoutes_EveryEligibleApproverIsAssigned_ButNeverAnAuthor_AServiceAccount_OrASystemGroup()
    {
        var eligible = CabRouting.EligibleApprovers([[
            Binding("Approver", ("User", "carol"), ("User", "bob"), ("User", "system:serviceaccount:acme-dev:ci"), ("Group", "cab"), ("Group", "system:authenticated")),
            Binding("Operator", ("User", "olga")),
        ]]);
        Assert.Equal(["carol", "group:cab"], CabRouting.AssignedApprovers(eligible, null, new CabScope("acq-001", "bu-finance"), ["bob"]));
        Assert.Null(CabRouting.NotAssigned("anyone", [], [], new CabScope("acq-001", null)));
    }

    [Fact]
    public void EligibleApprovers_MustHoldTheRoleInEveryNamespaceGiven()
    {
        var eligible = CabRouting.EligibleApprovers([[Binding("Approver", ("User", "carol"), ("User", "erin"))], [Binding("WorkspaceAdmin", ("User", "erin"))]]);
        Assert.Equal([new ApproverSubject("User", "erin")], eligible);
    }

    [Fact]
    public void WithRoutes_OnlyAnAssignedApproverCounts_ByNameOrGroup_AndScopeDecides()
    {
        IReadOnlyList<CabRoute> routes =
        [
            new() { Subjects = ["carol"], BusinessUnits = ["bu-finance"] },
            new() { Groups = ["cab-hr"], AcquisitionBoundaries = ["acq-001"], BusinessUnits = ["bu-hr"] },
        ];
        var finance = new CabScope("acq-001", "bu-finance");
        Assert.Null(CabRouting.NotAssigned("carol", [], routes, finance));
        Assert.Contains("not assigned", CabRouting.NotAssigned("erin", [], routes, finance));
        Assert.Null(CabRouting.NotAssigned("erin", ["cab-hr"], routes, new CabScope("acq-001", "bu-hr")));
        Assert.Contains("no spec.cabRoutes entry", CabRouting.NotAssigned("carol", [], routes, new CabScope("acq-002", "bu-legal")));

        var unassigned = For("ring-1", routes, Approve("erin"));
        Assert.False(unassigned.State.Approved);
        Assert.Contains("not assigned", unassigned.State.Message);
        Assert.True(For("ring-1", routes, Approve("carol")).State.Approved);
        Assert.Equal(ApprovalReasons.NotAssigned, IntentCab.NotCounting(Approve("erin"), Intent(), routes, Now)?.Reason);

        var eligible = new[] { new ApproverSubject("Group", "cab-hr"), new ApproverSubject("User", "carol"), new ApproverSubject("User", "erin") };
        Assert.Equal(["carol"], CabRouting.AssignedApprovers(eligible, routes, finance, []));
        Assert.Equal(["group:cab-hr"], CabRouting.AssignedApprovers(eligible, routes, new CabScope("acq-001", "bu-hr"), []));
    }

    [Fact]
    public void TenantRoutes_ThatAssignNobody_OrNameAServiceAccountOrASystemGroup_AreRefusedNamingTheField()
    {
        var problems = CabRouting.RouteProblems([
            new CabRoute { BusinessUnits = ["bu-finance"] },
            new CabRoute { Subjects = ["carol", "system:serviceaccount:acme-dev:ci"], Groups = ["system:authenticated", " "] },
        ]);
        Assert.Equal(
            ["spec.cabRoutes[0]:", "spec.cabRoutes[1].subjects[1]:", "spec.cabRoutes[1].groups[0]:", "spec.cabRoutes[1].groups[1]:"],
            problems.Select(p => p[..(p.IndexOf(':', StringComparison.Ordinal) + 1)]));
        Assert.Empty(CabRouting.RouteProblems([new CabRoute { Groups = ["cab-finance"] }]));
        Assert.Empty(CabRouting.RouteProblems(null));
    }

    [Fact]
    public void ARejectIsNeverLimitedByConditions()
    {
        var reject = Approve("carol", maxRing: "ring-0", expiresAt: Now.AddDays(-1));
        reject.Spec.Decision = "reject";
        Assert.Null(CabConditions.NotFor(reject, "ring-2", Rings, Now));
        Assert.True(For("ring-2", null, reject).State.Rejected);
    }

    [Fact]
    public void Admission_NamesTheField_ForBadConditions_APastExpiry_AMissingJustification_AndAnUnvalidatedRollback()
    {
        var spec = Approve("carol", maxRing: "ring-9", expiresAt: Now.AddDays(-1), soaks: [("ring-1", "7d"), ("ring-1", "1h"), ("ring-8", "forever")]).Spec;
        var problems = CabConditions.Problems(spec, Rings, needsCab: true, rollbackValidated: false, Now);
        Assert.Contains(problems, p => p.StartsWith("spec.conditions.maxRing:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.conditions.minSoak[1].ring:", StringComparison.Ordinal) && p.Contains("twice"));
        Assert.Contains(problems, p => p.StartsWith("spec.conditions.minSoak[2].ring:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.conditions.minSoak[2].duration:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.expiresAt:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.justification:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.rollbackPlan.validated:", StringComparison.Ordinal));

        var good = Approve("carol", maxRing: "ring-1", expiresAt: Now.AddDays(7), soaks: ("ring-1", "7d")).Spec;
        good.Justification = "rollback rehearsed in staging on 2026-02-27";
        Assert.Empty(CabConditions.Problems(good, Rings, needsCab: true, rollbackValidated: true, Now));
        // No CAB needed: neither a justification nor a validated rollback is asked.
        good.Justification = null;
        Assert.Empty(CabConditions.Problems(good, Rings, needsCab: false, rollbackValidated: false, Now));
    }

    [Theory]
    [InlineData("intune-supersedence", true)]
    [InlineData("previous-version", true)]
    [InlineData("Intune_Supersedence", false)]
    [InlineData("-x", false)]
    [InlineData("", false)]
    public void AStrategyIsADnsLabel(string name, bool valid) => Assert.Equal(valid, HttpExecutionPlane.IsStrategyName(name));

    [Fact]
    public void AStrategyThePlaneDoesNotAdvertise_IsRefusedNamingTheFieldAndListingWhatItSupports()
    {
        Assert.Null(RollbackStrategies.Problem("intune-supersedence", ["previous-version", "intune-supersedence"], "http"));
        Assert.Null(RollbackStrategies.Problem(null, PlaneCapabilities.BuiltInStrategies, "kubernetes"));
        var problem = RollbackStrategies.Problem("intune-supersedence", PlaneCapabilities.BuiltInStrategies, "kubernetes");
        Assert.StartsWith("spec.rollbackPlan.strategy:", problem);
        Assert.Contains("previous-version, specific-version, none", problem);
    }

    [Fact]
    public void TheSchemaAcceptsAnOpenStrategy_NoLongerAnEnum()
    {
        var property = typeof(RollbackPlan).GetProperty(nameof(RollbackPlan.Strategy))!;
        Assert.Null(property.GetCustomAttributes(typeof(EnumAttribute), false).FirstOrDefault());
        var pattern = (PatternAttribute)property.GetCustomAttributes(typeof(PatternAttribute), false).Single();
        Assert.Matches(pattern.Regex, "intune-supersedence");
    }
}
