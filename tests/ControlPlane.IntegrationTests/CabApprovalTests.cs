using System.Net;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// CAB approvals with conditions, expiry and routing, open rollback strategies and the intent telemetry,
/// as token users through the webhook and the whole operator (the fake execution plane on 127.0.0.1):
/// an approval limited by maxRing starts the rings up to it and not the next; an expired approval starts
/// no ring; with CAB routes only an assigned Approver counts; an approve of a risky intent without a
/// justification or with an unvalidated rollback is refused naming the field; a plane-specific strategy
/// is accepted only when the plane advertises it, reaches the plane's remediate call, and is counted.
/// alice writes the intents (WorkspaceAdmin), carol, dave and erin approve.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class CabApprovalTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    ConnectorContractServer Plane => fixture.IntentPlane;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly string Digest = new('b', 64);
    const string Evidence = "{\"cab\":\"reviewed\"}";
    const string Justification = "rollback rehearsed in staging; evidence pack reviewed";
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    static RiskFactors Risky => new() { PrivilegeImpact = 1.0, SupplyChainTrust = 0.6, BlastRadius = 0.8, ChangeComplexity = 0.5, TestEvidence = 0.4 };

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    /// <summary>A tenant (scope acq-001/bu-finance, these CAB routes) with one Ready workspace per (ring, environment); alice administers, carol, dave and erin approve everywhere.</summary>
    async Task<List<string>> TenantAsync(List<CabRoute>? routes, params (string Ring, string Environment)[] rings)
    {
        var tenant = Unique("cab");
        await Cluster.CreateTenantAsync(tenant, edit: t =>
        {
            t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }];
            t.CabRoutes = routes;
        });
        var names = new List<string>();
        foreach (var (ring, environment) in rings)
        {
            var name = Unique(tenant);
            await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string> { [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online" },
                },
                Spec = new WorkspaceSpec
                {
                    Tenant = tenant, Environment = environment, Database = new WorkspaceDatabase { Enabled = false },
                    Members =
                    [
                        new WorkspaceMember { Kind = "User", Name = Email("alice"), Role = "WorkspaceAdmin" },
                        new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "Approver" },
                        new WorkspaceMember { Kind = "User", Name = Email("dave"), Role = "Approver" },
                        new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" },
                    ],
                },
            }, CancellationToken.None);
            names.Add(name);
        }

        foreach (var name in names)
        {
            await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
            await Cluster.Api.CreateAsync(ResourceType.Secrets, name, new V1Secret
            {
                Metadata = new V1ObjectMeta { Name = "plane" }, StringData = new Dictionary<string, string> { ["token"] = WebhookFixture.IntentPlaneToken },
            }, CancellationToken.None);
            await Cluster.Api.CreateAsync(WorkspaceReconciler.ConfigMaps, name, new V1ConfigMap
            {
                Metadata = new V1ObjectMeta { Name = "evidence" }, Data = new Dictionary<string, string> { ["evidence"] = Evidence },
            }, CancellationToken.None);
            await ControlPlane.Tests.Evidence.CreateAsync(Cluster.Api, name, Image);
        }

        return names;
    }

    const string Image = "registry.example/cab:3.0.0";

    /// <summary>
    /// Creates the intent as <paramref name="author"/> after its Application (named like the intent) is approved for its rings by
    /// carol and dave (issue 23: every intent names an approved Application; two approvers when a ring is prod), with its scan report.
    /// </summary>
    async Task<DeploymentIntent> CreateIntentAsync(KubeApi author, string ns, DeploymentIntent intent)
    {
        using (var carol = As("carol"))
        using (var dave = As("dave"))
        {
            await Applications.ApprovedApplicationAsync(Cluster.Api, ns, intent.Spec.TargetScope.Rings, [new(Email("carol"), carol), new(Email("dave"), dave)], intent.Spec.Application);
        }

        ControlPlane.Tests.Evidence.Attach(intent.Spec);
        return await author.CreateAsync(Intents, ns, intent, CancellationToken.None);
    }

    /// <summary>The one builder of this file's intents: risky (CAB), on the fake http plane, evidence attached, rollback validated unless said.</summary>
    DeploymentIntent NewIntent(string name, string[] rings, string strategy = "previous-version", bool validated = true, int? soakHours = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new DeploymentIntentSpec
        {
            Application = name, Version = "3.0.0",
            Artifact = new Artifact { Image = Image, Sha256 = Digest },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = [.. rings] },
            ExecutionPlane = new ExecutionPlane { Type = "http", Url = Plane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = Risky,
            RollbackPlan = new RollbackPlan { Strategy = strategy, Validated = validated, RollbackVersion = "2.9.0" },
            EvidencePackRef = new EvidencePackRef { ConfigMap = "evidence", Sha256 = DeploymentIntentResources.Sha256Hex(Encoding.UTF8.GetBytes(Evidence)) },
            Schedule = soakHours is { } h ? new Dictionary<string, RingSchedule> { [rings[0]] = new() { Start = DateTime.UtcNow.AddMinutes(-1), DurationHours = h } } : null,
            PromotionGates = new PromotionGates { MaxIncidents = 0 },
            DriftCheckInterval = "1h",
        },
    };

    static Approval NewApproval(string intent, string? justification = Justification, string? maxRing = null, DateTime? expiresAt = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = DeploymentIntent.KubeKind, Name = intent }, Justification = justification, ExpiresAt = expiresAt,
            Conditions = maxRing is null ? null : new ApprovalLimits { MaxRing = maxRing, MinSoak = [new RingSoak { Ring = maxRing, Duration = "1s" }] },
        },
    };

    async Task<DeploymentIntent> WaitAsync(string ns, string name, Func<DeploymentIntent, bool> condition, string what)
    {
        DeploymentIntent? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, name, CancellationToken.None)), Deadline, $"intent {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"intent {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    async Task WaitForApprovalAsync(string ns, string name, string reason) =>
        await Net.WaitUntilAsync(async () => (await Cluster.Api.GetAsync<Approval>(Approvals, ns, name, CancellationToken.None)).Status?.Conditions?
            .FirstOrDefault(c => c.Type == "Ready")?.Reason == reason, Deadline, $"approval {name}: Ready {reason}");

    static V1Condition? Condition(DeploymentIntent i, string type) => i.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    static IntentRingStatus? Ring(DeploymentIntent i, string ring) => i.Status?.Rings?.FirstOrDefault(r => r.Name == ring);

    static bool Awaiting(DeploymentIntent i, string ring) => i.Status?.Phase == IntentPhase.AwaitingApproval && i.Status.CurrentRing == ring && Ring(i, ring) is null;

    /// <summary>The intent reconciled twice more (<see cref="Reconciles.ReconciledAgainAsync"/>).</summary>
    Task ReconciledAgainAsync(string ns, string name) => fixture.Runtime.ReconciledAgainAsync("deploymentintent", ns, name);

    async Task<string> MetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{fixture.HealthPort}/metrics");
    }

    [Fact]
    public async Task AnApprovalWithMaxRing_StartsTheRingsUpToIt_NotTheNext_AndTheRingKeepsItsConditions()
    {
        var ws = await TenantAsync(null, ("ring-1", "dev"), ("ring-2", "dev"), ("ring-3", "dev"));
        var ns = ws[0];
        using var alice = As("alice");
        using var carol = As("carol");
        using var dave = As("dave");
        await CreateIntentAsync(alice, ns, NewIntent("limited", ["ring-1", "ring-2", "ring-3"]));
        var waiting = await WaitAsync(ns, "limited", i => Awaiting(i, "ring-2"), "ring-1 done, ring-2 waits for CAB");
        Assert.Equal("RequireApproval", waiting.Status!.Decision);
        Assert.Equal([Email("carol"), Email("dave"), Email("erin")], waiting.Status.AssignedApprovers);

        // A bad condition is refused naming the field; carol's approval counts up to ring-2 only.
        var bad = await Refused(() => carol.CreateAsync(Approvals, ns, NewApproval("limited", maxRing: "ring-9"), CancellationToken.None));
        Assert.Contains("spec.conditions.maxRing", bad.StatusMessage);
        var limited = await carol.CreateAsync(Approvals, ns, NewApproval("limited", maxRing: "ring-2"), CancellationToken.None);
        var third = await WaitAsync(ns, "limited", i => Ring(i, "ring-2")?.Phase == IntentRingPhase.Completed && Awaiting(i, "ring-3"), "ring-2 ran, ring-3 waits");
        Assert.Contains("spec.conditions.maxRing", Condition(third, IntentConditions.Approved)!.Message);
        var recorded = Assert.Single(Ring(third, "ring-2")!.ApprovedBy!);
        Assert.Equal((Email("carol"), limited.Metadata.Name, "ring-2", "1s"), (recorded.Approver, recorded.Approval, recorded.MaxRing, recorded.MinSoak));
        Assert.Equal("1s", Ring(third, "ring-2")!.MinSoak);
        await ReconciledAgainAsync(ns, "limited");
        Assert.Null(Ring(await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "limited", CancellationToken.None), "ring-3"));

        // dave's approval has no limit: ring-3 runs; ring-2 keeps what was recorded when it started.
        await dave.CreateAsync(Approvals, ns, NewApproval("limited"), CancellationToken.None);
        var done = await WaitAsync(ns, "limited", i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        Assert.Equal([Email("dave")], Ring(done, "ring-3")!.ApprovedBy!.Select(a => a.Approver));
        Assert.Equal(Email("carol"), Assert.Single(Ring(done, "ring-2")!.ApprovedBy!).Approver);
        Assert.Null(done.Status!.AssignedApprovers);
        Assert.Contains("controlplane_deployment_time_to_compliance_seconds_bucket{ring=\"ring-3\"", await MetricsAsync());
    }

    [Fact]
    public async Task AnExpiredApproval_DoesNotStartTheNextRing_AndSaysSo()
    {
        // ring-2 is prod: two approvers. erin's expires; dave then approves: had expiry not been enforced, two would count.
        var ws = await TenantAsync(null, ("ring-1", "dev"), ("ring-2", "prod"));
        var ns = ws[0];
        using var alice = As("alice");
        using var carol = As("carol");
        using var dave = As("dave");
        using var erin = As("erin");
        await CreateIntentAsync(alice, ns, NewIntent("expiring", ["ring-1", "ring-2"]));
        await WaitAsync(ns, "expiring", i => Awaiting(i, "ring-2"), "ring-2 (prod) waits for CAB");

        var past = await Refused(() => erin.CreateAsync(Approvals, ns, NewApproval("expiring", expiresAt: DateTime.UtcNow.AddMinutes(-1)), CancellationToken.None));
        Assert.Contains("spec.expiresAt", past.StatusMessage);
        var soon = await erin.CreateAsync(Approvals, ns, NewApproval("expiring", expiresAt: DateTime.UtcNow.AddSeconds(20)), CancellationToken.None);
        await WaitForApprovalAsync(ns, soon.Metadata.Name, ApprovalReasons.Expired);
        await dave.CreateAsync(Approvals, ns, NewApproval("expiring"), CancellationToken.None);
        await ReconciledAgainAsync(ns, "expiring");
        var held = await WaitAsync(ns, "expiring", i => Awaiting(i, "ring-2") && Condition(i, IntentConditions.Approved)?.Message.StartsWith("1 of 2", StringComparison.Ordinal) == true,
            "one counting approver of two");
        Assert.Contains("spec.expiresAt", Condition(held, IntentConditions.Approved)!.Message);
        Assert.DoesNotContain(Plane.Calls, c => c.Method == "POST" && c.IdempotencyKey == $"{held.Metadata.Uid}:ring-2");

        await carol.CreateAsync(Approvals, ns, NewApproval("expiring"), CancellationToken.None);
        var done = await WaitAsync(ns, "expiring", i => i.Status?.Phase == IntentPhase.Completed, "Completed with two unexpired approvals");
        Assert.Equal([Email("carol"), Email("dave")], Ring(done, "ring-2")!.ApprovedBy!.Select(a => a.Approver).Order());
    }

    [Fact]
    public async Task WithCabRoutes_OnlyAnAssignedApproversApprovalCounts()
    {
        var ws = await TenantAsync([new CabRoute { Subjects = [Email("carol")], BusinessUnits = ["bu-finance"] }], ("ring-1", "dev"), ("ring-2", "dev"));
        var ns = ws[0];
        using var alice = As("alice");
        using var carol = As("carol");
        using var erin = As("erin");
        await CreateIntentAsync(alice, ns, NewIntent("routed", ["ring-1", "ring-2"]));
        var waiting = await WaitAsync(ns, "routed", i => Awaiting(i, "ring-2"), "ring-2 waits for CAB");
        Assert.Equal([Email("carol")], waiting.Status!.AssignedApprovers);

        // erin is an Approver here, but not assigned: her approval is admitted, shown as not counting, and does not count.
        var unassigned = await erin.CreateAsync(Approvals, ns, NewApproval("routed"), CancellationToken.None);
        await WaitForApprovalAsync(ns, unassigned.Metadata.Name, ApprovalReasons.NotAssigned);
        await ReconciledAgainAsync(ns, "routed");
        var still = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "routed", CancellationToken.None);
        Assert.True(Awaiting(still, "ring-2"), $"erin's approval does not count: {Condition(still, IntentConditions.Approved)?.Message}");
        Assert.Contains("not assigned", Condition(still, IntentConditions.Approved)!.Message);

        await carol.CreateAsync(Approvals, ns, NewApproval("routed"), CancellationToken.None);
        var done = await WaitAsync(ns, "routed", i => i.Status?.Phase == IntentPhase.Completed, "Completed with the assigned approver");
        Assert.Equal([Email("carol")], Ring(done, "ring-2")!.ApprovedBy!.Select(a => a.Approver));
    }

    [Fact]
    public async Task AnApproveOfARiskyIntent_IsRefusedWithoutAJustification_OrWithAnUnvalidatedRollback_NamingTheField()
    {
        var ws = await TenantAsync(null, ("ring-1", "dev"), ("ring-2", "dev"));
        var ns = ws[0];
        using var alice = As("alice");
        using var carol = As("carol");
        await CreateIntentAsync(alice, ns, NewIntent("unrehearsed", ["ring-1", "ring-2"], validated: false));
        var waiting = await WaitAsync(ns, "unrehearsed", i => Awaiting(i, "ring-2"), "ring-2 waits for CAB");
        Assert.Equal(IntentReasons.RollbackNotValidated, Condition(waiting, IntentConditions.Approved)!.Reason);
        Assert.Contains("spec.rollbackPlan.validated", Condition(waiting, IntentConditions.Approved)!.Message);

        var unjustified = await Refused(() => carol.CreateAsync(Approvals, ns, NewApproval("unrehearsed", justification: "ok"), CancellationToken.None));
        Assert.Contains("spec.justification", unjustified.StatusMessage);
        var unvalidated = await Refused(() => carol.CreateAsync(Approvals, ns, NewApproval("unrehearsed"), CancellationToken.None));
        Assert.Contains("spec.rollbackPlan.validated", unvalidated.StatusMessage);
        // A reject needs neither.
        var reject = NewApproval("unrehearsed", justification: null);
        reject.Spec.Decision = "reject";
        await carol.CreateAsync(Approvals, ns, reject, CancellationToken.None);
        await WaitAsync(ns, "unrehearsed", i => i.Status?.Phase == IntentPhase.Denied, "Denied by the reject");
    }

    [Fact]
    public async Task APlaneSpecificStrategy_IsDeniedUnlessThePlaneAdvertisesIt_ThenReachesItsRemediateCall_AndIsCounted()
    {
        var ws = await TenantAsync(null, ("ring-1", "dev"));
        var ns = ws[0];
        using var alice = As("alice");
        var strategies = Plane.RollbackStrategies;
        try
        {
            // The schema takes the design's own example; the plane (built-in strategies only) does not advertise it.
            await CreateIntentAsync(alice, ns, NewIntent("supersede-no", ["ring-1"], strategy: "intune-supersedence"));
            var denied = await WaitAsync(ns, "supersede-no", i => i.Status?.Phase == IntentPhase.Denied, "Denied");
            Assert.Equal(IntentReasons.RollbackStrategyUnsupported, Condition(denied, IntentConditions.Ready)!.Reason);
            Assert.Contains("spec.rollbackPlan.strategy: \"intune-supersedence\"", Condition(denied, IntentConditions.Ready)!.Message);
            Assert.Contains("previous-version, specific-version, none", Condition(denied, IntentConditions.Ready)!.Message);

            // A plane that cannot say what it supports: PlaneUnavailable, retried, never skipped.
            Plane.RollbackStrategies = null;
            await CreateIntentAsync(alice, ns, NewIntent("supersede", ["ring-1"], strategy: "intune-supersedence", soakHours: 1));
            var unavailable = await WaitAsync(ns, "supersede", i => Condition(i, IntentConditions.Ready)?.Reason == IntentReasons.PlaneUnavailable, "PlaneUnavailable");
            Assert.Null(unavailable.Status!.Rings);
            Plane.RollbackStrategies = [.. PlaneCapabilitiesBuiltIn, "intune-supersedence"];

            // Advertised: ring-1 runs (and soaks); a breached gate rolls it back with the plan's strategy.
            var soaking = await WaitAsync(ns, "supersede", i => Condition(i, IntentConditions.Ready)?.Reason == IntentReasons.MinimumSoak, "ring-1 succeeded, soaking");
            Plane.Advance(soaking.Status!.CorrelationId!, "ring-1", "succeeded", incidents: 1);
            var rolledBack = await WaitAsync(ns, "supersede", i => i.Status?.Phase == IntentPhase.RolledBack, "RolledBack");
            Assert.Equal(["intune-supersedence"], Plane.StrategiesOf(rolledBack.Status!.CorrelationId!, "ring-1"));

            var metrics = await MetricsAsync();
            var tenant = (await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, ns, CancellationToken.None)).Spec.Tenant;
            Assert.Contains($"controlplane_deployment_remediations_total{{tenant=\"{tenant}\",workspace=\"{ns}\",type=\"rollback\",outcome=\"succeeded\"}}", metrics);
            Assert.Contains("controlplane_execution_plane_errors_total{plane=\"http\",class=\"TRANSIENT\",code=\"service_unavailable\"}", metrics);
            Assert.Contains("controlplane_deployment_drift_unremediated", metrics);
        }
        finally
        {
            Plane.RollbackStrategies = strategies;
        }
    }

    [Fact]
    public async Task CabRoutesThatAssignNobody_OrAServiceAccountOrASystemGroup_AreRefusedNamingTheField()
    {
        var e = await Refused(() => Cluster.CreateTenantAsync(Unique("cabbad"), edit: t => t.CabRoutes =
        [
            new CabRoute { BusinessUnits = ["bu-finance"] },
            new CabRoute { Subjects = ["system:serviceaccount:acme-dev:ci"], Groups = ["system:authenticated"] },
        ]));
        Assert.Contains("spec.cabRoutes[0]: names no subject and no group", e.StatusMessage);
        Assert.Contains("spec.cabRoutes[1].subjects[0]", e.StatusMessage);
        Assert.Contains("spec.cabRoutes[1].groups[0]", e.StatusMessage);
    }

    static readonly string[] PlaneCapabilitiesBuiltIn = ["previous-version", "specific-version", "none"];
}
