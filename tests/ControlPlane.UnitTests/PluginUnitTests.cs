extern alias cli;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using Xunit;
using k8s.Models;
using Cli = cli::ControlPlane.Cli;
using CliPolicy = cli::ControlPlane.Operator.Policy;

namespace ControlPlane.Tests;

/// <summary>The kubectl plugin's pure parts: what-if against the reconciler's decision, the audit chain rule, targets, completion.</summary>
public sealed class PluginUnitTests
{
    static DeploymentIntentSpec Spec(Action<DeploymentIntentSpec>? edit = null)
    {
        var spec = new DeploymentIntentSpec
        {
            Application = "app", Version = "2.1.0",
            Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = new string('a', 64) },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", Rings = ["r1"] },
            // The contract's example: 20 + 1.5 + 10 + 4.5 + 5 = 41.0.
            Risk = new RiskFactors { PrivilegeImpact = 1.0, SupplyChainTrust = 0.1, BlastRadius = 0.4, ChangeComplexity = 0.3, TestEvidence = 0.8 },
        };
        edit?.Invoke(spec);
        return spec;
    }

    public static TheoryData<string> Cases => new() { "example", "no-digest", "suspended", "critical", "medium", "privileged", "risky", "no-factors" };

    static (DeploymentIntentSpec Spec, bool Suspended) Case(string name) => name switch
    {
        "example" => (Spec(), false),
        "no-digest" => (Spec(s => s.Artifact.Sha256 = null), false),
        "suspended" => (Spec(), true),
        "critical" => (Spec(s => s.Artifact.Vulnerabilities = [new Vulnerability { Id = "CVE-2025-1", Severity = "Critical" }]), false),
        "medium" => (Spec(s => s.Artifact.Vulnerabilities = [new Vulnerability { Id = "CVE-2025-2", Severity = "Medium" }]), false),
        "privileged" => (Spec(s => s.PrivilegedTooling = true), false),
        "risky" => (Spec(s => s.Risk!.TestEvidence = 0), false),
        _ => (Spec(s => s.Risk = null), false),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void WhatIf_ReachesTheReconcilersDecision_WordForWord(string name)
    {
        var (spec, suspended) = Case(name);
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" }, Spec = new TenantSpec { Suspended = suspended } };
        var risk = RiskModel.V1.Assess(spec.Risk, spec.PrivilegedTooling);
        var findings = Findings.Union(Findings.FromSpec(spec));
        var operatorDecision = IntentDecisions.Decide(spec, tenant, [], risk, findings);
        // The plugin's own compiled copy of the model and findings (the same source files), as the binary runs them.
        var pluginRisk = CliPolicy.RiskModel.V1.Assess(spec.Risk, spec.PrivilegedTooling);
        Assert.Equal(risk.Score, pluginRisk.Score);
        var plugin = Cli.WhatIf.Decide(spec, suspended, "acme", pluginRisk, CliPolicy.Findings.Union(CliPolicy.Findings.FromSpec(spec)));
        Assert.Equal((operatorDecision.Decision, operatorDecision.Reason, operatorDecision.Message), (plugin.Decision, plugin.Reason, plugin.Message));
    }

    [Fact]
    public void WhatIf_ScoresTheContractsExample_41()
    {
        var risk = CliPolicy.RiskModel.V1.Assess(Spec().Risk, false);
        Assert.Equal(41.0, risk.Score);
        Assert.Equal(41.0, RiskModel.V1.Assess(Spec().Risk, false).Score);
        Assert.Equal("Allow", Cli.WhatIf.Decide(Spec(), false, "acme", risk, []).Decision);
    }

    static JsonObject Event(int i) => new()
    {
        ["occurredAt"] = $"2026-12-07T13:20:0{i}.123456Z", ["actor"] = "alice@acme.io", ["action"] = "workspace.created", ["kind"] = "Workspace",
        ["objectName"] = "acme-dev", ["tenant"] = "acme", ["severity"] = "info", ["details"] = new JsonObject { ["z"] = "<&>'é", ["a"] = new JsonArray(1, 2.5, null) },
    };

    /// <summary>Rows as the audit API serves them, chained globally (sequence 1..n) and on tenant acme's chain.</summary>
    static List<Cli.AuditRow> Chain(int n)
    {
        var rows = new List<Cli.AuditRow>();
        string prev = "", tenantPrev = "";
        for (var i = 1; i <= n; i++)
        {
            var e = Event(i);
            var hash = SystemDatabase.Sha256Hex(prev + SystemDatabase.Canonical(e));
            var tenantHash = SystemDatabase.Sha256Hex(tenantPrev + SystemDatabase.Canonical(e));
            rows.Add(Cli.AuditRow.From(new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture), ["namespace"] = "acme-dev" },
                ["event"] = e,
                ["chain"] = new JsonObject { ["sequence"] = i, ["prevHash"] = prev, ["hash"] = hash },
                ["tenantChain"] = new JsonObject { ["tenant"] = "acme", ["sequence"] = i, ["prevHash"] = tenantPrev, ["hash"] = tenantHash },
            }));
            (prev, tenantPrev) = (hash, tenantHash);
        }

        return rows;
    }

    [Fact]
    public void AuditChain_Canonical_IsTheOperatorsCanonicalJson()
    {
        var e = Event(1);
        Assert.Equal(SystemDatabase.Canonical(e), Cli.AuditChain.Canonical(e));
        Assert.Equal(SystemDatabase.Sha256Hex("prev" + SystemDatabase.Canonical(e)), Cli.AuditChain.Hash("prev", e));
    }

    [Fact]
    public void AuditVerify_AnIntactChain_Verifies_Globally_AndPerTenant()
    {
        var rows = Chain(5);
        Assert.Null(Cli.AuditChain.VerifyGlobal(rows).FirstBreak);
        var tenant = Cli.AuditChain.VerifyTenant("acme", rows);
        Assert.Null(tenant.FirstBreak);
        Assert.Equal(5, tenant.RowsOnTenantChain);
    }

    [Fact]
    public void AuditVerify_ATamperedRow_IsTheFirstBreak_WithItsSequence()
    {
        var rows = Chain(5);
        rows[2].Event["actor"] = "mallory@acme.io"; // row 3 changed in place (as a superuser with triggers off would)
        var global = Cli.AuditChain.VerifyGlobal(rows).FirstBreak!;
        Assert.Equal(3, global.Sequence);
        Assert.Contains("does not recompute", global.Problem, StringComparison.Ordinal);
        Assert.Equal(3, Cli.AuditChain.VerifyTenant("acme", rows).FirstBreak!.Sequence);
    }

    [Fact]
    public void AuditVerify_ADeletedRow_IsAGap_AtTheMissingSequence()
    {
        var rows = Chain(5);
        rows.RemoveAt(1);
        // Globally the first row that fails is the deleted row's successor: its prevHash names a hash no row has.
        var global = Cli.AuditChain.VerifyGlobal(rows).FirstBreak!;
        Assert.Equal(3, global.Sequence);
        Assert.Contains("rows 2..2 are missing", global.Problem, StringComparison.Ordinal);
        var tenant = Cli.AuditChain.VerifyTenant("acme", rows).FirstBreak!;
        Assert.Equal(2, tenant.Sequence);
        // The first rows deleted: the new first row's prevHash is not "".
        Assert.Equal(2, Cli.AuditChain.VerifyGlobal(Chain(5).Skip(1).ToList()).FirstBreak!.Sequence);
    }

    [Fact]
    public void AuditVerify_AGlobalSequenceGap_WithIntactLinks_IsNoBreak()
    {
        // An append rolled back with its transaction consumes an id: ids 1, 2, 4, 5 linked row to row are intact.
        var rows = Chain(4).Select(r => r.Sequence >= 3 ? r with { Sequence = r.Sequence + 1, Name = (r.Sequence + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) } : r).ToList();
        Assert.Null(Cli.AuditChain.VerifyGlobal(rows).FirstBreak);
        Assert.Null(Cli.AuditChain.VerifyTenant("acme", rows).FirstBreak);
    }

    [Theory]
    [InlineData("rollout/orders", "Rollout", "orders")]
    [InlineData("rollouts/orders", "Rollout", "orders")]
    [InlineData("di/pay-1", "DeploymentIntent", "pay-1")]
    [InlineData("exposures/api-v1", "Exposure", "api-v1")]
    [InlineData("DeploymentIntent/pay-1", "DeploymentIntent", "pay-1")]
    [InlineData("rst/r1", "Restore", "r1")]
    public void ApprovalTargets_AcceptKindsPluralsAndShortNames(string text, string kind, string name)
    {
        var (k, n) = Cli.Kinds.ApprovableTarget(text);
        Assert.Equal((kind, name), (k.Kind, n));
    }

    [Theory]
    [InlineData("widget/orders", "unknown kind \"widget\"")]
    [InlineData("workspace/acme-dev", "unknown kind \"workspace\"")]
    [InlineData("orders", "expected <kind>/<name>")]
    [InlineData("rollout/", "expected <kind>/<name>")]
    public void ApprovalTargets_BadInput_IsOneClearError(string text, string expected)
    {
        var e = Assert.Throws<Cli.CliError>(() => Cli.Kinds.ApprovableTarget(text));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void TheApprovableKinds_AreTheOperatorsList()
    {
        Assert.Equal(ApprovableKinds.All.Select(k => k.Kind).Order(), Cli.Kinds.Approvable.Order());
    }

    [Fact]
    public void Counts_AreReadFromTheTargetApprovedMessage()
    {
        Assert.Equal((1, 2), Cli.Commands.Counts("1 of 2 approval(s) for generation 3"));
        Assert.Equal((null, null), Cli.Commands.Counts("approved by carol@example.com"));
    }

    [Fact]
    public void Completion_SuggestsCommandsAndSubcommands()
    {
        var root = Cli.Program.BuildRoot(new Cli.Globals());
        Assert.Contains("rollout", Cli.Completion.Suggest(root, [""]));
        Assert.Contains("promote", Cli.Completion.Suggest(root, ["rollout", ""]));
        Assert.Contains("verify", Cli.Completion.Suggest(root, ["audit", "ver"]));
        Assert.Contains("complete -o default -F _kubectl_controlplane kubectl-controlplane", Cli.Completion.Script("bash"), StringComparison.Ordinal);
        Assert.StartsWith("autoload -U +X bashcompinit", Cli.Completion.Script("zsh"), StringComparison.Ordinal);
    }

    [Fact]
    public void EveryCommand_HasADescription_ForItsHelp()
    {
        var root = Cli.Program.BuildRoot(new Cli.Globals());
        var missing = new List<string>();
        void Walk(System.CommandLine.Command c, string path)
        {
            if (string.IsNullOrWhiteSpace(c.Description)) missing.Add(path);
            foreach (var o in c.Options.Where(o => o.Name is not ("--help" or "--version") && string.IsNullOrWhiteSpace(o.Description))) missing.Add(path + " " + o.Name);
            foreach (var s in c.Subcommands) Walk(s, path + " " + s.Name);
        }

        Walk(root, "kubectl-controlplane");
        Assert.True(missing.Count == 0, "without a description: " + string.Join(", ", missing));
    }

    [Fact]
    public void RolloutView_ShowsImagesOldToNew_AndSoakLeft()
    {
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var r = new Rollout
        {
            Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "lab", Generation = 2 },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "r/app:2" }] },
                Rings = [new Ring { Name = "r0", Workspaces = ["lab"], Soak = "1h" }],
                Gates = new RolloutGates { SuccessRate = new SuccessRateGate { Query = "q", Threshold = 0.98 } },
            },
            Status = new RolloutStatus
            {
                Phase = RolloutPhase.Progressing, CurrentRing = "r0",
                Rings = [new RingStatus { Name = "r0", Phase = RingPhase.Soaking, Workspaces = ["lab"], RolledOutAt = t0, SuccessRate = 0.99, Incidents = 0 }],
                Previous = [new PreviousImages { Namespace = "lab", Containers = [new ContainerImage { Name = "app", Image = "r/app:1" }] }],
            },
        };
        var view = Cli.Commands.View(r, [], t0.AddMinutes(20));
        Assert.Equal(["app: r/app:1 → r/app:2"], view.Images);
        Assert.Equal("40m", view.Rings.Single().SoakLeft);
        Assert.Contains("successRate 0.99 (min 0.98)", view.Gates);
        Assert.Contains("r0", Cli.Commands.RenderRollout(view), StringComparison.Ordinal);
    }

    [Fact]
    public void YamlOutput_IsTheJsonTree_AsBlockYaml_ThatAYamlParserReadsBack()
    {
        var tree = JsonNode.Parse("""{"name":"orders","rings":[{"name":"r0","workspaces":["lab","c1"]},{"name":"r1","workspaces":[]}],"score":41.0,"note":"a: \"quoted\" #x","empty":{},"none":null}""");
        var yaml = Cli.Output.Yaml(tree);
        Assert.Equal("""
            "name": "orders"
            "rings":
              - "name": "r0"
                "workspaces":
                  - "lab"
                  - "c1"
              - "name": "r1"
                "workspaces": []
            "score": 41.0
            "note": "a: \"quoted\" #x"
            "empty": {}
            "none": null

            """.Replace("\r", "", StringComparison.Ordinal), yaml);
        var back = new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, object?>>(yaml);
        Assert.Equal("a: \"quoted\" #x", back["note"]);
        Assert.Equal(2, ((List<object>)back["rings"]!).Count);
    }

    [Fact]
    public void Since_TakesATimeOrAnAge_AndNamesTheOptionOtherwise()
    {
        Assert.Equal(new DateTime(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc), Cli.Commands.Since("2026-12-07T10:00:00Z"));
        Assert.InRange(Cli.Commands.Since("2h")!.Value, DateTime.UtcNow.AddHours(-2).AddMinutes(-1), DateTime.UtcNow.AddHours(-2).AddMinutes(1));
        Assert.StartsWith("--since:", Assert.Throws<Cli.CliError>(() => Cli.Commands.Since("yesterday")).Message, StringComparison.Ordinal);
    }
}
