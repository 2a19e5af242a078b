using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 23, items 1 and 2, as pure decisions: an Application's scope versions (the first and every widening
/// wait for CAB, a narrowing takes effect at once, a mixed change narrows at once), the diff and blast radius,
/// the approval rule (strictest environment, never the author), the gate a DeploymentIntent passes, and the
/// publisher rule, each problem naming the dimension and the value outside.
/// </summary>
public sealed class ApplicationUnitTests
{
    static ApplicationScope Scope(string[] boundaries, string[] units, string[] sites, string[] rings) => new()
    {
        AcquisitionBoundaries = [.. boundaries], BusinessUnits = [.. units], SiteClasses = [.. sites], Rings = [.. rings],
    };

    static ApplicationScope Finance(params string[] rings) => Scope(["acq-001"], ["bu-finance"], ["online"], rings.Length == 0 ? ["ring-1"] : rings);

    static Tenant Acme(List<TenantPublisher>? publishers = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec
        {
            Scopes =
            [
                new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance", "bu-hr"], SiteClasses = ["online", "edge"] },
                new TenantScope { AcquisitionBoundary = "acq-002", BusinessUnits = ["bu-retail"], SiteClasses = ["online"] },
            ],
            Publishers = publishers,
        },
    };

    static Workspace Ws(string name, string ring, string environment = "dev", string bu = "bu-finance", string site = "online", string boundary = "acq-001") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            Labels = new Dictionary<string, string>
            {
                [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = boundary, [ApiGroup.BusinessUnitLabel] = bu, [ApiGroup.SiteClassLabel] = site,
            },
        },
        Spec = new WorkspaceSpec { Tenant = "acme", Environment = environment },
    };

    static Application App(ApplicationScope requested, ApplicationScope? approved = null, int? version = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "app-001", NamespaceProperty = "acme-dev", Uid = "u1", Generation = 1 },
        Spec = new ApplicationSpec { Owner = "alice@acme.io", AllowedScope = requested },
        Status = approved is null ? null : new ApplicationStatus { ScopeVersion = version ?? 1, ApprovedScope = approved, ApprovedBy = ["carol@acme.io"] },
    };

    static ApprovalState Waiting(int required = 1) => new(false, false, required, [], [], $"0 of {required} approval(s) for generation 1");
    static ApprovalState ApprovedBy(params string[] who) => new(true, false, who.Length, who, [], $"approved by {string.Join(", ", who)}");
    static readonly ApprovalState RejectedState = new(false, true, 1, [], ["dave@acme.io"], "rejected by dave@acme.io");

    static readonly Workspace Own = Ws("acme-dev", "ring-0");

    static ApplicationFacts Facts(Application app, ApprovalState state, IReadOnlyList<Workspace>? workspaces = null, Func<ApplicationApprovalRule, ApprovalState>? approvals = null) =>
        new(app, Acme(), Own, workspaces ?? [Own, Ws("acme-r1", "ring-1"), Ws("acme-r2", "ring-2", "prod"), Ws("acme-hr", "ring-1", bu: "bu-hr")], approvals ?? (_ => state));

    [Fact]
    public void Scopes_CompareBySet_PerDimension()
    {
        var a = Scope(["acq-001"], ["bu-hr", "bu-finance", "bu-finance"], ["online"], ["ring-2", "ring-1"]);
        var b = Scope(["acq-001"], ["bu-finance", "bu-hr"], ["online"], ["ring-1", "ring-2"]);
        Assert.True(ApplicationPlan.Same(a, b));
        Assert.True(ApplicationPlan.IsSubset(Finance("ring-1"), b));
        Assert.False(ApplicationPlan.IsSubset(b, Finance("ring-1")));
        Assert.True(ApplicationPlan.Same(Finance("ring-1"), ApplicationPlan.Intersect(b, Scope(["acq-001", "acq-002"], ["bu-finance"], ["online", "edge"], ["ring-1"]))));

        var diff = ApplicationPlan.Diff(Finance("ring-1"), Scope(["acq-001"], ["bu-hr"], ["online"], ["ring-1", "ring-2"]));
        Assert.Null(diff.AcquisitionBoundaries);
        Assert.Null(diff.SiteClasses);
        Assert.Equal(["bu-hr"], diff.BusinessUnits!.Added!);
        Assert.Equal(["bu-finance"], diff.BusinessUnits.Removed!);
        Assert.Equal(["ring-2"], diff.Rings!.Added!);
        Assert.Null(diff.Rings.Removed);
        Assert.Equal("businessUnits +bu-hr -bu-finance, rings +ring-2", ApplicationPlan.DescribeDiff(diff));
        // Nothing approved yet: every value is added.
        Assert.Equal(["acq-001"], ApplicationPlan.Diff(null, Finance()).AcquisitionBoundaries!.Added!);
    }

    [Fact]
    public void BlastRadius_IsTheWorkspacesAndRingsNewlyInScope_ByAllFourLabels()
    {
        var workspaces = new[] { Ws("w1", "ring-1"), Ws("w2", "ring-2", "prod"), Ws("w3", "ring-2", bu: "bu-hr"), Ws("w4", "ring-2", site: "edge"), Ws("w5", "ring-3") };
        var radius = ApplicationPlan.BlastRadiusOf(Finance("ring-1"), Finance("ring-1", "ring-2"), workspaces);
        Assert.Equal(["w2"], radius.Workspaces!);
        Assert.Equal(["ring-2"], radius.Rings!);
        Assert.Equal("prod", radius.Environment);
        // The first version: everything in scope is new.
        Assert.Equal(["w1", "w2"], ApplicationPlan.BlastRadiusOf(null, Finance("ring-1", "ring-2"), workspaces).Workspaces!);
        // A workspace without a site-class label is in no scope (every dimension is declared).
        var unlabelled = Ws("w6", "ring-1");
        unlabelled.Metadata.Labels!.Remove(ApiGroup.SiteClassLabel);
        Assert.False(ApplicationPlan.InScope(unlabelled, Finance("ring-1")));
        Assert.Empty(ApplicationPlan.BlastRadiusOf(Finance("ring-1"), Finance("ring-1"), workspaces).Workspaces!);
    }

    [Fact]
    public void TheFirstVersion_WaitsForCab_ThenTakesEffect_Recorded_WithItsApprovers()
    {
        var app = App(Finance("ring-1"));
        var waiting = ApplicationPlan.Decide(Facts(app, Waiting()));
        Assert.Equal(ApplicationPhase.AwaitingApproval, waiting.Phase);
        Assert.Empty(waiting.NewVersions);
        Assert.Null(waiting.ScopeVersion);
        Assert.Null(waiting.ApprovedScope);
        Assert.Equal(1, waiting.Pending!.Version);
        Assert.Equal(["acme-r1"], waiting.Pending.BlastRadius!.Workspaces!);
        Assert.Equal((false, ApplicationReasons.AwaitingApproval), (waiting.Ready.Status, waiting.Ready.Reason));
        Assert.Contains("no scope is approved yet", waiting.Ready.Message);

        var approved = ApplicationPlan.Decide(Facts(app, ApprovedBy("carol@acme.io")));
        Assert.Equal(ApplicationPhase.Active, approved.Phase);
        var v1 = Assert.Single(approved.NewVersions);
        Assert.Equal((1, ApplicationReasons.ScopeApproved), (v1.Version, v1.Reason));
        Assert.Equal(["carol@acme.io"], v1.Approvers);
        Assert.Equal(1, approved.ScopeVersion);
        Assert.True(ApplicationPlan.Same(Finance("ring-1"), approved.ApprovedScope!));
        Assert.Null(approved.Pending);
        Assert.True(approved.ScopeApproved.Status);

        // Once in effect, a pass with nothing new records nothing.
        var steady = ApplicationPlan.Decide(Facts(App(Finance("ring-1"), Finance("ring-1")), Waiting()));
        Assert.Equal(ApplicationPhase.Active, steady.Phase);
        Assert.Empty(steady.NewVersions);
        Assert.Equal(1, steady.ScopeVersion);
    }

    [Fact]
    public void AWidening_WaitsForCab_WhileTheApprovedScopeStaysInEffect_AndARejectionKeepsIt()
    {
        var app = App(Finance("ring-1", "ring-2"), Finance("ring-1"), version: 2);
        var waiting = ApplicationPlan.Decide(Facts(app, Waiting(2)));
        Assert.Equal(ApplicationPhase.AwaitingApproval, waiting.Phase);
        Assert.Equal(2, waiting.ScopeVersion);
        Assert.True(ApplicationPlan.Same(Finance("ring-1"), waiting.ApprovedScope!));
        Assert.Equal(3, waiting.Pending!.Version);
        Assert.Equal(["ring-2"], waiting.Pending.Diff!.Rings!.Added!);
        Assert.Equal(["acme-r2"], waiting.Pending.BlastRadius!.Workspaces!);
        Assert.Equal("prod", waiting.Pending.BlastRadius.Environment);
        Assert.Contains("scope v2 stays in effect", waiting.Ready.Message);

        var rejected = ApplicationPlan.Decide(Facts(app, RejectedState));
        Assert.Equal(ApplicationPhase.Rejected, rejected.Phase);
        Assert.Empty(rejected.NewVersions);
        Assert.Equal(2, rejected.ScopeVersion);
        Assert.Equal(ApplicationReasons.Rejected, rejected.Ready.Reason);

        var approved = ApplicationPlan.Decide(Facts(app, ApprovedBy("carol@acme.io", "erin@acme.io")));
        Assert.Equal(3, Assert.Single(approved.NewVersions).Version);
        Assert.Equal(3, approved.ScopeVersion);
    }

    [Fact]
    public void ANarrowing_TakesEffectAtOnce_WithoutApproval_AndAMixedChange_NarrowsFirst()
    {
        var narrowed = ApplicationPlan.Decide(Facts(App(Finance("ring-1"), Finance("ring-1", "ring-2"), version: 1), Waiting()));
        Assert.Equal(ApplicationPhase.Active, narrowed.Phase);
        var v2 = Assert.Single(narrowed.NewVersions);
        Assert.Equal((2, ApplicationReasons.ScopeNarrowed), (v2.Version, v2.Reason));
        Assert.Empty(v2.Approvers);
        Assert.Equal(["ring-2"], v2.Diff.Rings!.Removed!);
        Assert.Equal(2, narrowed.ScopeVersion);
        Assert.Empty(narrowed.ApprovedBy!);

        // ring-2 out (at once, v2), ring-3 in (CAB, v3): what stays in effect meanwhile is only ring-1.
        var mixed = ApplicationPlan.Decide(Facts(App(Finance("ring-1", "ring-3"), Finance("ring-1", "ring-2"), version: 1), Waiting()));
        Assert.Equal(ApplicationPhase.AwaitingApproval, mixed.Phase);
        Assert.Equal(2, Assert.Single(mixed.NewVersions).Version);
        Assert.Equal(2, mixed.ScopeVersion);
        Assert.True(ApplicationPlan.Same(Finance("ring-1"), mixed.ApprovedScope!));
        Assert.Equal(3, mixed.Pending!.Version);
        Assert.Equal(["ring-3"], mixed.Pending.Diff!.Rings!.Added!);
        Assert.Null(mixed.Pending.Diff.Rings.Removed);

        // Approved in the same pass: both versions are recorded, oldest first.
        var both = ApplicationPlan.Decide(Facts(App(Finance("ring-1", "ring-3"), Finance("ring-1", "ring-2"), version: 1), ApprovedBy("carol@acme.io")));
        Assert.Equal([2, 3], both.NewVersions.Select(v => v.Version));
        Assert.Equal(3, both.ScopeVersion);
    }

    [Fact]
    public void AScopeOutsideTheTenants_OrOutsideAWorkspace_Fails_NamingTheField_AndKeepsWhatIsApproved()
    {
        var outside = ApplicationPlan.Decide(Facts(App(Scope(["acq-001"], ["bu-x"], ["online"], ["ring-1"]), Finance("ring-1")), ApprovedBy("carol@acme.io")));
        Assert.Equal(ApplicationPhase.Failed, outside.Phase);
        Assert.Empty(outside.NewVersions);
        Assert.Equal(1, outside.ScopeVersion);
        Assert.Equal(ApplicationReasons.ScopeOutsideTenant, outside.Ready.Reason);
        Assert.StartsWith("spec.allowedScope.businessUnits[0]: \"bu-x\" is not a business unit of acq-001 in tenant acme's spec.scopes (bu-finance, bu-hr)", outside.Ready.Message);

        var lost = ApplicationPlan.Decide(new ApplicationFacts(App(Finance()), null, null, [], _ => ApprovedBy("carol@acme.io")));
        Assert.Equal((ApplicationPhase.Failed, ApplicationReasons.NotInAWorkspace), (lost.Phase, lost.Ready.Reason));
        Assert.Empty(lost.NewVersions);
    }

    [Fact]
    public void SpecRules_NameTheField_ForApplicationsAndPublishers()
    {
        Assert.Equal(
        [
            "spec.allowedScope.acquisitionBoundaries[1]: \"acq-009\" is not one of tenant acme's spec.scopes (acq-001, acq-002)",
            "spec.allowedScope.businessUnits[1]: \"bu-retail\" is not a business unit of acq-001 in tenant acme's spec.scopes (bu-finance, bu-hr)",
            "spec.allowedScope.rings[0]: \"Ring_1\" is not a DNS label (a ring is the controlplane.io/ring label of workspaces)",
        ], SpecRules.ApplicationScope(Scope(["acq-001", "acq-009"], ["bu-finance", "bu-retail"], ["online"], ["Ring_1"]), Acme()));
        Assert.Empty(SpecRules.ApplicationScope(Scope(["acq-001", "acq-002"], ["bu-finance", "bu-retail"], ["online", "edge"], ["ring-1"]), Acme()));

        var spec = Acme(
        [
            new TenantPublisher { Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001" }] },
            new TenantPublisher { Groups = ["system:authenticated"], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-009" }] },
            new TenantPublisher { Subjects = ["bob@acme.io"], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-retail"], SiteClasses = ["online"], Rings = ["ring-1"] }] },
        ]).Spec;
        Assert.Equal(
        [
            "spec.publishers[0]: name at least one of subjects and groups: an entry that applies to nobody grants nothing",
            "spec.publishers[1].groups[0]: \"system:authenticated\" is not allowed: a system: group (every ServiceAccount, everyone authenticated) never publishes",
            "spec.publishers[1].scopes[0].acquisitionBoundary: \"acq-009\" is not one of the tenant's spec.scopes",
            "spec.publishers[2].scopes[0].businessUnits[0]: \"bu-retail\" is not a business unit of acq-001 in the tenant's spec.scopes (bu-finance, bu-hr)",
        ], SpecRules.Publishers(spec));
    }

    [Fact]
    public void TheApprovalRule_IsTheStrictestEnvironment_AndProdTargetsAreTheOnesNewlyReached()
    {
        var workspaces = new[] { Own, Ws("acme-r1", "ring-1"), Ws("acme-r2", "ring-2", "prod") };
        Assert.Equal(1, ApplicationPlan.ApprovalRule(Own, null, Finance("ring-1"), workspaces).Required);
        var prod = ApplicationPlan.ApprovalRule(Own, Finance("ring-1"), Finance("ring-1", "ring-2"), workspaces);
        Assert.Equal(("prod", 2), (prod.Environment, prod.Required));
        Assert.Equal(["acme-r2"], prod.ProdTargets);
        // Already reaching prod: any further change needs two, though prod is not newly reached.
        var again = ApplicationPlan.ApprovalRule(Own, Finance("ring-1", "ring-2"), Finance("ring-1", "ring-2", "ring-3"), workspaces);
        Assert.Equal((2, 0), (again.Required, again.ProdTargets.Count));
        // The application's own workspace in prod: two as well.
        Assert.Equal(2, ApplicationPlan.ApprovalRule(Ws("acme-prod", "ring-9", "prod"), null, Finance("ring-1"), workspaces).Required);
    }

    static V1RoleBinding Approvers(string ns, params string[] users) => new()
    {
        Metadata = new V1ObjectMeta { Name = "approvers", NamespaceProperty = ns },
        RoleRef = new V1RoleRef { Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName("Approver") },
        Subjects = users.Select(u => new Rbacv1Subject { Kind = "User", Name = u }).ToList(),
    };

    static Approval Approve(Application app, string approver) => new()
    {
        Metadata = new V1ObjectMeta { Name = "apr-" + approver[..4], NamespaceProperty = app.Metadata.NamespaceProperty, Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = "[]" } },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = Application.KubeKind, Name = app.Metadata.Name }, Decision = "approve", Approver = approver,
            TargetUID = app.Metadata.Uid, TargetGeneration = app.Metadata.Generation,
        },
    };

    [Fact]
    public void InProd_TwoDistinctApproversOfTheProdTargets_NeverTheAuthor()
    {
        var app = App(Finance("ring-1", "ring-2"), Finance("ring-1"));
        app.Metadata.Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "bob@acme.io" };
        var workspaces = new[] { Own, Ws("acme-r1", "ring-1"), Ws("acme-r2", "ring-2", "prod") };
        var rule = ApplicationPlan.RuleFor(app, Own, workspaces);
        var bindings = new Dictionary<string, V1RoleBinding[]>
        {
            ["acme-dev"] = [Approvers("acme-dev", "bob@acme.io", "carol@acme.io", "erin@acme.io", "frank@acme.io")],
            ["acme-r2"] = [Approvers("acme-r2", "bob@acme.io", "carol@acme.io", "erin@acme.io")],
        };
        IEnumerable<V1RoleBinding> In(string ns) => bindings.TryGetValue(ns, out var b) ? b : [];
        ApprovalState State(params string[] approvers) =>
            ApplicationPlan.ApprovalOf(app, rule, approvers.Select(a => Approve(app, a)), a => ApprovalPolicy.HoldsApproverRole(a, In), In);

        Assert.False(State("carol@acme.io").Approved);
        Assert.False(State("carol@acme.io", "bob@acme.io").Approved);     // the author never counts
        Assert.False(State("carol@acme.io", "frank@acme.io").Approved);   // frank is no Approver of the prod workspace newly reached
        Assert.True(State("carol@acme.io", "erin@acme.io").Approved);

        // Changing only owner, class or supportTier keeps the content under review (and so the approvals given).
        var before = ApprovableKinds.Application.ContentHash(app);
        app.Spec.Owner = "zoe@acme.io";
        app.Spec.SupportTier = "tier-1";
        app.Spec.Class = "business-critical";
        Assert.Equal(before, ApprovableKinds.Application.ContentHash(app));
        app.Spec.AllowedScope.Rings.Add("ring-3");
        Assert.NotEqual(before, ApprovableKinds.Application.ContentHash(app));
    }

    static DeploymentIntentSpec Target(string bu = "bu-finance", string? site = "online", params string[] rings) => new()
    {
        Application = "app-001",
        TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = bu, SiteClass = site, Rings = rings.Length == 0 ? ["ring-1"] : [.. rings] },
    };

    [Fact]
    public void TheGate_WaitsForAnApplicationToComeOrBeApproved_AndDeniesOnlyADefiniteViolation()
    {
        var missing = ApplicationPlan.Gate(Target(), "acme-dev", null);
        Assert.Equal((GateVerdict.Wait, IntentReasons.ApplicationNotFound), (missing.Verdict, missing.Reason));

        var unapproved = ApplicationPlan.Gate(Target(), "acme-dev", App(Finance("ring-1")));
        Assert.Equal((GateVerdict.Wait, IntentReasons.ApplicationNotApproved), (unapproved.Verdict, unapproved.Reason));
        var neverInScope = ApplicationPlan.Gate(Target("bu-hr"), "acme-dev", App(Finance("ring-1")));
        Assert.Equal(GateVerdict.Deny, neverInScope.Verdict);

        var v2 = App(Finance("ring-1"), Finance("ring-1"), version: 2);
        var allowed = ApplicationPlan.Gate(Target(), "acme-dev", v2);
        Assert.Equal((GateVerdict.Allow, (int?)2), (allowed.Verdict, allowed.Version));

        var denied = ApplicationPlan.Gate(Target("bu-x"), "acme-dev", v2);
        Assert.Equal((GateVerdict.Deny, IntentReasons.OutsideApplicationScope), (denied.Verdict, denied.Reason));
        Assert.Equal("spec.targetScope.businessUnit: \"bu-x\" is outside application app-001's approved scope v2 (bu-finance)", denied.Message);
        Assert.StartsWith("spec.targetScope.siteClass: not declared", ApplicationPlan.Gate(Target(site: null), "acme-dev", v2).Message);
        Assert.Equal("spec.targetScope.rings[1]: \"ring-2\" is outside application app-001's approved scope v2 (ring-1)",
            ApplicationPlan.Gate(Target("bu-finance", "online", "ring-1", "ring-2"), "acme-dev", v2).Message);

        // Within the wider scope awaiting CAB: waits (the widening without CAB does not let it through).
        var widening = App(Finance("ring-1", "ring-2"), Finance("ring-1"), version: 2);
        widening.Status!.PendingScope = new PendingScope { Version = 3, Scope = Finance("ring-1", "ring-2") };
        var wait = ApplicationPlan.Gate(Target("bu-finance", "online", "ring-2"), "acme-dev", widening);
        Assert.Equal((GateVerdict.Wait, IntentReasons.ApplicationNotApproved), (wait.Verdict, wait.Reason));
        Assert.Contains("the wider scope v3 awaits CAB approval", wait.Message);
    }

    [Fact]
    public void Publishers_CoverTheTarget_ByDimension_NamingTheValueOutside()
    {
        var tenant = Acme(
        [
            new TenantPublisher { Subjects = ["bob@acme.io"], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"], Rings = ["ring-1"] }] },
            new TenantPublisher { Groups = ["release-managers", "system:authenticated"], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance", "bu-hr"], SiteClasses = ["online"], Rings = ["ring-1", "ring-2"] }] },
        ]);
        var bob = new Requester("bob@acme.io", []);
        Assert.Null(PublisherScopes.Problem(Target().TargetScope, bob, tenant));
        Assert.Equal("spec.targetScope.businessUnit: \"bu-hr\" is outside the publisher scope of bob@acme.io in tenant acme's spec.publishers (bu-finance)",
            PublisherScopes.Problem(Target("bu-hr").TargetScope, bob, tenant));
        Assert.Equal("spec.targetScope.rings[1]: \"ring-2\" is outside the publisher scope of bob@acme.io in tenant acme's spec.publishers (ring-1)",
            PublisherScopes.Problem(Target("bu-finance", "online", "ring-1", "ring-2").TargetScope, bob, tenant));
        Assert.StartsWith("spec.targetScope.siteClass: \"edge\" is outside", PublisherScopes.Problem(Target(site: "edge").TargetScope, bob, tenant));
        var other = Target();
        other.TargetScope.AcquisitionBoundary = "acq-002";
        Assert.StartsWith("spec.targetScope.acquisitionBoundary: \"acq-002\" is outside", PublisherScopes.Problem(other.TargetScope, bob, tenant));

        // A group grants; a system: group never does; someone listed nowhere publishes nowhere.
        Assert.Null(PublisherScopes.Problem(Target("bu-hr", "online", "ring-2").TargetScope, new Requester("gina@acme.io", ["release-managers"]), tenant));
        Assert.StartsWith("spec.targetScope: mallory@acme.io holds no publisher scope", PublisherScopes.Problem(Target().TargetScope, new Requester("mallory@acme.io", ["system:authenticated"]), tenant));
        // Every author must be covered: an editor outside it is named.
        Assert.Single(PublisherScopes.Problems(Target("bu-hr", "online", "ring-2").TargetScope, [new Requester("gina@acme.io", ["release-managers"]), bob], tenant));
        // No publishers declared: the rule from before (within the tenant's scopes, checked elsewhere).
        Assert.Null(PublisherScopes.Problem(Target("bu-hr").TargetScope, bob, Acme()));
    }
}
