using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Attacks on Rollouts as token users of the local API server against the running operator
/// (webhooks and reconcilers): a Rollout as a confused deputy into a workspace its author cannot
/// touch, a prod ring without requiresApproval, a successRate query reading another tenant's series.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class RolloutAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    const string Old = "registry.example/payroll:1.0.0";
    const string Backdoor = "attacker.example/backdoor:latest";

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static string Email(string user) => user + "@example.com";

    /// <summary>A Ready workspace of the tenant with these members, running Deployment payroll on the old image.</summary>
    async Task<string> WorkspaceAsync(string tenant, string environment, params (string Kind, string Name, string Role)[] members)
    {
        var name = Unique(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["controlplane.io/ring"] = environment } } };
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
    /// acme: dev (bob Operator, alice WorkspaceAdmin, carol/erin/dave Approvers) and stage, a prod
    /// workspace bob is no member of (alice WorkspaceAdmin, carol/erin Approvers; dave is not one there).
    /// </summary>
    async Task<(string Dev, string Stage)> AcmeAsync()
    {
        var tenant = Unique("acme");
        await Cluster.CreateTenantAsync(tenant);
        var dev = await WorkspaceAsync(tenant, "dev", ("User", Email("bob"), "Operator"), ("User", Email("alice"), "WorkspaceAdmin"),
            ("User", Email("carol"), "Approver"), ("User", Email("erin"), "Approver"), ("User", Email("dave"), "Approver"));
        var stage = await WorkspaceAsync(tenant, "prod", ("User", Email("alice"), "WorkspaceAdmin"), ("User", Email("carol"), "Approver"), ("User", Email("erin"), "Approver"));
        return (dev, stage);
    }

    static Rollout NewRollout(string image, params Ring[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("payroll") },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = "payroll", Containers = [new ContainerImage { Name = "app", Image = image }] },
            Rings = [.. rings],
            Gates = new RolloutGates { ProgressDeadline = "5m" },
        },
    };

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    async Task<string> ImageAsync(string ns) => Deployments.ImageOf(await Deployments.GetAsync(Cluster.Api, ns, "payroll"));

    async Task<Rollout> WaitAsync(string ns, string name, Func<Rollout, bool> condition, string what)
    {
        Rollout? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await Cluster.Api.TryGetAsync<Rollout>(Rollouts, ns, name, CancellationToken.None);
                return last is not null && condition(last);
            }, TimeSpan.FromSeconds(60), $"rollout {ns}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (phase {last?.Status?.Phase}, conditions: {string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? [])})");
        }

        return last!;
    }

    static V1Condition? Condition(Rollout r, string type) => r.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    [Fact]
    public async Task ARolloutInDev_IntoAProdWorkspaceItsAuthorCannotTouch_IsRefusedAtAdmission_NamingTheRing()
    {
        var (dev, stage) = await AcmeAsync();
        using var bob = As("bob");
        // bob cannot set the image himself in stage ...
        var direct = await Assert.ThrowsAsync<KubeApiException>(() => bob.PatchAsync<V1Deployment>(Deployments.Type, stage, "payroll",
            "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"" + Backdoor + "\"}]}}}}", PatchTypes.StrategicMerge, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, direct.StatusCode);

        // ... nor through a Rollout in dev naming stage, by name or by selector.
        var named = await Refused(() => bob.CreateAsync(Rollouts, dev, NewRollout(Backdoor, new Ring { Name = "ring-0", Workspaces = [dev, stage] }), CancellationToken.None));
        Assert.Contains($"spec.rings[0].workspaces[1]: {Email("bob")} may not patch Deployment payroll in workspace {stage}", named.StatusMessage);
        Assert.DoesNotContain("workspaces[0]", named.StatusMessage);
        var selected = await Refused(() => bob.CreateAsync(Rollouts, dev, NewRollout(Backdoor,
            new Ring { Name = "ring-0", Selector = new LabelSelector { MatchLabels = new() { ["controlplane.io/ring"] = "prod" } } }), CancellationToken.None));
        Assert.Contains($"spec.rings[0].selector: matches workspace {stage}, where {Email("bob")} may not patch Deployment payroll", selected.StatusMessage);

        // Nor by adding stage to an admitted Rollout of his own workspace later.
        var ownSpec = NewRollout(Backdoor, new Ring { Name = "ring-0", Workspaces = [dev] });
        ownSpec.Spec.Paused = true;
        var own = await bob.CreateAsync(Rollouts, dev, ownSpec, CancellationToken.None);
        var widened = await Refused(() => bob.PatchAsync<Rollout>(Rollouts, dev, own.Metadata.Name,
            "{\"spec\":{\"rings\":[{\"name\":\"ring-0\",\"workspaces\":[\"" + dev + "\",\"" + stage + "\"]}]}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.rings[0].workspaces[1]", widened.StatusMessage);
        Assert.Equal(Old, await ImageAsync(stage));
    }

    [Fact]
    public async Task ARolloutForcedIn_WhoseAuthorLostTheRights_StopsBeforePatching()
    {
        var (dev, _) = await AcmeAsync();
        var tenant = (await Cluster.GetWorkspaceAsync(dev))!.Spec.Tenant;
        // shared: bob is an Operator there when he writes the Rollout (admission lets it in), paused.
        var shared = await WorkspaceAsync(tenant, "dev", ("User", Email("bob"), "Operator"), ("User", Email("alice"), "WorkspaceAdmin"));
        using var bob = As("bob");
        var spec = NewRollout(Backdoor, new Ring { Name = "ring-0", Workspaces = [shared] });
        spec.Spec.Paused = true;
        var rollout = await bob.CreateAsync(Rollouts, dev, spec, CancellationToken.None);
        await WaitAsync(dev, rollout.Metadata.Name, r => r.Status?.Phase == RolloutPhase.Paused, "paused");

        // Then bob is removed from shared; once the API server forbids him, he resumes his Rollout (a control action).
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, shared,
            "{\"spec\":{\"members\":[{\"kind\":\"User\",\"name\":\"" + Email("alice") + "\",\"role\":\"WorkspaceAdmin\"}]}}", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                await bob.PatchAsync<V1Deployment>(Deployments.Type, shared, "payroll", "{}", PatchTypes.Merge, CancellationToken.None);
                return false;
            }
            catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Forbidden)
            {
                return true;
            }
        }, TimeSpan.FromSeconds(30), "bob forbidden in shared");
        await bob.PatchAsync<Rollout>(Rollouts, dev, rollout.Metadata.Name, "{\"spec\":{\"paused\":false}}", PatchTypes.Merge, CancellationToken.None);

        var held = await WaitAsync(dev, rollout.Metadata.Name, r => Condition(r, "Ready")?.Reason == "RequesterForbidden", "held: its requester may not patch there");
        Assert.Contains($"{Email("bob")} may not patch Deployment payroll in workspace {shared}", Condition(held, "Ready")!.Message);
        Assert.Equal(RingPhase.Pending, held.Status!.Rings![0].Phase);
        Assert.Null(held.Status.Previous);
        Assert.Equal(Old, await ImageAsync(shared));
        var events = await Cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, dev, null, 500, null, CancellationToken.None);
        Assert.Contains(events.Items, e => e.InvolvedObject.Name == rollout.Metadata.Name && e.Reason == "RequesterForbidden" && e.Message.Contains(shared, StringComparison.Ordinal));
        Assert.Equal(Old, await ImageAsync(shared));
    }

    [Fact]
    public async Task AProdRing_WithoutRequiresApproval_WaitsForTwoApproversOfTheProdWorkspace()
    {
        var (dev, stage) = await AcmeAsync();
        using var alice = As("alice");
        using var carol = As("carol");
        using var dave = As("dave");
        using var erin = As("erin");
        const string New = "registry.example/payroll:2.0.0";
        // alice may patch in stage (WorkspaceAdmin), and says nothing about approval.
        var rollout = await alice.CreateAsync(Rollouts, dev, NewRollout(New, new Ring { Name = "ring-prod", Workspaces = [stage] }), CancellationToken.None);
        var name = rollout.Metadata.Name;
        var waiting = await WaitAsync(dev, name, r => r.Status?.Rings?[0].Phase == RingPhase.AwaitingApproval, "prod ring awaiting approval");
        Assert.Contains("reaches a prod workspace", Condition(waiting, "Paused")!.Message);
        Assert.Equal(Old, await ImageAsync(stage));

        Approval Approve() => new()
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr") },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Rollout", Name = name }, Decision = "approve" },
        };
        // carol counts; dave approves dev only, not stage: he does not.
        await carol.CreateAsync(Approvals, dev, Approve(), CancellationToken.None);
        var byDave = await dave.CreateAsync(Approvals, dev, Approve(), CancellationToken.None);
        await Net.WaitUntilAsync(async () =>
            (await Cluster.Api.GetAsync<Approval>(Approvals, dev, byDave.Metadata.Name, CancellationToken.None)).Status?.Conditions?
                .Any(c => c.Type == ApprovalReconciler.TargetApprovedCondition && c.Message.Contains("1 of 2 approval(s)", StringComparison.Ordinal)) == true,
            TimeSpan.FromSeconds(30), "dave's approval judged: still one of two");
        var one = await WaitAsync(dev, name, r => Condition(r, "Paused")?.Message.Contains("1 of 2 approval(s)", StringComparison.Ordinal) == true, "one of two");
        Assert.Equal(RingPhase.AwaitingApproval, one.Status!.Rings![0].Phase);
        Assert.Equal(Old, await ImageAsync(stage));

        await erin.CreateAsync(Approvals, dev, Approve(), CancellationToken.None);
        await WaitAsync(dev, name, r => r.Status?.Rings?[0].Phase is RingPhase.Progressing or RingPhase.Soaking or RingPhase.Succeeded, "started with two approvals");
        // The ring's status is written before its image patch (a rollback must find the previous images on record).
        await Net.WaitUntilAsync(async () => await ImageAsync(stage) == New, TimeSpan.FromSeconds(30), "the new image in stage");
    }

    [Fact]
    public async Task ASuccessRateQuery_ReadingAnotherTenantsSeries_IsRefusedAtAdmission_NamingTheField()
    {
        var (dev, _) = await AcmeAsync();
        using var bob = As("bob");
        Rollout WithQuery(string query)
        {
            var r = NewRollout("registry.example/payroll:3.0.0", new Ring { Name = "ring-0", Workspaces = [dev] });
            r.Spec.Paused = true;
            r.Spec.Gates!.SuccessRate = new SuccessRateGate { Query = query, Threshold = 0.5 };
            return r;
        }

        foreach (var query in new[]
                 {
                     "count(up{namespace=\"globex-dev\",secret=~\".+\"}) * 0.4711",
                     "sum(rate(http_requests_total{namespace=~\"{{namespaces}}\"}[5m])) / sum(rate(http_requests_total[5m]))",
                     "sum({__name__=~\".+\",namespace=~\"{{namespaces}}|globex-dev\"})",
                     // Keywords Prometheus reads as bare metric names where an operand goes (every namespace's series).
                     "sum(rate(offset[5m])) / sum(rate(http_requests_total{namespace=~\"{{namespaces}}\"}[5m]))",
                     "sum(http_requests_total{namespace=~\"{{namespaces}}\"}) / sum(or)",
                 })
        {
            var refused = await Refused(() => bob.CreateAsync(Rollouts, dev, WithQuery(query), CancellationToken.None));
            Assert.Contains("spec.gates.successRate.query: ", refused.StatusMessage);
            Assert.Contains("namespace=~\"{{namespaces}}\"", refused.StatusMessage);
        }

        // The contract's example is confined to the ring and admitted.
        await bob.CreateAsync(Rollouts, dev, WithQuery(
            "sum(rate(http_requests_total{namespace=~\"{{namespaces}}\",code!~\"5..\"}[5m])) / sum(rate(http_requests_total{namespace=~\"{{namespaces}}\"}[5m]))"), CancellationToken.None);
    }

    /// <summary>A tenant for intents: ring-1, where wade (in no cluster-wide group) is an Operator, and ring-2, where only mona is; Deployment app in both.</summary>
    async Task<(string Ring1, string Ring2)> IntentTenantAsync()
    {
        var tenant = Unique("dia");
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        async Task<string> RingWorkspaceAsync(string ring, string member)
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
                    Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                    Members = [new WorkspaceMember { Kind = "User", Name = Email(member), Role = "Operator" }, new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" }],
                },
            }, CancellationToken.None);
            await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
            await Deployments.CreateAsync(Cluster.Api, name, "app", "registry.example/app:2.0.5");
            await Cluster.Api.CreateAsync(ResourceType.Secrets, name, new V1Secret
            {
                Metadata = new V1ObjectMeta { Name = "plane" }, StringData = new Dictionary<string, string> { ["token"] = WebhookFixture.IntentPlaneToken },
            }, CancellationToken.None);
            return name;
        }

        var ring1 = await RingWorkspaceAsync("ring-1", "wade");
        var ring2 = await RingWorkspaceAsync("ring-2", "mona");
        using (var erin = As("erin")) await Applications.ApprovedApplicationAsync(Cluster.Api, ring1, ["ring-1", "ring-2"], [new(Email("erin"), erin)]);
        var reviews = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        var wadeUser = Cluster.Plane.Users["wade"];
        await Net.WaitUntilAsync(async () => (await Cluster.Api.CreateAsync(reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = wadeUser.Name, Groups = [.. wadeUser.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = "create", Group = ApiGroup.Group, Resource = "deploymentintents", NamespaceProperty = ring1 },
            },
        }, CancellationToken.None)).Status.Allowed, TimeSpan.FromSeconds(30), "wade may create deploymentintents");
        await Evidence.CreateAsync(Cluster.Api, ring1);
        return (ring1, ring2);
    }

    static DeploymentIntent NewIntent(string name, ExecutionPlane plane) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = Evidence.Attach(new DeploymentIntentSpec
        {
            Application = "app", Version = "2.1.0",
            Artifact = new Artifact { Image = "attacker.example/app:2.1.0", Sha256 = new string('a', 64) },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = ["ring-1", "ring-2"] },
            ExecutionPlane = plane,
            Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
            RollbackPlan = new RollbackPlan { Strategy = "previous-version", Validated = true },
            DriftCheckInterval = "1h",
        }),
    };

    [Fact]
    public async Task ADeploymentIntentOnTheHttpPlane_PublishesOnlyWhereItsAuthorMayPatch()
    {
        var (ring1, ring2) = await IntentTenantAsync();
        using var wade = As("wade");
        var name = Unique("ship");
        var created = await wade.CreateAsync(ResourceType.For<DeploymentIntent>(true), ring1, NewIntent(name,
            new ExecutionPlane { Type = "http", Url = fixture.IntentPlane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } }), CancellationToken.None);
        DeploymentIntent? last = null;
        await Net.WaitUntilAsync(async () =>
        {
            last = await Cluster.Api.GetAsync<DeploymentIntent>(ResourceType.For<DeploymentIntent>(true), ring1, name, CancellationToken.None);
            return last.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Reason == "RequesterForbidden") == true;
        }, TimeSpan.FromSeconds(90), "ring-2 held: the intent's author may not patch there");
        Assert.Contains($"{Email("wade")} may not patch Deployment app in workspace {ring2}", last!.Status!.Conditions!.First(c => c.Type == "Ready").Message);
        // The plane was told about ring-1 only.
        var publishes = fixture.IntentPlane.Calls.Where(c => c.Method == "POST" && c.Path == "/deployments"
                                                             && c.IdempotencyKey?.StartsWith(created.Metadata.Uid + ":", StringComparison.Ordinal) == true).ToList();
        Assert.NotEmpty(publishes);
        Assert.All(publishes, c => Assert.DoesNotContain(ring2, c.Body, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ADeploymentIntentsRollout_ActsWithItsAuthorsRights_NotTheOperators()
    {
        var (ring1, ring2) = await IntentTenantAsync();
        using var wade = As("wade");
        var name = Unique("ship");
        await wade.CreateAsync(ResourceType.For<DeploymentIntent>(true), ring1, NewIntent(name, new ExecutionPlane { Type = "kubernetes" }), CancellationToken.None);

        // ring-2's Rollout (made by the operator) acts for wade, who may not patch there: held, nothing patched.
        Rollout? held = null;
        await Net.WaitUntilAsync(async () =>
        {
            held = await Cluster.Api.TryGetAsync<Rollout>(Rollouts, ring1, $"{name}-ring-2", CancellationToken.None);
            return held is not null && Condition(held, "Ready")?.Reason == "RequesterForbidden";
        }, TimeSpan.FromSeconds(90), "ring-2's Rollout held: the intent's author may not patch there");
        Assert.Contains($"{Email("wade")} may not patch Deployment app in workspace {ring2}", Condition(held!, "Ready")!.Message);
        Assert.Contains(Email("wade"), held!.Metadata.Annotations[ApiGroup.OnBehalfOfAnnotation]);
        Assert.Equal("registry.example/app:2.0.5", Deployments.ImageOf(await Deployments.GetAsync(Cluster.Api, ring2, "app")));
        Assert.StartsWith("attacker.example/app:2.1.0", Deployments.ImageOf(await Deployments.GetAsync(Cluster.Api, ring1, "app")), StringComparison.Ordinal);

        // Nor can wade make a Rollout speak for someone else.
        var forged = NewRollout("registry.example/app:9.9.9", new Ring { Name = "ring-0", Workspaces = [ring1] });
        forged.Metadata.Annotations = new Dictionary<string, string> { [ApiGroup.OnBehalfOfAnnotation] = Requesters.FormatOnBehalfOf([new Requester(Email("mona"), [])]) };
        forged.Spec.Target.Deployment = "app";
        forged.Spec.Paused = true;
        var stamped = await wade.CreateAsync(Rollouts, ring1, forged, CancellationToken.None);
        Assert.False(stamped.Metadata.Annotations?.ContainsKey(ApiGroup.OnBehalfOfAnnotation) == true);
    }

    [Fact]
    public async Task AnIntentsRollout_EditedByItsAuthor_IsNoLongerGatedByTheIntent_ItsProdRingWaitsForTwoApprovers()
    {
        var (dev, stage) = await AcmeAsync();
        using var alice = As("alice");
        using var operatorApi = new KubeApi(Cluster.OperatorClientConfig());
        const string New = "registry.example/payroll:2.0.0";
        // As the operator makes it for a DeploymentIntent of alice's reaching dev only (on-behalf-of: the intent's approvals gate it).
        var made = NewRollout(New, new Ring { Name = "ring-dev", Workspaces = [dev] });
        made.Spec.Paused = true;
        made.Metadata.Annotations = new Dictionary<string, string> { [ApiGroup.OnBehalfOfAnnotation] = Requesters.FormatOnBehalfOf([new Requester(Email("alice"), [])]) };
        var rollout = await operatorApi.CreateAsync(Rollouts, dev, made, CancellationToken.None);
        var name = rollout.Metadata.Name;
        Assert.Contains(Email("alice"), rollout.Metadata.Annotations[ApiGroup.OnBehalfOfAnnotation]);

        // alice (who may patch in stage) adds a prod ring and unpauses: prod was never among what the intent's approvers approved.
        await alice.PatchAsync<Rollout>(Rollouts, dev, name,
            $$$"""{"spec":{"paused":false,"rings":[{"name":"ring-dev","workspaces":["{{{dev}}}"]},{"name":"ring-prod","workspaces":["{{{stage}}}"]}]}}""", PatchTypes.Merge, CancellationToken.None);
        var waiting = await WaitAsync(dev, name, r => r.Status?.ObservedGeneration == r.Metadata.Generation && r.Status?.Rings?.Count == 2 && r.Status.Rings[1].Phase == RingPhase.AwaitingApproval,
            "prod ring awaiting approval");
        Assert.Contains("reaches a prod workspace", Condition(waiting, "Paused")!.Message);
        Assert.Equal(Old, await ImageAsync(stage));
    }
}
