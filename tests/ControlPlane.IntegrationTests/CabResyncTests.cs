using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// CAB routing and conditions against the reconcilers alone (no webhook: the stamps are written by hand, as
/// the webhook would): an intent awaiting CAB with an unassigned and an expired approval settles and a resync
/// writes nothing; the approval that lets a ring start is recorded in status and in the ring's deployment event.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CabResyncTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    const string Token = "cab-plane-token-0123456789";

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>The one builder of this file's intents: risky (CAB), on the fake http plane, rollback validated.</summary>
    static DeploymentIntent NewIntent(string name, ConnectorContractServer plane, params string[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new DeploymentIntentSpec
        {
            Application = name, Version = "1.0.0",
            Artifact = new Artifact { Image = "registry.example/cab:1.0.0", Sha256 = new string('c', 64) },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = [.. rings] },
            ExecutionPlane = new ExecutionPlane { Type = "http", Url = plane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = new RiskFactors { PrivilegeImpact = 1, SupplyChainTrust = 1, BlastRadius = 1, ChangeComplexity = 1, TestEvidence = 0 },
            RollbackPlan = new RollbackPlan { Strategy = "previous-version", Validated = true },
            EvidencePackRef = new EvidencePackRef { ConfigMap = "evidence", Sha256 = Operator.Kinds.DeploymentIntentResources.Sha256Hex("{}"u8.ToArray()) },
            DriftCheckInterval = "1h",
        },
    };

    async Task<Approval> ApproveAsync(DeploymentIntent target, string approver, DateTime? expiresAt = null, string? maxRing = null) =>
        await cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = DeploymentIntent.KubeKind, Name = target.Metadata.Name },
                Approver = approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation, ExpiresAt = expiresAt,
                Justification = "rehearsed rollback, evidence reviewed",
                Conditions = maxRing is null ? null : new ApprovalLimits { MaxRing = maxRing, MinSoak = [new RingSoak { Ring = maxRing, Duration = "2s" }] },
            },
        }, CancellationToken.None);

    async Task<T> WaitAsync<T>(ResourceType type, string ns, string name, Func<T, bool> condition, string what) where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        T? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await cluster.Api.GetAsync<T>(type, ns, name, CancellationToken.None)), TimeSpan.FromSeconds(90), $"{name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{name}: {what}; last: {k8s.KubernetesJson.Serialize(last)}");
        }

        return last!;
    }

    static string? ReadyReason(Approval a) => a.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Reason;

    [Fact]
    public async Task AnIntentAwaitingRoutedCab_Settles_AndWritesNothingOnResync_ThenRecordsTheApprovalThatStartedItsRing()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o =>
        {
            o.DeploymentIntent.PlaneUrlPrefixes.Add(plane.BaseUrl.AbsoluteUri);
            o.DeploymentIntent.PollInterval = TimeSpan.FromMilliseconds(300);
        });
        var tenant = Unique("cabr");
        await cluster.CreateTenantAsync(tenant, edit: t =>
        {
            t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }];
            t.CabRoutes = [new CabRoute { Subjects = ["carol@example.com"], AcquisitionBoundaries = ["acq-001"] }];
        });
        var names = new List<string>();
        foreach (var ring in new[] { "ring-1", "ring-2" })
        {
            var name = Unique(tenant);
            await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string> { [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online" },
                },
                Spec = new WorkspaceSpec
                {
                    Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
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
        var ns = names[0];
        await cluster.Api.CreateAsync(ResourceType.Secrets, ns, new V1Secret { Metadata = new V1ObjectMeta { Name = "plane" }, StringData = new Dictionary<string, string> { ["token"] = Token } }, CancellationToken.None);
        await cluster.Api.CreateAsync(Operator.Kinds.WorkspaceReconciler.ConfigMaps, ns, new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "evidence" }, Data = new Dictionary<string, string> { ["evidence"] = "{}" } }, CancellationToken.None);

        var intent = NewIntent(Unique("routed"), plane, "ring-1", "ring-2");
        // Issue 23: every intent names an approved Application and carries its scan report.
        await Applications.ApprovedApplicationAsync(cluster.Api, ns, ["ring-1", "ring-2"], [new("carol@example.com")], intent.Spec.Application);
        await Evidence.CreateAsync(cluster.Api, ns, intent.Spec.Artifact.Image);
        Evidence.Attach(intent.Spec);
        intent.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = cluster.Plane.Admin.Name,
            [ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(null, cluster.Plane.Admin.Name, cluster.Plane.Admin.Groups),
        };
        intent = await cluster.Api.CreateAsync(Intents, ns, intent, CancellationToken.None);
        var waiting = await WaitAsync<DeploymentIntent>(Intents, ns, intent.Metadata.Name, i => i.Status?.Phase == IntentPhase.AwaitingApproval && i.Status.CurrentRing == "ring-2",
            "ring-2 waits for CAB");
        Assert.Equal(["carol@example.com"], waiting.Status!.AssignedApprovers);

        // erin is not assigned; carol's first approval has expired: neither counts, both say why.
        var unassigned = await ApproveAsync(intent, "erin@example.com");
        var expired = await ApproveAsync(intent, "carol@example.com", expiresAt: DateTime.UtcNow.AddMinutes(-5));
        await WaitAsync<Approval>(Approvals, ns, unassigned.Metadata.Name, a => ReadyReason(a) == ApprovalReasons.NotAssigned, "NotAssigned");
        await WaitAsync<Approval>(Approvals, ns, expired.Metadata.Name, a => ReadyReason(a) == ApprovalReasons.Expired, "Expired");
        await WaitAsync<DeploymentIntent>(Intents, ns, intent.Metadata.Name,
            i => i.Status?.Conditions?.FirstOrDefault(c => c.Type == IntentConditions.Approved)?.Message.Contains("spec.expiresAt", StringComparison.Ordinal) == true, "the intent says why");
        await op.ResyncWritesNothingAsync($"deploymentintent {ns}/{intent.Metadata.Name}", $"approval {ns}/{unassigned.Metadata.Name}", $"approval {ns}/{expired.Metadata.Name}");
        Assert.Null((await cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, intent.Metadata.Name, CancellationToken.None)).Status!.Rings!.FirstOrDefault(r => r.Name == "ring-2"));

        // carol's live approval, limited to ring-2 with a least soak: the ring starts, keeps it, and its event says so.
        var counted = await ApproveAsync(intent, "carol@example.com", expiresAt: DateTime.UtcNow.AddDays(1), maxRing: "ring-2");
        var done = await WaitAsync<DeploymentIntent>(Intents, ns, intent.Metadata.Name, i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        var ring2 = done.Status!.Rings!.Single(r => r.Name == "ring-2");
        Assert.Equal("2s", ring2.MinSoak);
        Assert.True(ring2.CompletedAt - ring2.StartedAt >= TimeSpan.FromSeconds(2), $"ring-2 soaked {ring2.CompletedAt - ring2.StartedAt}");
        var recorded = Assert.Single(ring2.ApprovedBy!);
        Assert.Equal(("carol@example.com", counted.Metadata.Name, "ring-2"), (recorded.Approver, recorded.Approval, recorded.MaxRing));
        var started = (await op.Runtime.Database.GetDeploymentEventsAsync(intent.Metadata.Uid!, CancellationToken.None))
            .Single(e => e.Event.Ring == "ring-2" && e.Event.Reason == IntentReasons.RingStarted && e.Event.EventType == "ring");
        Assert.Equal(counted.Metadata.Name, (string?)started.Event.Details["approvals"]![0]!["approval"]);
        Assert.Equal("2s", (string?)started.Event.Details["minSoak"]);
        await op.ResyncWritesNothingAsync($"deploymentintent {ns}/{intent.Metadata.Name}", $"approval {ns}/{counted.Metadata.Name}");
    }
}
