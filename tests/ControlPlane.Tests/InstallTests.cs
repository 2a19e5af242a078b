using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Runtime;
using ControlPlane.Operator.Webhooks;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Xunit;
using Xunit.Abstractions;
using YamlDotNet.Serialization;

namespace ControlPlane.Tests;

[CollectionDefinition(Name)]
public sealed class InstallCollection : ICollectionFixture<InstallFixture>
{
    public const string Name = "install";
}

/// <summary>
/// Its own control plane and Postgres with nothing installed: the tests install the operator the
/// three ways a user does (Helm, dist/install.yaml, Kustomize), and the webhook configurations they
/// create (failurePolicy Fail) must not touch the other collections' API servers.
/// </summary>
public sealed class InstallFixture : IAsyncLifetime
{
    readonly string root = Path.Combine(Path.GetTempPath(), "controlplane-install-" + Guid.NewGuid().ToString("N")[..8]);

    public LocalControlPlane Plane { get; private set; } = null!;
    public LocalPostgres Postgres { get; private set; } = null!;
    public string HelmHome => Path.Combine(root, "helm");

    public async Task InitializeAsync()
    {
        Plane = await LocalControlPlane.StartAsync(Path.Combine(root, "k8s"));
        Postgres = await LocalPostgres.StartAsync(root);
    }

    public async Task DisposeAsync()
    {
        await Postgres.DisposeAsync();
        await Plane.DisposeAsync();
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>A command's exit code and output.</summary>
public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public ToolResult EnsureSuccess(string what) =>
        ExitCode == 0 ? this : throw new InvalidOperationException($"{what} failed ({ExitCode}):\n{Stderr}\n{Stdout}");
}

/// <summary>helm, kubectl and bash as a user runs them, from the repository root.</summary>
public static class Tools
{
    public static readonly string Repo = ControlPlane.LocalEnv.Program.FindRepoRoot();
    public const string Chart = "charts/controlplane";

    /// <summary>Where hack/install-helm.sh puts Helm, then $HELM, then PATH.</summary>
    public static string Helm()
    {
        var candidates = new[]
        {
            Environment.GetEnvironmentVariable("HELM"),
            Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local/share/controlplane-tools/helm/helm"),
        };
        foreach (var c in candidates)
        {
            if (!string.IsNullOrEmpty(c) && File.Exists(c)) return c;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "helm"))) return Path.Combine(dir, "helm");
        }

        throw new InvalidOperationException("helm not found: install it with `make tools` (hack/install-helm.sh)");
    }

    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? stdin = null)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, WorkingDirectory = Repo,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) info.Environment[k] = v;
        using var p = Process.Start(info)!;
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }

        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await p.WaitForExitAsync(timeout.Token);
        return new ToolResult(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>helm with its own config/cache/data folders (nothing of the user's is read or written).</summary>
    public static Task<ToolResult> HelmAsync(string home, string? kubeconfig, params string[] args)
    {
        var env = new Dictionary<string, string>
        {
            ["HELM_CONFIG_HOME"] = Path.Combine(home, "config"), ["HELM_CACHE_HOME"] = Path.Combine(home, "cache"), ["HELM_DATA_HOME"] = Path.Combine(home, "data"),
        };
        if (kubeconfig is not null) env["KUBECONFIG"] = kubeconfig;
        return RunAsync(Helm(), args, env);
    }

    /// <summary>What `make manifests` renders into dist/install.yaml.</summary>
    public static readonly string[] DistTemplateArgs = ["template", "controlplane", Chart, "--namespace", "controlplane-system", "--include-crds", "--set", "createNamespace=true"];

    public static async Task<string> RenderAsync(string home, params string[] extra) =>
        (await HelmAsync(home, null, ["template", "controlplane", Chart, "--namespace", "controlplane-system", .. extra])).EnsureSuccess("helm template").Stdout;
}

/// <summary>One object of a multi-document manifest: its identity, and its text for typed parsing.</summary>
public sealed record ManifestObject(string ApiVersion, string Kind, string? Namespace, string Name, string Yaml, IDictionary<object, object> Raw)
{
    public string Id => $"{Kind}/{Namespace}/{Name}";

    public static IReadOnlyList<ManifestObject> Parse(string text)
    {
        var yaml = new DeserializerBuilder().Build();
        var objects = new List<ManifestObject>();
        foreach (var doc in Regex.Split(text, @"^---[ \t]*$", RegexOptions.Multiline))
        {
            if (yaml.Deserialize<object>(doc) is not IDictionary<object, object> o || !o.ContainsKey("kind")) continue;
            var meta = (IDictionary<object, object>)o["metadata"];
            objects.Add(new ManifestObject((string)o["apiVersion"], (string)o["kind"], meta.TryGetValue("namespace", out var ns) ? (string)ns : null, (string)meta["name"], doc, o));
        }

        return objects;
    }

    public T As<T>() => KubernetesYaml.Deserialize<T>(Yaml);
}

/// <summary>
/// The chart, dist/install.yaml and config/default, without a cluster: lint, one source with config/
/// and the operator's own code, secrets only by reference, and the install step's mirror.
/// </summary>
public sealed class ChartTests
{
    readonly string helmHome = Path.Combine(Path.GetTempPath(), "controlplane-helm-" + Guid.NewGuid().ToString("N")[..8]);

    static string Read(params string[] path) => File.ReadAllText(Path.Combine([Tools.Repo, .. path]));

    [Fact]
    public async Task HelmLint_IsClean()
    {
        var lint = await Tools.HelmAsync(helmHome, null, "lint", Tools.Chart, "--strict");
        Assert.True(lint.ExitCode == 0, lint.Stdout + lint.Stderr);
        var withEverything = await Tools.HelmAsync(helmHome, null, "lint", Tools.Chart, "--strict",
            "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
            "--set", "regions.eu.database.secretName=db", "--set", "regions.eu.database.key=eu", "--set", "webhook.clientCA.configMapName=ca");
        Assert.True(withEverything.ExitCode == 0, withEverything.Stdout + withEverything.Stderr);
    }

    [Fact]
    public void ChartCopies_AreTheGeneratedSources()
    {
        // charts/controlplane/crds and files/rbac are copies `make manifests` makes of crds/ and config/rbac.
        foreach (var (source, copy) in new[] { ("crds", "charts/controlplane/crds"), ("config/rbac", "charts/controlplane/files/rbac") })
        {
            var expected = Directory.GetFiles(Path.Combine(Tools.Repo, source), "*.yaml").Select(Path.GetFileName).Order().ToList();
            var actual = Directory.GetFiles(Path.Combine(Tools.Repo, copy), "*.yaml").Select(Path.GetFileName).Order().ToList();
            Assert.Equal(expected, actual);
            foreach (var f in expected)
            {
                Assert.True(Read(source, f!) == Read(copy, f!), $"{copy}/{f} differs from {source}/{f}: run `make manifests` and commit the result");
            }
        }
    }

    [Fact]
    public async Task DistInstallYaml_IsTheChartRenderedWithItsDefaults()
    {
        var rendered = (await Tools.HelmAsync(helmHome, null, Tools.DistTemplateArgs)).EnsureSuccess("helm template").Stdout;
        var dist = Read("dist", "install.yaml");
        var body = string.Join('\n', dist.Split('\n').SkipWhile(l => l.StartsWith('#') && !l.StartsWith("# Source", StringComparison.Ordinal)));
        Assert.True(body == rendered, "dist/install.yaml differs from the chart rendered with its defaults: run `make manifests` and commit the result");
    }

    [Fact]
    public async Task ChartRbac_IsConfigRbac()
    {
        // The rules of every role, the bindings' roles and the workspace roles' labels, as `make install` applies them.
        var chart = ManifestObject.Parse(await Tools.RenderAsync(helmHome)).ToDictionary(o => $"{o.Kind}/{o.Name}");
        var config = ManifestObject.Parse(Read("config", "rbac", "operator.yaml") + "\n---\n" + Read("config", "rbac", "workspace-roles.yaml"))
            .Where(o => o.Kind is "ClusterRole" or "Role" or "ClusterRoleBinding" or "RoleBinding").ToList();
        Assert.Equal(9, config.Count);
        Assert.Equal(config.Select(o => $"{o.Kind}/{o.Name}").Order(), chart.Keys.Where(k => k.Split('/')[0] is "ClusterRole" or "Role" or "ClusterRoleBinding" or "RoleBinding").Order());
        foreach (var want in config)
        {
            var got = chart[$"{want.Kind}/{want.Name}"];
            Assert.Equal(want.Namespace, got.Namespace);
            JsonNode? Json(ManifestObject o) => o.Kind switch
            {
                "ClusterRole" => KubernetesJson.Serialize(o.As<V1ClusterRole>().Rules),
                "Role" => KubernetesJson.Serialize(o.As<V1Role>().Rules),
                "ClusterRoleBinding" => KubernetesJson.Serialize(new { o.As<V1ClusterRoleBinding>().RoleRef, o.As<V1ClusterRoleBinding>().Subjects }),
                _ => KubernetesJson.Serialize(new { o.As<V1RoleBinding>().RoleRef, o.As<V1RoleBinding>().Subjects }),
            } is { } s ? JsonNode.Parse(s) : null;
            Assert.True(JsonNode.DeepEquals(Json(want), Json(got)), $"{want.Kind} {want.Name}: the chart's differs from config/rbac\nconfig: {Json(want)}\nchart:  {Json(got)}");
            var wantLabels = want.As<V1ClusterRole>().Metadata.Labels ?? new Dictionary<string, string>();
            var gotLabels = got.As<V1ClusterRole>().Metadata.Labels ?? new Dictionary<string, string>();
            Assert.All(wantLabels, l => Assert.Equal(l.Value, gotLabels.TryGetValue(l.Key, out var v) ? v : null));
        }
    }

    [Fact]
    public async Task ChartWebhookConfigurations_AreWhatTheOperatorWrites()
    {
        // The operator rewrites them whenever they differ (and injects the CA): a chart that disagreed
        // would fight it on every upgrade. Compared without the CA bundle, for the Service and a URL.
        foreach (var url in new[] { "", "https://127.0.0.1:9443" })
        {
            var chart = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--set", $"webhook.url={url}"));
            var options = new WebhookOptions { Url = url.Length == 0 ? null : url };
            JsonNode Webhooks(object config)
            {
                var json = JsonNode.Parse(KubernetesJson.Serialize(config))!["webhooks"]!.AsArray();
                foreach (var w in json) w!["clientConfig"]!.AsObject().Remove("caBundle");
                return json;
            }

            var pairs = new (object Operator, object Chart)[]
            {
                (WebhookConfigurations.MutatingConfiguration(options, ""), chart.Single(o => o.Kind == "MutatingWebhookConfiguration").As<V1MutatingWebhookConfiguration>()),
                (WebhookConfigurations.ValidatingConfiguration(options, ""), chart.Single(o => o.Kind == "ValidatingWebhookConfiguration").As<V1ValidatingWebhookConfiguration>()),
            };
            foreach (var (op, ch) in pairs)
            {
                Assert.True(JsonNode.DeepEquals(Webhooks(op), Webhooks(ch)), $"url '{url}': chart {Webhooks(ch)}\noperator {Webhooks(op)}");
            }

            Assert.Equal(WebhookConfigurations.MutatingConfiguration(options, "").Metadata.Name, chart.Single(o => o.Kind == "MutatingWebhookConfiguration").Name);
            Assert.Equal(WebhookConfigurations.ValidatingConfiguration(options, "").Metadata.Name, chart.Single(o => o.Kind == "ValidatingWebhookConfiguration").Name);
        }
    }

    [Fact]
    public async Task ChartNetworkPolicy_IsConfigNetwork()
    {
        var want = ManifestObject.Parse(Read("config", "network", "operator-networkpolicy.yaml")).Single().As<V1NetworkPolicy>();
        var chart = ManifestObject.Parse(await Tools.RenderAsync(helmHome));
        var got = chart.Single(o => o.Kind == "NetworkPolicy").As<V1NetworkPolicy>();
        Assert.Equal(KubernetesJson.Serialize(want.Spec), KubernetesJson.Serialize(got.Spec));
        // It selects the operator's pods.
        var pods = chart.Single(o => o.Kind == "Deployment").As<V1Deployment>().Spec.Template.Metadata.Labels;
        Assert.All(got.Spec.PodSelector.MatchLabels, l => Assert.Equal(l.Value, pods[l.Key]));
    }

    [Fact]
    public async Task ChartDeployment_IsHardenedAndTakesSecretsOnlyByReference()
    {
        var chart = ManifestObject.Parse(await Tools.RenderAsync(helmHome,
            "--set", "regions.eu.database.secretName=db", "--set", "regions.eu.database.key=eu",
            "--set", "regions.us.database.secretName=db-us", "--set", "regions.us.database.key=conn"));
        var deployment = chart.Single(o => o.Kind == "Deployment").As<V1Deployment>();
        var pod = deployment.Spec.Template.Spec;
        var c = Assert.Single(pod.Containers);
        Assert.Equal(2, deployment.Spec.Replicas);
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.True(c.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(c.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], c.SecurityContext.Capabilities.Drop);
        Assert.NotNull(pod.Affinity.PodAntiAffinity);
        Assert.NotNull(c.Resources.Requests);
        Assert.Equal(("/healthz", "health"), (c.LivenessProbe.HttpGet.Path, c.LivenessProbe.HttpGet.Port.Value));
        Assert.Equal(("/readyz", "health"), (c.ReadinessProbe.HttpGet.Path, c.ReadinessProbe.HttpGet.Port.Value));
        Assert.Equal(8081, c.Ports.Single(p => p.Name == "health").ContainerPort);
        Assert.Contains(chart, o => o.Kind == "PodDisruptionBudget");
        Assert.Contains(chart, o => o.Kind == "Service" && o.Name == "controlplane-webhook");
        Assert.Contains(chart, o => o.Kind == "Service" && o.Name == "controlplane-metrics");

        var secretRefs = new Dictionary<string, (string Name, string Key)>
        {
            ["ControlPlane__SystemDatabase"] = ("controlplane-database", "system"),
            ["ControlPlane__KeyEncryptionKey"] = ("controlplane-kek", "key"),
            ["ControlPlane__Regions__eu__Database"] = ("db", "eu"),
            ["ControlPlane__Regions__us__Database"] = ("db-us", "conn"),
        };
        foreach (var (name, (secret, key)) in secretRefs)
        {
            var env = c.Env.Single(e => e.Name == name);
            Assert.Null(env.Value);
            Assert.Equal((secret, key), (env.ValueFrom.SecretKeyRef.Name, env.ValueFrom.SecretKeyRef.Key));
        }

        // No value carries a secret inline: the schema refuses one, and refuses smuggling it through extraEnv.
        var inline = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", "systemDatabase.connectionString=Host=db;Password=p");
        Assert.NotEqual(0, inline.ExitCode);
        Assert.Contains("systemDatabase", inline.Stderr);
        var smuggled = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", "extraEnv[0].name=ControlPlane__KeyEncryptionKey", "--set", "extraEnv[0].value=abc");
        Assert.NotEqual(0, smuggled.ExitCode);
        Assert.Contains("extraEnv", smuggled.Stderr);
    }

    [Fact]
    public async Task ChartMonitoring_IsOffByDefaultAndRendersWithValues()
    {
        var defaults = ManifestObject.Parse(await Tools.RenderAsync(helmHome));
        Assert.DoesNotContain(defaults, o => o.Kind is "ServiceMonitor" or "PrometheusRule");
        var on = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
            "--set", "metrics.prometheusRule.webhookLatencyP99Seconds=2"));
        var monitor = on.Single(o => o.Kind == "ServiceMonitor");
        Assert.Contains("port: metrics", monitor.Yaml);
        var rule = on.Single(o => o.Kind == "PrometheusRule").Yaml;
        foreach (var alert in new[] { "ControlPlaneOperatorDown", "ControlPlaneReconcileErrors", "ControlPlaneWebhookLatencyHigh", "ControlPlaneBackupOverdue" })
        {
            Assert.Contains($"alert: {alert}", rule);
        }

        Assert.Contains("controller_runtime_reconcile_errors_total", rule);
        Assert.Contains("controlplane_webhook_request_duration_seconds_bucket", rule);
        Assert.Contains("> 2", rule);
        // The metrics Service the ServiceMonitor selects.
        var service = on.Single(o => o.Kind == "Service" && o.Name == "controlplane-metrics").As<V1Service>();
        Assert.Equal("metrics", service.Metadata.Labels["app.kubernetes.io/component"]);
    }

    [Fact]
    public async Task InstallControlPlane_TakesTheDebianMirrorFromTheMachinesAptSources()
    {
        // A fake /etc/apt: a one-line security entry first, a disabled deb822 stanza, then the archive in a
        // deb822 stanza with two URIs (continuation line) and a comment; a file apt ignores.
        var etc = Path.Combine(helmHome, "apt");
        Directory.CreateDirectory(Path.Combine(etc, "sources.list.d"));
        const string archive = "http://archive.mirror.invalid/debian";
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list"), """
            # deb http://commented.invalid/debian bookworm main
            deb [arch=amd64 signed-by=/k.gpg] http://security.mirror.invalid/debian-security bookworm-security main
            """);
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list.d", "debian.sources"), $"""
            Types: deb
            URIs: http://disabled.invalid/debian
            Suites: bookworm
            Enabled: no

            Types: deb deb-src
            # http://comment.invalid/debian
            URIs: {archive}/
             http://second.invalid/debian
            Suites: bookworm bookworm-updates
            Components: main
            """);
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list.d", "other.list.disabled"), "deb http://ignored.invalid/debian bookworm main\n");
        var osRelease = Path.Combine(helmHome, "os-release");
        await File.WriteAllTextAsync(osRelease, "VERSION_CODENAME=bookworm\n");
        async Task<ToolResult> Mirror(Dictionary<string, string>? extra = null) => await Tools.RunAsync("bash", ["hack/install-control-plane.sh", "--print-mirror"],
            new Dictionary<string, string>(extra ?? []) { ["APT_ETC"] = etc, ["OS_RELEASE"] = osRelease, ["DEBIAN_MIRROR"] = extra?.GetValueOrDefault("DEBIAN_MIRROR") ?? "" });

        Assert.Equal(archive, (await Mirror()).EnsureSuccess("--print-mirror").Stdout.Trim());
        Assert.Equal("http://override.invalid/debian", (await Mirror(new() { ["DEBIAN_MIRROR"] = "http://override.invalid/debian" })).Stdout.Trim());

        // One-line format only, no codename known: the first plain suite.
        File.Delete(Path.Combine(etc, "sources.list.d", "debian.sources"));
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list.d", "main.list"), "deb http://oneline.invalid/debian/ trixie main contrib\n");
        await File.WriteAllTextAsync(osRelease, "ID=debian\n");
        Assert.Equal("http://oneline.invalid/debian", (await Mirror()).EnsureSuccess("--print-mirror").Stdout.Trim());

        // Nothing usable: a clear error, not a guessed mirror.
        File.Delete(Path.Combine(etc, "sources.list.d", "main.list"));
        File.Delete(Path.Combine(etc, "sources.list"));
        var none = await Mirror();
        Assert.NotEqual(0, none.ExitCode);
        Assert.Contains("DEBIAN_MIRROR", none.Stderr);
    }

    [Fact]
    public async Task Repository_NamesNoPackageMirror()
    {
        var files = (await Tools.RunAsync("git", ["ls-files"])).EnsureSuccess("git ls-files").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var mirror = new Regex(@"[a-z]+://[^\s""'/]+/(debian|debian-security|ubuntu)(/|\s|$)", RegexOptions.Multiline);
        var hits = files.Where(f => File.Exists(Path.Combine(Tools.Repo, f)))
            .SelectMany(f => mirror.Matches(File.ReadAllText(Path.Combine(Tools.Repo, f))).Select(m => $"{f}: {m.Value.Trim()}"))
            .Where(h => !h.Contains(".invalid/", StringComparison.Ordinal)).ToList();
        Assert.Empty(hits);
    }
}
