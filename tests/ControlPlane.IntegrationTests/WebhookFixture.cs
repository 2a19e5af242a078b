using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

[CollectionDefinition(Name)]
public sealed class WebhookCollection : ICollectionFixture<WebhookFixture>
{
    public const string Name = "webhooks";
}

/// <summary>
/// Its own control plane and Postgres (the webhooks are registered with failurePolicy Fail, so they
/// must not touch the other tests' API server), and the whole operator process: runtime, health
/// endpoints and the admission webhooks over TLS on 127.0.0.1.
/// </summary>
public sealed class WebhookFixture : IAsyncLifetime
{
    public ClusterFixture Cluster { get; } = new();
    public WebApplication? App { get; private set; }
    public int WebhookPort { get; } = Net.FreePort();
    public int HealthPort { get; } = Net.FreePort();

    /// <summary>The audit API's port, on <see cref="AuditAddress"/>: the API server refuses loopback Endpoints (docs/audit-api.md).</summary>
    public int AuditPort { get; } = Net.FreePort();
    public string AuditAddress { get; } = LocalControlPlane.NonLoopbackAddress()?.ToString()
        ?? throw new InvalidOperationException("no non-loopback IPv4 address on this machine: the audit APIService's Endpoints need one (kube-apiserver refuses loopback)");
    readonly string lease = "webhook-tests-" + Guid.NewGuid().ToString("N")[..6];

    /// <summary>The bearer token of <see cref="IntentPlane"/>: a workspace's Secret "plane" holds it (key token).</summary>
    public const string IntentPlaneToken = "webhook-plane-token-0123456789";

    /// <summary>The fake execution plane (connector contract) on 127.0.0.1: the one ControlPlane:DeploymentIntent:PlaneUrlPrefixes allows.</summary>
    public ConnectorContractServer IntentPlane => intentPlane ?? throw new InvalidOperationException("the fixture is not initialized");
    ConnectorContractServer? intentPlane;

    public async Task InitializeAsync()
    {
        await Cluster.InitializeAsync();
        // Test users may manage every ControlPlane object, approvals included, cluster-wide: RBAC lets
        // anyone try, so what refuses a self-approval, a non-approver or a forged stamp is the webhook.
        using var api = Cluster.Plane.NewApi();
        var roles = new ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false);
        var bindings = new ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false);
        await api.CreateAsync(roles, null, new V1ClusterRole
        {
            ApiVersion = "rbac.authorization.k8s.io/v1", Kind = "ClusterRole", Metadata = new V1ObjectMeta { Name = "controlplane-test-users" },
            Rules =
            [
                new V1PolicyRule
                {
                    ApiGroups = ["controlplane.io"],
                    Resources = ["tenants", "workspaces", "exposures", "deploymentintents", "restores", "rollouts", "backupplans", "workspacenetworkpolicies", "approvals", "applications", "exceptions", "notificationchannels"],
                    Verbs = ["get", "list", "watch", "create", "update", "patch", "delete"],
                },
            ],
        }, CancellationToken.None);
        await api.CreateAsync(bindings, null, new V1ClusterRoleBinding
        {
            ApiVersion = "rbac.authorization.k8s.io/v1", Kind = "ClusterRoleBinding", Metadata = new V1ObjectMeta { Name = "controlplane-test-users" },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = "controlplane-test-users" },
            Subjects = [new Rbacv1Subject { Kind = "Group", Name = "controlplane-test-users", ApiGroup = "rbac.authorization.k8s.io" }],
        }, CancellationToken.None);
        intentPlane = await ConnectorContractServer.StartAsync(IntentPlaneToken);
        // The chart's Service for the audit APIService, with Endpoints at the operator's non-loopback address.
        await Cluster.Plane.ServeAuditApiAtAsync(AuditAddress, AuditPort);
        await StartOperatorAsync();
    }

    public async Task StartOperatorAsync()
    {
        var port = WebhookPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        App = ControlPlane.Operator.Program.BuildApp([], config => config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ControlPlane:Kubeconfig"] = Cluster.OperatorKubeconfigPath,
            ["ControlPlane:SystemDatabase"] = Cluster.Postgres.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = Cluster.Postgres.RegionConnectionString(),
            ["ControlPlane:Regions:us:Database"] = Cluster.Postgres.RegionConnectionString(),
            ["ControlPlane:KeyEncryptionKey"] = Cluster.KeyEncryptionKey,
            ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{HealthPort}",
            ["ControlPlane:MaxTransientRetryDelay"] = "00:00:01",
            ["ControlPlane:LeaderElection:LeaseName"] = lease,
            ["ControlPlane:LeaderElection:LeaseDuration"] = "00:00:04",
            ["ControlPlane:LeaderElection:RenewDeadline"] = "00:00:03",
            ["ControlPlane:LeaderElection:RetryPeriod"] = "00:00:00.500",
            ["ControlPlane:ReservedNamespaces:0"] = "argocd",
            ["ControlPlane:Webhook:BindAddress"] = "127.0.0.1",
            ["ControlPlane:Webhook:ClientCaFile"] = Cluster.Plane.CaCertPath,
            ["ControlPlane:Webhook:Port"] = port,
            ["ControlPlane:Webhook:Url"] = $"https://127.0.0.1:{port}",
            ["ControlPlane:Webhook:ExtraSans:0"] = "127.0.0.1",
            ["ControlPlane:DeploymentIntent:PlaneUrlPrefixes:0"] = IntentPlane.BaseUrl.AbsoluteUri,
            ["ControlPlane:DeploymentIntent:PollInterval"] = "00:00:00.300",
            ["ControlPlane:Regions:eu:EvidenceStorage:Endpoint"] = Cluster.EvidenceS3.Endpoint,
            ["ControlPlane:Regions:eu:EvidenceStorage:Bucket"] = Evidence.Bucket,
            ["ControlPlane:Regions:eu:EvidenceStorage:Prefix"] = "eu",
            ["ControlPlane:Regions:eu:EvidenceStorage:CredentialsSecret"] = Evidence.CredentialsSecret,
            ["ControlPlane:Regions:us:EvidenceStorage:Endpoint"] = Cluster.EvidenceS3.Endpoint,
            ["ControlPlane:Regions:us:EvidenceStorage:Bucket"] = Evidence.Bucket,
            ["ControlPlane:Regions:us:EvidenceStorage:Prefix"] = "us",
            ["ControlPlane:Regions:us:EvidenceStorage:CredentialsSecret"] = Evidence.CredentialsSecret,
            // Tenant channels only under this prefix; loopback allowed (platform channels only: tenant channels never reach it).
            ["ControlPlane:NotificationUrlPrefixes:0"] = "https://hooks.example.invalid/",
            ["ControlPlane:NotificationAllowLoopback"] = "true",
            ["ControlPlane:NotificationDelivery:PollInterval"] = "00:00:00.200",
            ["ControlPlane:AuditApi:Enabled"] = "true",
            ["ControlPlane:AuditApi:BindAddress"] = AuditAddress,
            ["ControlPlane:AuditApi:Port"] = AuditPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ControlPlane:AuditApi:VerifyInterval"] = "00:00:01",
            ["ControlPlane:AuditApi:FullVerifyInterval"] = "00:00:01",
            ["Logging:LogLevel:Default"] = "Warning",
        }));
        await App.StartAsync();
        using var http = new HttpClient();
        await Net.WaitUntilAsync(async () => (await http.GetAsync($"http://127.0.0.1:{HealthPort}/readyz")).IsSuccessStatusCode,
            TimeSpan.FromSeconds(60), "operator ready (leader caches and admission caches synced)");
    }

    public async Task StopOperatorAsync()
    {
        if (App is null) return;
        await App.StopAsync();
        await App.DisposeAsync();
        App = null;
    }

    public OperatorRuntime Runtime => App!.Services.GetRequiredService<OperatorRuntime>();

    public async Task DisposeAsync()
    {
        await StopOperatorAsync();
        if (intentPlane is not null) await intentPlane.DisposeAsync();
        await Cluster.DisposeAsync();
    }
}
