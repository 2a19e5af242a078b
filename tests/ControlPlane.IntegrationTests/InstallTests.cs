using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Admission;
using ControlPlane.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using Xunit;
using YamlDotNet.Serialization;
using k8s.Models;
using k8s;

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

    /// <summary>What `make manifests` renders into dist/install.yaml (Kubernetes 1.21 and later).</summary>
    public static readonly string[] DistTemplateArgs = ["template", "controlplane", Chart, "--namespace", "controlplane-system", "--set", "createNamespace=true"];

    /// <summary>What `make manifests` renders into dist/kubernetes-1.20/install.yaml.</summary>
    public static readonly string[] Dist120TemplateArgs = [.. DistTemplateArgs, "--kube-version", "1.20.0"];

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
public sealed class ChartTests : IDisposable
{
    readonly string helmHome = Path.Combine(Path.GetTempPath(), "controlplane-helm-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(helmHome)) Directory.Delete(helmHome, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    static string Read(params string[] path) => File.ReadAllText(Path.Combine([Tools.Repo, .. path]));

    [Fact]
    public async Task HelmLint_IsClean()
    {
        var lint = await Tools.HelmAsync(helmHome, null, "lint", Tools.Chart, "--strict");
        Assert.True(lint.ExitCode == 0, lint.Stdout + lint.Stderr);
        // (The ServiceMonitor, PrometheusRule and cert-manager objects need their CRDs, which lint cannot be
        // told about: ChartValuesTests renders them with --api-versions.)
        var withEverything = await Tools.HelmAsync(helmHome, null, "lint", Tools.Chart, "--strict",
            "--set", "regions.eu.database.secretName=db", "--set", "regions.eu.database.key=eu", "--set", "webhook.clientCA.configMapName=ca");
        Assert.True(withEverything.ExitCode == 0, withEverything.Stdout + withEverything.Stderr);
    }

    [Fact]
    public void ChartCopies_AreTheGeneratedSources()
    {
        // charts/controlplane/files/crds and files/rbac are copies `make manifests` makes of crds/ and config/rbac.
        foreach (var (source, copy) in new[] { ("crds", "charts/controlplane/files/crds"), ("config/rbac", "charts/controlplane/files/rbac") })
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
        foreach (var (file, args) in new[] { ("dist/install.yaml", Tools.DistTemplateArgs), ("dist/kubernetes-1.20/install.yaml", Tools.Dist120TemplateArgs) })
        {
            var rendered = (await Tools.HelmAsync(helmHome, null, args)).EnsureSuccess("helm template").Stdout;
            var dist = Read(file);
            var body = string.Join('\n', dist.Split('\n').SkipWhile(l => l.StartsWith('#') && !l.StartsWith("# Source", StringComparison.Ordinal)));
            Assert.True(body == rendered, $"{file} differs from the chart rendered with its defaults: run `make manifests` and commit the result");
        }

        // The two differ only in the PodDisruptionBudget's API: policy/v1 (1.21 on; v1beta1 is gone from 1.25),
        // policy/v1beta1 (1.20 has no v1). The spec is the same in both versions.
        var current = ManifestObject.Parse(Read("dist", "install.yaml"));
        var old = ManifestObject.Parse(Read("dist", "kubernetes-1.20", "install.yaml"));
        Assert.Equal(current.Select(o => o.Id), old.Select(o => o.Id));
        foreach (var (c, o) in current.Zip(old))
        {
            if (c.Kind == "PodDisruptionBudget")
            {
                Assert.Equal(("policy/v1", "policy/v1beta1"), (c.ApiVersion, o.ApiVersion));
                Assert.Equal(KubernetesJson.Serialize(c.As<V1PodDisruptionBudget>().Spec), KubernetesJson.Serialize(o.As<V1PodDisruptionBudget>().Spec));
            }
            else
            {
                Assert.True(c.Yaml == o.Yaml, $"{c.Id} differs between dist/install.yaml and dist/kubernetes-1.20/install.yaml");
            }
        }

        // The chart reads what the cluster serves (helm install, Argo CD's --api-versions), kind-level entries included.
        foreach (var (apis, want) in new[] { ("policy/v1/PodDisruptionBudget", "policy/v1"), ("policy/v1beta1/PodDisruptionBudget", "policy/v1beta1") })
        {
            var pdb = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--api-versions", apis, "--kube-version", apis.StartsWith("policy/v1/", StringComparison.Ordinal) ? "1.20.0" : "1.32.0"))
                .Single(o => o.Kind == "PodDisruptionBudget");
            Assert.Equal(want, pdb.ApiVersion);
        }
    }

    [Fact]
    public async Task ChartRbac_IsConfigRbac()
    {
        // The rules of every role, the bindings' roles and the workspace roles' labels, as `make install` applies them.
        var chart = ManifestObject.Parse(await Tools.RenderAsync(helmHome)).ToDictionary(o => $"{o.Kind}/{o.Name}");
        var config = ManifestObject.Parse(Read("config", "rbac", "operator.yaml") + "\n---\n" + Read("config", "rbac", "workspace-roles.yaml"))
            .Where(o => o.Kind is "ClusterRole" or "Role" or "ClusterRoleBinding" or "RoleBinding").ToList();
        Assert.Equal(14, config.Count); // the operator's roles and bindings, and the six workspace roles
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

        // Regions without values (dist/install.yaml, Kustomize): from one optional Secret, by reference.
        var envFrom = Assert.Single(c.EnvFrom);
        Assert.Equal(("controlplane-regions", true), (envFrom.SecretRef.Name, envFrom.SecretRef.Optional == true));

        // No value carries a secret inline: the schema refuses one, and refuses smuggling it through extraEnv.
        var inline = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", "systemDatabase.connectionString=Host=db;Password=p");
        Assert.NotEqual(0, inline.ExitCode);
        Assert.Contains("systemDatabase", inline.Stderr);
        var smuggled = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", "extraEnv[0].name=ControlPlane__KeyEncryptionKey", "--set", "extraEnv[0].value=abc");
        Assert.NotEqual(0, smuggled.ExitCode);
        Assert.Contains("extraEnv", smuggled.Stderr);
    }

    [Fact]
    public async Task ChartBackupValues_BindToTheOperatorsOptions_AndTheStorageCredentialsStayASecretName()
    {
        var chart = ManifestObject.Parse(await Tools.RenderAsync(helmHome,
            "--set", "regions.eu.database.secretName=db", "--set", "regions.eu.database.key=eu",
            "--set", "regions.eu.backupStorage.endpoint=https://s3.example.com", "--set", "regions.eu.backupStorage.bucket=backups-eu",
            "--set", "regions.eu.backupStorage.prefix=cp", "--set", "regions.eu.backupStorage.credentialsSecret=backup-eu",
            "--set", "backup.maxConcurrent=3", "--set", "backup.deleteGrace=2.00:00:00", "--set", "backup.tenantStorageEndpoints={https://s3.tenant.example.com/}"));
        var env = chart.Single(o => o.Kind == "Deployment").As<V1Deployment>().Spec.Template.Spec.Containers[0].Env
            .Where(e => e.Value is not null).ToDictionary(e => e.Name.Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
        var options = new ControlPlane.Operator.Configuration.ControlPlaneOptions();
        new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(env).Build()
            .GetSection(ControlPlane.Operator.Configuration.ControlPlaneOptions.Section).Bind(options);
        var storage = options.Regions["eu"].BackupStorage!;
        Assert.Equal(("https://s3.example.com", "backups-eu", "cp", "backup-eu"), (storage.Endpoint, storage.Bucket, storage.Prefix, storage.CredentialsSecret));
        Assert.Equal((3, false, TimeSpan.FromDays(2)), (options.Backup.MaxConcurrent, options.Backup.AllowTenantStorage, options.Backup.DeleteGrace));
        Assert.Equal(["https://s3.tenant.example.com/"], options.Backup.TenantStorageEndpoints);

        // Defaults, and a storage without its credentials Secret refused by name.
        var defaults = ManifestObject.Parse(await Tools.RenderAsync(helmHome)).Single(o => o.Kind == "Deployment").As<V1Deployment>().Spec.Template.Spec.Containers[0].Env;
        Assert.Equal("7.00:00:00", defaults.Single(e => e.Name == "ControlPlane__Backup__DeleteGrace").Value);
        var missing = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", "regions.eu.database.secretName=db", "--set", "regions.eu.database.key=eu",
            "--set", "regions.eu.backupStorage.endpoint=https://s3.example.com", "--set", "regions.eu.backupStorage.bucket=backups-eu");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("credentialsSecret", missing.Stderr);
    }

    [Fact]
    public async Task ChartMonitoring_IsOffByDefaultAndRendersWithValues()
    {
        var defaults = ManifestObject.Parse(await Tools.RenderAsync(helmHome));
        Assert.DoesNotContain(defaults, o => o.Kind is "ServiceMonitor" or "PrometheusRule");
        // Without the Prometheus Operator's CRDs the chart says so instead of failing at apply time.
        foreach (var value in new[] { "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true" })
        {
            var refused = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", value);
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("the cluster has no monitoring.coreos.com/v1", refused.Stderr);
        }

        var on = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
            "--set", "metrics.prometheusRule.webhookLatencyP99Seconds=5",
            "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"));
        var monitor = on.Single(o => o.Kind == "ServiceMonitor");
        Assert.Contains("port: metrics", monitor.Yaml);
        var rule = on.Single(o => o.Kind == "PrometheusRule").Yaml;
        foreach (var alert in new[] { "ControlPlaneOperatorDown", "ControlPlaneReconcileErrors", "ControlPlaneWebhookLatencyBudgetBurn", "ControlPlaneBackupOverdue" })
        {
            Assert.Contains($"alert: {alert}", rule);
        }

        Assert.Contains("controller_runtime_reconcile_errors_total", rule);
        Assert.Contains("controlplane_webhook_request_duration_seconds_bucket", rule);
        Assert.Contains("le=~`5(\\.0)?`", rule); // the latency SLO threshold, a bucket boundary
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
        const string archive = "http://archive.mirror.invalid/pkgs";
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list"), """
            # deb http://commented.invalid/pkgs bookworm main
            deb [arch=amd64 signed-by=/k.gpg] http://security.mirror.invalid/pkgs-security bookworm-security main
            """);
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list.d", "debian.sources"), $"""
            Types: deb
            URIs: http://disabled.invalid/pkgs
            Suites: bookworm
            Enabled: no

            Types: deb deb-src
            # http://comment.invalid/pkgs
            URIs: {archive}/
             http://second.invalid/pkgs
            Suites: bookworm bookworm-updates
            Components: main
            """);
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list.d", "other.list.disabled"), "deb http://ignored.invalid/pkgs bookworm main\n");
        var osRelease = Path.Combine(helmHome, "os-release");
        await File.WriteAllTextAsync(osRelease, "VERSION_CODENAME=bookworm\n");
        async Task<ToolResult> Mirror(Dictionary<string, string>? extra = null) => await Tools.RunAsync("bash", ["hack/install-control-plane.sh", "--print-mirror"],
            new Dictionary<string, string>(extra ?? []) { ["APT_ETC"] = etc, ["OS_RELEASE"] = osRelease, ["DEBIAN_MIRROR"] = extra?.GetValueOrDefault("DEBIAN_MIRROR") ?? "" });

        Assert.Equal(archive, (await Mirror()).EnsureSuccess("--print-mirror").Stdout.Trim());
        Assert.Equal("http://override.invalid/pkgs", (await Mirror(new() { ["DEBIAN_MIRROR"] = "http://override.invalid/pkgs" })).Stdout.Trim());

        // One-line format only, no codename known: the first plain suite.
        File.Delete(Path.Combine(etc, "sources.list.d", "debian.sources"));
        await File.WriteAllTextAsync(Path.Combine(etc, "sources.list.d", "main.list"), "deb http://oneline.invalid/pkgs/ trixie main contrib\n");
        await File.WriteAllTextAsync(osRelease, "ID=debian\n");
        Assert.Equal("http://oneline.invalid/pkgs", (await Mirror()).EnsureSuccess("--print-mirror").Stdout.Trim());

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

/// <summary>
/// The three install paths against a real API server: Helm (install, upgrade, uninstall), dist/install.yaml
/// and config/default. Pods cannot run here, so the operator runs out of cluster with the token of the
/// ServiceAccount the chart created, under exactly the chart's RBAC: a missing verb fails the test.
/// </summary>
[Collection(InstallCollection.Name)]
public sealed class InstallTests(InstallFixture fixture, ITestOutputHelper output)
{
    const string Ns = LocalControlPlane.OperatorNamespace;
    const string Release = "controlplane";
    LocalControlPlane Plane => fixture.Plane;

    Task<ToolResult> Helm(params string[] args) => Tools.HelmAsync(fixture.HelmHome, Plane.KubeconfigPath, args);

    Task<ToolResult> Kubectl(string? stdin, params string[] args) =>
        Tools.RunAsync("kubectl", args, new Dictionary<string, string> { ["KUBECONFIG"] = Plane.KubeconfigPath }, stdin);

    static string KubectlName(ManifestObject o)
    {
        var group = o.ApiVersion.Contains('/') ? o.ApiVersion.Split('/')[0] : "";
        return $"{o.Kind.ToLowerInvariant()}{(group.Length == 0 ? "" : "." + group)}/{o.Name}";
    }

    async Task<bool> ServerHasPolicyV1() => (await Kubectl(null, "api-versions")).EnsureSuccess("kubectl api-versions").Stdout.Split('\n').Contains("policy/v1");

    /// <summary>`kubectl apply --dry-run=server`: every object accepted, no error allowed.</summary>
    async Task<HashSet<string>> DryRunAsync(params string[] source)
    {
        var result = await Kubectl(null, ["apply", .. source, "--dry-run=server", "-o", "name"]);
        Assert.True(result.ExitCode == 0 && result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).All(l => l.StartsWith("Warning:", StringComparison.Ordinal)),
            $"kubectl apply {string.Join(' ', source)} ({result.ExitCode}): {result.Stderr}");
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).ToHashSet();
    }

    [Fact]
    public async Task DistInstallYamlAndKustomize_AreAcceptedByTheServer_WithTheChartsObjects()
    {
        await Plane.EnsureNamespaceAsync(Ns);
        // The rendering for this server's Kubernetes: dist/ and config/default from 1.21, their 1.20 variants before.
        var policyV1 = await ServerHasPolicyV1();
        var (distFile, kustomization, templateArgs) = policyV1
            ? (Path.Combine("dist", "install.yaml"), Path.Combine("config", "default"), Tools.DistTemplateArgs)
            : (Path.Combine("dist", "kubernetes-1.20", "install.yaml"), Path.Combine("config", "kubernetes-1.20"), Tools.Dist120TemplateArgs);
        output.WriteLine($"server serves policy/v1: {policyV1}: applying {distFile} and {kustomization}");
        var chart = ManifestObject.Parse((await Tools.HelmAsync(fixture.HelmHome, null, templateArgs)).EnsureSuccess("helm template").Stdout);
        var expected = chart.Select(KubectlName).ToHashSet();
        Assert.Contains(expected, n => n.StartsWith("poddisruptionbudget.policy/", StringComparison.Ordinal));

        // Client-side (kubectl apply -f) and server-side apply (as the README, Argo CD and Flux do).
        foreach (var mode in new[] { "--server-side=false", "--server-side" })
        {
            var dist = await DryRunAsync(mode, "-f", Path.Combine(Tools.Repo, distFile));
            var kustomize = await DryRunAsync(mode, "-k", Path.Combine(Tools.Repo, kustomization));
            Assert.Equal(expected.Order(), dist.Order());
            Assert.Equal(expected.Order(), kustomize.Order());
        }

        // Kustomize builds exactly dist's objects, field for field, for both Kubernetes ranges.
        foreach (var (k, d) in new[] { (Path.Combine("config", "default"), Path.Combine("dist", "install.yaml")), (Path.Combine("config", "kubernetes-1.20"), Path.Combine("dist", "kubernetes-1.20", "install.yaml")) })
        {
            var built = ManifestObject.Parse((await Kubectl(null, "kustomize", Path.Combine(Tools.Repo, k))).EnsureSuccess("kubectl kustomize").Stdout);
            var fromDist = ManifestObject.Parse(await File.ReadAllTextAsync(Path.Combine(Tools.Repo, d)));
            Assert.Equal(fromDist.Select(o => o.Id).Order(), built.Select(o => o.Id).Order());
            foreach (var o in built)
            {
                var same = fromDist.Single(x => x.Id == o.Id);
                Assert.True(o.ApiVersion == same.ApiVersion && SameYaml(same.Raw, o.Raw), $"{o.Id} differs between {k} and {d}");
            }
        }
    }

    /// <summary>Equal YAML trees; numbers by value (Kustomize writes 0.0 as 0).</summary>
    static bool SameYaml(object? a, object? b) => (a, b) switch
    {
        (IDictionary<object, object> x, IDictionary<object, object> y) => x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var v) && SameYaml(kv.Value, v)),
        (IList<object> x, IList<object> y) => x.Count == y.Count && x.Zip(y).All(p => SameYaml(p.First, p.Second)),
        (string x, string y) => x == y || (double.TryParse(x, System.Globalization.CultureInfo.InvariantCulture, out var dx)
            && double.TryParse(y, System.Globalization.CultureInfo.InvariantCulture, out var dy) && dx == dy),
        _ => Equals(a, b),
    };

    [Fact]
    public async Task Helm_InstallUpgradeUninstall_OperatorDrivesTheSamplesUnderTheChartsRbac_WithoutPerpetualDiff()
    {
        using var api = Plane.NewApi();
        await Plane.EnsureNamespaceAsync(Ns);
        // What an administrator creates before installing: the Secrets the chart refers to.
        var kek = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await CreateSecretAsync(api, "controlplane-database", new() { ["system"] = fixture.Postgres.ConnectionString(), ["eu"] = fixture.Postgres.RegionConnectionString() });
        await CreateSecretAsync(api, "controlplane-kek", new() { ["key"] = kek });

        var webhookPort = Net.FreePort();
        var url = $"https://127.0.0.1:{webhookPort}";
        (await Helm("lint", Tools.Chart, "--strict")).EnsureSuccess("helm lint");
        // CRDs another install path left (kubectl apply -f crds/, or this chart before its CRDs were
        // templates) are adopted as docs/operations.md says; Helm refuses objects it does not own.
        foreach (var existing in (await Kubectl(null, "get", "crd", "-l", "app.kubernetes.io/part-of=controlplane", "-o", "name")).EnsureSuccess("kubectl get crd").Stdout
                     .Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            (await Kubectl(null, "label", "--overwrite", existing, "app.kubernetes.io/managed-by=Helm")).EnsureSuccess("kubectl label crd");
            (await Kubectl(null, "annotate", "--overwrite", existing, $"meta.helm.sh/release-name={Release}", $"meta.helm.sh/release-namespace={Ns}")).EnsureSuccess("kubectl annotate crd");
        }

        // A platform team's own scheduling, labels and security context (a UID the platform assigns, as
        // OpenShift's restricted SCC does): they reach the Deployment the server stores.
        var values = Path.Combine(fixture.HelmHome, "platform-values.yaml");
        Directory.CreateDirectory(fixture.HelmHome);
        await File.WriteAllTextAsync(values, """
            commonLabels: {team: platform}
            podLabels: {cost-center: cc-42}
            podAnnotations: {example.com/scrape: "false"}
            nodeSelector: {kubernetes.io/os: linux}
            tolerations: [{key: dedicated, operator: Equal, value: control, effect: NoSchedule}]
            affinity:
              nodeAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                  nodeSelectorTerms: [{matchExpressions: [{key: node-role.example.com/control, operator: Exists}]}]
            podSecurityContext: {runAsNonRoot: true, runAsUser: 1000710000, fsGroup: 1000710000, seccompProfile: {type: RuntimeDefault}}
            securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: {drop: [ALL]}}
            """);
        var installed = (await Helm("install", Release, Tools.Chart, "--namespace", Ns, "--values", values, "--set", $"webhook.url={url}",
            "--set", "regions.eu.database.secretName=controlplane-database", "--set", "regions.eu.database.key=eu")).EnsureSuccess("helm install");
        // NOTES.txt: the Secrets to create and the first Tenant, in the region the values configure.
        Assert.Contains("NOTES:", installed.Stdout);
        Assert.Contains("kind: Tenant", installed.Stdout);
        Assert.Contains("region: eu", installed.Stdout);
        Assert.Contains($"rollout status deployment/controlplane-operator", installed.Stdout);
        var onServer = await api.GetAsync<V1Deployment>(new ResourceType("apps", "v1", "deployments", "Deployment", true), Ns, "controlplane-operator", CancellationToken.None);
        var podSpec = onServer.Spec.Template.Spec;
        Assert.Equal("platform", onServer.Metadata.Labels["team"]);
        Assert.Equal("cc-42", onServer.Spec.Template.Metadata.Labels["cost-center"]);
        Assert.Equal("false", onServer.Spec.Template.Metadata.Annotations["example.com/scrape"]);
        Assert.Equal("linux", podSpec.NodeSelector["kubernetes.io/os"]);
        Assert.Equal("dedicated", Assert.Single(podSpec.Tolerations).Key);
        Assert.Null(podSpec.Affinity.PodAntiAffinity);
        Assert.Equal("node-role.example.com/control", podSpec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Key);
        Assert.Equal((1000710000L, 1000710000L, true), (podSpec.SecurityContext.RunAsUser, podSpec.SecurityContext.FsGroup, podSpec.SecurityContext.RunAsNonRoot));
        Assert.True(podSpec.Containers[0].SecurityContext.ReadOnlyRootFilesystem);

        // Every rendered object is there, and the CRDs (templates/crds.yaml, from files/crds) are Established and kept on uninstall.
        var manifest = (await Helm("get", "manifest", Release, "--namespace", Ns)).EnsureSuccess("helm get manifest").Stdout;
        var objects = ManifestObject.Parse(manifest);
        var present = (await Kubectl(manifest, "get", "-f", "-", "-o", "name")).EnsureSuccess("kubectl get -f manifest").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(objects.Select(KubectlName).Order(), present.Order());
        var crdNames = objects.Where(o => o.Kind == "CustomResourceDefinition").Select(c => c.Name).ToList();
        Assert.Equal(Directory.GetFiles(Path.Combine(Tools.Repo, "crds"), "*.yaml").Length, crdNames.Count);
        Assert.All(objects.Where(o => o.Kind == "CustomResourceDefinition"), c => Assert.Contains("helm.sh/resource-policy: keep", c.Yaml));
        // The same objects as dist/install.yaml (which adds the Namespace Helm's --create-namespace makes).
        var dist = ManifestObject.Parse(await File.ReadAllTextAsync(Path.Combine(Tools.Repo, "dist", "install.yaml")));
        Assert.Equal(dist.Where(o => o.Kind is not "Namespace").Select(o => o.Id).Order(), objects.Select(o => o.Id).Order());
        foreach (var crd in crdNames)
        {
            await Net.WaitUntilAsync(async () => (await api.GetAsync<V1CustomResourceDefinition>(ResourceType.Crds, null, crd, CancellationToken.None))
                .Status?.Conditions?.Any(c => c.Type == "Established" && c.Status == "True") == true, TimeSpan.FromSeconds(30), $"CRD {crd} established");
        }

        var sa = await api.GetAsync<V1ServiceAccount>(new ResourceType("", "v1", "serviceaccounts", "ServiceAccount", true), Ns, LocalControlPlane.OperatorServiceAccount, CancellationToken.None);
        Assert.Equal("Helm", sa.Metadata.Labels["app.kubernetes.io/managed-by"]);

        // The operator as the chart's ServiceAccount (a TokenRequest for it), under the chart's RBAC only.
        var kubeconfig = await Plane.OperatorKubeconfigAsync();
        var app = await StartOperatorAsync(kubeconfig, webhookPort, kek);
        try
        {
            // It injected its CA into the chart's webhook configurations and issued its certificate into the chart's Secret.
            await Net.WaitUntilAsync(async () => (await api.GetAsync<V1ValidatingWebhookConfiguration>(WebhookConfigurations.Validating, null, "controlplane-validating", CancellationToken.None))
                .Webhooks.All(w => w.ClientConfig.CaBundle is { Length: > 0 } && w.ClientConfig.Url.StartsWith(url, StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "CA injected");

            // Admission through it: a Tenant in a region that does not exist is refused by the webhook.
            var refused = await Assert.ThrowsAsync<KubeApiException>(() => api.CreateAsync(ClusterFixture.Tenants, null,
                new Tenant { Metadata = new V1ObjectMeta { Name = "mars" }, Spec = new TenantSpec { Region = "mars", DisplayName = "Mars" } }, CancellationToken.None));
            Assert.Contains("spec.region", refused.Message);

            // samples/ as a GitOps tool applies it (server-side), driven to Ready through the operator:
            // two Tenants, three Workspaces, two of them with a database.
            var samples = Path.Combine(Tools.Repo, "samples");
            (await Kubectl(null, "apply", "--server-side", "-f", samples)).EnsureSuccess("kubectl apply --server-side -f samples/");
            foreach (var t in new[] { "acme", "globex" })
            {
                await Net.WaitUntilAsync(async () => ClusterFixture.IsReady(await api.GetAsync<Tenant>(ClusterFixture.Tenants, null, t, CancellationToken.None)),
                    TimeSpan.FromSeconds(60), $"tenant {t} Ready");
            }

            var workspaces = new[] { "acme-dev", "acme-prod", "globex-dev" };
            foreach (var w in workspaces)
            {
                Workspace? last = null;
                try
                {
                    await Net.WaitUntilAsync(async () =>
                    {
                        last = await api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, w, CancellationToken.None);
                        return last.Status?.Phase == WorkspacePhase.Ready && last.Status.ObservedGeneration == last.Metadata.Generation;
                    }, TimeSpan.FromSeconds(90), $"workspace {w} Ready");
                }
                catch (TimeoutException e)
                {
                    throw new TimeoutException($"{e.Message}: {string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? [])}");
                }
            }

            Assert.NotNull((await api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, "acme-dev", CancellationToken.None)).Status?.Database?.Name);

            // No perpetual diff under GitOps: once converged, a server-side diff of samples/ is empty and a
            // second server-side apply writes nothing (the operator owns no field the user applies).
            var runtime = app.Services.GetRequiredService<OperatorRuntime>();
            await Net.WaitUntilAsync(() => Task.FromResult(runtime.IsIdle), TimeSpan.FromSeconds(30), "operator idle");
            async Task<string> Versions() => string.Join(",", [
                .. await Task.WhenAll(new[] { "acme", "globex" }.Select(async t => (await api.GetAsync<Tenant>(ClusterFixture.Tenants, null, t, CancellationToken.None)).Metadata.ResourceVersion)),
                .. await Task.WhenAll(workspaces.Select(async w => (await api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, w, CancellationToken.None)).Metadata.ResourceVersion))]);
            var before = await Versions();
            var diff = await Kubectl(null, "diff", "--server-side", "-f", samples);
            Assert.True(diff.ExitCode == 0 && diff.Stdout.Length == 0, $"kubectl diff --server-side -f samples/ ({diff.ExitCode}):\n{diff.Stdout}{diff.Stderr}");
            (await Kubectl(null, "apply", "--server-side", "-f", samples)).EnsureSuccess("second server-side apply");
            await Net.WaitUntilAsync(() => Task.FromResult(runtime.IsIdle), TimeSpan.FromSeconds(30), "operator idle");
            Assert.Equal(before, await Versions());

            // Argo CD health and kstatus from statuses the operator wrote: Healthy, Suspended, Progressing, Degraded.
            JsonNode Json(object o) => JsonNode.Parse(KubernetesJson.Serialize(o))!;
            async Task<JsonNode> Get(ResourceType type, string name) => Json(await api.GetAsync<JsonObject>(type, null, name, CancellationToken.None));
            foreach (var (type, name) in new[] { (ClusterFixture.Tenants, "acme"), (ClusterFixture.Workspaces, "acme-dev") })
            {
                var ready = await Get(type, name);
                Assert.Equal("Healthy", (await ArgoCdHealth.EvaluateAsync(ready)).Status);
                AssertKstatusCurrent(ready);
            }

            await api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, "globex", """{"spec":{"suspended":true}}""", PatchTypes.Merge, CancellationToken.None);
            await Net.WaitUntilAsync(async () => (await api.GetAsync<Tenant>(ClusterFixture.Tenants, null, "globex", CancellationToken.None)).Status?.Phase == TenantPhase.Suspended,
                TimeSpan.FromSeconds(30), "globex Suspended");
            Assert.Equal("Suspended", (await ArgoCdHealth.EvaluateAsync(await Get(ClusterFixture.Tenants, "globex"))).Status);
            // Deleted through it too (the deletion guard, then finalizers: namespaces and databases go).
            (await Kubectl(null, "annotate", "workspaces,tenants", "--all", "controlplane.io/allow-delete=true")).EnsureSuccess("kubectl annotate");
            (await Kubectl(null, "delete", "--wait=false", "-f", Path.Combine(samples, "workspaces.yaml"))).EnsureSuccess("kubectl delete workspaces");
            foreach (var w in workspaces)
            {
                await Net.WaitUntilAsync(async () => await api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, w, CancellationToken.None) is null,
                    TimeSpan.FromSeconds(60), $"workspace {w} deleted");
            }

            // Degraded, from the operator: acme-prod's database was retained (deletionPolicy: Retain), and a
            // workspace of another tenant taking the name gets a DatabaseConflict, never the data. Progressing
            // before the operator has written anything.
            var tiny = new Tenant { Metadata = new V1ObjectMeta { Name = "tiny", Annotations = new Dictionary<string, string> { ["controlplane.io/allow-delete"] = "true" } }, Spec = new TenantSpec { Region = "eu", DisplayName = "Tiny" } };
            await api.CreateAsync(ClusterFixture.Tenants, null, tiny, CancellationToken.None);
            var taker = new Workspace { Metadata = new V1ObjectMeta { Name = "acme-prod" } };
            taker.Spec.Tenant = "tiny";
            var created = Json(await api.CreateAsync(ClusterFixture.Workspaces, null, taker, CancellationToken.None));
            Assert.Equal("Progressing", (await ArgoCdHealth.EvaluateAsync(created)).Status);
            JsonNode? conflict = null;
            await Net.WaitUntilAsync(async () =>
            {
                conflict = await Get(ClusterFixture.Workspaces, "acme-prod");
                return Json2<Workspace>(conflict).Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "False" && c.Reason != "Creating") == true;
            }, TimeSpan.FromSeconds(30), "acme-prod (tiny) not ready, with a reason");
            var degraded = await ArgoCdHealth.EvaluateAsync(conflict!);
            Assert.True(degraded.Status == "Degraded" && degraded.Message.StartsWith("RetainedDatabaseExists: DatabaseReady", StringComparison.Ordinal), $"{degraded}: {conflict!["status"]?.ToJsonString()}");
            AssertKstatusCurrent(conflict!);
            (await Kubectl(null, "delete", "--wait=false", "workspace", "acme-prod")).EnsureSuccess("kubectl delete workspace acme-prod");
            await Net.WaitUntilAsync(async () => await api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, "acme-prod", CancellationToken.None) is null,
                TimeSpan.FromSeconds(60), "workspace acme-prod (tiny) deleted");

            (await Kubectl(null, "delete", "--wait=false", "-f", Path.Combine(samples, "tenants.yaml"))).EnsureSuccess("kubectl delete tenants");
            (await Kubectl(null, "delete", "--wait=false", "tenant", "tiny")).EnsureSuccess("kubectl delete tenant tiny");
            foreach (var t in new[] { "acme", "globex", "tiny" })
            {
                await Net.WaitUntilAsync(async () => await api.TryGetAsync<Tenant>(ClusterFixture.Tenants, null, t, CancellationToken.None) is null,
                    TimeSpan.FromSeconds(60), $"tenant {t} deleted");
            }
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        // Upgrade: new values land; what the operator wrote at runtime (CA bundle, certificate) survives.
        // As docs/operations.md says: the install's values over the chart's defaults.
        (await Helm("upgrade", Release, Tools.Chart, "--namespace", Ns, "--reset-then-reuse-values", "--set", "workers=2", "--set", "replicas=3")).EnsureSuccess("helm upgrade");
        var deployment = await api.GetAsync<V1Deployment>(new ResourceType("apps", "v1", "deployments", "Deployment", true), Ns, "controlplane-operator", CancellationToken.None);
        Assert.Equal(("platform", 1000710000L), (deployment.Metadata.Labels["team"], deployment.Spec.Template.Spec.SecurityContext.RunAsUser));
        Assert.Equal(3, deployment.Spec.Replicas);
        Assert.Equal("2", deployment.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "ControlPlane__Workers").Value);
        var validating = await api.GetAsync<V1ValidatingWebhookConfiguration>(WebhookConfigurations.Validating, null, "controlplane-validating", CancellationToken.None);
        Assert.All(validating.Webhooks, w => Assert.NotEmpty(w.ClientConfig.CaBundle));
        var cert = await api.GetAsync<V1Secret>(ResourceType.Secrets, Ns, "controlplane-webhook-cert", CancellationToken.None);
        Assert.True(cert.Data?.ContainsKey("tls.crt") == true, "the operator's certificate survives helm upgrade");

        // Uninstall: nothing of the release is left, the CRDs are kept, and the API is not bricked by a
        // stale webhook configuration.
        (await Helm("uninstall", Release, "--namespace", Ns, "--wait")).EnsureSuccess("helm uninstall");
        var withoutCrds = string.Join("\n---\n", objects.Where(o => o.Kind != "CustomResourceDefinition").Select(o => o.Yaml));
        var left = (await Kubectl(withoutCrds, "get", "-f", "-", "--ignore-not-found", "-o", "name")).EnsureSuccess("kubectl get -f manifest");
        Assert.Equal("", left.Stdout.Trim());
        foreach (var kind in new[] { "clusterroles", "clusterrolebindings", "mutatingwebhookconfigurations", "validatingwebhookconfigurations" })
        {
            var leftover = (await Kubectl(null, "get", kind, "-l", "app.kubernetes.io/part-of=controlplane", "-o", "name")).EnsureSuccess($"kubectl get {kind}");
            Assert.True(leftover.Stdout.Trim().Length == 0, $"{kind} left after uninstall: {leftover.Stdout}");
        }

        var inNamespace = (await Kubectl(null, "get", "deployments,services,secrets,configmaps,serviceaccounts,roles,rolebindings,networkpolicies,poddisruptionbudgets",
            "-n", Ns, "-l", "app.kubernetes.io/part-of=controlplane", "-o", "name")).EnsureSuccess("kubectl get -n");
        Assert.True(inNamespace.Stdout.Trim().Length == 0, $"left in {Ns}: {inNamespace.Stdout}");
        foreach (var crd in crdNames)
        {
            Assert.NotNull(await api.TryGetAsync<V1CustomResourceDefinition>(ResourceType.Crds, null, crd, CancellationToken.None));
        }

        await api.CreateAsync(ClusterFixture.Tenants, null, new Tenant { Metadata = new V1ObjectMeta { Name = "after" }, Spec = new TenantSpec { Region = "eu", DisplayName = "After" } }, CancellationToken.None);
        await api.DeleteAsync(ClusterFixture.Tenants, null, "after", CancellationToken.None);
    }

    [Fact]
    public async Task Dockerfile_PublishAsItDoes_AndThePublishedOperatorStarts()
    {
        // The image cannot be built here (no Docker engine): publish exactly as the Dockerfile's build
        // stage does (its COPY lines into a clean /src, its RUN dotnet publish), then run its ENTRYPOINT.
        var dockerfile = await File.ReadAllLinesAsync(Path.Combine(Tools.Repo, "Dockerfile"));
        var work = Path.Combine(Path.GetTempPath(), "controlplane-publish-" + Guid.NewGuid().ToString("N")[..8]);
        var src = Path.Combine(work, "src");
        var outDir = Path.Combine(work, "out");
        Directory.CreateDirectory(src);
        var ignored = new[] { "bin", "obj" }; // .dockerignore
        string? publish = null;
        foreach (var line in dockerfile.SkipWhile(l => !l.StartsWith("FROM ", StringComparison.Ordinal)).Skip(1).TakeWhile(l => !l.StartsWith("FROM ", StringComparison.Ordinal)))
        {
            if (line.StartsWith("COPY ", StringComparison.Ordinal))
            {
                var parts = line[5..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var dest = Path.Combine(src, parts[^1]);
                foreach (var from in parts[..^1])
                {
                    var path = Path.Combine(Tools.Repo, from);
                    if (File.Exists(path))
                    {
                        Directory.CreateDirectory(dest);
                        File.Copy(path, Path.Combine(dest, Path.GetFileName(path)));
                        continue;
                    }

                    foreach (var file in Directory.GetFiles(path, "*", SearchOption.AllDirectories))
                    {
                        var rel = Path.GetRelativePath(path, file);
                        if (rel.Split('/').Any(ignored.Contains)) continue;
                        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dest, rel))!);
                        File.Copy(file, Path.Combine(dest, rel));
                    }
                }
            }
            else if (line.StartsWith("RUN dotnet publish ", StringComparison.Ordinal))
            {
                publish = line[4..];
            }
        }

        Assert.NotNull(publish);
        var args = publish.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(a => a == "/out" ? outDir : a).ToList();
        var info = new ProcessStartInfo(args[0]) { WorkingDirectory = src, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args.Skip(1)) info.ArgumentList.Add(a);
        using (var p = Process.Start(info)!)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, $"{publish}: {await stdout}{await stderr}");
        }

        Assert.True(File.Exists(Path.Combine(outDir, "ControlPlane.Operator.dll")));
        Assert.True(File.Exists(Path.Combine(outDir, "appsettings.json")), "appsettings.json is published next to the operator");

        // Its CRDs as `make install` applies them (not its RBAC: the Helm test owns those objects here): another
        // test of this collection deletes them (the order is not fixed), and an operator without its CRDs is rightly never ready.
        var crds = Path.Combine(Tools.Repo, "crds");
        (await Kubectl(null, "apply", "-f", crds)).EnsureSuccess("kubectl apply -f crds/");
        (await Kubectl(null, "wait", "--for", "condition=established", "--timeout=60s", "-f", crds)).EnsureSuccess("kubectl wait for the CRDs");

        // ENTRYPOINT ["dotnet", "ControlPlane.Operator.dll"], configured through env as the chart's Deployment
        // does; webhooks off (this API server's other tests own its admission configuration).
        var health = Net.FreePort();
        var run = new ProcessStartInfo("dotnet") { WorkingDirectory = outDir, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        run.ArgumentList.Add("ControlPlane.Operator.dll");
        run.Environment["ControlPlane__Kubeconfig"] = Plane.KubeconfigPath;
        run.Environment["ControlPlane__SystemDatabase"] = fixture.Postgres.ConnectionString();
        run.Environment["ControlPlane__Regions__eu__Database"] = fixture.Postgres.RegionConnectionString();
        run.Environment["ControlPlane__KeyEncryptionKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        run.Environment["ControlPlane__HealthUrls"] = $"http://127.0.0.1:{health}";
        run.Environment["ControlPlane__Webhook__Enabled"] = "false";
        run.Environment["ControlPlane__LeaderElection__LeaseName"] = "published-" + Guid.NewGuid().ToString("N")[..6];
        run.Environment["ControlPlane__LeaderElection__Namespace"] = "default";
        using var op = Process.Start(run)!;
        var log = new System.Text.StringBuilder();
        op.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        op.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        op.BeginOutputReadLine();
        op.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient();
            var seen = "nothing answered";
            try
            {
                await Net.WaitUntilAsync(async () =>
                {
                    Assert.False(op.HasExited, $"the published operator exited ({(op.HasExited ? op.ExitCode : 0)}): {log}");
                    try
                    {
                        var ready = await http.GetAsync($"http://127.0.0.1:{health}/readyz");
                        var reconciled = (await http.GetStringAsync($"http://127.0.0.1:{health}/metrics")).Contains("controller_runtime_reconcile_total", StringComparison.Ordinal);
                        seen = $"/readyz {(int)ready.StatusCode} {await ready.Content.ReadAsStringAsync()}; a reconcile counted: {reconciled}";
                        return ready.IsSuccessStatusCode && reconciled;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                }, TimeSpan.FromSeconds(120), "published operator ready");
            }
            catch (TimeoutException)
            {
                // What it said last, and its log: a start that hangs says where.
                string output;
                lock (log) output = log.ToString();
                throw new TimeoutException($"published operator not ready after 120 s ({seen}); its log:\n{output[Math.Max(0, output.Length - 6000)..]}");
            }
        }
        finally
        {
            // SIGTERM, as the kubelet stops a container: a graceful stop, exit code 0.
            Process.Start("kill", ["-TERM", op.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            await op.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        Assert.True(op.ExitCode == 0, $"exit code {op.ExitCode}: {log}");
    }

    static T Json2<T>(JsonNode node) => KubernetesJson.Deserialize<T>(node.ToJsonString());

    /// <summary>
    /// kstatus (Flux's health checks, `kubectl wait`): a status that has observed the current generation
    /// and a Ready condition of that generation, so "Ready=True" can be trusted and "False" is final.
    /// </summary>
    static void AssertKstatusCurrent(JsonNode obj)
    {
        var generation = obj["metadata"]!["generation"]!.GetValue<long>();
        var ready = obj["status"]?["conditions"]?.AsArray().SingleOrDefault(c => c?["type"]?.GetValue<string>() == "Ready");
        Assert.True(ready is not null, $"no Ready condition: {obj["status"]?.ToJsonString()}");
        Assert.Equal(generation, ready["observedGeneration"]?.GetValue<long>());
        if (obj["status"]?["observedGeneration"] is { } observed) Assert.Equal(generation, observed.GetValue<long>());
    }

    static async Task CreateSecretAsync(KubeApi api, string name, Dictionary<string, string> data)
    {
        if (await api.TryGetAsync<V1Secret>(ResourceType.Secrets, Ns, name, CancellationToken.None) is not null) return;
        await api.CreateAsync(ResourceType.Secrets, Ns, new V1Secret
        {
            ApiVersion = "v1", Kind = "Secret", Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns }, StringData = data,
        }, CancellationToken.None);
    }

    async Task<WebApplication> StartOperatorAsync(string kubeconfig, int webhookPort, string kek)
    {
        var health = Net.FreePort();
        var port = webhookPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // What the chart's Deployment sets through env (see templates/deployment.yaml), minus the pod.
        var app = ControlPlane.Operator.Program.BuildApp([], config => config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ControlPlane:Kubeconfig"] = kubeconfig,
            ["ControlPlane:SystemDatabase"] = fixture.Postgres.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = fixture.Postgres.RegionConnectionString(),
            ["ControlPlane:Regions:us:Database"] = fixture.Postgres.RegionConnectionString(),
            ["ControlPlane:KeyEncryptionKey"] = kek,
            ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{health}",
            ["ControlPlane:MaxTransientRetryDelay"] = "00:00:01",
            ["ControlPlane:LeaderElection:LeaseDuration"] = "00:00:04",
            ["ControlPlane:LeaderElection:RenewDeadline"] = "00:00:03",
            ["ControlPlane:LeaderElection:RetryPeriod"] = "00:00:00.500",
            ["ControlPlane:Webhook:BindAddress"] = "127.0.0.1",
            ["ControlPlane:Webhook:ClientCaFile"] = Plane.CaCertPath,
            ["ControlPlane:Webhook:Port"] = port,
            ["ControlPlane:Webhook:Url"] = $"https://127.0.0.1:{port}",
            ["ControlPlane:Webhook:ExtraSans:0"] = "127.0.0.1",
            ["Logging:LogLevel:Default"] = "Warning",
        }));
        await app.StartAsync();
        using var http = new HttpClient();
        await Net.WaitUntilAsync(async () => (await http.GetAsync($"http://127.0.0.1:{health}/readyz")).IsSuccessStatusCode,
            TimeSpan.FromSeconds(60), "operator ready under the chart's RBAC");
        output.WriteLine($"operator ready as {LocalControlPlane.OperatorServiceAccount}, webhook {port}");
        return app;
    }
}
