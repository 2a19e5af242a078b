using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 22, review of the merged fixes: attacks that still worked after the five classes were fixed, as
/// token users of the local API server against the running operator (webhooks and reconcilers).
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class ReviewAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    const string Old = "registry.example/payroll:1.0.0";

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static string Email(string user) => user + "@example.com";

    async Task<string> WorkspaceAsync(string tenant, string environment, params (string Kind, string Name, string Role)[] members)
    {
        var name = Unique(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Environment = environment;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members = members.Select(m => new WorkspaceMember { Kind = m.Kind, Name = m.Name, Role = m.Role }).ToList();
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None))?.Status?.Phase == WorkspacePhase.Ready,
            TimeSpan.FromSeconds(30), $"workspace {name} Ready");
        await Deployments.CreateAsync(Cluster.Api, name, "payroll", Old);
        return name;
    }

    /// <summary>
    /// A Rollout the operator made for a DeploymentIntent (on-behalf-of) skips the prod approvals: the intent's
    /// own approvals gate it. bob, an Operator of the workspace it lives in, edited its ring to reach a prod
    /// workspace (where he and the intent's author may patch): his edit was never approved by anyone, and the
    /// prod ring ran with no approval at all. Now an edit by anyone but its creator makes the ring wait for
    /// the two Approvers of the prod workspace, as any Rollout reaching prod does.
    /// </summary>
    [Fact]
    public async Task AnIntentsRollout_EditedByAMemberIntoProd_WaitsForTwoApprovers()
    {
        var tenant = Unique("acme");
        await Cluster.CreateTenantAsync(tenant);
        var dev = await WorkspaceAsync(tenant, "dev", ("User", Email("bob"), "Operator"), ("User", Email("alice"), "WorkspaceAdmin"),
            ("User", Email("carol"), "Approver"), ("User", Email("erin"), "Approver"));
        var prod = await WorkspaceAsync(tenant, "prod", ("User", Email("bob"), "Operator"), ("User", Email("alice"), "WorkspaceAdmin"),
            ("User", Email("carol"), "Approver"), ("User", Email("erin"), "Approver"));

        // As the kubernetes plane makes it: by the operator, on behalf of the intent's author alice; paused before its ring.
        using var asOperator = new KubeApi(Cluster.OperatorClientConfig());
        var alice = Cluster.Plane.Users["alice"];
        var name = Unique("payments-ring-1");
        var made = await asOperator.CreateAsync(Rollouts, dev, new Rollout
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Annotations = new Dictionary<string, string> { [ApiGroup.OnBehalfOfAnnotation] = Requesters.FormatOnBehalfOf([new Requester(alice.Name, [.. alice.Groups])]) },
            },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "payroll", Containers = [new ContainerImage { Name = "app", Image = "registry.example/payroll:2.0.0" }] },
                Rings = [new Ring { Name = "ring-1", Workspaces = [dev], Soak = "0s" }],
                Gates = new RolloutGates { ProgressDeadline = "5m" },
                Paused = true,
            },
        }, CancellationToken.None);
        Assert.True(made.Metadata.Annotations.ContainsKey(ApiGroup.OnBehalfOfAnnotation));

        // bob points the ring at prod and lets it go.
        using var bob = As("bob");
        var edited = await bob.PatchAsync<Rollout>(Rollouts, dev, name, $$$"""{"spec":{"paused":false,"rings":[{"name":"ring-1","workspaces":["{{{prod}}}"],"soak":"0s"}]}}""",
            PatchTypes.Merge, CancellationToken.None);

        Rollout? last = null;
        await Net.WaitUntilAsync(async () =>
        {
            last = await Cluster.Api.TryGetAsync<Rollout>(Rollouts, dev, name, CancellationToken.None);
            return last?.Status is { } s && s.ObservedGeneration == edited.Metadata.Generation && s.Rings?.FirstOrDefault()?.Phase is { } phase && phase != RingPhase.Pending;
        }, TimeSpan.FromSeconds(60), "the edited ring judged");
        Assert.Equal(RingPhase.AwaitingApproval, last!.Status!.Rings![0].Phase);
        Assert.Contains("reaches a prod workspace", last.Status.Conditions!.First(c => c.Type == "Paused").Message);
        Assert.Equal(Old, Deployments.ImageOf(await Deployments.GetAsync(Cluster.Api, prod, "payroll")));

        // alice, the intent's author it acts for, is an author of what it deploys: her approval is self-approval.
        using var asAlice = As("alice");
        var self = await Assert.ThrowsAsync<KubeApiException>(() => asAlice.CreateAsync(ResourceType.For<Approval>(true), dev, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr") },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Rollout", Name = name }, Decision = "approve" },
        }, CancellationToken.None));
        Assert.Contains("self-approval is not allowed", self.StatusMessage);
    }
    /// <summary>
    /// With Capsule-style prefix forcing, tenant acme (owner alice) took "acme-corp-prod": it starts with
    /// "acme-", but it is the name tenant acme-corp's prod workspace gets, and its ServiceAccount members'
    /// namespaces too. A name under a longer tenant's prefix is that tenant's: refused at admission, naming it.
    /// </summary>
    [Fact]
    public async Task UnderTenantPrefixes_ATenantCannotTakeANameUnderAnotherTenantsLongerPrefix()
    {
        var acme = Unique("acme");
        var corp = acme + "-corp";
        await Cluster.CreateTenantAsync(acme, edit: t => t.Owners = [new Subject { Kind = "User", Name = Email("alice") }]);
        await Cluster.CreateTenantAsync(corp);
        await Net.WaitUntilAsync(() => Task.FromResult(fixture.App!.Services.GetRequiredService<Operator.Kinds.AdmissionCaches>().Tenants.Get(corp) is not null),
            TimeSpan.FromSeconds(60), "tenant in the admission cache");
        var options = fixture.App!.Services.GetRequiredService<ControlPlaneOptions>();
        options.ForceTenantPrefix = true;
        try
        {
            using var alice = As("alice");
            Workspace New(string name) => new() { Metadata = new V1ObjectMeta { Name = name }, Spec = new WorkspaceSpec { Tenant = acme, Database = new WorkspaceDatabase { Enabled = false } } };
            var squat = corp + "-prod";
            var refused = await Assert.ThrowsAsync<KubeApiException>(() => alice.CreateAsync(ClusterFixture.Workspaces, null, New(squat), CancellationToken.None));
            Assert.Contains($"metadata.name: \"{squat}\" starts with \"{corp}-\", the prefix of tenant {corp}", refused.StatusMessage);
            await alice.CreateAsync(ClusterFixture.Workspaces, null, New(acme + "-dev"), CancellationToken.None);

            // The other way round: tenant "<acme>-team" would find its prefix holding acme's "<acme>-team-a"; refused at its creation.
            var team = acme + "-team";
            await alice.CreateAsync(ClusterFixture.Workspaces, null, New(team + "-a"), CancellationToken.None);
            await Net.WaitUntilAsync(() => Task.FromResult(fixture.App!.Services.GetRequiredService<Operator.Kinds.AdmissionCaches>().Workspaces.Get(team + "-a") is not null),
                TimeSpan.FromSeconds(60), "workspace in the admission cache");
            var late = await Assert.ThrowsAsync<KubeApiException>(() => Cluster.CreateTenantAsync(team));
            Assert.Contains($"workspace {team}-a of tenant {acme} is already under the prefix \"{team}-\"", late.StatusMessage);
            await alice.DeleteAsync(ClusterFixture.Workspaces, null, team + "-a", CancellationToken.None);
            await alice.DeleteAsync(ClusterFixture.Workspaces, null, acme + "-dev", CancellationToken.None);
        }
        finally
        {
            options.ForceTenantPrefix = false;
        }
    }
    /// <summary>
    /// carol is WorkspaceAdmin of workspace ci, whose ServiceAccount ci/admin is WorkspaceAdmin of dev: she can
    /// mint ci/admin's token, and with it dev/bot's. She wrote a Rollout as dev/bot and approved it as herself:
    /// only a direct token-minting role in dev made an approver an author. The chain of namespaces counts too.
    /// </summary>
    [Fact]
    public async Task AnApprover_WhoCanMintTheAuthorsTokenThroughAnotherServiceAccount_CannotApprove()
    {
        var tenant = Unique("acme");
        await Cluster.CreateTenantAsync(tenant);
        var ci = Unique(tenant);
        var dev = Unique(tenant);
        async Task CreateAsync(string name, params WorkspaceMember[] members)
        {
            await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta { Name = name },
                Spec = new WorkspaceSpec { Tenant = tenant, Database = new WorkspaceDatabase { Enabled = false }, Members = [.. members] },
            }, CancellationToken.None);
            await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        }

        await CreateAsync(ci, new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "WorkspaceAdmin" });
        await CreateAsync(dev, new WorkspaceMember { Kind = "ServiceAccount", Name = $"{ci}/admin", Role = "WorkspaceAdmin" },
            new WorkspaceMember { Kind = "ServiceAccount", Name = $"{dev}/bot", Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "Approver" });

        // dev/bot's token (what carol gets through ci/admin's; the local control plane runs no kubelet, so TokenRequest).
        var serviceAccounts = new ResourceType("", "v1", "serviceaccounts", "ServiceAccount", true);
        await Cluster.Api.CreateAsync(serviceAccounts, dev, new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "bot" } }, CancellationToken.None);
        var token = await Cluster.Api.SendAsync(HttpMethod.Post, serviceAccounts.ItemPath(dev, "bot", "token"),
            """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}""", "application/json", CancellationToken.None);
        var config = Cluster.Plane.ClientConfig();
        config.AccessToken = System.Text.Json.Nodes.JsonNode.Parse(token)!["status"]!["token"]!.GetValue<string>();
        using var bot = new KubeApi(config);
        var name = Unique("payroll");
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await bot.CreateAsync(Rollouts, dev, new Rollout
                {
                    Metadata = new V1ObjectMeta { Name = name },
                    Spec = new RolloutSpec
                    {
                        Target = new RolloutTarget { Deployment = "payroll", Containers = [new ContainerImage { Name = "app", Image = "registry.example/payroll:2.0.0" }] },
                        Rings = [new Ring { Name = "ring-1", Workspaces = [dev] }],
                        Paused = true,
                    },
                }, CancellationToken.None);
                return true;
            }
            catch (KubeApiException e) when (e.StatusCode is System.Net.HttpStatusCode.Forbidden or System.Net.HttpStatusCode.UnprocessableEntity)
            {
                return false; // bot's binding not there yet
            }
        }, TimeSpan.FromSeconds(30), "dev/bot writes the Rollout");

        using var carol = As("carol");
        string? refusal = null;
        await Net.WaitUntilAsync(async () =>
        {
            var approval = new Approval
            {
                Metadata = new V1ObjectMeta { Name = Unique("apr") },
                Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Rollout", Name = name }, Decision = "approve" },
            };
            try
            {
                await carol.CreateAsync(ResourceType.For<Approval>(true), dev, approval, CancellationToken.None);
                Assert.Fail("carol's approval of the Rollout she wrote as dev/bot was admitted");
            }
            catch (KubeApiException e) when (e.StatusCode == System.Net.HttpStatusCode.UnprocessableEntity)
            {
                refusal = e.StatusMessage;
            }

            return refusal?.Contains("can act as system:serviceaccount:" + dev + ":bot", StringComparison.Ordinal) == true;
        }, TimeSpan.FromSeconds(20), "carol's approval refused as an author's");
        Assert.Contains($"whose ServiceAccount {ci}/admin holds controlplane:workspace:workspace-admin in namespace {dev}", refusal);
    }
    /// <summary>
    /// The kubernetes plane read a ring's result from whatever Rollout bore the ring's name: wade, an Operator of
    /// the ring's workspace, edited the intent's Rollout (another workspace set, or deleted and re-made it with
    /// another image) and the intent took its "Succeeded" as its own canary passing. A Rollout not as the operator
    /// made it for the intent is not trusted: the ring fails, naming who wrote it.
    /// </summary>
    [Fact]
    public async Task AnIntentsRollout_EditedByAMember_IsNotTakenAsTheIntentsRing()
    {
        var tenant = Unique("dia");
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        var ring1 = Unique(tenant);
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta
            {
                Name = ring1,
                Labels = new Dictionary<string, string>
                {
                    [ApiGroup.RingLabel] = "ring-1", [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online",
                },
            },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members = [new WorkspaceMember { Kind = "User", Name = Email("wade"), Role = "Operator" }, new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" }],
            },
        }, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ring1, ClusterFixture.IsReady, "Ready");
        using (var erin = As("erin")) await Applications.ApprovedApplicationAsync(Cluster.Api, ring1, ["ring-1"], [new(Email("erin"), erin)]);
        await Deployments.CreateAsync(Cluster.Api, ring1, "app", "registry.example/app:2.0.5");

        using var wade = As("wade");
        var name = Unique("ship");
        var intents = ResourceType.For<DeploymentIntent>(true);
        await Evidence.CreateAsync(Cluster.Api, ring1);
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await wade.CreateAsync(intents, ring1, new DeploymentIntent
                {
                    Metadata = new V1ObjectMeta { Name = name },
                    Spec = Evidence.Attach(new DeploymentIntentSpec
                    {
                        Application = "app", Version = "2.1.0",
                        Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = new string('a', 64) },
                        TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = ["ring-1"] },
                        ExecutionPlane = new ExecutionPlane { Type = "kubernetes" },
                        // A day's soak: the ring stays in progress, read from its Rollout every pass.
                        Schedule = new Dictionary<string, RingSchedule> { ["ring-1"] = new() { Start = DateTime.UtcNow.AddMinutes(-1), DurationHours = 24 } },
                        Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
                        RollbackPlan = new RollbackPlan { Strategy = "previous-version", Validated = true },
                        DriftCheckInterval = "1h",
                    }),
                }, CancellationToken.None);
                return true;
            }
            catch (KubeApiException e) when (e.StatusCode == System.Net.HttpStatusCode.Forbidden)
            {
                return false; // wade's binding not there yet
            }
        }, TimeSpan.FromSeconds(30), "wade writes the intent");

        var rolloutName = $"{name}-ring-1";
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<Rollout>(Rollouts, ring1, rolloutName, CancellationToken.None))?.Status?.Phase is not null,
            TimeSpan.FromSeconds(60), "the intent's Rollout runs");
        // wade rewrites its ring (here: the same workspace, with a soak; any edit of what it rolls out).
        await wade.PatchAsync<Rollout>(Rollouts, ring1, rolloutName, """{"spec":{"rings":[{"name":"ring-1","workspaces":["__WS__"],"soak":"1s"}]}}""".Replace("__WS__", ring1),
            PatchTypes.Merge, CancellationToken.None);

        DeploymentIntent? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await Cluster.Api.TryGetAsync<DeploymentIntent>(intents, ring1, name, CancellationToken.None);
                return last?.Status?.Rings?.FirstOrDefault(r => r.Name == "ring-1")?.Phase is IntentRingPhase.Failed or IntentRingPhase.RolledBack;
            }, TimeSpan.FromSeconds(60), "the intent's ring failed (and rolled back): its Rollout is not the operator's any more");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        Assert.Contains("is not as the operator made it for this intent (written by ", last!.Status!.Rings!.First(r => r.Name == "ring-1").Message);
        Assert.Contains(Email("wade"), last.Status.Rings!.First(r => r.Name == "ring-1").Message);
    }
}
