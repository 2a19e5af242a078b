using System.Net;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// DeploymentIntents attacked as token users of the local API server through the whole operator
/// (admission webhooks, intent and approval reconcilers, the fake execution plane on 127.0.0.1):
/// writing into another tenant, making its workspaces a ring, approving one's own change, approving
/// as someone else or from another tenant, reusing an approval of an older generation, editing the
/// reviewed change, and writing status to skip risk scoring or CAB. wade and mona are in no group any
/// cluster-wide role names (their rights come from workspace members only); alice, bob, carol, dave
/// and erin may write every ControlPlane object anywhere (the fixture), so what refuses them is the webhook.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class DeploymentIntentAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    ConnectorContractServer Plane => fixture.IntentPlane;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly string Digest = new('a', 64);
    const string Evidence = "{\"tests\":\"passed\"}";

    static RiskFactors Risky => new() { PrivilegeImpact = 1.0, SupplyChainTrust = 0.6, BlastRadius = 0.8, ChangeComplexity = 0.5, TestEvidence = 0.4 };
    static RiskFactors Safe => new() { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 };

    static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    /// <summary>
    /// A tenant with scope acq-001/bu-finance and one Ready workspace per ring (labelled with it), each
    /// with these members, the plane's credentials Secret and the evidence pack. Intents live in the first.
    /// </summary>
    Task<List<string>> TenantAsync(string environment, (string User, string Role)[] members, params string[] rings) =>
        TenantAsync([.. rings.Select(r => (r, environment, members))]);

    /// <summary>As above, each workspace with its own ring, environment and members.</summary>
    async Task<List<string>> TenantAsync((string Ring, string Environment, (string User, string Role)[] Members)[] workspaces)
    {
        var tenant = Unique("dia");
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        var names = new List<string>();
        foreach (var (ring, environment, members) in workspaces)
        {
            var name = Unique(tenant);
            await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string>
                    {
                        [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = "acq-001",
                        [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online",
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
            await Cluster.Api.CreateAsync(WorkspaceReconciler.ConfigMaps, name, new V1ConfigMap
            {
                Metadata = new V1ObjectMeta { Name = "evidence" }, Data = new Dictionary<string, string> { ["evidence"] = Evidence },
            }, CancellationToken.None);
            await ControlPlane.Tests.Evidence.CreateAsync(Cluster.Api, name);
        }

        // Issue 23: the intents' Application in the first workspace, its scope approved by that workspace's first two approvers.
        var approvers = workspaces[0].Members.Where(m => m.Role is "Approver" or "WorkspaceAdmin").Take(2).Select(m => new Applications.Approver(Email(m.User), As(m.User))).ToList();
        try
        {
            if (approvers.Count > 0) await Applications.ApprovedApplicationAsync(Cluster.Api, names[0], workspaces.Select(w => w.Ring), approvers);
        }
        finally
        {
            foreach (var a in approvers) a.Api?.Dispose();
        }

        return names;
    }

    /// <summary>RBAC follows the operator's RoleBindings: wait until the API server grants the user this write.</summary>
    async Task WaitForAccessAsync(string user, string verb, string resource, string ns)
    {
        var reviews = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        var u = Cluster.Plane.Users[user];
        await Net.WaitUntilAsync(async () => (await Cluster.Api.CreateAsync(reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = u.Name, Groups = [.. u.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Group = ApiGroup.Group, Resource = resource, NamespaceProperty = ns },
            },
        }, CancellationToken.None)).Status.Allowed, TimeSpan.FromSeconds(30), $"{user} may {verb} {resource} in {ns}");
    }

    DeploymentIntent NewIntent(string name, RiskFactors risk, params string[] rings) => Attached(new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new DeploymentIntentSpec
        {
            Application = "app", Version = "2.1.0",
            Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = Digest },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = [.. rings] },
            ExecutionPlane = new ExecutionPlane { Type = "http", Url = Plane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = risk,
            RollbackPlan = new RollbackPlan { Strategy = "previous-version", Validated = true },
            EvidencePackRef = new EvidencePackRef { ConfigMap = "evidence", Sha256 = DeploymentIntentResources.Sha256Hex(Encoding.UTF8.GetBytes(Evidence)) },
            DriftCheckInterval = "1h",
        },
    });

    static DeploymentIntent Attached(DeploymentIntent intent)
    {
        ControlPlane.Tests.Evidence.Attach(intent.Spec);
        return intent;
    }

    /// <summary>An Approval as a user writes it: only the target (the webhook stamps approver, UID and generation).</summary>
    static Approval NewApproval(string intent, string? approver = null, long? generation = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "DeploymentIntent", Name = intent }, Approver = approver, TargetGeneration = generation, Justification = "reviewed the evidence pack and the rehearsed rollback" },
    };

    async Task<DeploymentIntent> WaitAsync(string ns, string name, Func<DeploymentIntent, bool> condition, string what, TimeSpan? timeout = null)
    {
        DeploymentIntent? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, name, CancellationToken.None)),
                timeout ?? TimeSpan.FromSeconds(40), $"intent {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"intent {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    async Task WaitForApprovalAsync(string ns, string name, string reason) =>
        await Net.WaitUntilAsync(async () => (await Cluster.Api.GetAsync<Approval>(Approvals, ns, name, CancellationToken.None)).Status?.Conditions?
            .FirstOrDefault(c => c.Type == "Ready")?.Reason == reason, TimeSpan.FromSeconds(30), $"approval {name}: Ready {reason}");

    static V1Condition? Condition(DeploymentIntent i, string type) => i.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    static bool Awaits(DeploymentIntent i, string approvals) =>
        i.Status?.Phase == IntentPhase.AwaitingApproval && Condition(i, IntentConditions.Approved)?.Message.StartsWith(approvals, StringComparison.Ordinal) == true;

    /// <summary>The intent reconciled twice more (<see cref="Reconciles.ReconciledAgainAsync"/>).</summary>
    Task ReconciledAgainAsync(string ns, string name) => fixture.Runtime.ReconciledAgainAsync("deploymentintent", ns, name);

    IEnumerable<ConnectorContractServer.RecordedCall> PublishesOf(DeploymentIntent i) =>
        Plane.Calls.Where(c => c.Method == "POST" && c.Path == "/deployments" && c.IdempotencyKey?.StartsWith(i.Metadata.Uid + ":", StringComparison.Ordinal) == true);

    [Fact]
    public async Task AnOperatorOfTenantA_CannotWriteIntentsInTenantB_NorMakeItsWorkspacesARing()
    {
        var mine = await TenantAsync("dev", [("wade", "Operator"), ("erin", "Approver")], "ring-1");
        // Tenant B: a workspace with the same ring label, and one with a ring label only B has.
        var theirs = await TenantAsync("dev", [("mona", "Operator")], "ring-1", "ring-b");
        await WaitForAccessAsync("wade", "create", "deploymentintents", mine[0]);
        await WaitForAccessAsync("mona", "create", "deploymentintents", theirs[0]);
        using var wade = As("wade");
        using var mona = As("mona");

        // B's own intent: wade can neither create one there, nor edit, delete or approve B's.
        var forbidden = await Refused(() => wade.CreateAsync(Intents, theirs[0], NewIntent("grab", Safe, "ring-1"), CancellationToken.None), HttpStatusCode.Forbidden);
        Assert.Contains("deploymentintents", forbidden.StatusMessage);
        var theirIntent = await mona.CreateAsync(Intents, theirs[0], NewIntent("theirs", Safe, "ring-1"), CancellationToken.None);
        await Refused(() => wade.PatchAsync<DeploymentIntent>(Intents, theirs[0], "theirs", """{"spec":{"version":"6.6.6"}}""", PatchTypes.Merge, CancellationToken.None), HttpStatusCode.Forbidden);
        await Refused(() => wade.PatchAsync<DeploymentIntent>(Intents, theirs[0], "theirs", """{"metadata":{"labels":{"owned":"wade"}}}""", PatchTypes.Merge, CancellationToken.None), HttpStatusCode.Forbidden);
        await Refused(() => wade.DeleteAsync(Intents, theirs[0], "theirs", CancellationToken.None), HttpStatusCode.Forbidden);
        await Refused(() => wade.CreateAsync(Approvals, theirs[0], NewApproval("theirs"), CancellationToken.None), HttpStatusCode.Forbidden);
        Assert.Equal(theirIntent.Metadata.Generation, (await Cluster.Api.GetAsync<DeploymentIntent>(Intents, theirs[0], "theirs", CancellationToken.None)).Metadata.Generation);

        // A ring only B's workspaces carry: refused at admission, naming the ring's index, saying nothing of B.
        var ring = await Refused(() => wade.CreateAsync(Intents, mine[0], NewIntent("reach", Safe, "ring-1", "ring-b"), CancellationToken.None));
        Assert.Contains("spec.targetScope.rings[1]: ring \"ring-b\" has no workspace of tenant", ring.StatusMessage);
        Assert.DoesNotContain("rings[0]", ring.StatusMessage);
        Assert.DoesNotContain(theirs[1], ring.StatusMessage);
        Assert.Null(await Cluster.Api.TryGetAsync<DeploymentIntent>(Intents, mine[0], "reach", CancellationToken.None));

        // A ring both tenants have: admitted, and at reconcile it is wade's tenant's workspaces only.
        var own = await wade.CreateAsync(Intents, mine[0], NewIntent("own", Safe, "ring-1"), CancellationToken.None);
        Assert.Equal(Email("wade"), own.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        var done = await WaitAsync(mine[0], "own", i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        Assert.Equal([mine[0]], done.Status!.Rings!.Single(r => r.Name == "ring-1").Workspaces);
        var published = PublishesOf(own).ToList();
        Assert.NotEmpty(published);
        Assert.All(published, c => Assert.DoesNotContain(theirs[0], c.Body));

        // Its workspace leaves ring-1: a new intent for ring-1 is refused, yet a metadata-only write to the
        // existing one (a label, the garbage collector's finalizer) still passes admission.
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, mine[0], "{\"metadata\":{\"labels\":{\"" + ApiGroup.RingLabel + "\":\"ring-0\"}}}",
            PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await wade.CreateAsync(Intents, mine[0], NewIntent(Unique("late"), Safe, "ring-1"), CancellationToken.None);
                return false;
            }
            catch (KubeApiException e) when (e.StatusMessage.Contains("spec.targetScope.rings[0]", StringComparison.Ordinal))
            {
                return true;
            }
        }, TimeSpan.FromSeconds(20), "ring-1 has no workspace of wade's tenant any more (admission)");
        var labelled = await wade.PatchAsync<DeploymentIntent>(Intents, mine[0], "own", """{"metadata":{"labels":{"team":"payments"}}}""", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal("payments", labelled.Metadata.Labels["team"]);
    }

    [Fact]
    public async Task ARiskyProdIntent_WaitsForTwoDistinctApproversOfItsOwnWorkspace_NotItsAuthor_NorAnotherTenants_NorAForgedName()
    {
        // alice (WorkspaceAdmin) may approve in her workspace: only the two-person rule keeps her from approving her own change.
        var mine = await TenantAsync("prod", [("alice", "WorkspaceAdmin"), ("carol", "Approver"), ("erin", "Approver")], "ring-1", "ring-2");
        var theirs = await TenantAsync("prod", [("dave", "Approver"), ("mona", "Approver")], "ring-1", "ring-2");
        await WaitForAccessAsync("mona", "create", "approvals", theirs[0]);
        using var alice = As("alice");
        using var carol = As("carol");
        using var erin = As("erin");
        using var dave = As("dave");
        using var mona = As("mona");
        var ns = mine[0];

        var created = await alice.CreateAsync(Intents, ns, NewIntent("risky", Risky, "ring-1", "ring-2"), CancellationToken.None);
        var waiting = await WaitAsync(ns, "risky", i => Awaits(i, "0 of 2"), "CAB awaited before ring 1 (prod)");
        Assert.Equal("RequireApproval", waiting.Status!.Decision);
        Assert.True(waiting.Status.RiskScore > 50);
        Assert.Empty(waiting.Status.Rings ?? []);

        // The author: refused at admission (two-person rule).
        var self = await Refused(() => alice.CreateAsync(Approvals, ns, NewApproval("risky"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("alice")} created DeploymentIntent risky; self-approval is not allowed", self.StatusMessage);
        // Approvers of tenant B: no RBAC in A's namespace (mona), or refused by the webhook when RBAC lets them try (dave).
        await Refused(() => mona.CreateAsync(Approvals, ns, NewApproval("risky"), CancellationToken.None), HttpStatusCode.Forbidden);
        var foreign = await Refused(() => dave.CreateAsync(Approvals, ns, NewApproval("risky"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("dave")} holds neither the Approver nor the WorkspaceAdmin role in workspace {ns}", foreign.StatusMessage);

        // carol approves, then again naming erin as the approver: both are carol's (the webhook stamps the requester).
        var first = await carol.CreateAsync(Approvals, ns, NewApproval("risky"), CancellationToken.None);
        Assert.Equal(Email("carol"), first.Spec.Approver);
        Assert.Equal(created.Metadata.Uid, first.Spec.TargetUID);
        Assert.Equal(created.Metadata.Generation, first.Spec.TargetGeneration);
        var forged = await carol.CreateAsync(Approvals, ns, NewApproval("risky", approver: Email("erin")), CancellationToken.None);
        Assert.Equal(Email("carol"), forged.Spec.Approver);
        await WaitForApprovalAsync(ns, first.Metadata.Name, "Counts");
        await WaitForApprovalAsync(ns, forged.Metadata.Name, "Counts");
        await ReconciledAgainAsync(ns, "risky");
        var one = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "risky", CancellationToken.None);
        Assert.True(Awaits(one, "1 of 2"), $"one approver counted once: {Condition(one, IntentConditions.Approved)?.Message}");
        Assert.DoesNotContain(one.Status!.Rings ?? [], r => r.Name == "ring-2");
        Assert.DoesNotContain(PublishesOf(created), c => c.IdempotencyKey == $"{created.Metadata.Uid}:ring-2");

        // erin, a second Approver of this workspace: CAB has approved, ring 2 runs (this tenant's ring-2 only).
        await erin.CreateAsync(Approvals, ns, NewApproval("risky"), CancellationToken.None);
        var done = await WaitAsync(ns, "risky", i => i.Status?.Phase == IntentPhase.Completed, "Completed after the second approver");
        Assert.Contains(Email("carol"), Condition(done, IntentConditions.Approved)!.Message);
        Assert.Contains(Email("erin"), Condition(done, IntentConditions.Approved)!.Message);
        Assert.NotNull(done.Status!.ApprovedAt);
        Assert.Equal([mine[1]], done.Status.Rings!.Single(r => r.Name == "ring-2").Workspaces);
        Assert.All(PublishesOf(created), c => Assert.DoesNotContain(theirs[1], c.Body));
    }

    [Fact]
    public async Task AnIntentInDev_ReachingProd_WithRiskZero_WaitsForTwoApproversOfTheProdWorkspace_NotOneNorTheAuthorNorADevOnlyApprover()
    {
        // bob operates both (he could deploy to prod by hand, so his rights do not hold the ring: only approvals do);
        // carol and erin approve in both; dave approves in dev only.
        var ws = await TenantAsync([
            ("ring-0", "dev", [("bob", "Operator"), ("carol", "Approver"), ("erin", "Approver"), ("dave", "Approver")]),
            ("ring-1", "prod", [("bob", "Operator"), ("carol", "Approver"), ("erin", "Approver")]),
        ]);
        var (dev, prod) = (ws[0], ws[1]);
        using var bob = As("bob");
        using var carol = As("carol");
        using var erin = As("erin");
        using var dave = As("dave");

        // Every self-declared risk input at its lowest: the decision is Allow, ring-0 (dev) runs, ring-1 (prod) waits.
        var intent = NewIntent("payments", new RiskFactors { PrivilegeImpact = 0, SupplyChainTrust = 0, BlastRadius = 0, ChangeComplexity = 0, TestEvidence = 1 }, "ring-0", "ring-1");
        intent.Spec.Artifact = new Artifact { Image = "attacker.example/payments:9.9.9", Sha256 = Digest };
        ControlPlane.Tests.Evidence.Attach(intent.Spec);
        var created = await bob.CreateAsync(Intents, dev, intent, CancellationToken.None);
        var waiting = await WaitAsync(dev, "payments", i => Awaits(i, "0 of 2"), "ring-0 done, ring-1 (prod) waits for two approvers");
        Assert.Equal("Allow", waiting.Status!.Decision);
        Assert.Equal(0, waiting.Status.RiskScore);
        Assert.Equal([dev], waiting.Status.Rings!.Single(r => r.Name == "ring-0").Workspaces);
        Assert.Contains($"reaches prod workspace(s) {prod}", Condition(waiting, IntentConditions.Ready)!.Message);
        Assert.DoesNotContain(waiting.Status.Rings!, r => r.Name == "ring-1");

        // bob's own approval: refused (he wrote the intent). dave approves in dev but is no Approver of prod: does not count.
        var self = await Refused(() => bob.CreateAsync(Approvals, dev, NewApproval("payments"), CancellationToken.None));
        Assert.Contains("self-approval", self.StatusMessage);
        var devOnly = await dave.CreateAsync(Approvals, dev, NewApproval("payments"), CancellationToken.None);
        var first = await carol.CreateAsync(Approvals, dev, NewApproval("payments"), CancellationToken.None);
        await WaitForApprovalAsync(dev, devOnly.Metadata.Name, "Counts");
        await WaitForApprovalAsync(dev, first.Metadata.Name, "Counts");
        await ReconciledAgainAsync(dev, "payments");
        var one = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, dev, "payments", CancellationToken.None);
        Assert.True(Awaits(one, "1 of 2"), $"carol only (dave approves no prod workspace): {Condition(one, IntentConditions.Approved)?.Message}");
        Assert.DoesNotContain(one.Status!.Rings!, r => r.Name == "ring-1");
        Assert.DoesNotContain(PublishesOf(created), c => c.IdempotencyKey == $"{created.Metadata.Uid}:ring-1" || c.Body.Contains(prod));
        // The Approvals say the same (not "approved" by the dev workspace's one-approver rule).
        await Net.WaitUntilAsync(async () => (await Cluster.Api.GetAsync<Approval>(Approvals, dev, first.Metadata.Name, CancellationToken.None)).Status?.Conditions?
            .FirstOrDefault(c => c.Type == ApprovalReconciler.TargetApprovedCondition)?.Message.StartsWith("1 of 2", StringComparison.Ordinal) == true, TimeSpan.FromSeconds(20), "carol's Approval: target 1 of 2");

        // A second Approver of the prod workspace: ring-1 runs, into prod only.
        await erin.CreateAsync(Approvals, dev, NewApproval("payments"), CancellationToken.None);
        var done = await WaitAsync(dev, "payments", i => i.Status?.Phase == IntentPhase.Completed, "Completed after two Approvers of prod");
        Assert.Equal([prod], done.Status!.Rings!.Single(r => r.Name == "ring-1").Workspaces);
        Assert.Contains(Email("carol"), Condition(done, IntentConditions.Approved)!.Message);
        Assert.Contains(Email("erin"), Condition(done, IntentConditions.Approved)!.Message);
        Assert.DoesNotContain(Email("dave"), Condition(done, IntentConditions.Approved)!.Message);
    }

    [Fact]
    public async Task AnIntentName_ItsRolloutsCannotCarry_IsRefusedAtAdmission_NamingTheFieldAndTheMaximum()
    {
        var ws = await TenantAsync("dev", [("wade", "Operator"), ("erin", "Approver")], "ring-1");
        await WaitForAccessAsync("wade", "create", "deploymentintents", ws[0]);
        using var wade = As("wade");
        var name = new string('p', 245);
        var e = await Refused(() => wade.CreateAsync(Intents, ws[0], NewIntent(name, Safe, "ring-1"), CancellationToken.None));
        Assert.Contains("metadata.name: 245 characters, at most 63", e.StatusMessage);
        Assert.Null(await Cluster.Api.TryGetAsync<DeploymentIntent>(Intents, ws[0], name, CancellationToken.None));
        var longest = new string('p', DeploymentIntentResources.MaxNameLength);
        await wade.CreateAsync(Intents, ws[0], NewIntent(longest, Safe, "ring-1"), CancellationToken.None);
        await WaitAsync(ws[0], longest, i => i.Status?.Phase == IntentPhase.Completed, "the longest name deploys");
    }

    [Fact]
    public async Task AnApprovalOfAnOlderGeneration_DoesNotCount_AndTheReviewedChange_CannotBeEditedOnceAssessed()
    {
        var mine = await TenantAsync("prod", [("bob", "Operator"), ("carol", "Approver"), ("erin", "Approver")], "ring-1", "ring-2");
        using var bob = As("bob");
        using var carol = As("carol");
        using var erin = As("erin");
        var ns = mine[0];

        // A risk model the platform admin got wrong holds every new intent Pending, unscored, and so still editable.
        var model = new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = RiskModel.ConfigMapName, NamespaceProperty = LocalControlPlane.OperatorNamespace },
            Data = new Dictionary<string, string> { ["weight.privilegeImpact"] = "20" },
        };
        await Cluster.Api.CreateAsync(WorkspaceReconciler.ConfigMaps, LocalControlPlane.OperatorNamespace, model, CancellationToken.None);
        List<Approval> reviewed;
        try
        {
            var created = await bob.CreateAsync(Intents, ns, NewIntent("swap", Risky, "ring-1", "ring-2"), CancellationToken.None);
            await WaitAsync(ns, "swap", i => Condition(i, IntentConditions.Ready)?.Reason == "InvalidRiskModel" && i.Status?.Phase == IntentPhase.Pending, "held Pending");

            // carol and erin review generation 1 (2.1.0); bob then swaps the change under them (6.6.6, more test evidence claimed).
            reviewed = [await carol.CreateAsync(Approvals, ns, NewApproval("swap"), CancellationToken.None), await erin.CreateAsync(Approvals, ns, NewApproval("swap"), CancellationToken.None)];
            Assert.All(reviewed, a => Assert.Equal(created.Metadata.Generation, a.Spec.TargetGeneration));
            var swapped = await bob.PatchAsync<DeploymentIntent>(Intents, ns, "swap",
                new System.Text.Json.Nodes.JsonObject
                {
                    ["spec"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["version"] = "6.6.6",
                        ["artifact"] = new System.Text.Json.Nodes.JsonObject
                        {
                            ["image"] = "registry.example/app:6.6.6",
                            // The scanner's report follows the artifact (the report of 2.1.0 is not about 6.6.6).
                            ["scanReport"] = new System.Text.Json.Nodes.JsonObject
                            {
                                ["configMap"] = ControlPlane.Tests.Evidence.ReportConfigMap("registry.example/app:6.6.6"),
                                ["sha256"] = ControlPlane.Tests.Evidence.Sha256(ControlPlane.Tests.Evidence.CleanReport("registry.example/app:6.6.6")),
                            },
                        },
                        ["risk"] = new System.Text.Json.Nodes.JsonObject { ["testEvidence"] = 0.6 },
                    },
                }.ToJsonString(),
                PatchTypes.Merge, CancellationToken.None);
            Assert.Equal(created.Metadata.Generation + 1, swapped.Metadata.Generation);
            foreach (var a in reviewed) await WaitForApprovalAsync(ns, a.Metadata.Name, "StaleGeneration");

            // An approval that claims the generation carol reviewed is refused, not rewritten to the new one.
            var stale = await Refused(() => carol.CreateAsync(Approvals, ns, NewApproval("swap", generation: created.Metadata.Generation), CancellationToken.None));
            Assert.Contains($"spec.targetGeneration: {created.Metadata.Generation} is not the current generation {swapped.Metadata.Generation}", stale.StatusMessage);
            await WaitAsync(ns, "swap", i => i.Status?.ObservedGeneration == swapped.Metadata.Generation, "the swap seen, still held");
        }
        finally
        {
            await Cluster.Api.DeleteAsync(WorkspaceReconciler.ConfigMaps, LocalControlPlane.OperatorNamespace, RiskModel.ConfigMapName, CancellationToken.None);
        }

        // The model removed, generation 2 is scored (risky: CAB) and the two approvals of generation 1 count for nothing.
        var waiting = await WaitAsync(ns, "swap", i => Awaits(i, "0 of 2 approval(s) for generation 2"), "CAB awaited for generation 2");
        Assert.Equal("RequireApproval", waiting.Status!.Decision);
        Assert.Empty(PublishesOf(waiting)); // prod: nothing published before CAB

        // Once assessed, the reviewed change is fixed: the risk inputs cannot be lowered, nor the artifact swapped again.
        var risk = await Refused(() => bob.PatchAsync<DeploymentIntent>(Intents, ns, "swap", """{"spec":{"risk":{"privilegeImpact":0,"blastRadius":0}}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec: is immutable once the intent has been assessed", risk.StatusMessage);
        var version = await Refused(() => bob.PatchAsync<DeploymentIntent>(Intents, ns, "swap", """{"spec":{"version":"7.7.7"}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec: is immutable", version.StatusMessage);
        Assert.Equal(waiting.Metadata.Generation, (await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "swap", CancellationToken.None)).Metadata.Generation);

        // Approvals of the generation under review do count.
        await carol.CreateAsync(Approvals, ns, NewApproval("swap"), CancellationToken.None);
        await erin.CreateAsync(Approvals, ns, NewApproval("swap"), CancellationToken.None);
        var completed = await WaitAsync(ns, "swap", i => i.Status?.Phase == IntentPhase.Completed, "Completed after CAB approved generation 2");
        Assert.Equal("6.6.6", PublishesOf(completed).Select(c => System.Text.Json.Nodes.JsonNode.Parse(c.Body)!["version"]?.GetValue<string>()).Distinct().Single());
    }

    [Fact]
    public async Task ATenantUser_CannotWriteTheIntentsStatus_ToSkipRiskScoringOrCab()
    {
        var mine = await TenantAsync("prod", [("wade", "Operator"), ("alice", "WorkspaceAdmin"), ("carol", "Approver")], "ring-1", "ring-2");
        var ns = mine[0];
        await WaitForAccessAsync("wade", "create", "deploymentintents", ns);
        using var wade = As("wade");

        // Status supplied on create is dropped (status subresource): the intent is scored and decided by the operator.
        var prefilled = NewIntent("risky", Risky, "ring-1", "ring-2");
        prefilled.Status = new DeploymentIntentStatus { Phase = IntentPhase.InProgress, Decision = "Allow", RiskScore = 0, RiskModelVersion = "v1.0", ApprovedAt = DateTime.UtcNow };
        var created = await wade.CreateAsync(Intents, ns, prefilled, CancellationToken.None);
        Assert.Null(created.Status?.Decision);
        var waiting = await WaitAsync(ns, "risky", i => Awaits(i, "0 of 2"), "scored, CAB awaited");
        Assert.Equal("RequireApproval", waiting.Status!.Decision);
        Assert.True(waiting.Status.RiskScore > 50);
        Assert.Null(waiting.Status.ApprovedAt);

        // The status subresource: no workspace role (nor the test users' cluster role) may write it.
        const string skip = """{"status":{"phase":"InProgress","decision":"Allow","riskScore":0,"conditions":[{"type":"Approved","status":"True","reason":"Approved","message":"forged","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}""";
        foreach (var user in new[] { "wade", "alice", "carol", "bob" })
        {
            using var api = As(user);
            var e = await Refused(() => api.PatchAsync<DeploymentIntent>(Intents, ns, "risky", skip, PatchTypes.Merge, CancellationToken.None, subresource: "status"), HttpStatusCode.Forbidden);
            Assert.Contains("deploymentintents/status", e.StatusMessage);
        }

        // Through the main resource, status is not written at all.
        await wade.PatchAsync<DeploymentIntent>(Intents, ns, "risky", skip, PatchTypes.Merge, CancellationToken.None);
        await ReconciledAgainAsync(ns, "risky");
        var after = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "risky", CancellationToken.None);
        Assert.True(Awaits(after, "0 of 2"), $"still awaiting CAB: {k8s.KubernetesJson.Serialize(after.Status)}");
        Assert.Equal("RequireApproval", after.Status!.Decision);
        Assert.DoesNotContain(after.Status.Rings ?? [], r => r.Name == "ring-2");
        Assert.DoesNotContain(PublishesOf(created), c => c.IdempotencyKey == $"{created.Metadata.Uid}:ring-2");
    }
}
