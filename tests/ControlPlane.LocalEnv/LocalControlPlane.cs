using System.Text.Json.Nodes;
using System.Text;
using ControlPlane.Operator.Crds;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.LocalEnv;

/// <summary>A user of the local API server: a bearer token with a name and groups.</summary>
public sealed record TestUser(string Name, string Token, IReadOnlyList<string> Groups);

/// <summary>
/// A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC, token auth) and
/// kube-controller-manager (namespace deletion, garbage collection, Deployments and ReplicaSets), laid
/// out as setup-envtest does. No kubelet and no scheduler: pods never run (<see cref="NodeStandIn"/>
/// binds them and reports their status). Or, with CONTROLPLANE_TEST_KUBECONFIG, an existing cluster.
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
    string caCertPath = "";

    LocalControlPlane(string root) => this.root = root;

    public string KubeconfigPath { get; private set; } = "";
    public string Host { get; private set; } = "";
    public int EtcdPort { get; private set; }
    public bool IsLocal => apiserver is not null;
    public TestUser Admin { get; private set; } = new("admin", "", ["system:masters"]);
    public IReadOnlyDictionary<string, TestUser> Users { get; private set; } = new Dictionary<string, TestUser>();
    public string ApiServerLog => apiserver?.LogPath ?? "";

    /// <summary>The CA that signs the API server's certificates, including its client certificate towards webhooks.</summary>
    public string CaCertPath => caCertPath;

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

    /// <summary>
    /// The users of the tests: name@example.com, all in the group controlplane-test-users, plus the
    /// self-service users (olga, wade, mona, in the group self-service-users only), whom no cluster-wide
    /// role covers: what they may do comes from a tenant's owners or a workspace's members alone.
    /// `make up` passes the users the samples name instead (alice@acme.io, ...), each with its own groups.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string[]> TestUsers = new[] { "alice", "bob", "carol", "dave", "erin" }
        .ToDictionary(n => n + "@example.com", _ => new[] { "controlplane-test-users" })
        .Concat(new[] { "olga", "wade", "mona" }.ToDictionary(n => n + "@example.com", _ => new[] { "self-service-users" }))
        .ToDictionary(kv => kv.Key, kv => kv.Value);

    public static async Task<LocalControlPlane> StartAsync(string root, IReadOnlyDictionary<string, string[]>? users = null)
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
        await plane.StartLocalAsync(users ?? TestUsers);
        return plane;
    }

    async Task StartLocalAsync(IReadOnlyDictionary<string, string[]> users)
    {
        var certs = Certificates.Write(Path.Combine(root, "pki"));
        caCertPath = certs.CaCert;
        string NewToken() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        Admin = new TestUser("admin", NewToken(), ["system:masters"]);
        // Keyed by the name's local part (Users["bob"]); kubeconfig-bob is that user's kubeconfig.
        Users = users.ToDictionary(u => u.Key.Split('@')[0], u => new TestUser(u.Key, NewToken(), u.Value));
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

        // Admission webhooks are called with a client certificate, so a webhook can answer the API server only.
        var webhookKubeconfig = Path.Combine(root, "webhook-client.kubeconfig");
        await File.WriteAllTextAsync(webhookKubeconfig, $"""
            apiVersion: v1
            kind: Config
            users:
            - name: "*"
              user:
                client-certificate: {certs.WebhookClientCert}
                client-key: {certs.WebhookClientKey}
            """);
        var admissionConfig = Path.Combine(root, "admission.yaml");
        await File.WriteAllTextAsync(admissionConfig, $"""
            apiVersion: apiserver.config.k8s.io/v1
            kind: AdmissionConfiguration
            plugins:
            - name: ValidatingAdmissionWebhook
              configuration:
                apiVersion: apiserver.config.k8s.io/v1
                kind: WebhookAdmissionConfiguration
                kubeConfigFile: {webhookKubeconfig}
            - name: MutatingAdmissionWebhook
              configuration:
                apiVersion: apiserver.config.k8s.io/v1
                kind: WebhookAdmissionConfiguration
                kubeConfigFile: {webhookKubeconfig}
            """);

        var port = Net.FreePort();
        Host = $"https://127.0.0.1:{port}";
        apiserverArgs =
        [
            "--etcd-servers", $"http://127.0.0.1:{EtcdPort}", "--cert-dir", Path.Combine(root, "pki"),
            "--tls-cert-file", certs.ServingCert, "--tls-private-key-file", certs.ServingKey, "--client-ca-file", certs.CaCert,
            "--secure-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1", "--insecure-port", "0",
            "--authorization-mode", "RBAC", "--token-auth-file", tokenFile, "--disable-admission-plugins", "ServiceAccount",
            "--admission-control-config-file", admissionConfig,
            "--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", certs.ServiceAccountPub, "--service-account-signing-key-file", certs.ServiceAccountKey,
            // The front proxy, for aggregated APIs (audit.controlplane.io, docs/audit-api.md): the API server calls them with
            // this client certificate and names the user in X-Remote-* headers; it dials an APIService's Endpoints directly
            // (no kube-proxy here to serve a ClusterIP).
            "--requestheader-client-ca-file", certs.FrontProxyCa, "--requestheader-allowed-names", Certificates.FrontProxyClientName,
            "--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", certs.FrontProxyClientCert, "--proxy-client-key-file", certs.FrontProxyClientKey,
            "--enable-aggregator-routing=true",
        ];
        apiserver = new ChildProcess("kube-apiserver", Path.Combine(assets, "kube-apiserver"), apiserverArgs, Path.Combine(root, "kube-apiserver.log"));
        await StartApiServerAsync();

        KubeconfigPath = Path.Combine(root, "kubeconfig");
        await File.WriteAllTextAsync(KubeconfigPath, Kubeconfig(Admin, certs.CaCert));
        foreach (var u in Users.Values)
        {
            await File.WriteAllTextAsync(Path.Combine(root, $"kubeconfig-{u.Name.Split('@')[0]}"), Kubeconfig(u, certs.CaCert));
        }

        // Kubernetes 1.21+ labels every namespace with kubernetes.io/metadata.name; 1.20 does not, and the
        // default-deny policy's DNS exception selects kube-system by that label (README: minimum version).
        using (var api = NewApi())
        {
            await Net.WaitUntilAsync(async () =>
            {
                try
                {
                    await api.PatchAsync<V1Namespace>(ResourceType.Namespaces, null, "kube-system",
                        """{"metadata":{"labels":{"kubernetes.io/metadata.name":"kube-system"}}}""", PatchTypes.Merge, CancellationToken.None);
                    return true;
                }
                catch (KubeApiException e) when (e.IsNotFound)
                {
                    return false; // the API server creates its system namespaces just after it is ready
                }
            }, TimeSpan.FromSeconds(30), "kube-system labelled");
        }

        if (File.Exists(Path.Combine(assets, "kube-controller-manager")))
        {
            controllerManager = new ChildProcess("kube-controller-manager", Path.Combine(assets, "kube-controller-manager"),
            [
                "--kubeconfig", KubeconfigPath, "--controllers", "namespace,garbagecollector,serviceaccount,deployment,replicaset",
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

    /// <summary>
    /// The machine's first non-loopback IPv4 address: where an aggregated API's Endpoints point (the API server
    /// refuses loopback endpoint addresses, so the operator listens here for it). Null when there is none.
    /// </summary>
    public static System.Net.IPAddress? NonLoopbackAddress() => System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
        .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up && n.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback)
        .SelectMany(n => n.GetIPProperties().UnicastAddresses)
        .Select(a => a.Address)
        .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(a) && !a.ToString().StartsWith("169.254.", StringComparison.Ordinal));

    /// <summary>
    /// The Service an APIService names (the chart's webhook Service, port 8443) with Endpoints at <paramref name="address"/>:<paramref name="port"/>,
    /// where the operator's audit API listens: the API server dials the Endpoints (--enable-aggregator-routing).
    /// </summary>
    public async Task ServeAuditApiAtAsync(string address, int port, CancellationToken ct = default)
    {
        using var api = NewApi();
        await api.CreateAsync(new ResourceType("", "v1", "services", "Service", true), OperatorNamespace, new V1Service
        {
            ApiVersion = "v1", Kind = "Service", Metadata = new V1ObjectMeta { Name = "controlplane-webhook", NamespaceProperty = OperatorNamespace },
            Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 8443, TargetPort = port, Protocol = "TCP" }] },
        }, ct);
        await api.CreateAsync(new ResourceType("", "v1", "endpoints", "Endpoints", true), OperatorNamespace, new V1Endpoints
        {
            ApiVersion = "v1", Kind = "Endpoints", Metadata = new V1ObjectMeta { Name = "controlplane-webhook", NamespaceProperty = OperatorNamespace },
            Subsets = [new V1EndpointSubset { Addresses = [new V1EndpointAddress { Ip = address }], Ports = [new Corev1EndpointPort { Port = port, Protocol = "TCP" }] }],
        }, ct);
    }

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

    /// <summary>Freezes (SIGSTOP) or resumes (SIGCONT) the API server: connections stay open and nothing answers.</summary>
    public Task FreezeApiServerAsync(bool frozen) =>
        apiserver?.SignalAsync(frozen ? "STOP" : "CONT") ?? throw new InvalidOperationException("the API server is not local: it cannot be frozen by the tests");

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

    /// <summary>
    /// Installs exactly what a user installs (`make install`: `kubectl apply -f crds/ -f config/rbac/`),
    /// so a broken manifest fails the tests, then waits until every CRD is Established.
    /// </summary>
    public async Task InstallManifestsAsync(string repoRoot, CancellationToken ct = default)
    {
        await KubectlAsync(ct, "apply", "-f", Path.Combine(repoRoot, "crds"), "-f", Path.Combine(repoRoot, "config", "rbac"));
        using var api = NewApi();
        foreach (var crd in CrdGenerator.GenerateAll())
        {
            await Net.WaitUntilAsync(async () =>
            {
                var c = await api.GetAsync<V1CustomResourceDefinition>(ResourceType.Crds, null, crd.Metadata.Name, ct);
                return c.Status?.Conditions?.Any(x => x.Type == "Established" && x.Status == "True") == true;
            }, TimeSpan.FromSeconds(30), $"CRD {crd.Metadata.Name} established", ct);
        }
    }

    /// <summary>Runs kubectl as the admin against this control plane; throws with its output on failure.</summary>
    public async Task<string> KubectlAsync(CancellationToken ct, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo("kubectl") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["KUBECONFIG"] = KubeconfigPath;
        using var p = System.Diagnostics.Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        if (p.ExitCode != 0) throw new InvalidOperationException($"kubectl {string.Join(' ', args)} failed ({p.ExitCode}): {await stderr}{await stdout}");
        return await stdout;
    }

    public const string OperatorNamespace = "controlplane-system";
    public const string OperatorServiceAccount = "controlplane-operator";

    /// <summary>
    /// A kubeconfig for the operator's own ServiceAccount (config/rbac/operator.yaml), with a token from
    /// the TokenRequest API: the operator then runs with exactly the privileges its manifest grants.
    /// </summary>
    public async Task<string> OperatorKubeconfigAsync(CancellationToken ct = default)
    {
        if (!IsLocal) throw new InvalidOperationException("the operator's kubeconfig is only written for the local control plane (CONTROLPLANE_TEST_KUBECONFIG is set)");
        using var api = NewApi();
        var request = new ResourceType("", "v1", "serviceaccounts", "ServiceAccount", true);
        var body = """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":86400}}""";
        var response = await api.SendAsync(HttpMethod.Post, request.ItemPath(OperatorNamespace, OperatorServiceAccount, "token"), body, "application/json", ct);
        var token = JsonNode.Parse(response)!["status"]!["token"]!.GetValue<string>();
        var path = Path.Combine(Path.GetDirectoryName(KubeconfigPath)!, "kubeconfig-operator");
        await File.WriteAllTextAsync(path, Kubeconfig(new TestUser($"system:serviceaccount:{OperatorNamespace}:{OperatorServiceAccount}", token, []), caCertPath), ct);
        return path;
    }

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
        foreach (var role in ControlPlane.Operator.Policy.WorkspaceRoles.ClusterRoles())
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
