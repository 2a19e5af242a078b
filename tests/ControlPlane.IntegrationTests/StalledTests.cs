using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// kstatus (Flux, `kubectl wait`, cli-utils) sees a terminal failure: each kind driven into one on the real
/// servers reports Stalled=True with the terminal reason and message at its current generation, `kubectl wait
/// --for=condition=Stalled` returns, and where a spec change lets it progress again Stalled goes away. No
/// webhook runs in this collection, so specs the webhook would refuse reach the reconcilers as they would
/// when the webhook is down (failurePolicy Ignore) or the object predates it.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class StalledTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Backups = ResourceType.For<Backup>(true);
    static readonly ResourceType Restores = ResourceType.For<Restore>(true);
    static readonly ResourceType Plans = ResourceType.For<BackupPlan>(true);
    static readonly ResourceType Policies = ResourceType.For<WorkspaceNetworkPolicy>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>A namespace that is no workspace: what lives there can never progress.</summary>
    async Task<string> PlainNamespaceAsync()
    {
        var ns = Unique("plain");
        await cluster.Api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } }, CancellationToken.None);
        return ns;
    }

    /// <summary>Waits for Stalled=True at the current generation, checks it against Ready, then that `kubectl wait` returns 0.</summary>
    async Task<V1Condition> AssertStalledAsync<T>(ResourceType type, string? ns, string name, Func<T, StatusBase?> statusOf, string? reason = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        T? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<T>(type, ns, name, CancellationToken.None);
                return last is not null && Conditions.Find(statusOf(last)?.Conditions, "Stalled") is { Status: "True" } s && s.ObservedGeneration == last.Metadata.Generation;
            }, TimeSpan.FromSeconds(30), $"{type.Kind} {ns}/{name}: Stalled=True");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} (conditions: {string.Join("; ", statusOf(last!)?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? [])})");
        }

        var status = statusOf(last!)!;
        var stalled = Conditions.Find(status.Conditions, "Stalled")!;
        var ready = Conditions.Find(status.Conditions, "Ready")!;
        output.WriteLine($"{type.Kind} {name}: Stalled {stalled.Reason}: {stalled.Message}");
        Assert.Equal(last!.Metadata.Generation, status.ObservedGeneration);
        Assert.Equal("False", ready.Status);
        Assert.Equal(ready.Reason, stalled.Reason);
        Assert.Equal(ready.Message, stalled.Message);
        Assert.False(string.IsNullOrEmpty(stalled.Message));
        if (reason is not null) Assert.Equal(reason, stalled.Reason);

        List<string> args = ["--kubeconfig", cluster.Plane.KubeconfigPath, "wait", "--for=condition=Stalled", $"{type.Plural}.{type.Group}/{name}", "--timeout=20s"];
        if (ns is not null) args.AddRange(["-n", ns]);
        var wait = await Tools.RunAsync("kubectl", args);
        Assert.True(wait.ExitCode == 0, $"kubectl wait: {wait.ExitCode}\n{wait.Stderr}\n{wait.Stdout}");
        Assert.Contains("condition met", wait.Stdout);
        return stalled;
    }

    async Task AssertNotStalledAsync<T>(ResourceType type, string? ns, string name, Func<T, StatusBase?> statusOf, string what)
        where T : class, IKubernetesObject<V1ObjectMeta> =>
        await Net.WaitUntilAsync(async () =>
            await cluster.Api.TryGetAsync<T>(type, ns, name, CancellationToken.None) is { } o && statusOf(o)?.ObservedGeneration == o.Metadata.Generation
            && Conditions.Find(statusOf(o)?.Conditions, "Stalled") is null, TimeSpan.FromSeconds(30), $"{type.Kind} {name}: {what}");

    [Fact]
    public async Task Tenant_InAnUnconfiguredRegion_IsStalled_UntilTheRegionIsFixed()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var name = Unique("mars");
        await cluster.CreateTenantAsync(name, region: "mars");
        await AssertStalledAsync<Tenant>(ClusterFixture.Tenants, null, name, t => t.Status, TenantReasons.InvalidRegion);
        await op.ResyncWritesNothingAsync($"tenant {name}");

        await cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, name, """{"spec":{"region":"eu"}}""", PatchTypes.Merge, CancellationToken.None);
        await AssertNotStalledAsync<Tenant>(ClusterFixture.Tenants, null, name, t => t.Status, "not stalled after the region was fixed");
        await cluster.WaitForTenantAsync(name, ClusterFixture.IsReady, "Ready after the region was fixed");
    }

    [Fact]
    public async Task Workspace_OfAMissingTenant_IsStalled_UntilTheTenantExists()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("late");
        var ws = Unique("ws");
        await cluster.CreateWorkspaceAsync(ws, tenant);
        await AssertStalledAsync<Workspace>(ClusterFixture.Workspaces, null, ws, w => w.Status, WorkspaceReasons.TenantNotFound);

        await cluster.CreateTenantAsync(tenant);
        await AssertNotStalledAsync<Workspace>(ClusterFixture.Workspaces, null, ws, w => w.Status, "not stalled once its tenant exists");
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready once its tenant exists");
    }

    [Fact]
    public async Task Rollout_AndDeploymentIntent_OutsideAWorkspace_AreStalled_AndAnApprovalByAMachine_Too()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ns = await PlainNamespaceAsync();

        var rollout = new Rollout
        {
            Metadata = new V1ObjectMeta { Name = Unique("orders") },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "registry.example/orders:2.1.0" }] },
                Rings = [new Ring { Name = "ring-0", Workspaces = [ns], Soak = "10s" }],
            },
        };
        rollout = await cluster.Api.CreateAsync(Rollouts, ns, rollout, CancellationToken.None);
        await AssertStalledAsync<Rollout>(Rollouts, ns, rollout.Metadata.Name, r => r.Status, RolloutReasons.NotInAWorkspace);

        var intent = new DeploymentIntent
        {
            Metadata = new V1ObjectMeta { Name = Unique("change") },
            Spec = new DeploymentIntentSpec
            {
                Application = "app", Version = "2.1.0",
                Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = new string('a', 64) },
                TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = ["ring-1"] },
                ExecutionPlane = new ExecutionPlane { Type = "kubernetes" },
                Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
                RollbackPlan = new RollbackPlan { Strategy = "previous-version", Validated = true },
                DriftCheckInterval = "1h",
            },
        };
        intent = await cluster.Api.CreateAsync(Intents, ns, intent, CancellationToken.None);
        await AssertStalledAsync<DeploymentIntent>(Intents, ns, intent.Metadata.Name, d => d.Status, IntentReasons.NotInAWorkspace);

        // An Application outside a workspace: Failed, stalled until it moves (no scope version is ever offered to CAB).
        var app = await cluster.Api.CreateAsync(Applications.Type, ns, new Application
        {
            Metadata = new V1ObjectMeta { Name = Unique("app") }, Spec = new ApplicationSpec { Owner = "alice@example.com", AllowedScope = Applications.Scope(["ring-1"]) },
        }, CancellationToken.None);
        await AssertStalledAsync<Application>(Applications.Type, ns, app.Metadata.Name, a => a.Status, ApplicationReasons.NotInAWorkspace);

        // An approval given by a ServiceAccount never counts: a person must approve instead.
        var approval = new Approval
        {
            Metadata = new V1ObjectMeta
            {
                Name = Unique("apr"),
                Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ControlPlane.Operator.Policy.ApprovalPolicy.FormatGroups([]) },
            },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = Rollout.KubeKind, Name = rollout.Metadata.Name },
                Approver = "system:serviceaccount:ci:deployer", TargetUID = rollout.Metadata.Uid, TargetGeneration = rollout.Metadata.Generation,
            },
        };
        approval = await cluster.Api.CreateAsync(Approvals, ns, approval, CancellationToken.None);
        await AssertStalledAsync<Approval>(Approvals, ns, approval.Metadata.Name, a => a.Status, ApprovalReasons.NotAPerson);
        await op.ResyncWritesNothingAsync($"rollout {ns}/{rollout.Metadata.Name}", $"deploymentintent {ns}/{intent.Metadata.Name}", $"approval {ns}/{approval.Metadata.Name}");
    }

    [Fact]
    public async Task Backup_AndRestore_OfAMissingPlan_AndPlans_AndPolicies_WithImpossibleNames_AreStalled()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ns = await PlainNamespaceAsync();

        var backup = await cluster.Api.CreateAsync(Backups, ns,
            new Backup { Metadata = new V1ObjectMeta { Name = Unique("b") }, Spec = new BackupSpec { BackupPlan = "nightly" } }, CancellationToken.None);
        await AssertStalledAsync<Backup>(Backups, ns, backup.Metadata.Name, b => b.Status, BackupReasons.PlanNotFound);

        var restore = new Restore { Metadata = new V1ObjectMeta { Name = Unique("r") } };
        restore.Spec.BackupPlan = "nightly";
        restore.Spec.Into = new RestoreTarget { Database = "restored" };
        restore = await cluster.Api.CreateAsync(Restores, ns, restore, CancellationToken.None);
        await AssertStalledAsync<Restore>(Restores, ns, restore.Metadata.Name, r => r.Status);

        // Names the API server takes but the operator cannot use (a label value, its NetworkPolicies' names).
        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "p" + new string('x', 69) } };
        plan.Spec.Schedule = "0 2 * * *";
        plan.Spec.Database = "ws_plain";
        plan.Spec.Storage = new BackupStorage { S3 = new S3Storage { Endpoint = "http://127.0.0.1:9", Bucket = "backups", CredentialsSecret = new LocalObjectReference { Name = "s3" } } };
        await cluster.Api.CreateAsync(Plans, ns, plan, CancellationToken.None);
        await AssertStalledAsync<BackupPlan>(Plans, ns, plan.Metadata.Name, p => p.Status, BackupPlanReasons.InvalidName);

        var policy = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = "n" + new string('x', 249) } };
        await cluster.Api.CreateAsync(Policies, ns, policy, CancellationToken.None);
        await AssertStalledAsync<WorkspaceNetworkPolicy>(Policies, ns, policy.Metadata.Name, p => p.Status, NetworkPolicyReasons.InvalidName);
    }

    [Fact]
    public async Task Exposure_OnAHostItsTenantWasNotDelegated_IsStalled_UntilTheHostIsFixed()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        var ws = Unique(tenant);
        await cluster.CreateTenantAsync(tenant, edit: t => t.Exposure = new TenantExposure { AllowedDomains = [$"*.{ws}.example"] });
        await cluster.CreateWorkspaceAsync(ws, tenant, w => w.Database = new WorkspaceDatabase { Enabled = false });
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");

        var exposure = new Exposure
        {
            Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new ExposureSpec { Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Host = $"orders.{Unique("elsewhere")}.example", Path = "/api", Publish = true },
        };
        await cluster.Api.CreateAsync(Exposures, ws, exposure, CancellationToken.None);
        await AssertStalledAsync<Exposure>(Exposures, ws, "orders", e => e.Status, ExposureReasons.HostNotDelegated);
        await op.ResyncWritesNothingAsync($"exposure {ws}/orders");

        // Its own host: it waits for its Service and an approval now, which come without a spec change.
        await cluster.Api.PatchAsync<Exposure>(Exposures, ws, "orders", "{\"spec\":{\"host\":\"orders." + ws + ".example\"}}", PatchTypes.Merge, CancellationToken.None);
        await AssertNotStalledAsync<Exposure>(Exposures, ws, "orders", e => e.Status, "not stalled on a delegated host");
    }
}
