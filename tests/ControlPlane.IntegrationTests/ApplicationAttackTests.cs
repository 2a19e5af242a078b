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
/// Issue 23 (Applications and publisher scope) attacked as token users through the webhook and the whole
/// operator: widening an Application's scope without CAB, approving one's own scope, an intent inside the
/// Application but outside its author's publisher scope, an Application outside the tenant's scopes, an
/// Application of tenant A named from tenant B, an approval of A's Application by B's approvers, and the
/// GitOps order (an intent applied before its Application waits, it is not refused).
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class ApplicationAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    ConnectorContractServer Plane => fixture.IntentPlane;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    /// <summary>A tenant (acq-001: bu-finance, bu-hr; online) with one Ready workspace per (ring, environment, business unit), these members in each, the plane's Secret.</summary>
    async Task<(string Tenant, List<string> Workspaces)> TenantAsync((string Ring, string Environment, string Unit)[] workspaces, (string User, string Role)[] members,
        List<TenantPublisher>? publishers = null)
    {
        var tenant = Unique("app");
        await Cluster.CreateTenantAsync(tenant, edit: t =>
        {
            t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance", "bu-hr"], SiteClasses = ["online"] }];
            t.Publishers = publishers;
        });
        var names = new List<string>();
        foreach (var (ring, environment, unit) in workspaces)
        {
            var name = Unique(tenant);
            await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string>
                    {
                        [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = unit, [ApiGroup.SiteClassLabel] = "online",
                    },
                },
                Spec = new WorkspaceSpec
                {
                    Tenant = tenant, Environment = environment, Database = new WorkspaceDatabase { Enabled = false },
                    Members = [.. members.Select(m => new WorkspaceMember { Kind = "User", Name = Email(m.User), Role = m.Role })],
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
            await Evidence.CreateAsync(Cluster.Api, name);
        }

        return (tenant, names);
    }

    static Application NewApplication(string name, ApplicationScope scope) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new ApplicationSpec { Owner = "alice@example.com", Class = "business-critical", SupportTier = "tier-1", AllowedScope = scope },
    };

    static ApplicationScope Scope(string[] units, params string[] rings) => new()
    {
        AcquisitionBoundaries = ["acq-001"], BusinessUnits = [.. units], SiteClasses = ["online"], Rings = [.. rings],
    };

    DeploymentIntent NewIntent(string name, string application, string unit, params string[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = Evidence.Attach(new DeploymentIntentSpec
        {
            Application = application, Version = "2.1.0",
            Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = new string('a', 64) },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = unit, SiteClass = "online", Rings = [.. rings] },
            ExecutionPlane = new ExecutionPlane { Type = "http", Url = Plane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
            RollbackPlan = new RollbackPlan { Strategy = "previous-version" },
            DriftCheckInterval = "1h",
        }),
    };

    static Approval NewApproval(string application) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = Application.KubeKind, Name = application }, Decision = "approve", Comment = "CAB: scope diff and blast radius reviewed" },
    };

    async Task<T> WaitAsync<T>(ResourceType type, string ns, string name, Func<T, bool> condition, string what) where T : class
    {
        T? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await Cluster.Api.GetAsync<T>(type, ns, name, CancellationToken.None)), Deadline, $"{name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last: {k8s.KubernetesJson.Serialize(last)}", e);
        }

        return last!;
    }

    static V1Condition? Ready(DeploymentIntent i) => i.Status?.Conditions?.FirstOrDefault(c => c.Type == IntentConditions.Ready);

    /// <summary>Creates as the user, retrying while their workspace RoleBinding is not there yet (403).</summary>
    static async Task<T> CreateAsAsync<T>(KubeApi api, ResourceType type, string ns, T obj) where T : class
    {
        T? created = null;
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                created = await api.CreateAsync(type, ns, obj, CancellationToken.None);
                return true;
            }
            catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Forbidden)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), $"create {type.Plural} in {ns}");
        return created!;
    }

    [Fact]
    public async Task WideningAnApplicationsScope_WithoutCab_LeavesTheWiderTargetWaiting_TheAuthorCannotApprove_TwoApproversOfProdDo()
    {
        var (_, ws) = await TenantAsync([("ring-1", "dev", "bu-finance"), ("ring-2", "prod", "bu-finance")],
            [("bob", "Operator"), ("carol", "Approver"), ("erin", "Approver")]);
        var ns = ws[0];
        using var bob = As("bob");
        using var carol = As("carol");
        using var erin = As("erin");

        // bob declares app-001 for ring-1: nothing is in effect until CAB approves its first version.
        await CreateAsAsync(bob, Applications.Type, ns, NewApplication("app-001", Scope(["bu-finance"], "ring-1")));
        var first = await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.Phase == ApplicationPhase.AwaitingApproval, "v1 awaits CAB");
        Assert.Null(first.Status!.ScopeVersion);
        Assert.Equal(1, first.Status.PendingScope!.Version);
        Assert.Equal([ns], first.Status.PendingScope.BlastRadius!.Workspaces!);
        var own = await Refused(() => bob.CreateAsync(Approvals, ns, NewApproval("app-001"), CancellationToken.None));
        Assert.Contains("self-approval is not allowed", own.StatusMessage);
        await carol.CreateAsync(Approvals, ns, NewApproval("app-001"), CancellationToken.None);
        var v1 = await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.ScopeVersion == 1 && a.Status.Phase == ApplicationPhase.Active, "v1 in effect");
        Assert.Equal([Email("carol")], v1.Status!.ApprovedBy!);

        // bob widens it to ring-2 (prod) himself: v1 stays in effect; v2 needs two Approvers of the prod workspace.
        await bob.PatchAsync<Application>(Applications.Type, ns, "app-001", """{"spec":{"allowedScope":{"rings":["ring-1","ring-2"]}}}""", PatchTypes.Merge, CancellationToken.None);
        var pending = await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.PendingScope?.Version == 2, "v2 awaits CAB");
        Assert.Equal(1, pending.Status!.ScopeVersion);
        Assert.Equal(["ring-1"], pending.Status.ApprovedScope!.Rings);
        Assert.Equal(["ring-2"], pending.Status.PendingScope!.Diff!.Rings!.Added!);
        Assert.Equal([ws[1]], pending.Status.PendingScope.BlastRadius!.Workspaces!);
        Assert.Equal(2, pending.Status.PendingScope.RequiredApprovals);

        // An intent for the wider scope is admitted (the scope awaits CAB) but waits: no ring is published.
        var intent = await bob.CreateAsync(Intents, ns, NewIntent("wide", "app-001", "bu-finance", "ring-1", "ring-2"), CancellationToken.None);
        var waiting = await WaitAsync<DeploymentIntent>(Intents, ns, "wide", i => Ready(i)?.Reason == IntentReasons.ApplicationNotApproved, "waits for the wider scope");
        Assert.Contains("spec.targetScope.rings[1]: \"ring-2\" is outside application app-001's approved scope v1 (ring-1)", Ready(waiting)!.Message);
        Assert.Empty(waiting.Status!.Rings ?? []);
        Assert.DoesNotContain(Plane.Calls, c => c.IdempotencyKey?.StartsWith(intent.Metadata.Uid + ":", StringComparison.Ordinal) == true);

        // The editor of the scope cannot approve it; one Approver is not two.
        var self = await Refused(() => bob.CreateAsync(Approvals, ns, NewApproval("app-001"), CancellationToken.None));
        Assert.Contains("self-approval is not allowed", self.StatusMessage);
        await carol.CreateAsync(Approvals, ns, NewApproval("app-001"), CancellationToken.None);
        var one = await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.PendingScope?.Approvals?.Count == 1, "one approval counted");
        Assert.Equal(1, one.Status!.ScopeVersion);
        Assert.Equal(ApplicationPhase.AwaitingApproval, one.Status.Phase);

        await erin.CreateAsync(Approvals, ns, NewApproval("app-001"), CancellationToken.None);
        var v2 = await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.ScopeVersion == 2, "v2 in effect after two approvers");
        Assert.Equal([Email("carol"), Email("erin")], v2.Status!.ApprovedBy!);
        // The intent goes on against v2 (ring-1 published; ring-2, prod, waits for the intent's own CAB).
        var started = await WaitAsync<DeploymentIntent>(Intents, ns, "wide", i => i.Status?.Rings?.Any(r => r.Name == "ring-1") == true, "ring-1 started");
        Assert.Equal(2, started.Status!.ApplicationScopeVersion);

        // The Application narrows back to ring-1 (at once, v3): ring-2, not started yet, never starts, even once CAB approves the intent.
        await bob.PatchAsync<Application>(Applications.Type, ns, "app-001", """{"spec":{"allowedScope":{"rings":["ring-1"]}}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.ScopeVersion == 3, "v3 (narrowed) in effect");
        foreach (var approver in new[] { carol, erin })
        {
            await approver.CreateAsync(Approvals, ns, new Approval
            {
                Metadata = new V1ObjectMeta { Name = Unique("apr") },
                Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = DeploymentIntent.KubeKind, Name = "wide" }, Decision = "approve" },
            }, CancellationToken.None);
        }

        var held = await WaitAsync<DeploymentIntent>(Intents, ns, "wide", i => Ready(i)?.Reason == IntentReasons.OutsideApplicationScope, "ring-2 held: outside the narrowed scope");
        Assert.Contains("ring ring-2 does not start: spec.targetScope.rings[1]: \"ring-2\" is outside application app-001's approved scope v3 (ring-1)", Ready(held)!.Message);
        Assert.DoesNotContain(held.Status!.Rings!, r => r.Name == "ring-2");
        Assert.DoesNotContain(Plane.Calls, c => c.IdempotencyKey == $"{intent.Metadata.Uid}:ring-2");
    }

    [Fact]
    public async Task AnIntentInsideItsApplication_ButOutsideItsAuthorsPublisherScope_IsRefused_NamingTheDimensionAndTheValue()
    {
        var (tenant, ws) = await TenantAsync([("ring-1", "dev", "bu-finance"), ("ring-1", "dev", "bu-hr")],
            [("bob", "Operator"), ("alice", "Operator"), ("carol", "Approver")],
            [
                new TenantPublisher { Subjects = [Email("bob")], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"], Rings = ["ring-1"] }] },
                new TenantPublisher { Subjects = [Email("alice")], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance", "bu-hr"], SiteClasses = ["online"], Rings = ["ring-1"] }] },
            ]);
        var ns = ws[0];
        using var bob = As("bob");
        using var alice = As("alice");
        using var carol = As("carol");
        await Cluster.Api.CreateAsync(Applications.Type, ns, NewApplication("app-001", Scope(["bu-finance", "bu-hr"], "ring-1")), CancellationToken.None);
        await CreateAsAsync(carol, Approvals, ns, NewApproval("app-001"));
        await WaitAsync<Application>(Applications.Type, ns, "app-001", a => a.Status?.ScopeVersion == 1, "v1 in effect");

        // bu-hr is in the Application's approved scope, but not in bob's publisher scope.
        var e = await Refused(() => CreateAsAsync(bob, Intents, ns, NewIntent("hr", "app-001", "bu-hr", "ring-1")));
        Assert.Contains($"spec.targetScope.businessUnit: \"bu-hr\" is outside the publisher scope of {Email("bob")} in tenant {tenant}'s spec.publishers (bu-finance)", e.StatusMessage);
        Assert.Null(await Cluster.Api.TryGetAsync<DeploymentIntent>(Intents, ns, "hr", CancellationToken.None));
        // Someone who publishes nowhere in this tenant (carol: no entry) is refused too; alice, who may, is admitted and deploys.
        var nowhere = await Refused(() => carol.CreateAsync(Intents, ns, NewIntent("carols", "app-001", "bu-finance", "ring-1"), CancellationToken.None));
        Assert.Contains($"spec.targetScope: {Email("carol")} holds no publisher scope", nowhere.StatusMessage);
        await CreateAsAsync(alice, Intents, ns, NewIntent("hr", "app-001", "bu-hr", "ring-1"));
        var done = await WaitAsync<DeploymentIntent>(Intents, ns, "hr", i => i.Status?.Phase == IntentPhase.Completed, "alice's intent Completed");
        Assert.Equal([ws[1]], done.Status!.Rings!.Single().Workspaces);

        // Within his scope, bob is admitted.
        await bob.CreateAsync(Intents, ns, NewIntent("finance", "app-001", "bu-finance", "ring-1"), CancellationToken.None);
    }

    [Fact]
    public async Task AnApplicationScope_OutsideTheTenantsScopes_IsRefused_NamingTheField()
    {
        var (tenant, ws) = await TenantAsync([("ring-1", "dev", "bu-finance")], [("bob", "Operator"), ("carol", "Approver")]);
        using var bob = As("bob");
        var unit = await Refused(() => CreateAsAsync(bob, Applications.Type, ws[0], NewApplication("app-001", Scope(["bu-finance", "bu-x"], "ring-1"))));
        Assert.Contains($"spec.allowedScope.businessUnits[1]: \"bu-x\" is not a business unit of acq-001 in tenant {tenant}'s spec.scopes (bu-finance, bu-hr)", unit.StatusMessage);
        var boundary = NewApplication("app-002", Scope(["bu-finance"], "ring-1"));
        boundary.Spec.AllowedScope.AcquisitionBoundaries = ["acq-009"];
        var outside = await Refused(() => bob.CreateAsync(Applications.Type, ws[0], boundary, CancellationToken.None));
        Assert.Contains($"spec.allowedScope.acquisitionBoundaries[0]: \"acq-009\" is not one of tenant {tenant}'s spec.scopes (acq-001)", outside.StatusMessage);

        // An admitted one cannot be widened past the tenant either (an update is judged the same).
        await bob.CreateAsync(Applications.Type, ws[0], NewApplication("app-003", Scope(["bu-finance"], "ring-1")), CancellationToken.None);
        var widened = await Refused(() => bob.PatchAsync<Application>(Applications.Type, ws[0], "app-003", """{"spec":{"allowedScope":{"siteClasses":["online","edge"]}}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.allowedScope.siteClasses[1]: \"edge\" is not a site class of acq-001", widened.StatusMessage);
        // Outside a workspace: refused.
        var nowhere = await Refused(() => Cluster.Api.CreateAsync(Applications.Type, "default", NewApplication("app-004", Scope(["bu-finance"], "ring-1")), CancellationToken.None));
        Assert.Contains("metadata.namespace: \"default\" is not the namespace of a workspace", nowhere.StatusMessage);
    }

    [Fact]
    public async Task AnApplicationOfTenantA_IsNotFound_FromTenantB_AndBsApproversCannotApproveIt_AndAnIntentAppliedFirst_Waits()
    {
        var (_, mine) = await TenantAsync([("ring-1", "dev", "bu-finance")], [("wade", "Operator"), ("carol", "Approver")]);
        var (_, theirs) = await TenantAsync([("ring-1", "dev", "bu-finance")], [("mona", "Operator"), ("dave", "Approver")]);
        using var carol = As("carol");
        using var dave = As("dave");
        using var wade = As("wade");
        using var mona = As("mona");

        // GitOps order: wade's intent arrives before its Application: admitted, it waits (not denied).
        var intent = await CreateAsAsync(wade, Intents, mine[0], NewIntent("early", "app-001", "bu-finance", "ring-1"));
        var noApp = await WaitAsync<DeploymentIntent>(Intents, mine[0], "early", i => Ready(i)?.Reason == IntentReasons.ApplicationNotFound, "waits for its Application");
        Assert.Equal(IntentPhase.RiskAssessed, noApp.Status!.Phase);
        await Cluster.Api.CreateAsync(Applications.Type, mine[0], NewApplication("app-001", Scope(["bu-finance"], "ring-1")), CancellationToken.None);
        await WaitAsync<DeploymentIntent>(Intents, mine[0], "early", i => Ready(i)?.Reason == IntentReasons.ApplicationNotApproved, "waits for its Application's CAB");

        // Tenant B's approvers: no RBAC in A's namespace (mona), or refused by the webhook where RBAC lets them try (dave).
        await Refused(() => mona.CreateAsync(Approvals, mine[0], NewApproval("app-001"), CancellationToken.None), HttpStatusCode.Forbidden);
        var foreign = await Refused(() => dave.CreateAsync(Approvals, mine[0], NewApproval("app-001"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("dave")} holds neither the Approver nor the WorkspaceAdmin role in workspace {mine[0]}", foreign.StatusMessage);
        Assert.Null((await Cluster.Api.GetAsync<Application>(Applications.Type, mine[0], "app-001", CancellationToken.None)).Status?.ScopeVersion);

        await CreateAsAsync(carol, Approvals, mine[0], NewApproval("app-001"));
        var done = await WaitAsync<DeploymentIntent>(Intents, mine[0], "early", i => i.Status?.Phase == IntentPhase.Completed, "Completed once app-001 is approved");
        Assert.Equal(1, done.Status!.ApplicationScopeVersion);
        Assert.Contains(Plane.Calls, c => c.IdempotencyKey == $"{intent.Metadata.Uid}:ring-1");

        // Tenant B names app-001: names are per namespace, A's is never found; B's intent waits, it deploys nothing.
        var theirIntent = await CreateAsAsync(mona, Intents, theirs[0], NewIntent("borrow", "app-001", "bu-finance", "ring-1"));
        var borrowed = await WaitAsync<DeploymentIntent>(Intents, theirs[0], "borrow", i => Ready(i)?.Reason == IntentReasons.ApplicationNotFound, "A's Application is not B's");
        Assert.Contains($"Application {theirs[0]}/app-001 does not exist", Ready(borrowed)!.Message);
        Assert.DoesNotContain(Plane.Calls, c => c.IdempotencyKey?.StartsWith(theirIntent.Metadata.Uid + ":", StringComparison.Ordinal) == true);
    }
}
