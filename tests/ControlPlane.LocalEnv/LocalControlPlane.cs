using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Operator.Crds;
using ControlPlane.Operator.Runtime;
using k8s;
using k8s.Models;

namespace ControlPlane.LocalEnv;

/// <summary>A user of the local API server: a bearer token with a name and groups.</summary>
public sealed record TestUser(string Name, string Token, IReadOnlyList<string> Groups);

/// <summary>
/// A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC, token auth) and
/// kube-controller-manager (namespace deletion, garbage collection), laid out as setup-envtest does.
/// No kubelet: pods never run. Or, with CONTROLPLANE_TEST_KUBECONFIG, an existing cluster.
/// </summary>
public sealed class LocalControlPlane : IAsyncDisposable
{
    public const string K8sVersion = "1.20.2";
    public const string InstallCommand = "make tools   # runs hack/install-control-plane.sh: etcd, kube-apiserver, kube-controller-manager, postgresql-15";

    readonly string root;
    ChildProcess? etcd;
    ChildProcess? apiserver;
    ChildProcess? controllerManager;
    IReadOnlyList<string> apiserverArgs = [];
    string assets = "";

    LocalControlPlane(string root) => this.root = root;

    public string KubeconfigPath { get; private set; } = "";
    public string Host { get; private set; } = "";
    public int EtcdPort { get; private set; }
    public bool IsLocal => apiserver is not null;
    public TestUser Admin { get; private set; } = new("admin", "", ["system:masters"]);
    public IReadOnlyDictionary<string, TestUser> Users { get; private set; } = new Dictionary<string, TestUser>();
    public string ApiServerLog => apiserver?.LogPath ?? "";

    public static string DefaultAssets =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local/share/kubebuilder-envtest/k8s", $"{K8sVersion}-linux-amd64");

    /// <summary>Where the binaries are: KUBEBUILDER_ASSETS, else the setup-envtest default folder.</summary>
    public static string? FindAssets()
    {
        foreach (var dir in new[] { Environment.GetEnvironmentVariable("KUBEBUILDER_ASSETS"), DefaultAssets })
        {
            if (!string.IsNullOrEmpty(dir) && File.Exists(Path.Combine(dir, "kube-apiserver")) && File.Exists(Path.Combine(dir, "etcd"))) return dir;
        }

        return null;
    }

    public static async Task<LocalControlPlane> StartAsync(string root, IEnumerable<string>? extraUsers = null)
    {
        Directory.CreateDirectory(root);
        var plane = new LocalControlPlane(root);
        var external = Environment.GetEnvironmentVariable("CONTROLPLANE_TEST_KUBECONFIG");
        if (!string.IsNullOrEmpty(external))
        {
            plane.KubeconfigPath = external;
            plane.Host = KubernetesClientConfiguration.BuildConfigFromConfigFile(external).Host;
            return plane;
        }

        plane.assets = FindAssets() ?? throw new InvalidOperationException(
            $"No local Kubernetes control plane binaries (looked in $KUBEBUILDER_ASSETS and {DefaultAssets}), " +
            $"no CONTROLPLANE_TEST_KUBECONFIG, and no Docker engine for Testcontainers. Install them with:\n  {InstallCommand}");
        await plane.StartLocalAsync(extraUsers ?? ["alice", "bob", "carol", "dave", "erin"]);
        return plane;
    }

    async Task StartLocalAsync(IEnumerable<string> userNames)
    {
        var certs = Certificates.Write(Path.Combine(root, "pki"));
        string NewToken() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        Admin = new TestUser("admin", NewToken(), ["system:masters"]);
        Users = userNames.ToDictionary(n => n, n => new TestUser(n + "@example.com", NewToken(), ["controlplane-test-users"]));
        var tokens = new StringBuilder();
        tokens.AppendLine($"{Admin.Token},{Admin.Name},uid-admin,\"system:masters\"");
        foreach (var u in Users.Values) tokens.AppendLine($"{u.Token},{u.Name},uid-{u.Name},\"{string.Join(',', u.Groups)}\"");
        var tokenFile = Path.Combine(root, "tokens.csv");
        await File.WriteAllTextAsync(tokenFile, tokens.ToString());

        EtcdPort = Net.FreePort();
        var peerPort = Net.FreePort();
        etcd = new ChildProcess("etcd", Path.Combine(assets, "etcd"),
        [
            "--name", "default", "--data-dir", Path.Combine(root, "etcd"),
            "--listen-client-urls", $"http://127.0.0.1:{EtcdPort}", "--advertise-client-urls", $"http://127.0.0.1:{EtcdPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{peerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peerPort}",
            "--initial-cluster", $"default=http://127.0.0.1:{peerPort}", "--quota-backend-bytes", "4294967296",
        ], Path.Combine(root, "etcd.log"));
        etcd.Start();
        using (var http = new HttpClient())
        {
            await Net.WaitUntilAsync(async () => (await http.GetAsync($"http://127.0.0.1:{EtcdPort}/health")).IsSuccessStatusCode,
                TimeSpan.FromSeconds(30), "etcd healthy");
        }

        var port = Net.FreePort();
        Host = $"https://127.0.0.1:{port}";
        apiserverArgs =
        [
            "--etcd-servers", $"http://127.0.0.1:{EtcdPort}", "--cert-dir", Path.Combine(root, "pki"),
            "--tls-cert-file", certs.ServingCert, "--tls-private-key-file", certs.ServingKey, "--client-ca-file", certs.CaCert,
            "--secure-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1", "--insecure-port", "0",
            "--authorization-mode", "RBAC", "--token-auth-file", tokenFile, "--disable-admission-plugins", "ServiceAccount",
            "--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", certs.ServiceAccountPub, "--service-account-signing-key-file", certs.ServiceAccountKey,
        ];
        apiserver = new ChildProcess("kube-apiserver", Path.Combine(assets, "kube-apiserver"), apiserverArgs, Path.Combine(root, "kube-apiserver.log"));
        await StartApiServerAsync();

        KubeconfigPath = Path.Combine(root, "kubeconfig");
        await File.WriteAllTextAsync(KubeconfigPath, Kubeconfig(Admin, certs.CaCert));
        foreach (var u in Users.Values)
        {
            await File.WriteAllTextAsync(Path.Combine(root, $"kubeconfig-{u.Name.Split('@')[0]}"), Kubeconfig(u, certs.CaCert));
        }

        if (File.Exists(Path.Combine(assets, "kube-controller-manager")))
        {
            controllerManager = new ChildProcess("kube-controller-manager", Path.Combine(assets, "kube-controller-manager"),
            [
                "--kubeconfig", KubeconfigPath, "--controllers", "namespace,garbagecollector,serviceaccount",
                "--service-account-private-key-file", certs.ServiceAccountKey, "--root-ca-file", certs.CaCert,
                "--leader-elect=false", "--port=0", "--secure-port=0", "--use-service-account-credentials=false",
            ], Path.Combine(root, "kube-controller-manager.log"));
            controllerManager.Start();
        }
    }

    string Kubeconfig(TestUser user, string caPath) => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: local
          cluster:
            server: {Host}
            certificate-authority-data: {Convert.ToBase64String(File.ReadAllBytes(caPath))}
        users:
        - name: {user.Name}
          user:
            token: {user.Token}
        contexts:
        - name: local
          context:
            cluster: local
            user: "{user.Name}"
        current-context: local
        """;

    public KubernetesClientConfiguration ClientConfig() => KubernetesClientConfiguration.BuildConfigFromConfigFile(KubeconfigPath);

    public KubernetesClientConfiguration ClientConfigFor(TestUser user)
    {
        var c = ClientConfig();
        c.AccessToken = user.Token;
        return c;
    }

    public KubeApi NewApi() => new(ClientConfig());

    public async Task StartApiServerAsync()
    {
        if (apiserver is null) throw new InvalidOperationException("the API server is not local (CONTROLPLANE_TEST_KUBECONFIG): it cannot be restarted by the tests");
        apiserver.Start();
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler);
        try
        {
            await Net.WaitUntilAsync(async () => (await http.GetAsync($"{Host}/readyz")).IsSuccessStatusCode, TimeSpan.FromSeconds(60), "kube-apiserver ready");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n--- kube-apiserver log ---\n{apiserver.Tail()}");
        }
    }

    public Task StopApiServerAsync() =>
        apiserver?.StopAsync() ?? throw new InvalidOperationException("the API server is not local: it cannot be stopped by the tests");

    /// <summary>Compacts etcd at its current revision (what `etcdctl compact` does), through etcd's HTTP gateway.</summary>
    public async Task<long> CompactEtcdAsync(string? putKeyFirst = null)
    {
        if (etcd is null) throw new InvalidOperationException("etcd is not local: it cannot be compacted by the tests");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{EtcdPort}") };
        if (putKeyFirst is not null)
        {
            await http.PostAsJsonAsync("/v3/kv/put", new { key = B64(putKeyFirst), value = B64("x") });
        }

        var range = await (await http.PostAsJsonAsync("/v3/kv/range", new { key = B64("/") })).Content.ReadFromJsonAsync<JsonObject>();
        var revision = long.Parse(range!["header"]!["revision"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var response = await http.PostAsJsonAsync("/v3/kv/compaction", new { revision, physical = true });
        response.EnsureSuccessStatusCode();
        return revision;
    }

    /// <summary>Deletes a key straight from etcd, behind the API server's back (a "vanished" object).</summary>
    public async Task DeleteEtcdKeyAsync(string key)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{EtcdPort}") };
        (await http.PostAsJsonAsync("/v3/kv/deleterange", new { key = B64(key) })).EnsureSuccessStatusCode();
    }

    static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    /// <summary>Installs every generated CRD (as `make install` does) and waits until each is Established.</summary>
    public async Task InstallCrdsAsync(CancellationToken ct = default)
    {
        using var api = NewApi();
        foreach (var crd in CrdGenerator.GenerateAll())
        {
            var existing = await api.TryGetAsync<V1CustomResourceDefinition>(ResourceType.Crds, null, crd.Metadata.Name, ct);
            if (existing is null)
            {
                await api.CreateAsync(ResourceType.Crds, null, crd, ct);
            }
            else
            {
                crd.Metadata.ResourceVersion = existing.Metadata.ResourceVersion;
                await api.ReplaceAsync(ResourceType.Crds, null, crd.Metadata.Name, crd, ct);
            }
        }

        foreach (var crd in CrdGenerator.GenerateAll())
        {
            await Net.WaitUntilAsync(async () =>
            {
                var c = await api.GetAsync<V1CustomResourceDefinition>(ResourceType.Crds, null, crd.Metadata.Name, ct);
                return c.Status?.Conditions?.Any(x => x.Type == "Established" && x.Status == "True") == true;
            }, TimeSpan.FromSeconds(30), $"CRD {crd.Metadata.Name} established", ct);
        }
    }

    /// <summary>Installs the workspace ClusterRoles (config/rbac/workspace-roles.yaml, from the same C# source).</summary>
    public async Task InstallClusterRolesAsync(CancellationToken ct = default)
    {
        using var api = NewApi();
        var type = new ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false);
        foreach (var role in ControlPlane.Operator.Controllers.WorkspaceRoles.ClusterRoles())
        {
            var existing = await api.TryGetAsync<V1ClusterRole>(type, null, role.Metadata.Name, ct);
            if (existing is null)
            {
                await api.CreateAsync(type, null, role, ct);
            }
            else
            {
                role.Metadata.ResourceVersion = existing.Metadata.ResourceVersion;
                await api.ReplaceAsync(type, null, role.Metadata.Name, role, ct);
            }
        }
    }

    public async Task EnsureNamespaceAsync(string name, CancellationToken ct = default)
    {
        using var api = NewApi();
        if (await api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name, ct) is null)
        {
            await api.CreateAsync(ResourceType.Namespaces, null, new V1Namespace { Metadata = new V1ObjectMeta { Name = name } }, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (controllerManager is not null) await controllerManager.DisposeAsync();
        if (apiserver is not null) await apiserver.DisposeAsync();
        if (etcd is not null) await etcd.DisposeAsync();
    }
}
