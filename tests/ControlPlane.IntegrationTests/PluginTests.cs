using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The built kubectl-controlplane binary, run as token users of the local API server against the
/// running operator and its webhooks: what it may do is what RBAC and admission let that user do.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class PluginTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    const string Old = "registry.example/payroll:1.0.0", New = "registry.example/payroll:1.1.0";

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    string Kubeconfig(string user) => Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-" + user);

    Task<PluginRun> Run(string user, params string[] args) => PluginRunner.RunAsync(Kubeconfig(user), args);

    static string Email(string user) => user + "@example.com";

    /// <summary>A Ready workspace of the tenant: bob Operator, carol and erin Approvers; a Deployment payroll on the old image.</summary>
    async Task<string> WorkspaceAsync(string tenant, Dictionary<string, string>? labels = null)
    {
        var name = Unique(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name, Labels = labels } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Environment = "dev";
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members =
        [
            new WorkspaceMember { Kind = "User", Name = Email("bob"), Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" },
        ];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready", TimeSpan.FromSeconds(60));
        await Deployments.CreateAsync(Cluster.Api, name, "payroll", Old);
        return name;
    }

    async Task<Rollout> WaitForRolloutAsync(string ns, string name, Func<Rollout, bool> condition, string what)
    {
        Rollout? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await Cluster.Api.GetAsync<Rollout>(Rollouts, ns, name, CancellationToken.None)), TimeSpan.FromSeconds(120), $"rollout {name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}", e);
        }

        return last!;
    }

    static V1Condition? Condition(Rollout r, string type) => r.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    [Fact]
    public async Task ApproveAndReject_AsTheCaller_ShowWhatTheTargetStillNeeds_AndASelfApprovalIsRefusedWithItsReason()
    {
        var tenant = Unique("plg");
        await Cluster.CreateTenantAsync(tenant);
        var ws = await WorkspaceAsync(tenant);
        using var bob = As("bob");
        await bob.CreateAsync(Exposures, ws, new Exposure
        {
            Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new ExposureSpec { Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Path = "/orders" },
        }, CancellationToken.None);

        // bob wrote it: the webhook refuses his approval, and the plugin says why in one line.
        (await Run("bob", "approve", "exposure/orders", "-n", ws)).FailsWithOneLine("self-approval is not allowed");

        // carol, an Approver: her approval counts; the plugin says what is left and who may not approve.
        var carol = (await Run("carol", "approve", "exposures/orders", "-n", ws, "--comment", "reviewed")).Succeeds();
        Assert.Contains("as carol@example.com", carol.Stdout, StringComparison.Ordinal);
        Assert.Contains("verdict:      counts (Counts)", carol.Stdout, StringComparison.Ordinal);
        Assert.Contains("may not approve (authors of this generation): bob@example.com", carol.Stdout, StringComparison.Ordinal);
        Assert.Contains("approved", carol.Stdout, StringComparison.Ordinal);

        // erin rejects, as data.
        var erin = (await Run("erin", "reject", "exposure/orders", "-n", ws, "-o", "json")).Succeeds();
        var outlook = JsonNode.Parse(erin.Stdout)!;
        Assert.Equal("reject", outlook["decision"]!.GetValue<string>());
        Assert.True(outlook["counts"]!.GetValue<bool>(), erin.Stdout);
        Assert.Equal("Rejected", outlook["targetReason"]!.GetValue<string>());

        // The tree shows the Exposure under its workspace.
        var status = (await Run("bob", "status", ws)).Succeeds();
        Assert.Contains($"Workspace/{ws}", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("Exposure/orders", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("Approval/orders-approve-", status.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rollout_PauseResumePromoteAbort_AsTheCaller_AndPromoteWaitsForSomeoneElsesApproval()
    {
        var tenant = Unique("plr");
        await Cluster.CreateTenantAsync(tenant);
        var lab = await WorkspaceAsync(tenant);
        var canary = await WorkspaceAsync(tenant);
        using var bob = As("bob");
        await bob.CreateAsync(Rollouts, lab, new Rollout
        {
            Metadata = new V1ObjectMeta { Name = "payroll" },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "payroll", Containers = [new ContainerImage { Name = "app", Image = New }] },
                Rings = [new Ring { Name = "lab", Workspaces = [lab], Soak = "24h" }, new Ring { Name = "canary", Workspaces = [canary], Soak = "24h" }],
                Gates = new RolloutGates { ProgressDeadline = "5m" },
            },
        }, CancellationToken.None);
        await WaitForRolloutAsync(lab, "payroll", r => r.Status?.Rings?.FirstOrDefault()?.Phase == RingPhase.Soaking, "ring lab soaking");

        var get = (await Run("bob", "rollout", "get", "payroll", "-n", lab)).Succeeds();
        Assert.Contains($"app: {Old} → {New}", get.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"lab\s+Soaking\s+" + lab + @"\s+24h\s+2[34]h", get.Stdout);

        (await Run("bob", "rollout", "pause", "payroll", "-n", lab)).Succeeds();
        await WaitForRolloutAsync(lab, "payroll", r => Condition(r, "Paused") is { Status: "True", Reason: "Paused" }, "paused");
        (await Run("bob", "rollout", "resume", "payroll", "-n", lab)).Succeeds();
        await WaitForRolloutAsync(lab, "payroll", r => Condition(r, "Paused")?.Status == "False" && r.Status?.Phase == RolloutPhase.Progressing, "resumed");

        // promote: spec.promote=lab (the current ring); it waits for an approval of that generation.
        var promote = (await Run("bob", "rollout", "promote", "payroll", "-n", lab)).Succeeds();
        Assert.Contains("spec.promote=lab", promote.Stdout, StringComparison.Ordinal);
        var waiting = await WaitForRolloutAsync(lab, "payroll", r => Condition(r, "Progressing")?.Reason == RolloutReasons.PromotionRefused, "promotion waiting for approval");
        Assert.Equal(RingPhase.Soaking, waiting.Status!.Rings![0].Phase);

        // bob asked for it: he may not approve it. carol may; then the soak ends early and canary starts.
        (await Run("bob", "approve", "rollout/payroll", "-n", lab)).FailsWithOneLine("self-approval is not allowed");
        var approved = (await Run("carol", "approve", "rollout/payroll", "-n", lab)).Succeeds();
        Assert.Contains("verdict:      counts", approved.Stdout, StringComparison.Ordinal);
        var promoted = await WaitForRolloutAsync(lab, "payroll", r => r.Status?.Rings?[1].Phase is RingPhase.Progressing or RingPhase.Soaking, "canary started after the early promotion");
        Assert.Equal(RingPhase.Succeeded, promoted.Status!.Rings![0].Phase);
        Assert.True(promoted.Status.Rings[0].CompletedAt < promoted.Status.Rings[0].RolledOutAt!.Value.AddHours(1), "the 24h soak ended early");
        await Net.WaitUntilAsync(async () => (await AuditActionsAsync($"{lab}/payroll")).Contains("rollout.promoted"), TimeSpan.FromSeconds(30), "rollout.promoted audited");

        // abort: everything touched goes back to the old image.
        (await Run("bob", "rollout", "abort", "payroll", "-n", lab)).Succeeds();
        var aborted = await WaitForRolloutAsync(lab, "payroll", r => r.Status?.Phase == RolloutPhase.RolledBack, "rolled back");
        Assert.Equal("abort", aborted.Status!.Rollback!.Gate);
        var final = (await Run("bob", "rollout", "get", "payroll", "-n", lab, "-o", "json")).Succeeds();
        Assert.Equal("RolledBack", JsonNode.Parse(final.Stdout)!["phase"]!.GetValue<string>());

        // A finished Rollout has nothing to promote: one line, non-zero.
        (await Run("bob", "rollout", "promote", "payroll", "-n", lab)).FailsWithOneLine("nothing to promote");
    }

    async Task<List<string>> AuditActionsAsync(string objectName)
    {
        await using var conn = new Npgsql.NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(objectName);
        var actions = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) actions.Add(reader.GetString(0));
        return actions;
    }

    [Fact]
    public async Task IntentWhatIf_ScoresTheContractsExample_41_AsTheReconcilerDoes_AndCreatesNothing()
    {
        var tenant = Unique("plw");
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        var ws = await WorkspaceAsync(tenant, new Dictionary<string, string>
        {
            [ApiGroup.RingLabel] = "r1", [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online",
        });
        var yaml = $$"""
            apiVersion: controlplane.io/v1alpha1
            kind: DeploymentIntent
            metadata: {name: payroll-2-1-0, namespace: {{ws}}}
            spec:
              application: payroll
              version: 2.1.0
              artifact: {image: "registry.example/payroll:2.1.0", sha256: "{{new string('a', 64)}}"}
              targetScope: {acquisitionBoundary: acq-001, businessUnit: bu-finance, siteClass: online, rings: [r1]}
              executionPlane: {type: kubernetes}
              rollbackPlan: {strategy: previous-version}
              risk: {privilegeImpact: 1.0, supplyChainTrust: 0.1, blastRadius: 0.4, changeComplexity: 0.3, testEvidence: 0.8}
            """;
        var file = Path.Combine(Path.GetTempPath(), Unique("intent") + ".yaml");
        await File.WriteAllTextAsync(file, yaml);

        var text = (await Run("bob", "intent", "whatif", "-f", file)).Succeeds();
        Assert.Contains("Risk score:  41.0 / 100", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("Decision:    Allow (Allowed)", text.Stdout, StringComparison.Ordinal);
        // bob may not read the operator's namespace: the plugin says which model it used and why.
        Assert.Contains("built-in v1.0 (you may not read ConfigMap controlplane-system/controlplane-risk-model", text.Stdout, StringComparison.Ordinal);
        var report = JsonNode.Parse((await Run("bob", "intent", "whatif", "-f", file, "-o", "json")).Succeeds().Stdout)!;
        Assert.Equal(41.0, report["score"]!.GetValue<double>());
        Assert.Equal(20.0, report["factors"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == "privilegeImpact")!["contribution"]!.GetValue<double>());
        Assert.Null(await Cluster.Api.TryGetAsync<DeploymentIntent>(Intents, ws, "payroll-2-1-0", CancellationToken.None));

        // The same intent, created: the reconciler's score is the plugin's.
        using var bob = As("bob");
        // With what every intent needs since issue 23 (its Application approved by CAB, an evidence pack and a clean scan report): the score is the manifest's.
        using var carol = As("carol");
        using var erin = As("erin");
        await Applications.ApprovedApplicationAsync(Cluster.Api, ws, ["r1"], [new("carol@example.com", carol), new("erin@example.com", erin)], "payroll");
        await bob.CreateAsync(Intents, ws, await Evidence.AttachAsync(Cluster.Api, ws, k8s.KubernetesYaml.Deserialize<DeploymentIntent>(yaml)), CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ws, "payroll-2-1-0", CancellationToken.None)).Status is { RiskScore: not null, Decision: not null },
            TimeSpan.FromSeconds(90), "the intent scored and decided");
        var scored = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ws, "payroll-2-1-0", CancellationToken.None);
        Assert.Equal(report["score"]!.GetValue<double>(), scored.Status!.RiskScore);
        Assert.Equal(report["modelVersion"]!.GetValue<string>(), scored.Status.RiskModelVersion);
        Assert.Equal(report["decision"]!.GetValue<string>(), scored.Status.Decision);
        File.Delete(file);
    }

    [Fact]
    public async Task BadInput_GetsOneClearLine_AndANonZeroExit_NeverAStackTrace()
    {
        var tenant = Unique("plb");
        await Cluster.CreateTenantAsync(tenant);
        var ws = await WorkspaceAsync(tenant);

        (await Run("carol", "approve", "widget/orders", "-n", ws)).FailsWithOneLine("unknown kind \"widget\"");
        (await Run("carol", "approve", "orders", "-n", ws)).FailsWithOneLine("expected <kind>/<name>");
        (await Run("carol", "approve", "rollout/nope", "-n", ws)).FailsWithOneLine($"Rollout \"nope\" not found in namespace \"{ws}\"");
        // A namespace that is not the object's (or no workspace at all): the same clear answer, naming both.
        (await Run("bob", "rollout", "get", "payroll", "-n", "default")).FailsWithOneLine("not found in namespace \"default\"");
        (await Run("bob", "backup", "now", "nightly", "-n", ws)).FailsWithOneLine($"BackupPlan \"nightly\" not found in namespace \"{ws}\"");
        (await Run("bob", "restore", ws, "--to-time", "yesterday-ish", "--into", "x")).FailsWithOneLine("--to-time: \"yesterday-ish\" is not a time");
        (await Run("bob", "restore", ws, "--backup", "b", "--to-time", "2026-01-01T00:00:00Z")).FailsWithOneLine("give exactly one of --backup NAME or --to-time T");
        (await Run("bob", "restore", ws, "--to-time", "2026-01-01T00:00:00Z", "--into", "x")).FailsWithOneLine($"workspace {ws} has no BackupPlan");
        (await Run("bob", "intent", "whatif", "-f", "/nonexistent/intent.yaml")).FailsWithOneLine("-f: /nonexistent/intent.yaml does not exist");
        (await Run("bob", "rollout", "get")).FailsWithOneLine("Required argument missing");
        // bob is an Operator, not an Auditor: the audit trail is refused in the API server's words (the API not installed: PluginAuditTests).
        (await Run("bob", "audit", "-n", ws)).FailsWithOneLine($"cannot list resource \"auditevents\" in API group \"audit.controlplane.io\" in the namespace \"{ws}\"");

        // No kubeconfig at all.
        (await PluginRunner.RunAsync(null, "status")).FailsWithOneLine("no kubeconfig");
        (await PluginRunner.RunAsync(Kubeconfig("bob"), "--context", "elsewhere", "status")).FailsWithOneLine("--context: context \"elsewhere\" is not in the kubeconfig");

        (await Run("carol", "backup", "list", "-n", ws)).Succeeds();

        // --help works on every command and says what it does.
        var help = (await PluginRunner.RunAsync(null, "rollout", "promote", "--help")).Succeeds();
        Assert.Contains("spec.promote", help.Stdout, StringComparison.Ordinal);
        var completion = (await PluginRunner.RunAsync(null, "completion", "bash")).Succeeds();
        Assert.Contains("complete -o default -F _kubectl_controlplane kubectl-controlplane", completion.Stdout, StringComparison.Ordinal);
    }
}
