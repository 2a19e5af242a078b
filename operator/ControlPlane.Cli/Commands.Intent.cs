using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace ControlPlane.Cli;

public static partial class Commands
{
    public static Command Intent(Globals g)
    {
        var cmd = new Command("intent", "DeploymentIntent tools.");
        var file = new Option<string>("--filename", "-f") { Description = "The DeploymentIntent manifest (YAML or JSON; - for stdin)", Required = true };
        var operatorNs = new Option<string>("--operator-namespace") { Description = "Where the operator reads its risk model ConfigMap", DefaultValueFactory = _ => "controlplane-system" };
        var output = Globals.OutputOption();
        var whatif = new Command("whatif", $"The risk score, each factor's contribution and the decision (Allow / RequireApproval / Deny, with reasons) the operator would reach for this intent, scored with the model the cluster holds (the ConfigMap {RiskModel.ConfigMapName} when you may read it, else the built-in v1.0: it says which). Creates nothing.")
        {
            file, operatorNs, output,
        };
        whatif.SetAction(async (r, ct) =>
        {
            var path = r.GetValue(file)!;
            var text = path == "-" ? await Console.In.ReadToEndAsync(ct) : File.Exists(path) ? await File.ReadAllTextAsync(path, ct) : throw new CliError($"-f: {path} does not exist");
            DeploymentIntent intent;
            try
            {
                intent = KubernetesYaml.Deserialize<DeploymentIntent>(text);
            }
            catch (Exception e) when (e is YamlDotNet.Core.YamlException or System.Text.Json.JsonException or FormatException)
            {
                throw new CliError($"-f {path}: not a DeploymentIntent manifest: {e.Message.ReplaceLineEndings(" ")}");
            }

            if (intent?.Kind != DeploymentIntent.KubeKind || intent.Spec is null) throw new CliError($"-f {path}: kind is \"{intent?.Kind}\", not {DeploymentIntent.KubeKind}");
            using var kube = g.Connect(r);
            var ns = r.GetValue(g.Namespace) ?? intent.Metadata?.NamespaceProperty ?? kube.Namespace;
            var notChecked = new List<string> { "target scope (the tenant's scopes and the ring workspaces' labels): checked by admission and the operator" };

            // The model: the ConfigMap the operator reads, if the caller may read it.
            var (model, source) = await ModelAsync(kube, r.GetValue(operatorNs)!, ct);
            var risk = model.Assess(intent.Spec.Risk, intent.Spec.PrivilegedTooling);

            // The tenant, through the workspace the intent lives in.
            var tenantName = "?";
            var suspended = false;
            if (await kube.TryGetClusterAsync<Workspace>(ns, ct) is { } ws)
            {
                tenantName = ws.Spec.Tenant;
                if (await kube.TryGetClusterAsync<Tenant>(tenantName, ct) is { } tenant) suspended = tenant.Spec.Suspended;
                else notChecked.Add($"whether tenant {tenantName} is suspended (you may not read it)");
            }
            else
            {
                notChecked.Add($"the tenant (namespace {ns} is not a workspace you may read)");
            }

            var findings = Findings.Union(Findings.FromSpec(intent.Spec));
            var decision = WhatIf.Decide(intent.Spec, suspended, tenantName, risk, findings);
            var report = new WhatIfReport(intent.Metadata?.Name ?? "(unnamed)", ns, risk.Score, risk.ModelVersion, source, model.ApprovalThreshold,
                risk.Factors, findings.Select(f => f.ToString()).ToList(), decision.Decision, decision.Reason, decision.Message, notChecked);
            Console.Write(r.GetValue(output) is { } format ? Output.Render(report, format) : RenderWhatIf(report));
            return 0;
        });
        cmd.Add(whatif);
        return cmd;
    }

    static async Task<(RiskModel Model, string Source)> ModelAsync(Kube kube, string ns, CancellationToken ct)
    {
        V1ConfigMap cm;
        try
        {
            cm = await kube.Client.CoreV1.ReadNamespacedConfigMapAsync(RiskModel.ConfigMapName, ns, cancellationToken: ct);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return (RiskModel.V1, $"built-in v1.0 (no ConfigMap {ns}/{RiskModel.ConfigMapName}: the operator uses v1.0 too)");
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden)
        {
            return (RiskModel.V1, $"built-in v1.0 (you may not read ConfigMap {ns}/{RiskModel.ConfigMapName}: if a platform admin replaced the model, the operator's score differs)");
        }

        var (model, problem) = RiskModel.FromConfigMap(cm);
        if (model is null) throw new CliError($"the operator would not score this intent: {problem} (it reports InvalidRiskModel)");
        if (model.Version == RiskModel.V1.Version && !model.SameAs(RiskModel.V1))
        {
            throw new CliError($"the operator would not score this intent: ConfigMap {ns}/{RiskModel.ConfigMapName}: version {model.Version} is the built-in model's; give other weights a new version");
        }

        return (model, $"ConfigMap {ns}/{RiskModel.ConfigMapName}, version {model.Version}");
    }

    static string RenderWhatIf(WhatIfReport w)
    {
        var s = new StringBuilder();
        s.AppendLine($"DeploymentIntent {w.Intent} in {w.Namespace} (what if: nothing was created)");
        s.AppendLine($"Risk model:  {w.ModelSource}");
        s.AppendLine($"Risk score:  {w.Score.ToString("0.0", CultureInfo.InvariantCulture)} / 100 (approval above {w.ApprovalThreshold.ToString("0.##", CultureInfo.InvariantCulture)})");
        s.Append(Indent(Output.Table(["FACTOR", "VALUE", "WEIGHT", "CONTRIBUTION"],
            w.Factors.Select(f => (IReadOnlyList<string>)[f.Name, f.Value.ToString("0.00", CultureInfo.InvariantCulture), f.Weight.ToString("0.##", CultureInfo.InvariantCulture), f.Contribution.ToString("0.00", CultureInfo.InvariantCulture)]))));
        if (w.Findings.Count > 0) s.AppendLine($"Findings:    {string.Join(", ", w.Findings)}");
        s.AppendLine($"Decision:    {w.Decision} ({w.Reason}): {w.Message}");
        foreach (var n in w.NotChecked) s.AppendLine($"Not checked: {n}");
        return s.ToString();
    }
}
