using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.LocalEnv;
using Xunit;
using YamlDotNet.Serialization;

namespace ControlPlane.Tests;

/// <summary>
/// The chart's PrometheusRule (one source: templates/prometheusrule.yaml, rendered by helm as an
/// install would) checked by promtool: its syntax (`check rules`) and its behaviour (`test rules`
/// against Prometheus/alerts.test.yaml: every alert fires when it should and stays silent otherwise).
/// </summary>
public sealed class AlertRulesTests : IDisposable
{
    readonly string home = Path.Combine(Path.GetTempPath(), "controlplane-rules-" + Guid.NewGuid().ToString("N")[..8]);

    public AlertRulesTests() => Directory.CreateDirectory(home);

    public void Dispose()
    {
        if (Directory.Exists(home)) Directory.Delete(home, recursive: true);
    }

    /// <summary>Debian's prometheus package ships promtool next to prometheus ($PROMTOOL picks another).</summary>
    public static string Promtool() => Environment.GetEnvironmentVariable("PROMTOOL") is { Length: > 0 } p ? p
        : new[] { "/usr/bin/promtool", "/usr/local/bin/promtool" }.FirstOrDefault(File.Exists)
          ?? throw new InvalidOperationException("promtool is not installed: run `make tools` (hack/install-prometheus.sh) or set PROMTOOL");

    /// <summary>The rule groups of the chart's PrometheusRule, as a Prometheus rule file (the audit API's alerts included: it is opt-in).</summary>
    async Task<string> RenderRulesAsync(params string[] extra)
    {
        var rendered = await Tools.RenderAsync(Path.Combine(home, "helm"), ["--set", "metrics.prometheusRule.enabled=true", "--set", "auditApi.enabled=true", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule", "--show-only", "templates/prometheusrule.yaml", .. extra]);
        var rule = ManifestObject.Parse(rendered).Single(o => o.Kind == "PrometheusRule");
        var spec = (IDictionary<object, object>)rule.Raw["spec"];
        var path = Path.Combine(home, "rules.yaml");
        await File.WriteAllTextAsync(path, new SerializerBuilder().Build().Serialize(new Dictionary<string, object> { ["groups"] = spec["groups"] }));
        return path;
    }

    [Fact]
    public async Task TheChartsRules_PassPromtoolCheck_AndTheirUnitTests()
    {
        var rules = await RenderRulesAsync();
        var check = await Tools.RunAsync(Promtool(), ["check", "rules", rules]);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);

        // promtool reads rule_files relative to the test file: both side by side.
        var tests = Path.Combine(home, "alerts.test.yaml");
        File.Copy(Path.Combine(Tools.Repo, "tests/ControlPlane.IntegrationTests/Prometheus/alerts.test.yaml"), tests);
        var run = await Tools.RunAsync(Promtool(), ["test", "rules", tests]);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("SUCCESS", run.Stdout + run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryAlert_HasACaseWhereItFires_AndOneWhereItStaysSilent()
    {
        var rules = new DeserializerBuilder().Build().Deserialize<Dictionary<string, List<Dictionary<string, object>>>>(await File.ReadAllTextAsync(await RenderRulesAsync()));
        var alerts = rules["groups"].SelectMany(g => (List<object>)g["rules"]).Cast<Dictionary<object, object>>()
            .Where(r => r.ContainsKey("alert")).Select(r => (string)r["alert"]).ToHashSet();
        Assert.Contains("ControlPlaneReconcileErrorBudgetBurn", alerts);
        Assert.Contains("ControlPlaneWebhookLatencyBudgetBurn", alerts);
        Assert.Contains("ControlPlaneWebhookCertificateExpiring", alerts);

        var file = new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(
            await File.ReadAllTextAsync(Path.Combine(Tools.Repo, "tests/ControlPlane.IntegrationTests/Prometheus/alerts.test.yaml")));
        var cases = ((List<object>)file["tests"]).Cast<Dictionary<object, object>>()
            .SelectMany(t => t.TryGetValue("alert_rule_test", out var a) ? ((List<object>)a).Cast<Dictionary<object, object>>() : [])
            .Select(c => (Alert: (string)c["alertname"], Fires: c.TryGetValue("exp_alerts", out var e) && e is List<object> { Count: > 0 }))
            .ToList();
        foreach (var alert in alerts)
        {
            Assert.True(cases.Any(c => c.Alert == alert && c.Fires), $"{alert}: no case where it fires");
            Assert.True(cases.Any(c => c.Alert == alert && !c.Fires), $"{alert}: no case where it stays silent");
        }

        Assert.Empty(cases.Select(c => c.Alert).Where(a => !alerts.Contains(a)).Distinct()); // no test of a rule that is gone
    }

    [Fact]
    public async Task BackupOverdue_GroupsByWorkspace_NeverByTheScrapeTargetsNamespace()
    {
        var text = await File.ReadAllTextAsync(await RenderRulesAsync());
        var overdue = Regex.Match(text, @"alert: ControlPlaneBackupOverdue\s+expr: (.*)").Groups[1].Value;
        Assert.Contains("by (workspace, backupplan)", overdue, StringComparison.Ordinal);
        Assert.Contains("namespace=\"controlplane-system\"", overdue, StringComparison.Ordinal); // selects this release's operator
    }

    [Fact]
    public async Task ALatencyThresholdThatIsNotABucket_IsRefusedWhenRendering()
    {
        var values = Path.Combine(home, "values.yaml");
        await File.WriteAllTextAsync(values, "metrics:\n  prometheusRule:\n    enabled: true\n    webhookLatencyP99Seconds: 0.3\n");
        // The Prometheus Operator's CRDs are "there", so the only refusal left is the threshold's.
        string[] crds = ["--api-versions", "monitoring.coreos.com/v1/PrometheusRule"];
        var result = await Tools.HelmAsync(Path.Combine(home, "helm"), null, ["template", "controlplane", Tools.Chart, "-f", values, .. crds]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("is not a bucket of controlplane_webhook_request_duration_seconds", result.Stderr, StringComparison.Ordinal);
        // Every boundary the template offers is one the operator exports.
        foreach (var bucket in ControlPlane.Runtime.OperatorMetrics.WebhookLatencyBuckets)
        {
            await File.WriteAllTextAsync(values, $"metrics:\n  prometheusRule:\n    enabled: true\n    webhookLatencyP99Seconds: {bucket.ToString(CultureInfo.InvariantCulture)}\n");
            (await Tools.HelmAsync(Path.Combine(home, "helm"), null, ["template", "controlplane", Tools.Chart, "-f", values, .. crds])).EnsureSuccess($"threshold {bucket}");
        }
    }
}

/// <summary>
/// The chart's Grafana dashboard: a ConfigMap the Grafana sidecar loads, and every panel's query run
/// against a real Prometheus scraping the whole operator process (WebhookFixture: reconcilers and
/// admission webhooks): each parses, and each whose metric the operator always exports returns data.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class DashboardTests(WebhookFixture fixture) : IDisposable
{
    readonly string home = Path.Combine(Path.GetTempPath(), "controlplane-dashboard-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(home)) Directory.Delete(home, recursive: true);
    }

    /// <summary>Panels whose series need workloads this test does not run (backups, deployments) or may be legitimately empty.</summary>
    static readonly HashSet<string> MayBeEmpty =
    [
        "Not Ready now", "Reconcile error ratio (SLO 99%)", "Terminal errors", "Time since last successful backup", "Backup size", "Backup duration",
        "Ring success rate", "Rollbacks and CAB approval p90",
        "Drift and remediations", "Time to compliance p90 by ring", "Connector errors by class",
    ];

    async Task<JsonObject> RenderedDashboardAsync()
    {
        var rendered = await Tools.RenderAsync(home, "--set", "grafana.dashboard.enabled=true", "--show-only", "templates/grafana-dashboard.yaml");
        var map = ManifestObject.Parse(rendered).Single(o => o.Kind == "ConfigMap");
        var labels = (IDictionary<object, object>)((IDictionary<object, object>)map.Raw["metadata"])["labels"];
        Assert.Equal("1", labels["grafana_dashboard"]); // what the Grafana sidecar watches
        var json = (string)((IDictionary<object, object>)map.Raw["data"])["controlplane.json"];
        Assert.Equal((await File.ReadAllTextAsync(Path.Combine(Tools.Repo, "charts/controlplane/files/dashboards/controlplane.json"))).Trim(), json.Trim());
        return JsonNode.Parse(json)!.AsObject();
    }

    [Fact]
    public async Task TheDashboard_IsRenderedOnlyWhenEnabled()
    {
        var defaults = ManifestObject.Parse(await Tools.RenderAsync(home));
        Assert.DoesNotContain(defaults, o => o.Kind == "ConfigMap" && o.Name == "controlplane-dashboard");
        var dashboard = await RenderedDashboardAsync();
        Assert.Equal("controlplane-operator", (string?)dashboard["uid"]);
    }

    static IEnumerable<(string Title, string Expr)> Queries(JsonObject dashboard)
    {
        static IEnumerable<JsonObject> Panels(JsonArray? panels) =>
            (panels ?? []).OfType<JsonObject>().SelectMany(p => Panels(p["panels"] as JsonArray).Prepend(p));
        foreach (var panel in Panels(dashboard["panels"] as JsonArray))
        {
            foreach (var target in (panel["targets"] as JsonArray ?? []).OfType<JsonObject>())
            {
                yield return ((string)panel["title"]!, (string)target["expr"]!);
            }
        }

        // label_values(selector, label): the selector must find series.
        foreach (var variable in (dashboard["templating"]?["list"] as JsonArray ?? []).OfType<JsonObject>().Where(v => (string?)v["type"] == "query"))
        {
            var m = Regex.Match((string)variable["definition"]!, @"^label_values\((.*),\s*\w+\)$");
            Assert.True(m.Success, $"variable {variable["name"]}: {variable["definition"]}");
            yield return ($"${variable["name"]}", m.Groups[1].Value);
        }
    }

    /// <summary>Grafana's variables as a query of the release's operator, over every workspace, would have them.</summary>
    static string Substitute(string expr) => expr
        .Replace("$__rate_interval", "1m", StringComparison.Ordinal)
        .Replace("$namespace", "controlplane-system", StringComparison.Ordinal)
        .Replace("$workspace", ".*", StringComparison.Ordinal);

    [Fact]
    public async Task EveryPanelsQuery_ParsesInARealPrometheus_ScrapingTheOperator_AndReturnsDataWhereTheMetricMustExist()
    {
        var dashboard = await RenderedDashboardAsync();
        var queries = Queries(dashboard).ToList();
        Assert.True(queries.Count >= 20, $"{queries.Count} queries");

        // The target labels a ServiceMonitor in the release namespace attaches.
        await using var prometheus = await LocalPrometheus.StartAsync(home, [$"127.0.0.1:{fixture.HealthPort}"],
            new Dictionary<string, string> { ["namespace"] = "controlplane-system", ["service"] = "controlplane-metrics", ["pod"] = "controlplane-operator-0" });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        // A Tenant: admitted by the webhook, reconciled to Ready, seen through the scrape as its own series.
        var tenant = "dash-" + Guid.NewGuid().ToString("N")[..6];
        await fixture.Cluster.CreateTenantAsync(tenant);
        try
        {
            await Net.WaitUntilAsync(async () => await prometheus.QueryAsync($"controlplane_object_ready{{namespace=\"controlplane-system\",kind=\"Tenant\",workspace=\"\",name=\"{tenant}\"}}") == 1,
                TimeSpan.FromSeconds(60), "the tenant Ready in controlplane_object_ready, scraped");

            // No metric of the operator's carries a namespace label of its own: Prometheus would rename it
            // exported_namespace, and rules grouping by it would mix workspaces under the operator's namespace.
            Assert.Equal(0, await prometheus.QueryAsync("count({exported_namespace=~\".+\"}) or vector(0)"));
            Assert.Equal(1, await prometheus.QueryAsync("count(controlplane_object_ready{namespace=\"controlplane-system\",kind=\"Tenant\",name=\"" + tenant + "\"})"));

            var failures = new List<string>();
            foreach (var (title, expr) in queries)
            {
                var query = Substitute(expr);
                Assert.DoesNotContain("$", query, StringComparison.Ordinal); // every variable known
                JsonObject? last = null;
                async Task<bool> HasDataAsync()
                {
                    using var response = await http.GetAsync($"{prometheus.Url}/api/v1/query?query={Uri.EscapeDataString(query)}");
                    last = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
                    return (string?)last["status"] != "success" || last["data"]?["result"] is JsonArray { Count: > 0 };
                }

                var hasData = await HasDataAsync();
                if (!hasData && !MayBeEmpty.Contains(title))
                {
                    // Rates need two scrapes (one a second) inside their window.
                    try
                    {
                        await Net.WaitUntilAsync(HasDataAsync, TimeSpan.FromSeconds(15), title);
                        hasData = true;
                    }
                    catch (TimeoutException)
                    {
                    }
                }

                if ((string?)last?["status"] != "success") failures.Add($"{title}: `{query}` does not parse: {last?["error"]}");
                else if (!hasData && !MayBeEmpty.Contains(title)) failures.Add($"{title}: `{query}` returns no data");
            }

            Assert.True(failures.Count == 0, string.Join("\n", failures));
        }
        finally
        {
            await fixture.Cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None);
        }
    }
}
