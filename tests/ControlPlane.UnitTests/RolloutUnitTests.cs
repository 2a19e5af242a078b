using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The Rollout state machine and its pure helpers, without servers.</summary>
public sealed class RolloutUnitTests
{
    static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    const string Old = "r/app:1", New = "r/app:2";

    static Rollout NewRollout(params Ring[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "lab", Generation = 1, Uid = "u1" },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = New }] },
            Rings = [.. rings],
            Gates = new RolloutGates { ProgressDeadline = "10m", MaxIncidents = 0 },
        },
    };

    static DeploymentView View(string ns, string image, bool rolledOut = true, int restarts = 0, int notReady = 0, DateTime? lastRestart = null) =>
        new(ns, true, image == New, rolledOut && image == New, [new ContainerImage { Name = "app", Image = image }], restarts, notReady, lastRestart, "2/2");

    static RolloutFacts Facts(DateTime now, IReadOnlyList<RingView> rings, params DeploymentView[] views) =>
        new(now, [], "acme", false, null, rings, views.ToDictionary(v => v.Namespace), null, null, RequesterAccess.Granted(views.Select(v => v.Namespace)));

    static readonly RingView[] TwoRings = [new(["lab"], []), new(["c1", "c2"], [])];

    static Rollout Applied(Rollout r, RolloutDecision d)
    {
        r.Status = d.Status;
        return r;
    }

    [Fact]
    public void StartingARing_RecordsPreviousImages_AndPatchesOnlyWhatIsOffTarget()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] }, new Ring { Name = "r1", Workspaces = ["c1", "c2"] });
        var d = RolloutPlan.Decide(r, Facts(T0, TwoRings, View("lab", Old), View("c1", Old), View("c2", Old)));
        Assert.Equal(RolloutPhase.Progressing, d.Status.Phase);
        Assert.Equal("r0", d.Status.CurrentRing);
        Assert.Equal(RingPhase.Progressing, d.Status.Rings![0].Phase);
        Assert.Equal(RingPhase.Pending, d.Status.Rings[1].Phase);
        Assert.Equal("lab", Assert.Single(d.Status.Previous!).Namespace);
        Assert.Equal(Old, d.Status.Previous![0].Containers.Single().Image);
        Assert.Equal("lab", Assert.Single(d.Patches).Namespace);
        Assert.False(d.Rollback);
        Assert.Equal(TimeSpan.FromMinutes(10), d.RequeueAfter);
    }

    [Fact]
    public void SoakIsCountedFromStatus_ThenTheRingIsPromoted_AndTheNextStartsInTheSamePass()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"], Soak = "10m" }, new Ring { Name = "r1", Workspaces = ["c1", "c2"] });
        r = Applied(r, RolloutPlan.Decide(r, Facts(T0, TwoRings, View("lab", Old), View("c1", Old), View("c2", Old))));
        var rolledOut = RolloutPlan.Decide(r, Facts(T0.AddMinutes(1), TwoRings, View("lab", New), View("c1", Old), View("c2", Old)));
        Assert.Equal(RingPhase.Soaking, rolledOut.Status.Rings![0].Phase);
        Assert.Equal("0/2", rolledOut.Status.Progress); // kubectl's RINGS column
        Assert.Equal(T0.AddMinutes(1), rolledOut.Status.Rings[0].RolledOutAt);
        Assert.Equal(TimeSpan.FromMinutes(10), rolledOut.RequeueAfter);
        r = Applied(r, rolledOut);

        // An operator restarted mid-soak has only the status: 5 minutes in, 5 to go.
        var midSoak = RolloutPlan.Decide(r, Facts(T0.AddMinutes(6), TwoRings, View("lab", New), View("c1", Old), View("c2", Old)));
        Assert.Equal(TimeSpan.FromMinutes(5), midSoak.RequeueAfter);
        Assert.Empty(midSoak.Patches);

        var promoted = RolloutPlan.Decide(r, Facts(T0.AddMinutes(11), TwoRings, View("lab", New), View("c1", Old), View("c2", Old)));
        Assert.Equal(RingPhase.Succeeded, promoted.Status.Rings![0].Phase);
        Assert.Equal(RingPhase.Progressing, promoted.Status.Rings[1].Phase);
        Assert.Equal("1/2", promoted.Status.Progress);
        Assert.Equal(["c1", "c2"], promoted.Patches.Select(p => p.Namespace));
        Assert.Contains(promoted.Notices, n => n is { Reason: "RingPromoted", AuditAction: "rollout.ring-promoted", AuditReason: "r0" });
        Assert.Equal(3, promoted.Status.Previous!.Count);
    }

    [Fact]
    public void IncidentsOverTheLimit_RollBackEveryTouchedNamespace_TimedFromTheLastCrash()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] }, new Ring { Name = "r1", Workspaces = ["c1", "c2"], Soak = "1h" });
        r = Applied(r, RolloutPlan.Decide(r, Facts(T0, TwoRings, View("lab", Old), View("c1", Old), View("c2", Old))));
        r = Applied(r, RolloutPlan.Decide(r, Facts(T0.AddSeconds(10), TwoRings, View("lab", New), View("c1", Old), View("c2", Old))));
        Assert.Equal(RingPhase.Progressing, r.Status!.Rings![1].Phase);
        var crash = T0.AddSeconds(20);
        var d = RolloutPlan.Decide(r, Facts(T0.AddSeconds(23), TwoRings, View("lab", New), View("c1", New, rolledOut: false, restarts: 1, lastRestart: crash), View("c2", New, rolledOut: false)));
        Assert.True(d.Rollback);
        Assert.Equal(RolloutPhase.RolledBack, d.Status.Phase);
        Assert.Equal(RingPhase.RolledBack, d.Status.Rings![1].Phase);
        Assert.Equal(["lab", "c1", "c2"], d.Patches.Select(p => p.Namespace));
        Assert.All(d.Patches, p => Assert.Equal(Old, p.Containers.Single().Image));
        Assert.Equal("incidents", d.Status.Rollback!.Gate);
        Assert.Equal(crash, d.Status.Rollback.BreachObservableAt);
        Assert.Equal(3, d.Status.Rollback.SecondsToIssue);
        Assert.Contains(d.Notices, n => n.AuditAction == "rollout.rolled-back");

        // A rollback whose patch failed somewhere (not issued) is issued again where images still differ.
        var partly = Applied(r, d);
        partly.Status!.Rollback!.IssuedAt = null; // what the reconciler records when a patch failed
        var retry = RolloutPlan.Decide(partly, Facts(T0.AddSeconds(30), TwoRings, View("lab", Old), View("c1", New), View("c2", Old)));
        Assert.True(retry.Rollback);
        Assert.Equal("c1", Assert.Single(retry.Patches).Namespace);

        // Issued, finished is final: nothing more is patched.
        partly.Status!.Rollback!.IssuedAt = T0.AddSeconds(31);
        var after = RolloutPlan.Decide(partly, Facts(T0.AddMinutes(1), TwoRings, View("lab", Old), View("c1", New), View("c2", Old)));
        Assert.Empty(after.Patches);
        Assert.False(after.Rollback);
        Assert.Equal(RolloutPhase.RolledBack, after.Status.Phase);
    }

    [Fact]
    public void APassedDeadline_IsABreachObservableAtTheDeadline_AndWithoutAutoRollbackTheRolloutFails()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] });
        r.Spec.AutoRollback = false;
        RingView[] one = [new(["lab"], [])];
        r = Applied(r, RolloutPlan.Decide(r, Facts(T0, one, View("lab", Old))));
        var d = RolloutPlan.Decide(r, Facts(T0.AddMinutes(11), one, View("lab", New, rolledOut: false)));
        Assert.False(d.Rollback);
        Assert.Empty(d.Patches);
        Assert.Equal(RolloutPhase.Failed, d.Status.Phase);
        Assert.Equal("progressDeadline", d.Status.Rollback!.Gate);
        Assert.Equal(T0.AddMinutes(10), d.Status.Rollback.BreachObservableAt);
        Assert.True(RolloutPlan.IsFinished(d.Status));
    }

    [Fact]
    public void MetricsUnavailable_HoldsTheRing_ButALowSuccessRate_RollsBack()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"], Soak = "1h" });
        r.Spec.Gates!.SuccessRate = new SuccessRateGate { Query = "q", Threshold = 0.98 };
        RingView[] one = [new(["lab"], [])];
        r = Applied(r, RolloutPlan.Decide(r, Facts(T0, one, View("lab", Old))));
        r = Applied(r, RolloutPlan.Decide(r, Facts(T0.AddSeconds(5), one, View("lab", New)) with { Metric = MetricReading.Of(0.99) }));
        Assert.Equal(RingPhase.Soaking, r.Status!.Rings![0].Phase);
        Assert.Equal(0.99, r.Status.Rings[0].SuccessRate);

        var down = RolloutPlan.Decide(r, Facts(T0.AddSeconds(10), one, View("lab", New)) with { Metric = MetricReading.Down("connection refused") });
        Assert.Equal(RolloutPhase.Paused, down.Status.Phase);
        Assert.Equal("MetricsUnavailable", down.Paused.Reason);
        Assert.False(down.Rollback);
        Assert.Empty(down.Patches);

        var low = RolloutPlan.Decide(r, Facts(T0.AddSeconds(15), one, View("lab", New)) with { Metric = MetricReading.Of(0.5) });
        Assert.True(low.Rollback);
        Assert.Equal("successRate", low.Status.Rollback!.Gate);
        Assert.Equal("0.5", low.Status.Rollback.Value);
    }

    [Fact]
    public void PausedAbortedSuspendedAndUnapproved_TakeNoStepForward()
    {
        RingView[] one = [new(["lab"], [])];
        var paused = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] });
        paused.Spec.Paused = true;
        var p = RolloutPlan.Decide(paused, Facts(T0, one, View("lab", Old)));
        Assert.Equal(RolloutPhase.Paused, p.Status.Phase);
        Assert.Empty(p.Patches);
        Assert.Contains(p.Notices, n => n.AuditAction == "rollout.paused");

        // Paused with a ring in flight: it finishes rolling out under its gates, and says it is paused.
        var inFlight = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] });
        inFlight = Applied(inFlight, RolloutPlan.Decide(inFlight, Facts(T0, one, View("lab", Old))));
        inFlight.Spec.Paused = true;
        var flying = RolloutPlan.Decide(inFlight, Facts(T0.AddSeconds(1), one, View("lab", New, rolledOut: false)));
        Assert.Equal(RolloutPhase.Paused, flying.Status.Phase);
        Assert.Equal(RingPhase.Progressing, flying.Status.Rings![0].Phase);
        Assert.True(flying.Paused.Status);

        var suspended = RolloutPlan.Decide(NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] }), Facts(T0, one, View("lab", Old)) with { TenantSuspended = true });
        Assert.Equal("TenantSuspended", suspended.Paused.Reason);
        Assert.Empty(suspended.Patches);

        var gated = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"], RequiresApproval = true });
        var waiting = RolloutPlan.Decide(gated, Facts(T0, one, View("lab", Old)) with { Approval = new ApprovalState(false, false, 2, ["carol"], [], "1 of 2 approval(s)") });
        Assert.Equal(RingPhase.AwaitingApproval, waiting.Status.Rings![0].Phase);
        Assert.Contains("1 of 2", waiting.Paused.Message);
        Assert.Empty(waiting.Patches);

        var other = RolloutPlan.Decide(NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] }), Facts(T0, one, View("lab", Old)) with { WaitingFor = "lab/first" });
        Assert.Equal("WaitingForRollout", other.Progressing.Reason);
        Assert.Empty(other.Patches);

        var aborted = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] });
        aborted = Applied(aborted, RolloutPlan.Decide(aborted, Facts(T0, one, View("lab", Old))));
        aborted.Spec.Abort = true;
        var a = RolloutPlan.Decide(aborted, Facts(T0.AddSeconds(1), one, View("lab", New)));
        Assert.True(a.Rollback);
        Assert.Equal("abort", a.Status.Rollback!.Gate);
        Assert.Equal(Old, a.Patches.Single().Containers.Single().Image);
    }

    [Fact]
    public void Rings_TakeOnlyTheRolloutsOwnTenantsWorkspaces()
    {
        Workspace Ws(string name, string tenant, string ring) => new()
        {
            Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["controlplane.io/ring"] = ring } },
            Spec = new WorkspaceSpec { Tenant = tenant },
        };
        var all = new[] { Ws("a1", "acme", "canary"), Ws("a2", "acme", "prod"), Ws("g1", "globex", "canary") }.ToDictionary(w => w.Metadata.Name);
        var view = RolloutResources.Resolve(new Ring { Name = "r", Workspaces = ["a2", "g1", "nope"], Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "canary" } } },
            "acme", n => all.GetValueOrDefault(n), all.Values);
        Assert.Equal(["a1", "a2"], view.Namespaces);
        Assert.Equal(2, view.Refused.Count);
        Assert.Contains(view.Refused, r => r.StartsWith("g1 (not a workspace of tenant acme", StringComparison.Ordinal));
    }

    [Fact]
    public void TwoApprovers_WhenAGatedRingReachesProd_WhereverTheRolloutLives()
    {
        Workspace Ws(string name, string environment, string tenant = "acme") => new()
        {
            Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["controlplane.io/ring"] = environment } },
            Spec = new WorkspaceSpec { Tenant = tenant, Environment = environment },
        };
        var all = new[] { Ws("lab", "dev"), Ws("live", "prod"), Ws("theirs", "prod", "globex") }.ToDictionary(w => w.Metadata.Name);
        string EnvironmentOf(params Ring[] rings) => RolloutResources.ApprovalEnvironment(NewRollout(rings), n => all.GetValueOrDefault(n), t => all.Values.Where(w => w.Spec.Tenant == t));
        Assert.Equal("prod", EnvironmentOf(new Ring { Name = "p", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "prod" } }, RequiresApproval = true }));
        // A ring reaching prod follows prod's rule whatever requiresApproval says (it can only raise it).
        Assert.Equal("prod", EnvironmentOf(new Ring { Name = "p", Workspaces = ["live"] }));
        Assert.Equal("dev", EnvironmentOf(new Ring { Name = "p", Workspaces = ["lab"], RequiresApproval = true }));
        // Another tenant's prod workspace neither counts nor is reached.
        Assert.Equal("dev", EnvironmentOf(new Ring { Name = "p", Workspaces = ["theirs"], RequiresApproval = true }));
    }

    [Fact]
    public void TheQueryIsTemplated_AndPrometheusAnswersAreParsed()
    {
        Assert.Equal("x{namespace=~\"a|b\"}", RolloutResources.Query("x{namespace=~\"{{namespaces}}\"}", ["a", "b"]));
        // A ring without namespaces is never queried: namespace=~"" would read every series without a namespace label.
        Assert.Null(RolloutResources.Query("x{namespace=~\"{{namespaces}}\"}", []));
        Assert.Equal(0.97, RolloutResources.ParsePrometheus("""{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"0.97"]}]}}"""));
        Assert.Null(RolloutResources.ParsePrometheus("""{"status":"success","data":{"resultType":"vector","result":[]}}"""));
        Assert.Null(RolloutResources.ParsePrometheus("""{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"NaN"]}]}}"""));
        Assert.Throws<FormatException>(() => RolloutResources.ParsePrometheus("""{"status":"error","error":"bad"}"""));
        Assert.Equal("""{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"r/app:2"}]}}},"metadata":{"uid":"u"}}""",
            RolloutResources.ImagePatch([new ContainerImage { Name = "app", Image = "r/app:2" }], "u"));
    }

    [Fact]
    public void AnIntentsRollout_EditedByAMember_NeedsTheProdApprovals_TheIntentNeverGaveIt()
    {
        const string operatorUser = "system:serviceaccount:controlplane-system:controlplane";
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["live"] });
        r.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.OnBehalfOfAnnotation] = Requesters.FormatOnBehalfOf([new ControlPlane.Operator.Policy.Requester("wade@example.com", [])]),
            [ApiGroup.CreatedByAnnotation] = operatorUser,
            [ApiGroup.LastSpecEditorAnnotation] = operatorUser,
            [ApiGroup.SpecEditorsAnnotation] = ApprovalPolicy.WithSpecEditor(null, operatorUser),
        };
        var prodRing = new RingView(["live"], [], ReachesProd: true);
        // As the operator made (and re-applied) it: the intent's approvals gate it.
        Assert.False(RolloutResources.NeedsApproval(r, new Ring { Name = "r0" }, prodRing));
        // The intent's author it acts for wrote what it deploys: an author, never its approver.
        Assert.Contains("wade@example.com", ApprovalPolicy.EveryAuthorOf(r));

        // bob (Operator in the workspace) added a prod workspace to its ring: his edit was never approved.
        r.Metadata.Annotations[ApiGroup.LastSpecEditorAnnotation] = "bob@example.com";
        r.Metadata.Annotations[ApiGroup.SpecEditorsAnnotation] = ApprovalPolicy.WithSpecEditor(r.Metadata.Annotations[ApiGroup.SpecEditorsAnnotation], "bob@example.com");
        Assert.True(RolloutResources.NeedsApproval(r, new Ring { Name = "r0" }, prodRing));

        // No creator on record (made where no webhook ran), but an editor: still an author nobody approved.
        r.Metadata.Annotations.Remove(ApiGroup.CreatedByAnnotation);
        Assert.True(RolloutResources.NeedsApproval(r, new Ring { Name = "r0" }, prodRing));
    }

    [Fact]
    public void ARingReachingProd_WaitsForApproval_EvenWithoutRequiresApproval()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["live"] });
        var prodRing = new RingView(["live"], [], ReachesProd: true);
        var unapproved = new ApprovalState(false, false, 2, ["carol@example.com"], [], "1 of 2 approval(s) for generation 1");
        var facts = Facts(T0, [prodRing], View("live", Old)) with { Approval = unapproved };
        var d = RolloutPlan.Decide(r, facts);
        Assert.Equal(RingPhase.AwaitingApproval, d.Status.Rings![0].Phase);
        Assert.Empty(d.Patches);
        Assert.Contains("reaches a prod workspace", d.Paused.Message);
        Assert.True(RolloutResources.NeedsApproval(r, new Ring { Name = "x" }, prodRing));
        Assert.False(RolloutResources.NeedsApproval(r, new Ring { Name = "x" }, new RingView(["lab"], [])));

        var approved = RolloutPlan.Decide(r, facts with { Approval = unapproved with { Approved = true } });
        Assert.Equal(RingPhase.Progressing, approved.Status.Rings![0].Phase);
        Assert.Single(approved.Patches);
    }

    [Fact]
    public void ARingDoesNotStart_WhenARequesterMayNotPatchThere_OrWasNotChecked()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] });
        var denied = RolloutPlan.Decide(r, Facts(T0, [new(["lab"], [])], View("lab", Old)) with { Access = new RequesterAccess(new HashSet<string> { "lab" }, [new("lab", "bob@example.com may not patch Deployment orders in workspace lab")]) });
        Assert.Empty(denied.Patches);
        Assert.Equal("RequesterForbidden", denied.Ready.Reason);
        Assert.Contains("spec.rings[0]: ring r0 does not start: bob@example.com may not patch Deployment orders in workspace lab", denied.Ready.Message);
        Assert.Equal(RingPhase.Pending, denied.Status.Rings![0].Phase);
        Assert.Null(denied.Status.Previous);
        var notice = Assert.Single(denied.Notices);
        Assert.True(notice.Warning);

        // The same again: no second Event (the condition already says it).
        var held = Applied(r, denied);
        held.Status!.Conditions = [new V1Condition { Type = "Ready", Status = "False", Reason = denied.Ready.Reason, Message = denied.Ready.Message }];
        var again = RolloutPlan.Decide(held, Facts(T0, [new(["lab"], [])], View("lab", Old)) with { Access = new RequesterAccess(new HashSet<string> { "lab" }, [new("lab", "bob@example.com may not patch Deployment orders in workspace lab")]) });
        Assert.Empty(again.Notices);

        var notChecked = RolloutPlan.Decide(NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] }), Facts(T0, [new(["lab"], [])], View("lab", Old)) with { Access = null });
        Assert.Empty(notChecked.Patches);
        Assert.Equal(RingPhase.Pending, notChecked.Status.Rings![0].Phase);
        Assert.Equal(TimeSpan.Zero, notChecked.RequeueAfter);
    }

    [Fact]
    public void TheRequesters_AreTheStampedAuthors_OrTheIntentsAuthors_NeverNobody()
    {
        var r = NewRollout(new Ring { Name = "r0", Workspaces = ["lab"] });
        Assert.Null(Requesters.OfRollout(r));
        r.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = "alice",
            [ApiGroup.SpecEditorsAnnotation] = """["bob"]""",
            [ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(Requesters.WithAuthorGroups(null, "alice", ["devs"]), "bob", ["ops"]),
        };
        var requesters = Requesters.OfRollout(r)!;
        Assert.Equal(["alice:devs", "bob:ops"], requesters.Select(x => $"{x.User}:{string.Join(',', x.Groups)}"));
        // Made by the operator for an intent: the intent's authors, never the operator.
        r.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = "system:serviceaccount:controlplane-system:controlplane",
            [ApiGroup.OnBehalfOfAnnotation] = Requesters.FormatOnBehalfOf([new("carol", ["devs"])]),
        };
        Assert.Equal("carol", Assert.Single(Requesters.OfRollout(r)!).User);
        r.Metadata.Annotations[ApiGroup.OnBehalfOfAnnotation] = "[]";
        Assert.Null(Requesters.OfRollout(r));
    }

    [Theory]
    [InlineData("sum(rate(http_requests_total{namespace=~\"{{namespaces}}\",code!~\"5..\"}[5m])) / sum(rate(http_requests_total{namespace=~\"{{namespaces}}\"}[5m]))")]
    [InlineData("sum by (namespace) (rate(x{namespace=~\"{{namespaces}}\"}[5m] offset 1m)) / on() group_left sum(rate(y{namespace=~'{{namespaces}}', job=\"a\"}[5m:1m]))")]
    [InlineData("clamp_max(sum(x{namespace=~\"{{namespaces}}\"}) or vector(1), 1)")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}\"}) by (a) or sum without (b) (y{namespace=~\"{{namespaces}}\"} offset 5m) and on(c) group_left z{namespace=~\"{{namespaces}}\"} > bool 1")]
    [InlineData("x{namespace=~\"{{namespaces}}\"} unless ignoring(a) offset{namespace=~\"{{namespaces}}\"}")]
    public void AQueryConfinedToTheRing_IsAllowed(string query) => Assert.Empty(PromQuery.Problems(query));

    [Theory]
    [InlineData("count(up{namespace=\"globex-dev\",secret=~\"...\"}) * 0.4711", "has no matcher")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}\"}) / sum(up)", "selector up")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}|globex-dev\"})", "has no matcher")]
    [InlineData("sum({__name__=~\".+\"})", "has no matcher")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}\"}) # {namespace=~\"{{namespaces}}\"}", "comments")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}\"}) or on() count(y{job=\"z\"})", "has no matcher")]
    [InlineData("info(x{namespace=~\"{{namespaces}}\"})", "info()")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}\"", "not closed")]
    [InlineData("sum(rate(offset[5m])) / sum(rate(x{namespace=~\"{{namespaces}}\"}[5m]))", "selector offset")]
    [InlineData("sum(x{namespace=~\"{{namespaces}}\"}) / sum(or)", "selector or")]
    [InlineData("x{namespace=~\"{{namespaces}}\"} * on(a) group_left BY", "selector BY")]
    [InlineData("x{namespace=~\"{{namespaces}}\"} and without", "selector without")]
    [InlineData("unless", "selector unless")]
    public void AQueryReadingOutsideTheRing_IsRefused_NamingTheField(string query, string why)
    {
        var problem = Assert.Single(PromQuery.Problems(query));
        Assert.StartsWith("spec.gates.successRate.query: ", problem, StringComparison.Ordinal);
        Assert.Contains(why, problem, StringComparison.Ordinal);
    }
}
