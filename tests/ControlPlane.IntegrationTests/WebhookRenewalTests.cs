using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Admission;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Certificate renewal by one replica while another keeps serving the old certificate.</summary>
[Collection(WebhookCollection.Name)]
public sealed class WebhookRenewalTests(WebhookFixture fixture)
{
    [Fact]
    public async Task ARenewalByAnotherReplica_KeepsTheOldCaInTheBundle_SoNoAdmissionIsRefused()
    {
        var cluster = fixture.Cluster;
        var port = fixture.WebhookPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // A second replica that judges the stored certificate due for renewal (RenewBefore past its validity).
        var options = new WebhookOptions
        {
            Url = $"https://127.0.0.1:{port}",
            ExtraSans = ["127.0.0.1"],
            RenewBefore = TimeSpan.FromDays(400),
        };
        using var api = new KubeApi(cluster.OperatorClientConfig());
        var before = (await cluster.Api.GetAsync<V1Secret>(ResourceType.Secrets, options.CertSecretNamespace, options.CertSecretName, CancellationToken.None)).Data["tls.crt"];
        var second = new WebhookCertificates(api, options, TimeProvider.System, NullLogger<WebhookCertificates>.Instance);
        await second.EnsureAsync(CancellationToken.None);
        await WebhookConfigurations.ApplyAsync(api, options, second.CaBundlePem, CancellationToken.None);
        var after = (await cluster.Api.GetAsync<V1Secret>(ResourceType.Secrets, options.CertSecretNamespace, options.CertSecretName, CancellationToken.None)).Data["tls.crt"];
        Assert.NotEqual(before, after); // renewed: a new CA and certificate

        // The fixture's replica still serves the previous certificate; the API server must still trust it.
        for (var i = 0; i < 5; i++)
        {
            var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = $"renewal-{Guid.NewGuid().ToString("N")[..6]}" } };
            tenant.Spec.Region = "eu";
            var created = await cluster.Api.CreateAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None);
            Assert.Equal("admin", created.Metadata.Annotations[ApiGroup.CreatedByAnnotation]); // the mutating webhook answered
        }
    }
}
