using System.Diagnostics;
using System.Runtime.InteropServices;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;

namespace ControlPlane.LocalEnv;

/// <summary>
/// `make up`: the embedded local default. Starts etcd, kube-apiserver, kube-controller-manager and
/// Postgres on loopback, installs the CRDs and cluster roles, runs the operator, applies samples/,
/// prints the tenants once Ready and the KUBECONFIG to use; Ctrl-C stops everything.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var once = args.Contains("--once");
        var repo = FindRepoRoot();
        var root = Path.Combine(repo, ".local", "up");
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        Directory.CreateDirectory(root);

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });

        Say("starting etcd, kube-apiserver, kube-controller-manager");
        // The users the samples name, so the per-user kubeconfigs show the samples' RBAC.
        await using var plane = await LocalControlPlane.StartAsync(Path.Combine(root, "k8s"), SampleUsers);
        Say($"starting the node stand-in (binds pods to node {NodeStandIn.NodeName} and reports them running; images containing \"{NodeStandIn.CrashLoopMarker}\" crash-loop)");
        await using var node = await NodeStandIn.StartAsync(plane.NewApi(), ct: stop.Token);
        Say("starting PostgreSQL 15");
        await using var pg = await LocalPostgres.StartAsync(root);
        Say("starting s3rver (the S3-compatible server backups go to)");
        await using var s3 = await LocalS3.StartAsync(root, [BackupBucket], stop.Token);
        Say("installing CRDs and RBAC (make install)");
        await plane.InstallManifestsAsync(repo, stop.Token);
        using (var admin = plane.NewApi())
        {
            // The platform storage's credentials, as an administrator would put them in the operator's namespace.
            await admin.CreateAsync(ResourceType.Secrets, "controlplane-system", new k8s.Models.V1Secret
            {
                Metadata = new k8s.Models.V1ObjectMeta { Name = "backup-storage", NamespaceProperty = "controlplane-system" },
                StringData = new Dictionary<string, string> { ["accessKeyId"] = LocalS3.AccessKey, ["secretAccessKey"] = LocalS3.SecretKey },
            }, stop.Token);
        }

        var operatorKubeconfig = await plane.OperatorKubeconfigAsync(stop.Token);

        var healthPort = Net.FreePort();
        var webhookPort = Net.FreePort();
        // The audit API (docs/audit-api.md) listens where the API server may dial it: not loopback.
        var auditAddress = LocalControlPlane.NonLoopbackAddress()?.ToString();
        var auditPort = Net.FreePort();
        if (auditAddress is not null) await plane.ServeAuditApiAtAsync(auditAddress, auditPort, stop.Token);
        var app = ControlPlane.Operator.Program.BuildApp([], config => config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ControlPlane:AuditApi:Enabled"] = auditAddress is null ? "false" : "true",
            ["ControlPlane:AuditApi:BindAddress"] = auditAddress ?? "127.0.0.1",
            ["ControlPlane:AuditApi:Port"] = auditPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // The operator runs as its own ServiceAccount, under config/rbac/operator.yaml only.
            ["ControlPlane:Kubeconfig"] = operatorKubeconfig,
            ["ControlPlane:SystemDatabase"] = pg.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = pg.RegionConnectionString(),
            ["ControlPlane:Regions:us:Database"] = pg.RegionConnectionString(),
            ["ControlPlane:Regions:eu:BackupStorage:Endpoint"] = s3.Endpoint,
            ["ControlPlane:Regions:eu:BackupStorage:Bucket"] = BackupBucket,
            ["ControlPlane:Regions:eu:BackupStorage:Prefix"] = "eu",
            ["ControlPlane:Regions:eu:BackupStorage:CredentialsSecret"] = "backup-storage",
            ["ControlPlane:Regions:us:BackupStorage:Endpoint"] = s3.Endpoint,
            ["ControlPlane:Regions:us:BackupStorage:Bucket"] = BackupBucket,
            ["ControlPlane:Regions:us:BackupStorage:Prefix"] = "us",
            ["ControlPlane:Regions:us:BackupStorage:CredentialsSecret"] = "backup-storage",
            ["ControlPlane:KeyEncryptionKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
            ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{healthPort}",
            ["ControlPlane:Webhook:BindAddress"] = "127.0.0.1",
            ["ControlPlane:Webhook:ClientCaFile"] = plane.CaCertPath,
            ["ControlPlane:Webhook:Port"] = webhookPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ControlPlane:Webhook:Url"] = $"https://127.0.0.1:{webhookPort}",
            ["ControlPlane:Webhook:ExtraSans:0"] = "127.0.0.1",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:ControlPlane"] = "Information",
        }));
        Say($"running the operator (health and metrics on http://127.0.0.1:{healthPort}, admission webhooks on https://127.0.0.1:{webhookPort}, " +
            (auditAddress is null ? "no audit API: this machine has no non-loopback IPv4 address for its Endpoints)" : $"the audit API on https://{auditAddress}:{auditPort}: kubectl get auditevents -n <workspace>)"));
        await app.StartAsync(stop.Token);
        try
        {
            var samples = Path.Combine(repo, "samples");
            await Kubectl(plane, "apply", "-f", samples);
            using var api = plane.NewApi();
            var expected = Directory.GetFiles(samples, "*.yaml").SelectMany(f => File.ReadAllLines(f))
                .Count(l => l.Trim() == "kind: Tenant");
            await Net.WaitUntilAsync(async () =>
            {
                var page = await api.ListAsync<Tenant>(ResourceType.For<Tenant>(false), null, null, 500, null, stop.Token);
                return page.Items.Count >= expected && page.Items.All(t => t.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true);
            }, TimeSpan.FromSeconds(60), "sample tenants Ready", stop.Token);
            await Kubectl(plane, "get", "tenants");
            var expectedWorkspaces = Directory.GetFiles(samples, "*.yaml").SelectMany(f => File.ReadAllLines(f)).Count(l => l.Trim() == "kind: Workspace");
            await Net.WaitUntilAsync(async () =>
            {
                var page = await api.ListAsync<Workspace>(ResourceType.For<Workspace>(false), null, null, 500, null, stop.Token);
                return page.Items.Count >= expectedWorkspaces && page.Items.All(w => w.Status?.Phase == WorkspacePhase.Ready);
            }, TimeSpan.FromSeconds(60), "sample workspaces Ready", stop.Token);
            await Kubectl(plane, "get", "workspaces");
            await PublishSampleExposureAsync(plane, api, samples, stop.Token);
            await SubmitSampleIntentAsync(plane, api, samples, stop.Token);
            await SampleExceptionAsync(plane, api, samples, stop.Token);
            await SampleAccessRequestAsync(plane, api, samples, stop.Token);
            // The sample Rollout's Deployments live in workspace namespaces: applied once those exist.
            var rollouts = Path.Combine(samples, "rollout");
            if (Directory.Exists(rollouts))
            {
                await Kubectl(plane, "apply", "-f", rollouts);
                await Kubectl(plane, "get", "rollouts", "-A");
            }

            // Objects inside workspace namespaces: those exist only once the workspaces are Ready.
            var inWorkspaces = Path.Combine(samples, "in-workspaces");
            await Kubectl(plane, "apply", "-f", inWorkspaces);
            var expectedPolicies = Directory.GetFiles(inWorkspaces, "*.yaml").SelectMany(f => File.ReadAllLines(f)).Count(l => l.Trim() == "kind: WorkspaceNetworkPolicy");
            await Net.WaitUntilAsync(async () =>
            {
                var page = await api.ListAsync<WorkspaceNetworkPolicy>(ResourceType.For<WorkspaceNetworkPolicy>(true), null, null, 500, null, stop.Token);
                return page.Items.Count >= expectedPolicies && page.Items.All(p => p.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true);
            }, TimeSpan.FromSeconds(60), "sample workspace network policies Ready", stop.Token);
            await Kubectl(plane, "get", "workspacenetworkpolicies,networkpolicies", "-A");

            // Namespaced samples go in once their workspaces exist.
            await Kubectl(plane, "apply", "-f", Path.Combine(samples, "backups"));
            await Net.WaitUntilAsync(async () =>
            {
                var page = await api.ListAsync<Backup>(ResourceType.For<Backup>(true), null, null, 500, null, stop.Token);
                return page.Items.Count > 0 && page.Items.All(b => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed);
            }, TimeSpan.FromSeconds(60), "sample backups finished", stop.Token);
            await Kubectl(plane, "get", "backupplans,backups", "-A");

            Console.WriteLine();
            Console.WriteLine("The local control plane is up. From another terminal:");
            Console.WriteLine($"  export KUBECONFIG={plane.KubeconfigPath}");
            if (ToolPaths.HelmPathLine(Environment.GetEnvironmentVariable("PATH"), ToolPaths.HelmDirectory(Environment.GetEnvironmentVariable), File.Exists) is { } helmPath)
            {
                Console.WriteLine($"  {helmPath}");
            }
            if (ToolPaths.PluginPathLine(Environment.GetEnvironmentVariable("PATH"), Path.Combine(repo, "bin"), File.Exists) is { } pluginPath)
            {
                Console.WriteLine($"  {pluginPath}");
            }
            Console.WriteLine("  kubectl get tenants,workspaces");
            Console.WriteLine("  kubectl controlplane status                          # the tree: tenants, workspaces, every governed object (docs/plugin.md)");
            Console.WriteLine("  kubectl controlplane access list -A                  # just-in-time grants: phase, requester, role, time remaining");
            // Self-service: a tenant owner's own kubeconfig, no cluster-admin (samples/self-service).
            Console.WriteLine($"  kubectl --kubeconfig {Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-alice")} apply -f {Path.Combine(repo, "samples", "self-service")}   # alice@acme.io, owner of acme, opens a workspace");
            Console.WriteLine("  kubectl get rollouts.controlplane.io -n acme-dev -w # the sample Rollout, ring by ring");
            Console.WriteLine("  kubectl -n acme-dev get wnp,networkpolicies,exposures,ingresses");
            Console.WriteLine("  kubectl get backupplans,backups -A");
            Console.WriteLine($"  (backups are in s3rver at {s3.Endpoint}, bucket {BackupBucket}, files under {s3.Directory})");
            Console.WriteLine($"  curl -s http://127.0.0.1:{healthPort}/metrics | grep controller_runtime_reconcile_total");
            Console.WriteLine("Press Ctrl-C to stop everything.");
            if (!once) await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            Say("stopping");
            await app.StopAsync(CancellationToken.None);
        }

        return 0;
    }

    const string BackupBucket = "controlplane-backups";

    /// <summary>The people and groups samples/ names: owners, members and auditors of acme and globex.</summary>
    static readonly IReadOnlyDictionary<string, string[]> SampleUsers = new Dictionary<string, string[]>
    {
        ["alice@acme.io"] = [],
        ["bob@acme.io"] = [],
        ["carol@acme.io"] = [],
        ["dave@acme.io"] = [],
        ["erin@acme.io"] = ["acme-auditors"],
        ["frank@globex.io"] = ["globex-platform"],
    };

    static void Say(string text) => Console.WriteLine($"==> {text}");

    /// <summary>
    /// A change request as its author submits it: bob applies samples/intents (a DeploymentIntent scored
    /// above 50); ring-1 deploys through its Rollout and ring-2 waits for CAB, which a newcomer gives as carol.
    /// </summary>
    static async Task SubmitSampleIntentAsync(LocalControlPlane plane, KubeApi api, string samples, CancellationToken ct)
    {
        var carol = Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-carol");
        Say("bob@acme.io submits samples/intents (a DeploymentIntent of payments 1.4.0, risk 59.5)");
        await Kubectl(plane, "--kubeconfig", Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-bob"), "apply", "-f", Path.Combine(samples, "intents"));
        // Its Application's first scope version reaches acme-prod: CAB (carol and dave, Approvers of acme-prod) approves it, as for any approvable kind.
        Say("carol@acme.io and dave@acme.io approve Application payments' scope v1 (samples/application-approvals)");
        foreach (var approver in new[] { "carol", "dave" })
        {
            await Kubectl(plane, "--kubeconfig", Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-" + approver), "apply", "-f",
                Path.Combine(samples, "application-approvals", $"payments-{approver}.yaml"));
        }

        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<Application>(ResourceType.For<Application>(true), "acme-dev", "payments", ct))?.Status?.ScopeVersion is not null,
            TimeSpan.FromSeconds(60), "sample Application approved", ct);
        await Kubectl(plane, "get", "applications.controlplane.io", "-n", "acme-dev");
        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<DeploymentIntent>(ResourceType.For<DeploymentIntent>(true), "acme-dev", "payments-1-4-0", ct))?.Status?.Phase
            is IntentPhase.AwaitingApproval or IntentPhase.Completed or IntentPhase.Failed or IntentPhase.Denied or IntentPhase.RolledBack, TimeSpan.FromSeconds(90), "sample intent's ring-1 done", ct);
        await Kubectl(plane, "get", "deploymentintents,rollouts", "-n", "acme-dev");
        Console.WriteLine("The sample DeploymentIntent waits for CAB before ring-2 (acme-prod: two Approvers of acme-prod). Approve it as carol@acme.io, then likewise as dave@acme.io (kubeconfig-dave, name payments-cab-dave):");
        Console.WriteLine($"  kubectl --kubeconfig {carol} -n acme-dev create -f - <<'YAML'");
        Console.WriteLine("  {apiVersion: controlplane.io/v1alpha1, kind: Approval, metadata: {name: payments-cab-carol}, spec: {target: {kind: DeploymentIntent, name: payments-1-4-0}, decision: approve}}");
        Console.WriteLine("  YAML");
        Console.WriteLine($"  # or, with the plugin (make plugin): kubectl controlplane --kubeconfig {carol} -n acme-dev approve deploymentintent/payments-1-4-0");
        Console.WriteLine("  kubectl -n acme-dev get di,rollouts.controlplane.io -w");
    }

    /// <summary>
    /// RequireException as its people run it: bob submits samples/exceptions (an intent whose artifact has a High
    /// CVE, and the Exception for it, expiring 30 days from now), the intent waits for it; erin, a SecurityReviewer
    /// of acme-dev, approves it (samples/exception-approvals) and the intent goes through ring-1 to Completed.
    /// </summary>
    static async Task SampleExceptionAsync(LocalControlPlane plane, KubeApi api, string samples, CancellationToken ct)
    {
        string As(string user) => Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-" + user);
        var intents = ResourceType.For<DeploymentIntent>(true);
        Say("bob@acme.io submits samples/exceptions (inventory 3.0.1 with a High CVE, and an Exception for it)");
        // The Exception's expiresAt is bounded by the tenant's policy from its creation: 30 days from now.
        var expires = DateTime.UtcNow.AddDays(30).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var file = Path.Combine(Path.GetTempPath(), $"controlplane-exceptions-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, System.Text.RegularExpressions.Regex.Replace(await File.ReadAllTextAsync(Path.Combine(samples, "exceptions", "inventory.yaml"), ct),
            "expiresAt: \"[^\"]*\"", $"expiresAt: \"{expires}\""), ct);
        try
        {
            await Kubectl(plane, "--kubeconfig", As("bob"), "apply", "-f", file);
        }
        finally
        {
            File.Delete(file);
        }

        Say("carol@acme.io approves Application inventory's scope v1 (samples/application-approvals/inventory-carol.yaml)");
        await Kubectl(plane, "--kubeconfig", As("carol"), "apply", "-f", Path.Combine(samples, "application-approvals", "inventory-carol.yaml"));
        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<DeploymentIntent>(intents, "acme-dev", "inventory-3-0-1", ct))?.Status is { Phase: IntentPhase.AwaitingApproval, Decision: "RequireException" },
            TimeSpan.FromSeconds(90), "sample intent waits for its Exception", ct);
        await Kubectl(plane, "get", "deploymentintents,exceptions", "-n", "acme-dev");
        Say("erin@acme.io (SecurityReviewer of acme-dev) approves the Exception (samples/exception-approvals)");
        await Kubectl(plane, "--kubeconfig", As("erin"), "apply", "-f", Path.Combine(samples, "exception-approvals"));
        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<DeploymentIntent>(intents, "acme-dev", "inventory-3-0-1", ct))?.Status?.Phase is IntentPhase.Completed,
            TimeSpan.FromSeconds(120), "sample intent Completed once its Exception is approved", ct);
        await Kubectl(plane, "get", "deploymentintents,exceptions", "-n", "acme-dev");
    }

    /// <summary>
    /// Just-in-time access as its people run it: erin asks for Operator in acme-dev for 10 minutes
    /// (samples/access-requests), carol approves (samples/access-approvals); the request goes Pending -> Active with
    /// its RoleBinding, and to Expired (the binding deleted) at status.expiresAt. The sample's 10m is shortened
    /// to 30s here so the whole life shows during `make up`.
    /// </summary>
    static async Task SampleAccessRequestAsync(LocalControlPlane plane, KubeApi api, string samples, CancellationToken ct)
    {
        string As(string user) => Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-" + user);
        var requests = ResourceType.For<AccessRequest>(true);
        Say("erin@acme.io asks for Operator in acme-dev just in time (samples/access-requests, 30s instead of 10m here)");
        var file = Path.Combine(Path.GetTempPath(), $"controlplane-access-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, (await File.ReadAllTextAsync(Path.Combine(samples, "access-requests", "erin-debug.yaml"), ct)).Replace("duration: 10m", "duration: 30s"), ct);
        try
        {
            await Kubectl(plane, "--kubeconfig", As("erin"), "apply", "-f", file);
        }
        finally
        {
            File.Delete(file);
        }

        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<AccessRequest>(requests, "acme-dev", "erin-debug", ct))?.Status?.Phase is AccessRequestPhase.Pending,
            TimeSpan.FromSeconds(90), "sample access request Pending", ct);
        await Kubectl(plane, "get", "accessrequests", "-n", "acme-dev");
        Say("carol@acme.io (Approver of acme-dev) approves it (samples/access-approvals)");
        await Kubectl(plane, "--kubeconfig", As("carol"), "apply", "-f", Path.Combine(samples, "access-approvals"));
        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<AccessRequest>(requests, "acme-dev", "erin-debug", ct))?.Status?.Phase is AccessRequestPhase.Active,
            TimeSpan.FromSeconds(90), "sample access request Active", ct);
        await Kubectl(plane, "get", "accessrequests,rolebindings", "-n", "acme-dev");
        await Net.WaitUntilAsync(async () => (await api.TryGetAsync<AccessRequest>(requests, "acme-dev", "erin-debug", ct))?.Status?.Phase is AccessRequestPhase.Expired,
            TimeSpan.FromSeconds(120), "sample access request Expired", ct);
        await Kubectl(plane, "get", "accessrequests", "-n", "acme-dev");
    }

    /// <summary>
    /// The publication flow as its people run it: bob (Operator) publishes an API of acme-dev
    /// (samples/workloads), carol (Approver) approves it (samples/approvals), and it goes live.
    /// </summary>
    static async Task PublishSampleExposureAsync(LocalControlPlane plane, KubeApi api, string samples, CancellationToken ct)
    {
        string As(string user) => Path.Combine(Path.GetDirectoryName(plane.KubeconfigPath)!, "kubeconfig-" + user);
        Say("bob@acme.io applies samples/workloads (a Service and an Exposure), carol@acme.io approves it (samples/approvals)");
        await Kubectl(plane, "--kubeconfig", As("bob"), "apply", "-f", Path.Combine(samples, "workloads"));
        await Kubectl(plane, "--kubeconfig", As("carol"), "apply", "-f", Path.Combine(samples, "approvals"));
        await Net.WaitUntilAsync(async () =>
        {
            var page = await api.ListAsync<Exposure>(ResourceType.For<Exposure>(true), null, null, 500, null, ct);
            return page.Items.Count > 0 && page.Items.All(e => e.Status?.Phase == ExposurePhase.Published);
        }, TimeSpan.FromSeconds(60), "sample exposures Published", ct);
        await Kubectl(plane, "get", "exposures", "-A", "-o", "wide");
        await Kubectl(plane, "get", "ingresses", "-A");
    }

    static async Task Kubectl(LocalControlPlane plane, params string[] args)
    {
        var info = new ProcessStartInfo("kubectl") { UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["KUBECONFIG"] = plane.KubeconfigPath;
        using var p = Process.Start(info)!;
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"kubectl {string.Join(' ', args)} failed with {p.ExitCode}");
    }

    public static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln"))) return dir.FullName;
        }

        return Directory.GetCurrentDirectory();
    }
}
