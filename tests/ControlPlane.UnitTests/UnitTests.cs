using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Crds;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

public sealed class CrdTests
{
    [Fact]
    public void CrdsDirectory_MatchesWhatTheGeneratorWrites()
    {
        var dir = Path.Combine(Repository.Root(), "crds");
        var expected = CrdGenerator.RenderAll();
        var actual = Directory.GetFiles(dir, "*.yaml").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (file, yaml) in expected)
        {
            Assert.True(actual[file] == yaml, $"crds/{file} differs from the C# types: run `make manifests` and commit the result");
        }
    }

    [Fact]
    public void EveryKindOfTheContract_HasItsCrd_WithShortNameScopeAndStatusSubresource()
    {
        var crds = CrdGenerator.GenerateAll().ToDictionary(c => c.Spec.Names.Kind);
        // No short name where every short one is another project's (ShortNameTests).
        var expected = new Dictionary<string, (string? Short, string Scope)>
        {
            ["Tenant"] = (null, "Cluster"), ["Workspace"] = ("ws", "Cluster"), ["WorkspaceNetworkPolicy"] = ("wnp", "Namespaced"),
            ["Exposure"] = (null, "Namespaced"), ["Approval"] = ("apr", "Namespaced"), ["Rollout"] = (null, "Namespaced"),
            ["DeploymentIntent"] = ("di", "Namespaced"), ["BackupPlan"] = ("bp", "Namespaced"), ["Backup"] = ("bk", "Namespaced"), ["Restore"] = ("rst", "Namespaced"),
            ["Application"] = ("cpapp", "Namespaced"),
            ["Exception"] = ("exc", "Namespaced"),
            ["AccessRequest"] = ("areq", "Namespaced"),
            ["BreakGlass"] = ("bg", "Namespaced"),
            ["NotificationChannel"] = ("nc", "Namespaced"),
        };
        Assert.Equal(expected.Keys.Order(), crds.Keys.Order());
        foreach (var (kind, (shortName, scope)) in expected)
        {
            var crd = crds[kind];
            Assert.Equal("controlplane.io", crd.Spec.Group);
            Assert.Equal(shortName is null ? [] : [shortName], crd.Spec.Names.ShortNames ?? []);
            Assert.Equal(scope, crd.Spec.Scope);
            var version = Assert.Single(crd.Spec.Versions);
            Assert.Equal("v1alpha1", version.Name);
            Assert.NotNull(version.Subresources.Status);
            Assert.Contains(version.AdditionalPrinterColumns, c => c.Name == "Age");
            Assert.Contains(version.AdditionalPrinterColumns, c => c.Name is "Phase" or "Ready");
            var status = version.Schema.OpenAPIV3Schema.Properties["status"];
            Assert.Contains("conditions", status.Properties.Keys);
            Assert.Contains("observedGeneration", status.Properties.Keys);
        }
    }

    [Fact]
    public void Schemas_CarryRequiredEnumsDefaultsPatternsAndRanges()
    {
        var tenant = CrdGenerator.Generate(typeof(Tenant)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];
        Assert.Contains("region", tenant.Required);
        Assert.Equal("metadataOnly", tenant.Properties["dataMode"].DefaultProperty);
        Assert.Equal(["metadataOnly", "full"], tenant.Properties["dataMode"].EnumProperty.Cast<string>());
        Assert.NotNull(tenant.Properties["region"].Pattern);

        var workspace = CrdGenerator.Generate(typeof(Workspace)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];
        Assert.Equal("dev", workspace.Properties["environment"].DefaultProperty);
        Assert.Equal(true, workspace.Properties["database"].Properties["enabled"].DefaultProperty);
        var member = (V1JSONSchemaProps)workspace.Properties["members"].Items;
        Assert.Equal(["WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer"], member.Properties["role"].EnumProperty.Cast<string>());

        var intent = CrdGenerator.Generate(typeof(DeploymentIntent)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];
        Assert.Equal(0, intent.Properties["risk"].Properties["blastRadius"].Minimum);
        Assert.Equal(1, intent.Properties["risk"].Properties["blastRadius"].Maximum);

        var rollout = CrdGenerator.Generate(typeof(Rollout)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];
        Assert.Equal(1, rollout.Properties["rings"].MinItems);
    }
}

public sealed class ConditionTests
{
    [Fact]
    public void LastTransitionTime_ChangesOnlyWhenStatusFlips()
    {
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var c = Conditions.Set(null, "Ready", "False", "Pending", "waiting", 1, t0);
        c = Conditions.Set(c, "Ready", "False", "StillPending", "still waiting", 2, t0.AddMinutes(1));
        Assert.Equal(t0, c[0].LastTransitionTime);
        Assert.Equal("StillPending", c[0].Reason);
        Assert.Equal(2, c[0].ObservedGeneration);
        c = Conditions.Set(c, "Ready", "True", "Ready", "ok", 2, t0.AddMinutes(2));
        Assert.Equal(t0.AddMinutes(2), c[0].LastTransitionTime);
        c = Conditions.Set(c, "RecordSynced", "True", "Synced", "ok", 2, t0.AddMinutes(3));
        Assert.Equal(2, c.Count);
    }
}

public sealed class RuntimeUnitTests
{
    [Theory]
    [InlineData("GET", "/api/v1/namespaces", "list")]
    [InlineData("GET", "/api/v1/namespaces/x", "get")]
    [InlineData("GET", "/api/v1/namespaces/x/events", "list")]
    [InlineData("GET", "/api/v1/namespaces/x/events/e", "get")]
    [InlineData("GET", "/apis/controlplane.io/v1alpha1/tenants", "list")]
    [InlineData("GET", "/apis/controlplane.io/v1alpha1/tenants?watch=true&resourceVersion=1", "watch")]
    [InlineData("GET", "/apis/controlplane.io/v1alpha1/tenants/acme", "get")]
    [InlineData("PUT", "/apis/controlplane.io/v1alpha1/tenants/acme/status", "update")]
    [InlineData("PATCH", "/apis/controlplane.io/v1alpha1/tenants/acme", "patch")]
    [InlineData("POST", "/api/v1/namespaces/default/events", "create")]
    public void RequestVerbs_AreClassifiedLikeTheApiServerDoes(string method, string path, string verb)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), new Uri("https://127.0.0.1:6443" + path));
        Assert.Equal(verb, RequestMetricsHandler.VerbOf(request));
    }

    [Fact]
    public void OurTypes_RoundTripThroughKubernetesJson_InCamelCase()
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" } };
        tenant.Spec.Region = "eu";
        tenant.Spec.Network = new TenantNetwork { AllowedIngressCIDRs = ["203.0.113.0/24"] };
        tenant.Spec.Quota = new TenantQuota { Cpu = new ResourceQuantity("64"), MaxWorkspaces = 3 };
        var json = KubernetesJson.Serialize(tenant);
        Assert.Contains("\"allowedIngressCIDRs\"", json);
        Assert.Contains("\"maxWorkspaces\":3", json);
        Assert.Contains("\"cpu\":\"64\"", json);
        Assert.Contains("\"apiVersion\":\"controlplane.io/v1alpha1\"", json);
        var back = KubernetesJson.Deserialize<Tenant>(json);
        Assert.Equal("eu", back.Spec.Region);
        Assert.Equal(64m, back.Spec.Quota!.Cpu!.ToDecimal());
    }

    [Fact]
    public void AuditHash_IsCanonical_AndChainsOnThePreviousHash()
    {
        var at = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var a = new AuditEntry("op", "tenant.created", "Tenant", "acme", "acme", new JsonObject { ["b"] = 1, ["a"] = new JsonObject { ["y"] = 2, ["x"] = 1 } });
        var b = a with { Details = new JsonObject { ["a"] = new JsonObject { ["x"] = 1, ["y"] = 2 }, ["b"] = 1 } };
        Assert.Equal(SystemDatabase.ChainHash("", at, a), SystemDatabase.ChainHash("", at, b));
        Assert.NotEqual(SystemDatabase.ChainHash("", at, a), SystemDatabase.ChainHash("00", at, a));
        Assert.Equal("{\"a\":{\"x\":1,\"y\":2},\"b\":1}", SystemDatabase.Canonical(a.Details));
    }

    [Fact]
    public void MetadataOnlyTenant_KeepsNoFreeTextInItsRecord()
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" } };
        tenant.Spec.Region = "eu";
        tenant.Spec.DisplayName = "Acme Secret Project";
        var record = TenantReconciler.DesiredRecord(tenant, Guid.NewGuid());
        Assert.Null(record.DisplayName);
        Assert.DoesNotContain("Acme Secret Project", record.SpecJson);
        tenant.Spec.DataMode = "full";
        Assert.Equal("Acme Secret Project", TenantReconciler.DesiredRecord(tenant, Guid.NewGuid()).DisplayName);
    }
}
