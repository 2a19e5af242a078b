using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// approval.requested and approval.decided for an Exposure, a Rollout ring (and its spec.promote) and an Exception
/// (<see cref="ApprovalAskPlans"/>): each plan asks once per generation (and ring) when the object starts waiting, with
/// details.approvers, asks nothing on a pass whose status already shows the wait, and the rows map to the event types.
/// </summary>
public sealed class ApprovalAskPlanTests
{
    static readonly DateTime T0 = new(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc);
    static readonly ApprovalState NotYet = new(false, false, 2, ["carol@acme.io"], [], "1 of 2 approval(s) for generation 1");
    static readonly ApprovalState Approved = new(true, false, 2, ["carol@acme.io", "dave@acme.io"], [], "approved by carol@acme.io, dave@acme.io");
    static readonly ApprovalState Rejected = new(false, true, 2, [], ["erin@acme.io"], "rejected by erin@acme.io");

    static SourceRow Audit(string action, JsonObject? details = null) => new(NotificationSource.Audit, 7, T0, action, "Exposure", "acme-dev/orders", "acme", "acme-dev",
        "bob@acme.io", null, null, null, details ?? new JsonObject(), "p", "h", 1, "th");

    // --- the mapping ---

    [Theory]
    [InlineData(ApprovalAskPlans.ExposureAction)]
    [InlineData(ApprovalAskPlans.RolloutAction)]
    [InlineData(ApprovalAskPlans.ExceptionAction)]
    public void TheAsks_AreApprovalRequested_AndKeepTheirApprovers(string action)
    {
        var e = Assert.Single(NotificationEvents.Of(Audit(action, ApprovalAsks.With(null, 2, ["carol@acme.io"], null))));
        Assert.Equal(NotificationEvents.ApprovalRequested, e.Type);
        Assert.Equal(1, (int)e.Details["approvers"]!["stillNeeded"]!);
    }

    [Theory]
    [InlineData("rollout.approved", "approved")]
    [InlineData("rollout.rejected", "rejected")]
    [InlineData("rollout.promoted", "approved")]
    public void RolloutDecisions_AreApprovalDecided(string action, string decision)
    {
        var e = Assert.Single(NotificationEvents.Of(Audit(action)));
        Assert.Equal(NotificationEvents.ApprovalDecided, e.Type);
        Assert.Equal(decision, (string?)e.Details["decision"]);
    }

    [Fact]
    public void AnExposurePublishedOrRejected_IsAlsoTheDecision_ButASecurityRefusalIsNot()
    {
        var published = NotificationEvents.Of(Audit("exposure.published"));
        Assert.Equal([NotificationEvents.ExposurePublished, NotificationEvents.ApprovalDecided], published.Select(e => e.Type));
        Assert.Equal("approved", (string?)published[1].Details["decision"]);
        var rejected = NotificationEvents.Of(Audit("exposure.rejected"));
        Assert.Equal([NotificationEvents.ExposureRejected, NotificationEvents.ApprovalDecided], rejected.Select(e => e.Type));
        Assert.Equal("rejected", (string?)rejected[1].Details["decision"]);
        Assert.Equal([NotificationEvents.ExposureRejected], NotificationEvents.Of(Audit("exposure.refused")).Select(e => e.Type));
    }

    // --- Exposure ---

    static Exposure Exposure(long generation = 1, bool publish = true) => new()
    {
        Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "acme-dev", Generation = generation, Uid = "e1" },
        Spec = new ExposureSpec { Publish = publish, Path = "/orders", Backend = new ExposureBackend { Service = "orders", Port = 8080 } },
    };

    static Exposure Waiting(Exposure e, long conditionGeneration)
    {
        e.Status = new ExposureStatus
        {
            Phase = ExposurePhase.PendingApproval,
            Conditions = new ConditionSet(null, conditionGeneration, T0).Set(ExposureConditions.Approved, false, ExposureReasons.AwaitingApproval, NotYet.Message).ToList(),
        };
        return e;
    }

    [Fact]
    public void AnExposure_IsAskedFor_OncePerGeneration_WithItsApprovers()
    {
        var ask = ApprovalAskPlans.ForExposure(Exposure(), NotYet, null);
        Assert.NotNull(ask);
        Assert.Equal((ApprovalAskPlans.ExposureAction, ExposureReasons.AwaitingApproval), (ask.Action, ask.Reason));
        Assert.Equal(ExposureReasons.AwaitingApproval, (string?)ask.Details["reason"]); // what AuditExistsAsync de-duplicates by, with the generation
        Assert.Equal(1, (long)ask.Details["generation"]!);
        Assert.Equal(2, (int)ask.Details["approvers"]!["required"]!);
        Assert.Equal(1, (int)ask.Details["approvers"]!["stillNeeded"]!);
        Assert.Equal(ApprovalPolicy.ApproverRoles, ask.Details["approvers"]!["roles"]!.AsArray().Select(r => (string)r!));

        // The status already says this generation waits: a resync asks nothing.
        Assert.Null(ApprovalAskPlans.ForExposure(Waiting(Exposure(), 1), NotYet, null));
        // An edit (generation 2, generation 1 live): a new ask.
        var edited = ApprovalAskPlans.ForExposure(Waiting(Exposure(2), 1), NotYet, 1);
        Assert.Equal(2, (long)edited!.Details["generation"]!);
        Assert.Equal(1, (long)edited.Details["liveGeneration"]!);
    }

    [Fact]
    public void AnExposure_ThatWaitsForNothing_IsNotAskedFor()
    {
        Assert.Null(ApprovalAskPlans.ForExposure(Exposure(), Approved, null));
        Assert.Null(ApprovalAskPlans.ForExposure(Exposure(), Rejected, null));
        Assert.Null(ApprovalAskPlans.ForExposure(Exposure(publish: false), NotYet, null));
        Assert.Null(ApprovalAskPlans.ForExposure(Exposure(), NotYet, 1)); // the current generation is live
    }

    // --- Exception ---

    static SecurityException Exception(long generation = 1, SecurityExceptionStatus? status = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "waiver", NamespaceProperty = "acme-dev", Uid = "x1", Generation = generation, CreationTimestamp = T0.AddDays(-1),
            Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "olga@acme.io" },
        },
        Spec = new SecurityExceptionSpec
        {
            Type = "vulnerability", Artifact = new ExceptionArtifact { Image = "registry.example/orders:2.1.0", Sha256 = new string('a', 64) },
            Covers = ["CVE-2025-12345"], Severity = "High", CompensatingControls = ["WAF rule 9001 blocks the upload path"],
            Owner = "dana@acme.io", ExpiresAt = T0.AddDays(20), Justification = "The vulnerable parser is unreachable because uploads are disabled in this service.",
        },
        Status = status,
    };

    static readonly Tenant Acme = new() { Metadata = new V1ObjectMeta { Name = "acme" }, Spec = new TenantSpec { Region = "eu" } };
    static readonly ApprovalState NoReviewerYet = new(false, false, 1, [], [], "0 of 1 approval(s) for generation 1");

    /// <summary>The status the reconciler writes from a decision.</summary>
    static SecurityExceptionStatus StatusOf(ExceptionDecision d, long generation) => new()
    {
        Phase = d.Phase,
        ObservedGeneration = generation,
        Conditions = new ConditionSet(null, generation, T0).Apply(d.Conditions).ToList(),
    };

    [Fact]
    public void AnException_IsAskedFor_OncePerGeneration_NamingTheSecurityReviewers()
    {
        var first = ExceptionPlan.Decide(new(Exception(), Acme, NoReviewerYet, T0));
        Assert.Equal(ExceptionPhase.Pending, first.Phase);
        var ask = Assert.Single(first.Audits);
        Assert.Equal(ApprovalAskPlans.ExceptionAction, ask.Action);
        Assert.True(ask.Once); // the apply appends it only if this generation's ask is not on record
        Assert.Equal(ExceptionReasons.AwaitingApproval, (string?)ask.Details["reason"]);
        Assert.Equal(1, (long)ask.Details["generation"]!);
        Assert.Equal(1, (int)ask.Details["approvers"]!["required"]!);
        Assert.Equal(ExceptionApprovals.ReviewerRoles, ask.Details["approvers"]!["roles"]!.AsArray().Select(r => (string)r!));

        // The next pass reads the status the first wrote: nothing to ask, nothing to tell.
        var again = ExceptionPlan.Decide(new(Exception(status: StatusOf(first, 1)), Acme, NoReviewerYet, T0.AddMinutes(1)));
        Assert.Empty(again.Audits);
        Assert.Empty(again.Notices);

        // A status written while Postgres was down (Ready: DatabaseUnavailable) asks again; the apply de-duplicates.
        var failed = StatusOf(first, 1);
        failed.Conditions = new ConditionSet(failed.Conditions, 1, T0).Set(ExceptionConditions.Ready, false, "DatabaseUnavailable", "down").ToList();
        Assert.Equal(ApprovalAskPlans.ExceptionAction, Assert.Single(ExceptionPlan.Decide(new(Exception(status: failed), Acme, NoReviewerYet, T0)).Audits).Action);

        // An edit while pending: the new generation is asked for.
        var edited = ExceptionPlan.Decide(new(Exception(2, StatusOf(first, 1)), Acme, NoReviewerYet, T0.AddMinutes(2)));
        Assert.Equal(2, (long)Assert.Single(edited.Audits).Details["generation"]!);

        // Approved or rejected at first sight: nobody is asked.
        Assert.DoesNotContain(ExceptionPlan.Decide(new(Exception(), Acme, new ApprovalState(true, false, 1, ["sam@acme.io"], [], "approved"), T0)).Audits,
            a => a.Action == ApprovalAskPlans.ExceptionAction);
        Assert.DoesNotContain(ExceptionPlan.Decide(new(Exception(), Acme, new ApprovalState(false, true, 1, [], ["sam@acme.io"], "rejected"), T0)).Audits,
            a => a.Action == ApprovalAskPlans.ExceptionAction);
    }

    // --- Rollout ---

    static Rollout Rollout(long generation = 1, string? promote = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "lab", Generation = generation, Uid = "r1" },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "r/app:2" }] },
            Rings = [new Ring { Name = "r0", Workspaces = ["lab"], RequiresApproval = true, Soak = "1h" }, new Ring { Name = "r1", Workspaces = ["c1"] }],
            Gates = new RolloutGates { ProgressDeadline = "10m" },
            Promote = promote,
        },
    };

    static readonly RingView[] Rings = [new(["lab"], []), new(["c1"], [])];

    static DeploymentView View(string ns, string image) =>
        new(ns, true, image == "r/app:2", image == "r/app:2", [new ContainerImage { Name = "app", Image = image }], 0, 0, null, "1/1");

    static RolloutFacts Facts(ApprovalState? approval, DateTime? now = null, string lab = "r/app:1") =>
        new(now ?? T0, [], "acme", false, null, Rings, new[] { View("lab", lab), View("c1", "r/app:1") }.ToDictionary(v => v.Namespace), approval, null,
            RequesterAccess.Granted(["lab", "c1"]));

    /// <summary>What the reconciler writes: the decision's status with its conditions set from the verdicts.</summary>
    static Rollout Applied(Rollout r, RolloutDecision d, long? generation = null)
    {
        var conditions = new ConditionSet(r.Status?.Conditions, r.Metadata.Generation, T0)
            .Set(RolloutConditions.Progressing, d.Progressing.Status, d.Progressing.Reason, d.Progressing.Message)
            .Set(RolloutConditions.Paused, d.Paused.Status, d.Paused.Reason, d.Paused.Message)
            .Set(RolloutConditions.Ready, d.Ready.Status, d.Ready.Reason, d.Ready.Message);
        d.Status.Conditions = conditions.ToList();
        r.Status = d.Status;
        if (generation is { } g) r.Metadata.Generation = g;
        return r;
    }

    [Fact]
    public void ARingWaitingForApproval_IsAskedFor_OncePerGeneration_ThenTheDecisionIsAudited()
    {
        var r = Rollout();
        var waiting = RolloutPlan.Decide(r, Facts(NotYet));
        Assert.Equal(RingPhase.AwaitingApproval, waiting.Status.Rings![0].Phase);
        var ask = Assert.Single(waiting.Notices, n => n.AuditAction == ApprovalAskPlans.RolloutAction);
        Assert.Equal("r0", ask.AuditReason);
        Assert.Equal("r0", (string?)ask.AuditDetails!["ring"]);
        Assert.Equal("start", (string?)ask.AuditDetails["step"]);
        Assert.Equal(1, (int)ask.AuditDetails["approvers"]!["stillNeeded"]!);

        // A resync: the status shows r0 awaiting approval of this generation; no notice, no audit.
        r = Applied(r, waiting);
        Assert.Empty(RolloutPlan.Decide(r, Facts(NotYet)).Notices);

        // An edit: generation 2 waits anew.
        var edited = RolloutPlan.Decide(Applied(Rollout(), waiting, generation: 2), Facts(NotYet));
        Assert.Contains(edited.Notices, n => n.AuditAction == ApprovalAskPlans.RolloutAction && n.AuditReason == "r0");

        // Approved: the ring starts, and the decision is audited with who approved.
        var approved = RolloutPlan.Decide(r, Facts(Approved));
        Assert.Equal(RingPhase.Progressing, approved.Status.Rings![0].Phase);
        var decided = Assert.Single(approved.Notices, n => n.AuditAction == "rollout.approved");
        Assert.Equal("r0", decided.AuditReason);
        Assert.Equal(["carol@acme.io", "dave@acme.io"], decided.AuditDetails!["approvers"]!.AsArray().Select(a => (string)a!));
        Assert.DoesNotContain(approved.Notices, n => n.AuditAction == ApprovalAskPlans.RolloutAction);
    }

    [Fact]
    public void ARejectedRing_IsAuditedOnce_AndNotAskedFor()
    {
        var r = Rollout();
        var rejected = RolloutPlan.Decide(r, Facts(Rejected));
        Assert.Equal(RolloutReasons.Rejected, rejected.Paused.Reason);
        Assert.DoesNotContain(rejected.Notices, n => n.AuditAction == ApprovalAskPlans.RolloutAction);
        var n = Assert.Single(rejected.Notices, x => x.AuditAction == "rollout.rejected");
        Assert.True(n.Warning);
        Assert.Equal(["erin@acme.io"], n.AuditDetails!["rejectedBy"]!.AsArray().Select(a => (string)a!));
        Assert.Empty(RolloutPlan.Decide(Applied(r, rejected), Facts(Rejected)).Notices);
    }

    [Fact]
    public void APromoteWaitingForApproval_IsAskedFor_Once()
    {
        var r = Rollout(2, promote: "r0");
        r.Status = new RolloutStatus
        {
            Phase = RolloutPhase.Progressing,
            Rings = [new RingStatus { Name = "r0", Phase = RingPhase.Soaking, Workspaces = ["lab"], StartedAt = T0, RolledOutAt = T0.AddMinutes(1) }, new RingStatus { Name = "r1", Phase = RingPhase.Pending }],
        };
        var d = RolloutPlan.Decide(r, Facts(NotYet, T0.AddMinutes(5), lab: "r/app:2"));
        Assert.Equal(RolloutReasons.PromotionRefused, d.Progressing.Reason);
        var ask = Assert.Single(d.Notices, n => n.AuditAction == ApprovalAskPlans.RolloutAction);
        Assert.Equal(ApprovalAskPlans.PromoteReason("r0"), ask.AuditReason);
        Assert.Equal("promote", (string?)ask.AuditDetails!["step"]);
        Assert.Empty(RolloutPlan.Decide(Applied(r, d), Facts(NotYet, T0.AddMinutes(6), lab: "r/app:2")).Notices);
    }
}
