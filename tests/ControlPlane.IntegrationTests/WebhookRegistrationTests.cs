using ControlPlane.LocalEnv;
using ControlPlane.Operator.Admission;
using ControlPlane.Runtime;
using Microsoft.Extensions.Configuration;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// An operator run against a cluster where its webhook Service does not exist (`make run` outside the
/// cluster, or a broken install) must not register configurations that would fail every write of a
/// controlplane.io object: it stays unready and says why.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class WebhookRegistrationTests(ClusterFixture cluster)
{
    [Fact]
    public async Task AWebhookServiceWithoutEndpoints_IsNeverRegistered_AndReadinessSaysWhy()
    {
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var health = Net.FreePort();
        var webhook = new WebhookOptions { ServiceName = "cp-webhook-" + suffix, ConfigurationName = "cp-test-" + suffix, CertSecretName = "cp-cert-" + suffix };
        var app = ControlPlane.Operator.Program.BuildApp([], config => config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ControlPlane:Kubeconfig"] = cluster.OperatorKubeconfigPath,
            ["ControlPlane:SystemDatabase"] = cluster.Postgres.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = cluster.OperatorOptions("x").Regions["eu"].Database,
            ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{health}",
            ["ControlPlane:LeaderElection:LeaseName"] = "registration-" + suffix,
            ["ControlPlane:Webhook:BindAddress"] = "127.0.0.1",
            ["ControlPlane:Webhook:Port"] = Net.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ControlPlane:Webhook:ServiceName"] = webhook.ServiceName,
            ["ControlPlane:Webhook:ConfigurationName"] = webhook.ConfigurationName,
            ["ControlPlane:Webhook:CertSecretName"] = webhook.CertSecretName,
            ["Logging:LogLevel:Default"] = "Warning",
        }));
        await app.StartAsync();
        try
        {
            using var http = new HttpClient();
            string? reason = null;
            await Net.WaitUntilAsync(async () =>
            {
                var response = await http.GetAsync($"http://127.0.0.1:{health}/readyz");
                reason = await response.Content.ReadAsStringAsync();
                return !response.IsSuccessStatusCode && reason.Contains("not registered", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(30), "readiness reports the unregistered webhooks");
            Assert.Contains($"Service controlplane-system/{webhook.ServiceName} does not exist", reason);
            Assert.Null(await cluster.Api.TryGetAsync<V1MutatingWebhookConfiguration>(WebhookConfigurations.Mutating, null, webhook.ConfigurationName + "-mutating", CancellationToken.None));
            Assert.Null(await cluster.Api.TryGetAsync<V1ValidatingWebhookConfiguration>(WebhookConfigurations.Validating, null, webhook.ConfigurationName + "-validating", CancellationToken.None));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        // With the operator stopped (nothing may register here): a Service that selects a pod, ready or not, is reachable
        // (an Endpoints object only, with a documentation address: no traffic is ever sent).
        var services = new ResourceType("", "v1", "services", "Service", true);
        var endpoints = new ResourceType("", "v1", "endpoints", "Endpoints", true);
        using var operatorApi = new KubeApi(cluster.OperatorClientConfig());
        await cluster.Api.CreateAsync(services, "controlplane-system", new V1Service
        {
            Metadata = new V1ObjectMeta { Name = webhook.ServiceName },
            Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 443, TargetPort = 9443 }] },
        }, CancellationToken.None);
        try
        {
            Assert.Contains("has no endpoints", await WebhookConfigurations.UnreachableAsync(operatorApi, webhook, CancellationToken.None));
            await cluster.Api.CreateAsync(endpoints, "controlplane-system", new V1Endpoints
            {
                Metadata = new V1ObjectMeta { Name = webhook.ServiceName },
                Subsets = [new V1EndpointSubset { NotReadyAddresses = [new V1EndpointAddress { Ip = "192.0.2.10" }], Ports = [new Corev1EndpointPort { Port = 9443 }] }],
            }, CancellationToken.None);
            Assert.Null(await WebhookConfigurations.UnreachableAsync(operatorApi, webhook, CancellationToken.None));
        }
        finally
        {
            await cluster.Api.DeleteAsync(endpoints, "controlplane-system", webhook.ServiceName, CancellationToken.None);
            await cluster.Api.DeleteAsync(services, "controlplane-system", webhook.ServiceName, CancellationToken.None);
        }
    }
}
