using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>spec.promote (kubectl controlplane rollout promote): ends a soak early, only approved and only with gates holding.</summary>
public sealed class RolloutPromoteUnitTests
{
    static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    const string Old = "r/app:1", New = "r/app:2";
    static readonly RingView[] TwoRings = [new(["lab"], []), new(["c1"], [])];
    static readonly ApprovalState Approved = new(true, false, 1, ["carol@acme.io"], [], "approved by carol@acme.io");
    static readonly ApprovalState NotYet = new(false, false, 1, [], [], "0 of 1 approval(s) for generation 2");

    static Rollout Soaking(string? promote, string? query = null)
    {
        var r = new Rollout
        {
            Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "lab", Generation = 2, Uid = "u1" },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = New }] },
                Rings = [new Ring { Name = "r0", Workspaces = ["lab"], Soak = "1h" }, new Ring { Name = "r1", Workspaces = ["c1"] }],
                Gates = new RolloutGates { ProgressDeadline = "10m", SuccessRate = query is null ? null : new SuccessRateGate { Query = query, Threshold = 0.98 } },
                Promote = promote,
            },
        };
        r.Status = new RolloutStatus
        {
            Phase = RolloutPhase.Progressing,
            Rings =
            [
                new RingStatus { Name = "r0", Phase = RingPhase.Soaking, Workspaces = ["lab"], StartedAt = T0, RolledOutAt = T0.AddMinutes(1), Incidents = 0 },
                new RingStatus { Name = "r1", Phase = RingPhase.Pending },
            ],
            Previous = [new PreviousImages { Namespace = "lab", Containers = [new ContainerImage { Name = "app", Image = Old }] }],
        };
        return r;
    }

    static DeploymentView View(string ns, string image, int restarts = 0) =>
        new(ns, true, image == New, image == New, [new ContainerImage { Name = "app", Image = image }], restarts, 0, restarts > 0 ? T0.AddMinutes(4) : null, "1/1");

    static RolloutFacts Facts(ApprovalState? approval, MetricReading? metric = null, int restarts = 0) =>
        new(T0.AddMinutes(5), [], "acme", false, null, TwoRings, new[] { View("lab", New, restarts), View("c1", Old) }.ToDictionary(v => v.Namespace), approval, metric,
            RequesterAccess.Granted(["lab", "c1"]));

    [Fact]
    public void ApprovedPromote_EndsTheSoakEarly_Audited_AndTheNextRingStartsInTheSamePass()
    {
        var d = RolloutPlan.Decide(Soaking("r0"), Facts(Approved));
        Assert.Equal(RingPhase.Succeeded, d.Status.Rings![0].Phase);
        Assert.Equal(T0.AddMinutes(5), d.Status.Rings[0].CompletedAt);
        Assert.Equal(RingPhase.Progressing, d.Status.Rings[1].Phase);
        Assert.Equal("c1", Assert.Single(d.Patches).Namespace);
        var promoted = Assert.Single(d.Notices, n => n.Reason == RolloutReasons.PromotedEarly);
        Assert.Equal(("rollout.promoted", "r0"), (promoted.AuditAction, promoted.AuditReason));
        Assert.Contains("carol@acme.io", promoted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnapprovedPromote_KeepsSoaking_AndSaysWhatItWaitsFor()
    {
        foreach (var approval in new[] { null, NotYet })
        {
            var d = RolloutPlan.Decide(Soaking("r0"), Facts(approval));
            Assert.Equal(RingPhase.Soaking, d.Status.Rings![0].Phase);
            Assert.Empty(d.Patches);
            Assert.DoesNotContain(d.Notices, n => n.AuditAction == "rollout.promoted");
            Assert.Equal(RolloutReasons.PromotionRefused, d.Progressing.Reason);
            Assert.Contains("spec.promote waits for approval of generation 2", d.Progressing.Message, StringComparison.Ordinal);
            Assert.Equal(TimeSpan.FromMinutes(56), d.RequeueAfter); // the soak still ends on its own
        }
    }

    [Fact]
    public void PromoteIsRefused_ForARingWhoseGatesFail_OrCannotBeRead()
    {
        // A failing success rate: the breach wins, the ring rolls back; nothing is promoted.
        var low = RolloutPlan.Decide(Soaking("r0", "q{namespace=~\"{{namespaces}}\"}"), Facts(Approved, MetricReading.Of(0.5)));
        Assert.Equal(RolloutPhase.RolledBack, low.Status.Phase);
        Assert.DoesNotContain(low.Notices, n => n.AuditAction == "rollout.promoted");

        // Too many incidents: the same.
        var crashing = RolloutPlan.Decide(Soaking("r0"), Facts(Approved, restarts: 1));
        Assert.Equal(RolloutPhase.RolledBack, crashing.Status.Phase);
        Assert.DoesNotContain(crashing.Notices, n => n.AuditAction == "rollout.promoted");

        // A gate that cannot answer is not a holding gate: the ring holds, it is not promoted.
        var unknown = RolloutPlan.Decide(Soaking("r0", "q{namespace=~\"{{namespaces}}\"}"), Facts(Approved, MetricReading.Down("prometheus down")));
        Assert.Equal(RingPhase.Soaking, unknown.Status.Rings![0].Phase);
        Assert.Equal(RolloutReasons.MetricsUnavailable, unknown.Paused.Reason);
        Assert.DoesNotContain(unknown.Notices, n => n.AuditAction == "rollout.promoted");

        // Holding gates and the approval: promoted.
        var holding = RolloutPlan.Decide(Soaking("r0", "q{namespace=~\"{{namespaces}}\"}"), Facts(Approved, MetricReading.Of(0.99)));
        Assert.Equal(RingPhase.Succeeded, holding.Status.Rings![0].Phase);
    }

    [Fact]
    public void PromoteOfAnotherRing_OrWhilePaused_EndsNoSoak()
    {
        var other = RolloutPlan.Decide(Soaking("r1"), Facts(Approved));
        Assert.Equal(RingPhase.Soaking, other.Status.Rings![0].Phase);

        var paused = Soaking("r0");
        paused.Spec.Paused = true;
        var d = RolloutPlan.Decide(paused, Facts(Approved));
        Assert.Equal(RingPhase.Soaking, d.Status.Rings![0].Phase); // pause wins: no step, early or not
        Assert.Equal(RolloutReasons.Paused, d.Paused.Reason);
        Assert.Empty(d.Patches);
        Assert.DoesNotContain(d.Notices, n => n.AuditAction == "rollout.promoted");
    }

    [Fact]
    public void PromoteAsked_OnlyForTheNamedRing_WhileItRunsOrSoaks()
    {
        var r = Soaking("r0");
        Assert.True(RolloutPlan.PromoteAsked(r.Spec, r.Spec.Rings[0], r.Status!.Rings![0]));
        Assert.False(RolloutPlan.PromoteAsked(r.Spec, r.Spec.Rings[1], r.Status.Rings[1]));
        r.Status.Rings[0].Phase = RingPhase.Succeeded;
        Assert.False(RolloutPlan.PromoteAsked(r.Spec, r.Spec.Rings[0], r.Status.Rings[0]));
    }

    [Fact]
    public void APromoteNamingNoRing_IsRefused_NamingTheField()
    {
        var r = Soaking("r9");
        Assert.Contains("spec.promote: \"r9\" is not a ring of this Rollout (spec.rings[].name)", SpecRules.Rollout(r.Spec));
        Assert.DoesNotContain(SpecRules.Rollout(Soaking("r1").Spec), p => p.StartsWith("spec.promote", StringComparison.Ordinal));
    }

    [Fact]
    public void Promote_IsContentUnderReview_NotAControlAction()
    {
        Assert.DoesNotContain("promote", ApprovableKinds.Rollout.ControlFields);

        // An approval of the generation before the promote does not carry over to it (paused would) ...
        var reviewed = Soaking(null);
        reviewed.Metadata.Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "bob@acme.io" };
        var approval = new Approval
        {
            Metadata = new V1ObjectMeta { Name = "apr", NamespaceProperty = "lab", Annotations = new Dictionary<string, string> { [ApiGroup.TargetContentHashAnnotation] = ApprovalPolicy.ContentHash(reviewed) } },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = Rollout.KubeKind, Name = "orders" }, Decision = "approve", Approver = "carol@acme.io", TargetGeneration = 2, TargetUID = "u1" },
        };
        Assert.Equal(ApprovalReasons.Counts, ApprovalPolicy.Judge(approval, reviewed, _ => true).Reason);
        var paused = Soaking(null);
        (paused.Metadata.Generation, paused.Metadata.Annotations, paused.Spec.Paused) = (3, reviewed.Metadata.Annotations, true);
        Assert.Equal(ApprovalReasons.Counts, ApprovalPolicy.Judge(approval, paused, _ => true).Reason);
        var promoted = Soaking("r0");
        (promoted.Metadata.Generation, promoted.Metadata.Annotations) = (3, new Dictionary<string, string>(reviewed.Metadata.Annotations) { [ApiGroup.SpecEditorsAnnotation] = "[\"dave@acme.io\"]" });
        Assert.Equal(ApprovalReasons.StaleGeneration, ApprovalPolicy.Judge(approval, promoted, _ => true).Reason);

        // ... and whoever set it is an author of the generation under review: their approval is self-approval.
        var byPromoter = new Approval { Metadata = new V1ObjectMeta { Name = "apr2", NamespaceProperty = "lab" }, Spec = new ApprovalSpec { Target = approval.Spec.Target, Decision = "approve", Approver = "dave@acme.io", TargetGeneration = 3, TargetUID = "u1" } };
        Assert.Equal(ApprovalReasons.SelfApproval, ApprovalPolicy.Judge(byPromoter, promoted, _ => true).Reason);
    }
}
