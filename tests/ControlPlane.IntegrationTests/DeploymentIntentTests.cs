using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// DeploymentIntents end to end with no webhook in front (the reconciler's own checks): each
/// decision, CAB in prod with the evidence pack, one change per application and ring, the http plane
/// (the connector contract server, a real HTTP server on 127.0.0.1) with each error class and a
/// replayed publish, drift both ways, and the kubernetes plane through real Rollouts and Deployments.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DeploymentIntentTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    const string Token = "plane-token-0123456789";
    static readonly string Digest = new('a', 64);

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    TestOperator Start(ConnectorContractServer? plane = null, IReadOnlyCollection<string>? expectedErrors = null) =>
        TestOperator.Start(cluster, Unique("lease"), output, o =>
        {
            if (plane is not null) o.DeploymentIntent.PlaneUrlPrefixes.Add(plane.BaseUrl.AbsoluteUri);
            o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1);
            o.DeploymentIntent.PollInterval = TimeSpan.FromMilliseconds(300);
        }, expectedErrors);

    /// <summary>A tenant with scope acq-001 and, per ring, a Ready workspace labelled with it; the intent lives in the first. carol and erin approve.</summary>
    async Task<(string Tenant, List<string> Workspaces)> TenantAsync(string environment, params string[] rings)
    {
        var tenant = Unique("di");
        await cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        var names = new List<string>();
        foreach (var ring in rings)
        {
            var name = Unique(tenant);
            await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
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
                    Members =
                    [
                        new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
                        new WorkspaceMember { Kind = "User", Name = "erin@example.com", Role = "Approver" },
                    ],
                },
            }, CancellationToken.None);
            names.Add(name);
        }

        foreach (var name in names) await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        return (tenant, names);
    }

    static DeploymentIntent Intent(string name, ConnectorContractServer? plane, RiskFactors? risk = null, params string[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new DeploymentIntentSpec
        {
            Application = "app", Version = "2.1.0",
            Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = Digest },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = [.. rings] },
            ExecutionPlane = plane is null ? new ExecutionPlane { Type = "kubernetes" }
                : new ExecutionPlane { Type = "http", Url = plane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = risk ?? new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
            RollbackPlan = new RollbackPlan { Strategy = "previous-version", Validated = true },
            DriftCheckInterval = "1h",
        },
    };

    async Task<DeploymentIntent> CreateAsync(string ns, DeploymentIntent intent, bool withSecret = true)
    {
        if (withSecret && intent.Spec.ExecutionPlane?.Type == "http"
            && await cluster.Api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, "plane", CancellationToken.None) is null)
        {
            await cluster.Api.CreateAsync(ResourceType.Secrets, ns, new V1Secret
            {
                Metadata = new V1ObjectMeta { Name = "plane" }, StringData = new Dictionary<string, string> { ["token"] = Token },
            }, CancellationToken.None);
        }

        // No webhook on this API server: the creator stamp it would write (the admin) is written here;
        // the operator acts in the ring workspaces only with the intent's authors' rights.
        intent.Metadata.Annotations ??= new Dictionary<string, string>();
        if (!intent.Metadata.Annotations.ContainsKey(ApiGroup.CreatedByAnnotation))
        {
            intent.Metadata.Annotations[ApiGroup.CreatedByAnnotation] = cluster.Plane.Admin.Name;
            intent.Metadata.Annotations[ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(null, cluster.Plane.Admin.Name, cluster.Plane.Admin.Groups);
        }

        // Issue 23: the intent's Application, its scope approved by CAB (carol and erin approve in every workspace here).
        await Applications.ApprovedApplicationAsync(cluster.Api, ns, intent.Spec.TargetScope.Rings, [new("carol@example.com"), new("erin@example.com")], intent.Spec.Application);
        await Evidence.AttachAsync(cluster.Api, ns, intent);
        return await cluster.Api.CreateAsync(Intents, ns, intent, CancellationToken.None);
    }

    /// <summary>What the webhook would have stamped, written by hand (no webhook runs in this collection).</summary>
    async Task ApproveAsync(DeploymentIntent target, string approver, bool overrideConflict = false)
    {
        await cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "DeploymentIntent", Name = target.Metadata.Name },
                Approver = approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation, Override = overrideConflict,
            },
        }, CancellationToken.None);
    }

    async Task<DeploymentIntent> WaitAsync(string ns, string name, Func<DeploymentIntent, bool> condition, string what, TimeSpan? timeout = null)
    {
        DeploymentIntent? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, name, CancellationToken.None);
                return condition(last);
            }, timeout ?? TimeSpan.FromSeconds(40), $"intent {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"intent {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    static string? Reason(DeploymentIntent i, string type = IntentConditions.Ready) => i.Status?.Conditions?.FirstOrDefault(c => c.Type == type)?.Reason;

    static async Task<List<string>> TransitionsAsync(TestOperator op, DeploymentIntent i) =>
        (await op.Runtime.Database.GetDeploymentEventsAsync(i.Metadata.Uid!, CancellationToken.None))
            .Where(e => e.Event.EventType == "transition").Select(e => $"{e.Event.FromPhase}->{e.Event.ToPhase}").ToList();

    [Fact]
    public async Task AnAllowedIntent_RunsItsRingsInOrderOnTheHttpPlane_WithTheCorrelationIdAsIdempotencyKey_AndRecordsEveryTransition()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = Start(plane);
        var (_, ws) = await TenantAsync("dev", "ring-1", "ring-2");
        var created = await CreateAsync(ws[0], Intent("app-2-1-0", plane, null, "ring-1", "ring-2"));

        var done = await WaitAsync(ws[0], created.Metadata.Name, i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        Assert.Equal("Allow", done.Status!.Decision);
        Assert.Equal(created.Metadata.Uid, done.Status.CorrelationId);
        Assert.Equal("v1.0", done.Status.RiskModelVersion);
        Assert.Equal(["ring-1", "ring-2"], done.Status.Rings!.Select(r => r.Name));
        Assert.All(done.Status.Rings!, r => Assert.Equal(IntentRingPhase.Completed, r.Phase));
        Assert.Equal([ws[0]], done.Status.Rings![0].Workspaces);
        Assert.Equal("True", done.Status.Conditions!.Single(c => c.Type == IntentConditions.Ready).Status);

        var publishes = plane.Calls.Where(c => c.Method == "POST" && c.Path == "/deployments").ToList();
        Assert.Equal([$"{created.Metadata.Uid}:ring-1", $"{created.Metadata.Uid}:ring-2"], publishes.Select(c => c.IdempotencyKey).Distinct());
        Assert.All(plane.Calls, c => Assert.True(c.Authorized));
        Assert.Equal(2, plane.DeploymentsCreated);
        Assert.Equal(
            ["Pending->RiskAssessed", "RiskAssessed->ScopeValidated", "ScopeValidated->InProgress", "InProgress->Completed"],
            await TransitionsAsync(op, done));
        Assert.Null(await op.Runtime.Database.VerifyDeploymentEventChainAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Denials_NoDigest_ARingWithoutWorkspaces_AndAPlaneUrlNotAllowed_WhileAVulnerableArtifactWaitsForAnException()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = Start(plane);
        var (_, ws) = await TenantAsync("dev", "ring-1");

        var noDigest = Intent("no-digest", plane, null, "ring-1");
        noDigest.Spec.Artifact.Sha256 = null;
        await CreateAsync(ws[0], noDigest);
        var vulnerable = Intent("vulnerable", plane, null, "ring-1");
        vulnerable.Spec.Artifact.Vulnerabilities = [new Vulnerability { Id = "CVE-2025-12345", Severity = "Critical" }];
        await CreateAsync(ws[0], vulnerable);
        await CreateAsync(ws[0], Intent("no-ring", plane, null, "ring-9"));
        var elsewhere = Intent("elsewhere", plane, null, "ring-1");
        elsewhere.Spec.ExecutionPlane!.Url = "http://127.0.0.1:1/metadata/";
        await CreateAsync(ws[0], elsewhere);

        Assert.Equal("NoArtifactDigest", Reason(await WaitAsync(ws[0], "no-digest", i => i.Status?.Phase == IntentPhase.Denied, "Denied")));
        // A Critical vulnerability is not denied: it waits for an Exception (RequireException), publishing nothing.
        var v = await WaitAsync(ws[0], "vulnerable", i => i.Status?.Phase == IntentPhase.AwaitingApproval, "waits for an Exception");
        Assert.Equal("RequireException", v.Status!.Decision);
        Assert.Contains("CVE-2025-12345 (Critical)", v.Status.Conditions!.Single(c => c.Type == IntentConditions.ExceptionsCovered).Message);
        Assert.Equal(IntentReasons.AwaitingException, v.Status.Conditions!.Single(c => c.Type == IntentConditions.Ready).Reason);
        var ring = await WaitAsync(ws[0], "no-ring", i => i.Status?.Phase == IntentPhase.Denied, "Denied");
        Assert.Contains("ring \"ring-9\" has no workspace", ring.Status!.Conditions!.Single(c => c.Type == IntentConditions.ScopeValid).Message);
        var url = await WaitAsync(ws[0], "elsewhere", i => i.Status?.Phase == IntentPhase.Denied, "Denied");
        Assert.Contains("spec.executionPlane.url: http://127.0.0.1:1/metadata/ is not under ControlPlane:DeploymentIntent:PlaneUrlPrefixes",
            url.Status!.Conditions!.Single(c => c.Type == IntentConditions.ScopeValid).Message);
        Assert.DoesNotContain(plane.Calls, c => c.Method == "POST");
    }

    [Fact]
    public async Task ARiskyIntentInProd_WaitsBeforeRingOne_ForTwoApproversAndTheEvidencePack()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = Start(plane);
        var (_, ws) = await TenantAsync("prod", "ring-1", "ring-2");
        var evidence = "{\"tests\":\"passed\"}";
        var risky = Intent("risky", plane, new RiskFactors { PrivilegeImpact = 1.0, SupplyChainTrust = 0.6, BlastRadius = 0.8, ChangeComplexity = 0.5, TestEvidence = 0.4 }, "ring-1", "ring-2");
        risky.Spec.EvidencePackRef = new EvidencePackRef { ConfigMap = "evidence", Sha256 = DeploymentIntentResources.Sha256Hex(Encoding.UTF8.GetBytes(evidence)) };
        var created = await CreateAsync(ws[0], risky);

        // Every ring is prod: not even the first starts before CAB (the targets' environment gates every ring).
        var waiting = await WaitAsync(ws[0], "risky", i => i.Status?.Phase == IntentPhase.AwaitingApproval, "CAB awaited before ring 1");
        await LiveHealth.AssertAsync(cluster.Api, Intents, ws[0], "risky", "CAB approval awaited");
        Assert.Equal("RequireApproval", waiting.Status!.Decision);
        Assert.True(waiting.Status.RiskScore > 50);
        Assert.Empty(waiting.Status.Rings ?? []);

        await ApproveAsync(created, "carol@example.com");
        var one = await WaitAsync(ws[0], "risky", i => i.Status?.Conditions?.Any(c => c.Type == IntentConditions.Approved && c.Message.Contains("1 of 2")) == true, "1 of 2");
        Assert.Equal(IntentPhase.AwaitingApproval, one.Status!.Phase);
        await ApproveAsync(created, "erin@example.com");
        var noEvidence = await WaitAsync(ws[0], "risky", i => Reason(i, IntentConditions.Approved) == "EvidenceMissing", "evidence missing");
        Assert.Contains("ConfigMap", noEvidence.Status!.Conditions!.Single(c => c.Type == IntentConditions.Approved).Message);

        await cluster.Api.CreateAsync(WorkspaceReconciler.ConfigMaps, ws[0], new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = "evidence" }, Data = new Dictionary<string, string> { ["evidence"] = evidence },
        }, CancellationToken.None);
        // ConfigMaps are not watched: once CAB has approved, the pack is looked for on the poll interval.
        var done = await WaitAsync(ws[0], "risky", i => i.Status?.Phase == IntentPhase.Completed, "Completed after CAB");
        Assert.NotNull(done.Status!.ApprovedAt);
        Assert.Contains("ScopeValidated->AwaitingApproval", await TransitionsAsync(op, done));
        Assert.Contains("AwaitingApproval->InProgress", await TransitionsAsync(op, done));
    }

    [Fact]
    public async Task AProdWorkspaceLabelledIntoALaterRing_WhileTheIntentRuns_GatesThatRing_ForTwoApprovers()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        plane.AutoAdvance = false;
        await using var op = Start(plane);
        var (tenant, ws) = await TenantAsync("dev", "ring-0", "ring-1");
        // A prod workspace of the same tenant, in no ring of the intent yet (carol and erin approve there too).
        var prod = Unique(tenant);
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta
            {
                Name = prod,
                Labels = new Dictionary<string, string>
                {
                    [ApiGroup.RingLabel] = "spare", [ApiGroup.AcquisitionBoundaryLabel] = "acq-001",
                    [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online",
                },
            },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "prod", Database = new WorkspaceDatabase { Enabled = false },
                Members = [new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" }, new WorkspaceMember { Kind = "User", Name = "erin@example.com", Role = "Approver" }],
            },
        }, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(prod, ClusterFixture.IsReady, "Ready");

        // Low risk, dev targets: Allow, ring-0 runs. While it does, the prod workspace is labelled into ring-1.
        var created = await CreateAsync(ws[0], Intent("grow", plane, null, "ring-0", "ring-1"));
        await WaitAsync(ws[0], "grow", i => i.Status?.Rings?.Any(r => r.Name == "ring-0" && r.Phase == IntentRingPhase.InProgress) == true, "ring-0 in progress");
        Assert.Equal("Allow", (await cluster.Api.GetAsync<DeploymentIntent>(Intents, ws[0], "grow", CancellationToken.None)).Status!.Decision);
        await cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, prod, "{\"metadata\":{\"labels\":{\"" + ApiGroup.RingLabel + "\":\"ring-1\"}}}",
            PatchTypes.Merge, CancellationToken.None);
        plane.Advance(created.Metadata.Uid!, "ring-0", "succeeded");

        // ring-1 now reaches prod: re-evaluated before it starts, it waits for two approvers.
        var waiting = await WaitAsync(ws[0], "grow", i => i.Status?.Phase == IntentPhase.AwaitingApproval, "ring-1 (now with prod) waits");
        Assert.Contains($"reaches prod workspace(s) {prod}", waiting.Status!.Conditions!.Single(c => c.Type == IntentConditions.Ready).Message);
        Assert.StartsWith("0 of 2", waiting.Status.Conditions!.Single(c => c.Type == IntentConditions.Approved).Message);
        Assert.DoesNotContain(waiting.Status.Rings!, r => r.Name == "ring-1");
        await ApproveAsync(created, "carol@example.com");
        await WaitAsync(ws[0], "grow", i => i.Status?.Conditions?.Any(c => c.Type == IntentConditions.Approved && c.Message.StartsWith("1 of 2", StringComparison.Ordinal)) == true, "1 of 2");
        await ApproveAsync(created, "erin@example.com");
        var started = await WaitAsync(ws[0], "grow", i => i.Status?.Rings?.Any(r => r.Name == "ring-1" && r.Phase == IntentRingPhase.InProgress) == true, "ring-1 starts after two approvers");
        Assert.Equal(new[] { ws[1], prod }.Order(StringComparer.Ordinal), started.Status!.Rings!.Single(r => r.Name == "ring-1").Workspaces);
    }

    [Fact]
    public async Task OneChangePerApplicationAndRing_TheSecondWaits_UntilTheFirstLeavesTheRing()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        plane.AutoAdvance = false;
        await using var op = Start(plane);
        var (_, ws) = await TenantAsync("dev", "ring-1");
        var first = await CreateAsync(ws[0], Intent("first", plane, null, "ring-1"));
        await WaitAsync(ws[0], "first", i => i.Status?.Rings?.Any(r => r.Phase == IntentRingPhase.InProgress) == true, "ring-1 in progress");
        await CreateAsync(ws[0], Intent("second", plane, null, "ring-1"));
        var waits = await WaitAsync(ws[0], "second", i => Reason(i) == "ConflictingChange", "ConflictingChange");
        Assert.Contains($"{ws[0]}/first", waits.Status!.Conditions!.Single(c => c.Type == IntentConditions.Ready).Message);
        Assert.Single(plane.Calls.Where(c => c.Method == "POST" && c.Path == "/deployments").Select(c => c.IdempotencyKey).Distinct());

        plane.Advance(first.Metadata.Uid!, "ring-1", "succeeded");
        await WaitAsync(ws[0], "first", i => i.Status?.Phase == IntentPhase.Completed, "first Completed");
        var second = await WaitAsync(ws[0], "second", i => i.Status?.Rings?.Any(r => r.Phase == IntentRingPhase.InProgress) == true, "second starts");
        plane.Advance(second.Metadata.Uid!, "ring-1", "succeeded");
        await WaitAsync(ws[0], "second", i => i.Status?.Phase == IntentPhase.Completed, "second Completed");
    }

    [Fact]
    public async Task PromotionGates_ASuccessRateUnderTheThreshold_OrTooManyIncidents_RollTheIntentBack_ThroughThePlane()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        plane.AutoAdvance = false;
        await using var op = Start(plane);
        var (_, ws) = await TenantAsync("dev", "ring-1", "ring-2");
        DeploymentIntent Gated(string name)
        {
            var intent = Intent(name, plane, null, "ring-1", "ring-2");
            intent.Spec.PromotionGates = new PromotionGates { SuccessRateThreshold = 0.95, MaxIncidents = 2 };
            return intent;
        }

        // What runs before: 2.0.0 in both rings.
        var baseline = Intent("baseline", plane, null, "ring-1", "ring-2");
        baseline.Spec.Version = "2.0.0";
        baseline = await CreateAsync(ws[0], baseline);
        foreach (var ring in new[] { "ring-1", "ring-2" })
        {
            await WaitAsync(ws[0], "baseline", i => i.Status?.Rings?.Any(r => r.Name == ring && r.Phase == IntentRingPhase.InProgress) == true, $"{ring} in progress");
            plane.Advance(baseline.Metadata.Uid!, ring, "succeeded");
        }

        await WaitAsync(ws[0], "baseline", i => i.Status?.Phase == IntentPhase.Completed, "baseline Completed");

        // The plane says succeeded, but only 80% of targets are compliant: back to 2.0.0, the version the ring ran before.
        var low = await CreateAsync(ws[0], Gated("low-rate"));
        await WaitAsync(ws[0], "low-rate", i => i.Status?.Rings?.Any(r => r.Phase == IntentRingPhase.InProgress) == true, "ring-1 in progress");
        plane.Advance(low.Metadata.Uid!, "ring-1", "succeeded", successRate: 0.8);
        var rolledBack = await WaitAsync(ws[0], "low-rate", i => i.Status?.Phase == IntentPhase.RolledBack, "RolledBack");
        var message = rolledBack.Status!.Conditions!.Single(c => c.Type == IntentConditions.Ready).Message;
        Assert.Contains("spec.promotionGates.successRateThreshold (0.95)", message);
        Assert.Contains("0.8", message);
        Assert.Equal(0.8, rolledBack.Status.Rings!.Single(r => r.Name == "ring-1").SuccessRate);
        Assert.Equal(["rollback:2.0.0"], plane.Find(low.Metadata.Uid!, "ring-1")!.Remediations);
        Assert.Null(plane.Find(low.Metadata.Uid!, "ring-2")); // never published past the breached ring

        // Still installing, with more incidents than allowed.
        var noisy = await CreateAsync(ws[0], Gated("incidents"));
        await WaitAsync(ws[0], "incidents", i => i.Status?.Rings?.Any(r => r.Phase == IntentRingPhase.InProgress) == true, "ring-1 in progress");
        plane.Advance(noisy.Metadata.Uid!, "ring-1", "in_progress", incidents: 2);
        await WaitAsync(ws[0], "incidents", i => i.Status?.Rings?.FirstOrDefault()?.Incidents == 2, "two incidents seen");
        Assert.Equal(IntentPhase.InProgress, (await cluster.Api.GetAsync<DeploymentIntent>(Intents, ws[0], "incidents", CancellationToken.None)).Status!.Phase);
        plane.Advance(noisy.Metadata.Uid!, "ring-1", "in_progress", incidents: 3);
        var failed = await WaitAsync(ws[0], "incidents", i => i.Status?.Phase == IntentPhase.RolledBack, "RolledBack on the third incident");
        Assert.Contains("spec.promotionGates.maxIncidents (2)", failed.Status!.Conditions!.Single(c => c.Type == IntentConditions.Ready).Message);
        Assert.Equal(["rollback:2.0.0"], plane.Find(noisy.Metadata.Uid!, "ring-1")!.Remediations);
    }

    [Fact]
    public async Task PlaneErrors_TransientIsRetried_PermanentFails_PolicyViolationDenies_AndAReplayedPublishDeploysOnce()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = Start(plane);
        var (_, ws) = await TenantAsync("dev", "ring-1");

        plane.InjectError("TRANSIENT", "rate_limit", retryAfterSeconds: 1, times: 2);
        var retried = await CreateAsync(ws[0], Intent("transient", plane, null, "ring-1"));
        var throttled = await WaitAsync(ws[0], "transient", i => Reason(i) == "PlaneUnavailable", "rate limited");
        Assert.Contains("rate_limit", throttled.Status!.Conditions!.Single(c => c.Type == IntentConditions.Ready).Message);
        await WaitAsync(ws[0], "transient", i => i.Status?.Phase == IntentPhase.Completed, "Completed after the rate limit passed");
        Assert.True(plane.Calls.Count(c => c.Method == "POST" && c.Path == "/deployments" && c.IdempotencyKey == $"{retried.Metadata.Uid}:ring-1") >= 3);
        Assert.NotNull(plane.Find(retried.Metadata.Uid!, "ring-1"));

        plane.InjectError("PERMANENT", "invalid_request");
        await CreateAsync(ws[0], Intent("permanent", plane, null, "ring-1"));
        var failed = await WaitAsync(ws[0], "permanent", i => i.Status?.Phase == IntentPhase.Failed, "Failed");
        await LiveHealth.AssertAsync(cluster.Api, Intents, ws[0], "permanent", "failed: the plane refused");
        Assert.Contains("invalid_request", failed.Status!.Conditions!.Single(c => c.Type == IntentConditions.Ready).Message);

        plane.InjectError("POLICY_VIOLATION", "scope_violation");
        await CreateAsync(ws[0], Intent("violation", plane, null, "ring-1"));
        var denied = await WaitAsync(ws[0], "violation", i => i.Status?.Phase == IntentPhase.Denied, "Denied");
        await LiveHealth.AssertAsync(cluster.Api, Intents, ws[0], "violation", "denied: the plane's policy violation");
        Assert.Equal("PolicyViolation", Reason(denied));
        await using (var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM controlplane.audit_events WHERE object_name = $1 AND severity = 'security'", conn);
            cmd.Parameters.AddWithValue($"{ws[0]}/violation");
            Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
        }

        // A replay: the publish reached the plane, but the pass could not be recorded (Postgres down), so the next one publishes again.
        plane.AutoAdvance = false;
        var deploymentsBefore = plane.DeploymentsCreated;
        await cluster.Postgres.StopServerAsync();
        DeploymentIntent replayed;
        try
        {
            replayed = await CreateAsync(ws[0], Intent("replayed", plane, null, "ring-1"));
            await Net.WaitUntilAsync(() => Task.FromResult(plane.Calls.Any(c => c.Method == "POST" && c.IdempotencyKey == $"{replayed.Metadata.Uid}:ring-1")),
                TimeSpan.FromSeconds(30), "published while Postgres is down");
        }
        finally
        {
            await cluster.Postgres.StartServerAsync();
        }

        await WaitAsync(replayed.Metadata.NamespaceProperty, "replayed", i => i.Status?.Rings?.Any(r => r.Phase == IntentRingPhase.InProgress) == true, "ring recorded once Postgres is back");
        Assert.True(plane.Calls.Count(c => c.Method == "POST" && c.Path == "/deployments" && c.IdempotencyKey == $"{replayed.Metadata.Uid}:ring-1") >= 2,
            "the publish was replayed with the same key");
        plane.Advance(replayed.Metadata.Uid!, "ring-1", "succeeded");
        await WaitAsync(ws[0], "replayed", i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        Assert.Equal(deploymentsBefore + 1, plane.DeploymentsCreated);
    }

    [Theory]
    [InlineData("report")]
    [InlineData("auto")]
    public async Task Drift_IsFoundOnTheInterval_Reported_OrRemediatedThroughThePlane(string remediation)
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = Start(plane);
        var (tenant, ws) = await TenantAsync("dev", "ring-1");
        var intent = Intent("drifting", plane, null, "ring-1");
        intent.Spec.DriftCheckInterval = "2s"; // below what admission allows (1m): no webhook runs here
        intent.Spec.DriftRemediation = remediation;
        var created = await CreateAsync(ws[0], intent);
        await WaitAsync(ws[0], "drifting", i => i.Status?.Phase == IntentPhase.Completed && Reason(i, IntentConditions.InSync) == "InSync", "Completed and in sync");

        plane.Drift(created.Metadata.Uid!, "ring-1", "version_mismatch");
        var drifted = await WaitAsync(ws[0], "drifting", i => i.Status?.Drift is not null, "drift found");
        Assert.Equal("version_mismatch", drifted.Status!.Drift!.Type);
        Assert.Equal("2.1.0", drifted.Status.Drift.Desired);
        var remediations = plane.Find(created.Metadata.Uid!, "ring-1")!.Remediations;
        if (remediation == "auto")
        {
            Assert.Equal("DriftRemediated", Reason(drifted, IntentConditions.InSync));
            await Net.WaitUntilAsync(() => Task.FromResult(plane.Find(created.Metadata.Uid!, "ring-1")!.Remediations.Contains("redeploy:2.1.0")), TimeSpan.FromSeconds(60), "redeployed");
            await WaitAsync(ws[0], "drifting", i => Reason(i, IntentConditions.InSync) == "InSync", "in sync again");
        }
        else
        {
            Assert.Equal("DriftDetected", Reason(drifted, IntentConditions.InSync));
            Assert.Empty(remediations);
        }

        var events = await op.Runtime.Database.GetDeploymentEventsAsync(created.Metadata.Uid!, CancellationToken.None);
        Assert.Contains(events, e => e.Event.EventType == "drift" && e.Event.Details["type"]!.GetValue<string>() == "version_mismatch");
        // Drift and its remediation are counted by tenant, workspace and type.
        using (var exported = new MemoryStream())
        {
            await op.Runtime.Metrics.Registry.CollectAndExportAsTextAsync(exported);
            var text = Encoding.UTF8.GetString(exported.ToArray());
            Assert.Contains($"controlplane_deployment_drift_findings_total{{tenant=\"{tenant}\",workspace=\"{ws[0]}\",type=\"version_mismatch\"}}", text);
            Assert.Equal(remediation == "auto", text.Contains($"controlplane_deployment_remediations_total{{tenant=\"{tenant}\",workspace=\"{ws[0]}\",type=\"redeploy\",outcome=\"succeeded\"}}", StringComparison.Ordinal));
        }

        // Checked every 2 s against this test's plane: not left for the next tests' operators.
        await cluster.Api.DeleteAsync(Intents, ws[0], "drifting", CancellationToken.None);
    }

    [Fact]
    public async Task TheKubernetesPlane_NeverReadsNorAbortsARolloutAnotherIntentControls_WhenTheirNamesCollide()
    {
        // "a-b" with ring "ring-1" and "a" with ring "b-ring-1" both build the Rollout name "a-b-ring-1".
        var ns = Unique("collide");
        await cluster.Api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } }, CancellationToken.None);
        var owner = await cluster.Api.CreateAsync(Intents, ns, Intent("a-b", null, null, "ring-1"), CancellationToken.None);
        var name = KubernetesExecutionPlane.RolloutName("a", "b-ring-1");
        Assert.Equal(KubernetesExecutionPlane.RolloutName("a-b", "ring-1"), name);
        await cluster.Api.CreateAsync(RolloutReconciler.Type, ns, new Rollout
        {
            Metadata = new V1ObjectMeta { Name = name, OwnerReferences = [ChildApplier.OwnerReference(owner)] },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "app", Containers = [new ContainerImage { Name = "app", Image = "registry.example/app:2.1.0" }] },
                Rings = [new Ring { Name = "ring-1", Workspaces = [ns] }],
            },
        }, CancellationToken.None);

        var other = Intent("a", null, null, "b-ring-1");
        other.Metadata.NamespaceProperty = ns;
        other.Metadata.Uid = Guid.NewGuid().ToString();
        var rollouts = new Informer<Rollout>(cluster.Api, RolloutReconciler.Type, new OperatorMetrics(), NullLogger.Instance);
        var plane = new KubernetesExecutionPlane(cluster.Api, new ChildApplier(cluster.Api), rollouts, other);
        var d = new PlaneDeployment(other.Metadata.Uid, "t", ns, "a", "app", "2.1.0", "registry.example/app:2.1.0", Digest, "b-ring-1", [ns]);

        var read = await Assert.ThrowsAsync<PlaneError>(() => plane.QueryStatusAsync(d, CancellationToken.None));
        Assert.Equal(PlaneErrorClass.PolicyViolation, read.Class);
        var abort = await Assert.ThrowsAsync<PlaneError>(() => plane.RemediateAsync(d, PlaneRemediation.Rollback, null, CancellationToken.None));
        Assert.Equal(PlaneErrorClass.PolicyViolation, abort.Class);
        Assert.False((await cluster.Api.GetAsync<Rollout>(RolloutReconciler.Type, ns, name, CancellationToken.None)).Spec.Abort);
    }

    [Fact]
    public async Task TheKubernetesPlane_RunsEachRingAsARolloutItOwns_PinnedByDigest_ToCompleted_AndIdlesWithZeroWrites()
    {
        await using var op = Start();
        var (_, ws) = await TenantAsync("dev", "ring-1", "ring-2");
        foreach (var name in ws) await Deployments.CreateAsync(cluster.Api, name, "app", "registry.example/app:2.0.5");
        foreach (var name in ws) await Deployments.WaitAsync(cluster.Api, name, "app", Deployments.IsRolledOut, "old image rolled out");
        var created = await CreateAsync(ws[0], Intent("k8s", null, null, "ring-1", "ring-2"));

        var done = await WaitAsync(ws[0], "k8s", i => i.Status?.Phase == IntentPhase.Completed, "Completed", TimeSpan.FromSeconds(90));
        var pinned = $"registry.example/app:2.1.0@sha256:{Digest}";
        foreach (var name in ws) Assert.Equal(pinned, Deployments.ImageOf(await Deployments.GetAsync(cluster.Api, name, "app")));
        foreach (var ring in new[] { "ring-1", "ring-2" })
        {
            var rollout = await cluster.Api.GetAsync<Rollout>(RolloutReconciler.Type, ws[0], $"k8s-{ring}", CancellationToken.None);
            Assert.Equal(created.Metadata.Uid, rollout.Metadata.OwnerReferences.Single(o => o.Controller == true).Uid);
            Assert.Equal(created.Metadata.Uid, rollout.Metadata.Annotations[ApiGroup.CorrelationAnnotation]);
            Assert.Equal(RolloutPhase.Succeeded, rollout.Status!.Phase);
        }

        Assert.Equal("k8s-ring-2", done.Status!.RolloutRef);

        // Idle: reconciled again (twice, after two to settle), nothing is written to the API server or Postgres.
        var controller = op.Runtime.Controllers.Single(c => c.Name == "deploymentintent");
        var reconciled = 0;
        void Count(string c, string key, string result)
        {
            if (c == "deploymentintent" && key == $"{ws[0]}/k8s") Interlocked.Increment(ref reconciled);
        }

        op.Runtime.Reconciled += Count;
        async Task ResyncAsync(int times)
        {
            var target = Volatile.Read(ref reconciled) + times;
            for (var i = 0; i < times; i++)
            {
                controller.ResyncNow();
                var want = target - times + i + 1;
                await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconciled) >= want), TimeSpan.FromSeconds(60), "the completed intent reconciled again");
            }
        }

        await ResyncAsync(2);
        var before = (op.Requests.Writes, op.Runtime.Database.Writes);
        await ResyncAsync(2);
        op.Runtime.Reconciled -= Count;
        Assert.Equal(before, (op.Requests.Writes, op.Runtime.Database.Writes));
    }

    [Fact]
    public async Task AnotherTenantsWorkspaces_AreNeverARing_AndItsApproverDoesNotCount()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = Start(plane);
        var (_, mine) = await TenantAsync("prod", "ring-1", "ring-2");
        var (_, theirs) = await TenantAsync("prod", "ring-1", "ring-2");   // same labels, another tenant
        var risky = Intent("reach", plane, new RiskFactors { PrivilegeImpact = 1, SupplyChainTrust = 1, BlastRadius = 1, ChangeComplexity = 1, TestEvidence = 0 }, "ring-1", "ring-2");
        risky.Spec.EvidencePackRef = new EvidencePackRef { ConfigMap = "evidence", Sha256 = Digest };
        var created = await CreateAsync(mine[0], risky);

        var waiting = await WaitAsync(mine[0], "reach", i => i.Status?.Phase == IntentPhase.AwaitingApproval, "CAB awaited");
        Assert.Empty(waiting.Status!.Rings ?? []); // prod rings: none starts before CAB
        Assert.All(plane.Calls.Where(c => c.Method == "POST"), c => Assert.DoesNotContain(theirs[0], c.Body));

        // An approver of the other tenant's workspace (frank is bound there only) does not count here.
        var other = await cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, theirs[0], CancellationToken.None);
        var members = k8s.KubernetesJson.Serialize(other.Spec.Members!.Append(new WorkspaceMember { Kind = "User", Name = "frank@example.com", Role = "Approver" }).ToList());
        await cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, theirs[0], "{\"spec\":{\"members\":" + members + "}}", PatchTypes.Merge, CancellationToken.None);
        await ApproveAsync(created, "frank@example.com");
        await ApproveAsync(created, "carol@example.com");
        var still = await WaitAsync(mine[0], "reach", i => i.Status?.Conditions?.Any(c => c.Type == IntentConditions.Approved && c.Message.Contains("1 of 2")) == true, "frank not counted");
        Assert.Equal(IntentPhase.AwaitingApproval, still.Status!.Phase);
    }
}
