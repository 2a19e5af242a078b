using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Crds;
using Xunit;
using Xunit.Abstractions;

namespace ControlPlane.Tests;

[CollectionDefinition(Name)]
public sealed class GitOpsCollection : ICollectionFixture<GitOpsFixture>
{
    public const string Name = "gitops";
}

/// <summary>
/// An API server of its own: the tests sync the GitOps samples into it (webhook configurations with
/// failurePolicy Fail and no webhook behind them included), which no other collection's server may see.
/// </summary>
public sealed class GitOpsFixture : IAsyncLifetime
{
    readonly string root = Path.Combine(Path.GetTempPath(), "controlplane-gitops-" + Guid.NewGuid().ToString("N")[..8]);

    public LocalControlPlane Plane { get; private set; } = null!;

    public async Task InitializeAsync() => Plane = await LocalControlPlane.StartAsync(Path.Combine(root, "k8s"));

    public async Task DisposeAsync()
    {
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

/// <summary>
/// samples/gitops on a real API server: the argocd-cm sample is accepted, and deleting or pruning the sample
/// Applications the way Argo CD does leaves the CRDs and so every Tenant. Argo CD itself cannot run here (no
/// pods); its two rules are implemented as it applies them (gitops-engine): prune deletes what left Git unless
/// the live object says Prune=false (or the Application's syncOptions do); deleting an Application with the
/// resources finalizer deletes everything it manages unless the live object says Delete=false.
/// </summary>
[Collection(GitOpsCollection.Name)]
public sealed class GitOpsSampleTests(GitOpsFixture fixture, ITestOutputHelper output)
{
    const string SyncOptions = "argocd.argoproj.io/sync-options";
    const string ResourcesFinalizer = "resources-finalizer.argocd.argoproj.io";

    Task<ToolResult> Kubectl(string? stdin, params string[] args) =>
        Tools.RunAsync("kubectl", args, new Dictionary<string, string> { ["KUBECONFIG"] = fixture.Plane.KubeconfigPath }, stdin);

    static string Read(string path) => File.ReadAllText(Path.Combine(Tools.Repo, path));

    [Fact]
    public async Task ArgoCdConfigMapSample_IsAcceptedByTheApiServer_AndAWildcardKeyIsNot()
    {
        await fixture.Plane.EnsureNamespaceAsync("argocd");
        var sample = Path.Combine(Tools.Repo, ArgoCdHealth.Sample);
        var applied = await Kubectl(null, "apply", "--dry-run=server", "-f", sample);
        Assert.True(applied.ExitCode == 0, $"kubectl apply --dry-run=server -f {ArgoCdHealth.Sample}: {applied.Stderr}");
        Assert.Contains("configmap/argocd-cm", applied.Stdout);
        var serverSide = await Kubectl(null, "apply", "--server-side", "--dry-run=server", "-f", sample);
        Assert.True(serverSide.ExitCode == 0, serverSide.Stderr);

        // What the sample had before: one key for every kind, with a wildcard. The API server refuses it.
        var wildcard = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm, namespace: argocd}\ndata:\n  resource.customizations.health.controlplane.io_*: |\n    return {}\n";
        var refused = await Kubectl(wildcard, "apply", "--dry-run=server", "-f", "-");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("a valid config key", refused.Stderr);
    }

    [Fact]
    public void Crds_CarryTheKeepAnnotations_InEveryInstallPath()
    {
        // crds/ (the CRD Application's path), the chart's copies (rendered as templates), and both dist files (config/default, config/kubernetes-1.20).
        var sources = new[] { "crds", "charts/controlplane/files/crds" }
            .SelectMany(d => Directory.GetFiles(Path.Combine(Tools.Repo, d), "*.yaml").Select(f => (Source: Path.GetRelativePath(Tools.Repo, f), Text: File.ReadAllText(f))))
            .Append(("dist/install.yaml", Read("dist/install.yaml")))
            .Append(("dist/kubernetes-1.20/install.yaml", Read("dist/kubernetes-1.20/install.yaml")));
        var crds = 0;
        foreach (var (source, text) in sources)
        {
            foreach (var crd in ManifestObject.Parse(text).Where(o => o.Kind == "CustomResourceDefinition"))
            {
                crds++;
                var annotations = crd.As<k8s.Models.V1CustomResourceDefinition>().Metadata.Annotations ?? new Dictionary<string, string>();
                Assert.All(CrdGenerator.KeepAnnotations, a => Assert.True(annotations.TryGetValue(a.Key, out var v) && v == a.Value, $"{source} {crd.Name}: no {a.Key}: {a.Value}"));
            }
        }

        Assert.Equal(4 * ControlPlane.Api.V1Alpha1.ApiKinds.All.Count, crds); // every CRD in each of four sources
        Assert.Contains("Prune=false", CrdGenerator.KeepAnnotations[SyncOptions].Split(','));
        Assert.Contains("Delete=false", CrdGenerator.KeepAnnotations[SyncOptions].Split(','));
    }

    [Fact]
    public async Task Samples_SplitTheCrdsFromTheOperator_AndFluxChecksEveryCrd()
    {
        // config/operator and crds/ are config/default, split: no object lost, none in both.
        var all = ManifestObject.Parse((await Kubectl(null, "kustomize", Path.Combine(Tools.Repo, "config", "default"))).EnsureSuccess("kubectl kustomize config/default").Stdout);
        var operatorOnly = await DesiredAsync("config/operator");
        var crds = await DesiredAsync("crds");
        Assert.All(crds, o => Assert.Equal("CustomResourceDefinition", o.Kind));
        Assert.DoesNotContain(operatorOnly, o => o.Kind == "CustomResourceDefinition");
        Assert.Equal(all.Select(o => o.Id).Order(), operatorOnly.Concat(crds).Select(o => o.Id).Order());

        // Argo CD: the CRD Application prunes nothing and has no resources finalizer; the operator's points at config/operator.
        var apps = Applications();
        var crdApp = apps.Single(a => a.Path == "crds");
        Assert.False(crdApp.Cascade, "the CRD Application must not carry the resources finalizer");
        Assert.False(crdApp.AutoPrune);
        Assert.Equal(["config/operator", "crds"], apps.Select(a => a.Path).Order(StringComparer.Ordinal));

        // Flux: the same split, the CRDs never pruned, every CRD health-checked, the operator after them.
        var flux = ManifestObject.Parse(Read("samples/gitops/flux-kustomization.yaml")).Where(o => o.Kind == "Kustomization").ToList();
        var crdKs = flux.Single(k => Spec(k)["path"]!.GetValue<string>() == "./crds");
        Assert.False(IsTrue(Spec(crdKs)["prune"]));
        var checkedCrds = Spec(crdKs)["healthChecks"]!.AsArray().Where(h => h!["kind"]!.GetValue<string>() == "CustomResourceDefinition").Select(h => h!["name"]!.GetValue<string>());
        Assert.Equal(crds.Select(c => c.Name).Order(StringComparer.Ordinal), checkedCrds.Order(StringComparer.Ordinal));
        var operatorKs = flux.Single(k => Spec(k)["path"]!.GetValue<string>() == "./config/operator");
        Assert.Contains(Spec(operatorKs)["dependsOn"]!.AsArray(), d => d!["name"]!.GetValue<string>() == crdKs.Name);
        Assert.DoesNotContain(flux, k => Spec(k)["path"]!.GetValue<string>() is "./config/default" && IsTrue(Spec(k)["prune"]));
        // The tenants' own objects: wait: true health-checks every object applied, of every controlplane.io kind (kstatus), after the operator.
        var tenantsKs = flux.Single(k => k.Name == "controlplane-tenants");
        Assert.True(IsTrue(Spec(tenantsKs)["wait"]), "the tenants' Kustomization must health-check every object it applies");
        Assert.Contains(Spec(tenantsKs)["dependsOn"]!.AsArray(), d => d!["name"]!.GetValue<string>() == operatorKs.Name);
    }

    [Fact]
    public async Task DeletingOrPruningTheSampleApplications_AsArgoCdDoes_LeavesTheCrdsAndEveryTenant()
    {
        var apps = Applications();
        var served = (await Kubectl(null, "api-versions")).EnsureSuccess("kubectl api-versions").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet();

        // Sync the CRD Application, then the tenants (before the operator's webhook configurations, whose webhook never runs here), then the operator's.
        var managed = new Dictionary<SampleApplication, List<ManifestObject>>();
        foreach (var app in apps.OrderBy(a => a.Path == "crds" ? 0 : 1))
        {
            managed[app] = await SyncAsync(app, served);
            if (app.Path == "crds")
            {
                (await Kubectl(null, "wait", "--for", "condition=established", "--timeout=60s", "-f", Path.Combine(Tools.Repo, "crds"))).EnsureSuccess("CRDs established");
                (await Kubectl(null, "apply", "--server-side", "-f", Path.Combine(Tools.Repo, "samples", "tenants.yaml"))).EnsureSuccess("kubectl apply samples/tenants.yaml");
            }
        }

        var tenants = ManifestObject.Parse(Read("samples/tenants.yaml")).Where(o => o.Kind == "Tenant").Select(o => o.Name).ToList();
        Assert.NotEmpty(tenants);
        var operatorApp = apps.Single(a => a.Path == "config/operator");
        Assert.Contains(managed[operatorApp], o => o.Kind == "Deployment");

        // Git emptied (or the path moved): every automated Application prunes all it manages, as far as the rules allow.
        foreach (var app in apps) await PruneAsync(app, managed[app]);
        // Then both Applications deleted: the resources finalizer cascades to whatever is left.
        foreach (var app in apps) await DeleteApplicationAsync(app, managed[app]);

        await AssertSurvivorsAsync(tenants);
        // It did delete: the operator's objects are gone.
        Assert.Equal("", (await Kubectl(null, "get", "deployments,services", "-n", "controlplane-system", "-o", "name", "--ignore-not-found")).Stdout.Trim());
        Assert.Equal("", (await Kubectl(null, "get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-l", "app.kubernetes.io/part-of=controlplane", "-o", "name")).Stdout.Trim());
        await WaitNamespaceGoneAsync();

        // The layout before the split (one Application over config/default, pruning, with the resources
        // finalizer) no longer deletes the CRDs either: the CRDs' own annotations hold.
        var legacy = new SampleApplication("controlplane", "config/default", Cascade: true, AutoPrune: true, PruneFalse: false);
        var legacyObjects = await SyncAsync(legacy, served);
        Assert.Contains(legacyObjects, o => o.Kind == "CustomResourceDefinition");
        await PruneAsync(legacy, legacyObjects);
        await DeleteApplicationAsync(legacy, legacyObjects);
        await AssertSurvivorsAsync(tenants);
        await WaitNamespaceGoneAsync();
    }

    async Task AssertSurvivorsAsync(IReadOnlyList<string> tenants)
    {
        foreach (var crd in await DesiredAsync("crds"))
        {
            var got = await Kubectl(null, "get", "crd", crd.Name, "-o", "jsonpath={.metadata.deletionTimestamp}");
            Assert.True(got.ExitCode == 0 && got.Stdout.Trim().Length == 0, $"CRD {crd.Name} deleted: {got.Stderr}");
        }

        var live = (await Kubectl(null, "get", "tenants.controlplane.io", "-o", "name")).EnsureSuccess("kubectl get tenants").Stdout;
        Assert.All(tenants, t => Assert.Contains($"tenant.controlplane.io/{t}", live));
    }

    async Task WaitNamespaceGoneAsync() =>
        await Net.WaitUntilAsync(async () => (await Kubectl(null, "get", "namespace", "controlplane-system", "--ignore-not-found", "-o", "name")).Stdout.Trim().Length == 0,
            TimeSpan.FromSeconds(90), "namespace controlplane-system deleted");

    /// <summary>An Application of samples/gitops/argocd-application.yaml: its source path and how it deletes.</summary>
    public sealed record SampleApplication(string Name, string Path, bool Cascade, bool AutoPrune, bool PruneFalse);

    static JsonNode Spec(ManifestObject o) => Json(o.Raw)!["spec"]!;

    /// <summary>The YAML tree as JSON; scalars stay the strings YamlDotNet reads ("false", "10m").</summary>
    static JsonNode? Json(object? yaml) => yaml switch
    {
        IDictionary<object, object> map => new JsonObject(map.Select(kv => KeyValuePair.Create((string)kv.Key, Json(kv.Value)))),
        IList<object> list => new JsonArray(list.Select(Json).ToArray()),
        null => null,
        var scalar => JsonValue.Create(scalar.ToString()),
    };

    static bool IsTrue(JsonNode? node) => node?.GetValue<string>() == "true";

    static IReadOnlyList<SampleApplication> Applications() =>
        ManifestObject.Parse(Read("samples/gitops/argocd-application.yaml")).Where(o => o.Kind == "Application").Select(o =>
        {
            var raw = Json(o.Raw)!;
            var finalizers = raw["metadata"]?["finalizers"]?.AsArray().Select(f => f!.GetValue<string>()) ?? [];
            var sync = raw["spec"]?["syncPolicy"];
            var options = sync?["syncOptions"]?.AsArray().Select(s => s!.GetValue<string>()) ?? [];
            return new SampleApplication(o.Name, raw["spec"]!["source"]!["path"]!.GetValue<string>(), finalizers.Contains(ResourcesFinalizer),
                IsTrue(sync?["automated"]?["prune"]), options.Contains("Prune=false"));
        }).ToList();

    /// <summary>What Argo CD renders from a path: kustomize build where there is a kustomization, else the directory's YAML files.</summary>
    async Task<IReadOnlyList<ManifestObject>> DesiredAsync(string path)
    {
        var dir = Path.Combine(Tools.Repo, path);
        if (File.Exists(Path.Combine(dir, "kustomization.yaml")))
        {
            return ManifestObject.Parse((await Kubectl(null, "kustomize", dir)).EnsureSuccess($"kubectl kustomize {path}").Stdout);
        }

        return ManifestObject.Parse(string.Join("\n---\n", Directory.GetFiles(dir, "*.yaml").Order(StringComparer.Ordinal).Select(File.ReadAllText)));
    }

    /// <summary>Server-side apply of what the path renders (objects this API server cannot serve are left out); returns what the Application manages.</summary>
    async Task<List<ManifestObject>> SyncAsync(SampleApplication app, IReadOnlySet<string> served)
    {
        var objects = (await DesiredAsync(app.Path)).Where(o => served.Contains(o.ApiVersion)).ToList();
        var text = string.Join("\n---\n", objects.Select(o => o.Yaml));
        (await Kubectl(text, "apply", "--server-side", "--force-conflicts", "--field-manager=argocd-controller", "-f", "-")).EnsureSuccess($"sync {app.Name} ({app.Path})");
        output.WriteLine($"synced {app.Name}: {objects.Count} object(s) from {app.Path}");
        return objects;
    }

    async Task<string[]> LiveSyncOptionsAsync(ManifestObject o)
    {
        var args = new List<string> { "get", KubectlName(o), "--ignore-not-found", "-o", "json" };
        if (o.Namespace is not null) args.AddRange(["-n", o.Namespace]);
        var json = (await Kubectl(null, [.. args])).EnsureSuccess($"kubectl get {KubectlName(o)}").Stdout;
        if (json.Trim().Length == 0) return [];
        var value = JsonNode.Parse(json)?["metadata"]?["annotations"]?[SyncOptions]?.GetValue<string>() ?? "";
        return value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    async Task DeleteAsync(ManifestObject o)
    {
        var args = new List<string> { "delete", KubectlName(o), "--ignore-not-found", "--wait=false" };
        if (o.Namespace is not null) args.AddRange(["-n", o.Namespace]);
        (await Kubectl(null, [.. args])).EnsureSuccess($"kubectl delete {KubectlName(o)}");
    }

    /// <summary>Prune: everything managed that left Git, unless Prune=false on the live object or in the Application's syncOptions.</summary>
    async Task PruneAsync(SampleApplication app, IEnumerable<ManifestObject> gone)
    {
        if (!app.AutoPrune) return;
        foreach (var o in gone)
        {
            if (app.PruneFalse || (await LiveSyncOptionsAsync(o)).Contains("Prune=false")) continue;
            await DeleteAsync(o);
        }
    }

    /// <summary>Application deleted: with the resources finalizer, everything it manages, unless Delete=false on the live object.</summary>
    async Task DeleteApplicationAsync(SampleApplication app, IEnumerable<ManifestObject> objects)
    {
        if (!app.Cascade) return;
        foreach (var o in objects)
        {
            if ((await LiveSyncOptionsAsync(o)).Contains("Delete=false")) continue;
            await DeleteAsync(o);
        }
    }

    static string KubectlName(ManifestObject o)
    {
        var group = o.ApiVersion.Contains('/') ? o.ApiVersion.Split('/')[0] : "";
        return $"{o.Kind.ToLowerInvariant()}{(group.Length == 0 ? "" : "." + group)}/{o.Name}";
    }
}
