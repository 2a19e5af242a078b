using System.Diagnostics;
using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

[Collection(WebhookCollection.Name)]
public sealed class WebhookTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    static readonly ResourceType BackupPlans = ResourceType.For<BackupPlan>(true);
    static readonly ResourceType NetworkPolicies = ResourceType.For<WorkspaceNetworkPolicy>(true);

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static string Email(string user) => user + "@example.com";

    /// <summary>A tenant and a Ready workspace where bob is Operator, carol and erin Approvers, dave Auditor.</summary>
    async Task<(string Tenant, string Workspace)> WorkspaceAsync(string environment = "dev", Action<TenantSpec>? tenantEdit = null)
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant, edit: tenantEdit);
        var name = Unique(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Environment = environment;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members =
        [
            new WorkspaceMember { Kind = "User", Name = Email("bob"), Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("dave"), Role = "Auditor" },
        ];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None))?.Status?.Phase == WorkspacePhase.Ready,
            TimeSpan.FromSeconds(30), $"workspace {name} Ready");
        return (tenant, name);
    }

    static Exposure NewExposure(string name, string? forgedAuthor = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            Annotations = forgedAuthor is null ? null : new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = forgedAuthor },
        },
        Spec = new ExposureSpec { Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Path = "/orders" },
    };

    static Approval NewApproval(string target, string decision = "approve", string? forgedApprover = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exposure", Name = target }, Decision = decision, Approver = forgedApprover },
    };

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    [Fact]
    public async Task CreatedBy_ComesFromTheAuthenticatedUser_ForgedValuesAreOverwritten_AndKeptOnUpdate()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        var created = await bob.CreateAsync(Exposures, ws, NewExposure("orders", forgedAuthor: "mallory@example.com"), CancellationToken.None);
        Assert.Equal(Email("bob"), created.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);

        using var carol = As("carol");
        var patched = await bob.PatchAsync<Exposure>(Exposures, ws, "orders",
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.CreatedByAnnotation + "\":\"carol@example.com\"}},\"spec\":{\"path\":\"/v2/orders\"}}", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("bob"), patched.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        Assert.Equal("/v2/orders", patched.Spec.Path);

        var tenant = await Cluster.GetTenantAsync((await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, ws, CancellationToken.None)).Spec.Tenant);
        Assert.Equal("admin", tenant!.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
    }

    [Fact]
    public async Task Approval_TakesItsApproverAndTargetGenerationFromTheServer()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        var exposure = await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        using var carol = As("carol");
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders", forgedApprover: "ceo@example.com"), CancellationToken.None);
        Assert.Equal(Email("carol"), approval.Spec.Approver);
        Assert.Equal(exposure.Metadata.Generation, approval.Spec.TargetGeneration);
        Assert.Equal(Email("carol"), approval.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
    }

    [Fact]
    public async Task SelfApproval_AndApprovalByANonApprover_AreRefused()
    {
        var (_, ws) = await WorkspaceAsync();
        // erin is an Approver in this workspace; she authors an exposure and tries to approve it.
        using var erin = As("erin");
        await erin.CreateAsync(Exposures, ws, NewExposure("erins"), CancellationToken.None);
        var self = await Refused(() => erin.CreateAsync(Approvals, ws, NewApproval("erins"), CancellationToken.None));
        Assert.Contains("spec.approver", self.StatusMessage);
        Assert.Contains("self-approval", self.StatusMessage);

        // bob (Operator) and dave (Auditor) may create approvals as far as RBAC goes (the test users'
        // ClusterRole), but hold neither Approver nor WorkspaceAdmin here: the webhook refuses them.
        using var bob = As("bob");
        using var dave = As("dave");
        foreach (var (user, name) in new[] { (bob, "bob"), (dave, "dave") })
        {
            var refused = await Refused(() => user.CreateAsync(Approvals, ws, NewApproval("erins"), CancellationToken.None));
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            Assert.Contains($"spec.approver: {Email(name)} holds neither the Approver nor the WorkspaceAdmin role", refused.StatusMessage);
        }

        // An Approver in another workspace is not one here.
        var (_, other) = await WorkspaceAsync();
        using var carol = As("carol");
        var elsewhere = await Refused(() => carol.CreateAsync(Approvals, other, NewApproval("erins"), CancellationToken.None));
        Assert.Contains("does not exist", elsewhere.StatusMessage);

        // A target that does not exist.
        var missing = await Refused(() => carol.CreateAsync(Approvals, ws, NewApproval("nothing-here"), CancellationToken.None));
        Assert.Contains("spec.target", missing.StatusMessage);

        // And carol, a real Approver who did not author it, may.
        await carol.CreateAsync(Approvals, ws, NewApproval("erins"), CancellationToken.None);
    }

    async Task<Approval> WaitForApprovalAsync(string ws, string name, Func<Approval, bool> condition, string what)
    {
        Approval? last = null;
        await Net.WaitUntilAsync(async () =>
        {
            last = await Cluster.Api.GetAsync<Approval>(Approvals, ws, name, CancellationToken.None);
            return condition(last);
        }, TimeSpan.FromSeconds(30), $"approval {name}: {what}");
        return last!;
    }

    static string? ReadyReason(Approval a) => a.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Reason;

    static V1Condition? TargetApproved(Approval a) => a.Status?.Conditions?.FirstOrDefault(c => c.Type == ApprovalReconciler.TargetApprovedCondition);

    /// <summary>Waits until the operator shows on this approval that its target is (or is not) approved, with this reason.</summary>
    Task<Approval> WaitForTargetApprovedAsync(string ws, string name, string reason) =>
        WaitForApprovalAsync(ws, name, a => TargetApproved(a)?.Reason == reason && TargetApproved(a)?.ObservedGeneration == a.Metadata.Generation, $"{ApprovalReconciler.TargetApprovedCondition} {reason}");

    [Fact]
    public async Task Prod_NeedsTwoDistinctApprovers_DevNeedsOne()
    {
        var (_, prod) = await WorkspaceAsync("prod");
        var (_, dev) = await WorkspaceAsync("dev");
        using var bob = As("bob");
        using var carol = As("carol");
        using var erin = As("erin");
        foreach (var ws in new[] { prod, dev }) await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);

        // What the running operator computes and shows on each approval (TargetApproved), not a local evaluation.
        var first = await carol.CreateAsync(Approvals, prod, NewApproval("orders"), CancellationToken.None);
        await WaitForApprovalAsync(prod, first.Metadata.Name, a => ReadyReason(a) == "Counts", "counts");
        var again = await carol.CreateAsync(Approvals, prod, NewApproval("orders"), CancellationToken.None);
        await WaitForApprovalAsync(prod, again.Metadata.Name, a => ReadyReason(a) == "Counts", "counts");
        var one = await WaitForTargetApprovedAsync(prod, again.Metadata.Name, "AwaitingApproval");
        Assert.Equal("False", TargetApproved(one)!.Status);
        Assert.Contains("1 of 2 approval(s)", TargetApproved(one)!.Message); // the same approver twice is one approver
        Assert.Equal("AwaitingApproval", TargetApproved(await WaitForTargetApprovedAsync(prod, first.Metadata.Name, "AwaitingApproval"))!.Reason);

        var second = await erin.CreateAsync(Approvals, prod, NewApproval("orders"), CancellationToken.None);
        await WaitForApprovalAsync(prod, second.Metadata.Name, a => ReadyReason(a) == "Counts", "counts");
        var both = await WaitForTargetApprovedAsync(prod, second.Metadata.Name, "Approved");
        Assert.Equal("True", TargetApproved(both)!.Status);
        Assert.Contains(Email("carol"), TargetApproved(both)!.Message);
        Assert.Contains(Email("erin"), TargetApproved(both)!.Message);
        await WaitForTargetApprovedAsync(prod, first.Metadata.Name, "Approved"); // every approval of the target shows it

        var devApproval = await carol.CreateAsync(Approvals, dev, NewApproval("orders"), CancellationToken.None);
        await WaitForApprovalAsync(dev, devApproval.Metadata.Name, a => ReadyReason(a) == "Counts", "counts");
        Assert.Equal("True", TargetApproved(await WaitForTargetApprovedAsync(dev, devApproval.Metadata.Name, "Approved"))!.Status);

        // Any counting reject wins.
        var reject = await erin.CreateAsync(Approvals, dev, NewApproval("orders", decision: "reject"), CancellationToken.None);
        await WaitForApprovalAsync(dev, reject.Metadata.Name, a => ReadyReason(a) == "Rejects", "rejects");
        var rejected = await WaitForTargetApprovedAsync(dev, devApproval.Metadata.Name, "Rejected");
        Assert.Equal("False", TargetApproved(rejected)!.Status);
        Assert.Contains(Email("erin"), TargetApproved(rejected)!.Message);
    }

    [Fact]
    public async Task AnEditAfterApproval_MakesTheApprovalStale()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await WaitForApprovalAsync(ws, approval.Metadata.Name, a => ReadyReason(a) == "Counts", "counts");
        await WaitForTargetApprovedAsync(ws, approval.Metadata.Name, "Approved");

        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/changed"}}""", PatchTypes.Merge, CancellationToken.None);
        var stale = await WaitForApprovalAsync(ws, approval.Metadata.Name, a => ReadyReason(a) == "StaleGeneration", "stale");
        Assert.Contains("generation", stale.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        var pending = await WaitForTargetApprovedAsync(ws, approval.Metadata.Name, "AwaitingApproval");
        Assert.Contains("0 of 1 approval(s) for generation 2", TargetApproved(pending)!.Message);
    }

    [Fact]
    public async Task ATenantAndItsWorkspace_AppliedTogether_AreBothAdmitted()
    {
        // One kubectl apply or Argo CD sync: the workspace can reach the webhook before the tenant's watch event.
        for (var i = 0; i < 5; i++)
        {
            var tenant = Unique("together");
            await Cluster.CreateTenantAsync(tenant);
            var ws = new Workspace { Metadata = new V1ObjectMeta { Name = Unique(tenant) } };
            ws.Spec.Tenant = tenant;
            var created = await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
            Assert.Equal("eu", created.Spec.Region); // defaulted from the tenant
        }
    }

    [Fact]
    public async Task ImmutableFields_AreRefused_NamingTheField()
    {
        var (tenant, ws) = await WorkspaceAsync();
        // A merge patch, not GET+PUT: the operator's status writes would make a PUT a 409 instead.
        var region = await Refused(() => Cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant, """{"spec":{"region":"us"}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.region: field is immutable", region.StatusMessage);

        var other = Unique("other");
        await Cluster.CreateTenantAsync(other);
        var w = await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        Assert.Equal("eu", w.Spec.Region); // defaulted from the tenant by the mutating webhook
        var moved = await Refused(() => Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, "{\"spec\":{\"tenant\":\"" + other + "\"}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.tenant: field is immutable", moved.StatusMessage);
        var pinned = await Refused(() => Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, """{"spec":{"region":"us"}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.region: field is immutable", pinned.StatusMessage);

        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var edit = await Refused(() => Cluster.Api.PatchAsync<Approval>(Approvals, ws, approval.Metadata.Name, """{"spec":{"decision":"reject"}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("immutable", edit.StatusMessage);
    }

    [Fact]
    public async Task CrossObjectRules_AreEnforcedAtAdmission()
    {
        var (tenant, ws) = await WorkspaceAsync(tenantEdit: s =>
        {
            s.Network = new TenantNetwork { AllowedIngressCIDRs = ["203.0.113.0/24"], ApprovedEgressCIDRs = ["198.51.100.0/24"] };
            s.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }];
            s.Quota = new TenantQuota { Cpu = new ResourceQuantity("4") };
        });

        Workspace NewWs(string t, Action<WorkspaceSpec>? edit = null)
        {
            var w = new Workspace { Metadata = new V1ObjectMeta { Name = Unique("w") } };
            w.Spec.Tenant = t;
            edit?.Invoke(w.Spec);
            return w;
        }

        var unknown = await Refused(() => Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWs("nope"), CancellationToken.None));
        Assert.Contains("spec.tenant", unknown.StatusMessage);
        Assert.Contains("does not exist", unknown.StatusMessage);
        var mismatch = await Refused(() => Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWs(tenant, s => s.Region = "us"), CancellationToken.None));
        Assert.Contains("spec.region", mismatch.StatusMessage);
        var tooBig = await Refused(() => Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWs(tenant, s => s.Quota = new WorkspaceQuota { Cpu = new ResourceQuantity("8") }), CancellationToken.None));
        Assert.Contains("spec.quota.cpu", tooBig.StatusMessage);
        var suspended = Unique("susp");
        await Cluster.CreateTenantAsync(suspended, edit: s => s.Suspended = true);
        var cordoned = await Refused(() => Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWs(suspended), CancellationToken.None));
        Assert.Contains("suspended", cordoned.StatusMessage);

        var policy = new WorkspaceNetworkPolicy { Metadata = new V1ObjectMeta { Name = "api" } };
        policy.Spec.Ingress = [new IngressRule { From = [new Peer { Cidr = "10.0.0.0/8" }] }];
        policy.Spec.Egress = [new EgressRule { To = [new Peer { Cidr = "198.51.100.10/32" }] }];
        var cidr = await Refused(() => Cluster.Api.CreateAsync(NetworkPolicies, ws, policy, CancellationToken.None));
        Assert.Contains("spec.ingress[0].from[0].cidr: 10.0.0.0/8 is outside", cidr.StatusMessage);
        policy.Spec.Ingress = [new IngressRule { From = [new Peer { Cidr = "203.0.113.128/25" }] }];
        await Cluster.Api.CreateAsync(NetworkPolicies, ws, policy, CancellationToken.None);

        var intent = new DeploymentIntent { Metadata = new V1ObjectMeta { Name = "app" } };
        intent.Spec.Application = "app-001";
        intent.Spec.Version = "2.1.0";
        intent.Spec.Artifact = new Artifact { Image = "registry.example/app:2.1.0" };
        intent.Spec.TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-hr", SiteClass = "online" };
        Evidence.Attach(intent.Spec);
        var scope = await Refused(() => Cluster.Api.CreateAsync(Intents, ws, intent, CancellationToken.None));
        Assert.Contains("spec.targetScope.businessUnit", scope.StatusMessage);
        intent.Spec.TargetScope.BusinessUnit = "bu-finance";
        await Cluster.Api.CreateAsync(Intents, ws, intent, CancellationToken.None);

        var rollout = new Rollout { Metadata = new V1ObjectMeta { Name = "orders" } };
        rollout.Spec.Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "registry.example/orders:2.1.0" }] };
        rollout.Spec.Rings = [new Ring { Name = "ring-0", Workspaces = [ws] }, new Ring { Name = "ring-0", Workspaces = [ws] }];
        var rings = await Refused(() => Cluster.Api.CreateAsync(Rollouts, ws, rollout, CancellationToken.None));
        Assert.Contains("is used more than once", rings.StatusMessage);

        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "nightly" } };
        plan.Spec.Schedule = "0 25 * * *";
        var cron = await Refused(() => Cluster.Api.CreateAsync(BackupPlans, ws, plan, CancellationToken.None));
        Assert.Contains("spec.schedule", cron.StatusMessage);
        plan.Spec.Schedule = "0 2 * * *";
        plan.Spec.Retention = new BackupRetention { MaxAge = "99999999999d" };
        var age = await Refused(() => Cluster.Api.CreateAsync(BackupPlans, ws, plan, CancellationToken.None));
        Assert.Contains("spec.retention.maxAge", age.StatusMessage);
    }

    [Fact]
    public async Task DeletionGuard_TenantsWithWorkspaces_AndProdWorkspaces_NeedTheAnnotation()
    {
        var (tenant, ws) = await WorkspaceAsync("prod");
        var held = await Refused(() => Cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None));
        Assert.Contains(ApiGroup.AllowDeleteAnnotation, held.StatusMessage);
        var prod = await Refused(() => Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None));
        Assert.Contains("prod", prod.StatusMessage);

        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws,
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.AllowDeleteAnnotation + "\":\"true\"}}}", PatchTypes.Merge, CancellationToken.None);
        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, ws, CancellationToken.None) is null,
            TimeSpan.FromSeconds(60), "workspace deleted");
        await Cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None);
    }

    [Fact]
    public async Task ServerSideDryRun_GoesThroughTheWebhooks_AndPersistsNothing()
    {
        var (_, ws) = await WorkspaceAsync();
        var file = Path.Combine(Path.GetTempPath(), Unique("exposure") + ".yaml");
        await File.WriteAllTextAsync(file, $"""
            apiVersion: controlplane.io/v1alpha1
            kind: Exposure
            metadata:
              name: dry
              namespace: {ws}
            spec:
              type: REST
              version: v1
              backend: {"{"}service: orders, port: 8080{"}"}
              path: /orders
            """);
        var kubeconfig = Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-bob");
        var (code, output) = await RunAsync("kubectl", "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-f", file, "-o", "yaml");
        Assert.True(code == 0, output);
        Assert.Contains($"{ApiGroup.CreatedByAnnotation}: {Email("bob")}", output);
        Assert.Null(await Cluster.Api.TryGetAsync<Exposure>(Exposures, ws, "dry", CancellationToken.None));
    }

    static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }

    [Fact]
    public async Task WebhookRestart_RequestsFailClosedWhileItIsDown_AndSucceedOnceItIsBack()
    {
        var (_, ws) = await WorkspaceAsync();
        var caBefore = (await Cluster.Api.GetAsync<V1Secret>(ResourceType.Secrets, "controlplane-system", "controlplane-webhook-cert", CancellationToken.None)).Data["ca.crt"];
        await fixture.StopOperatorAsync();
        try
        {
            var down = await Assert.ThrowsAsync<KubeApiException>(() => Cluster.Api.CreateAsync(Exposures, ws, NewExposure("while-down"), CancellationToken.None));
            Assert.Contains("webhook", down.StatusMessage);
        }
        finally
        {
            await fixture.StartOperatorAsync();
        }

        var created = await Cluster.Api.CreateAsync(Exposures, ws, NewExposure("after-restart"), CancellationToken.None);
        Assert.Equal("admin", created.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        var caAfter = (await Cluster.Api.GetAsync<V1Secret>(ResourceType.Secrets, "controlplane-system", "controlplane-webhook-cert", CancellationToken.None)).Data["ca.crt"];
        Assert.Equal(caBefore, caAfter); // the restarted replica reused the stored certificate
    }
}
