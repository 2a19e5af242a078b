using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator;
using ControlPlane.Operator.Admission;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The kind registry is the one list controller setup and admission dispatch read: it must name every kind the webhooks see.</summary>
public sealed class KindRegistryTests
{
    [Fact]
    public void EveryCrdKind_IsRegisteredOnce_WithAControllerAndAdmission()
    {
        var own = KindRegistry.Kinds.Where(k => k.Group == ApiGroup.Group).ToList();
        Assert.Equal(ApiKinds.All.Select(ApiKinds.KindOf).Order(), own.Select(k => k.Kind).Order());
        Assert.All(own, k => Assert.NotNull(k.Controller));
        Assert.Equal(KindRegistry.Kinds.Count, KindRegistry.Kinds.Select(k => (k.Group, k.Kind)).Distinct().Count());
    }

    [Fact]
    public void EveryResourceOfTheGovernedWebhook_HasARegisteredKind_WithoutAController()
    {
        var governed = WebhookConfigurations.ValidatingConfiguration(new WebhookOptions(), "ca").Webhooks.Single(w => w.Name == "governed.controlplane.io");
        var resources = governed.Rules.SelectMany(r => r.Resources.Select(res => (Group: r.ApiGroups.Single(), Resource: res))).Order().ToList();
        var registered = KindRegistry.Kinds.Where(k => k.Group != ApiGroup.Group).ToList();
        Assert.All(registered, k => Assert.Null(k.Controller));
        Assert.Equal(resources, registered.Select(k => (k.Group, Resource: ((k8s.Models.KubernetesEntityAttribute)Attribute.GetCustomAttribute(k.ObjectType, typeof(k8s.Models.KubernetesEntityAttribute))!).PluralName)).Order().ToList());
    }
}
