using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

public sealed class ExposureUnitTests
{
    static readonly ExposureOptions Options = new() { IngressClass = "public", Domain = "apps.acme.example" };

    static Exposure Exp(string name, string ns, string? host = null, string path = "/orders", int secondsAfterEpoch = 0, ExposureSpec? live = null, string uid = "") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = ns, Uid = uid.Length > 0 ? uid : name + "-uid",
            CreationTimestamp = new DateTime(2026, 1, 1, 0, 0, secondsAfterEpoch, DateTimeKind.Utc),
        },
        Spec = new ExposureSpec { Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Host = host, Path = path, Publish = true },
        Status = live is null ? null : new ExposureStatus { PublishedGeneration = 1, PublishedSpec = live },
    };

    [Fact]
    public void Ingress_ServesTheGivenSpec_AtTheDefaultHost_WithTheRatePlanAsIngressNginxAnnotations()
    {
        var e = Exp("orders", "acme-dev");
        e.Spec.RatePlan = new RatePlan { RequestsPerMinute = 600, Burst = 1500, MonthlyQuota = 1000000 };
        var ingress = ExposureResources.Ingress(e, e.Spec, 4, Options);

        Assert.Equal("public", ingress.Spec.IngressClassName);
        var rule = ingress.Spec.Rules.Single();
        Assert.Equal("orders.acme-dev.apps.acme.example", rule.Host);
        Assert.Equal(["orders.acme-dev.apps.acme.example"], ingress.Spec.Tls.Single().Hosts);
        var path = rule.Http.Paths.Single();
        Assert.Equal(("/orders", "Prefix", "orders", 8080), (path.Path, path.PathType, path.Backend.Service.Name, path.Backend.Service.Port.Number));
        Assert.Equal("600", ingress.Metadata.Annotations[ExposureResources.LimitRpm]);
        Assert.Equal("3", ingress.Metadata.Annotations[ExposureResources.LimitBurstMultiplier]); // ceil(1500 / 600)
        Assert.Equal("1000000", ingress.Metadata.Annotations[ApiGroup.MonthlyQuotaAnnotation]);
        Assert.Equal("4", ingress.Metadata.Annotations[ApiGroup.PublishedGenerationAnnotation]);
        Assert.False(ingress.Metadata.Annotations.ContainsKey(ExposureResources.ProxyReadTimeout));
        var owner = ingress.Metadata.OwnerReferences.Single();
        Assert.Equal(("Exposure", "orders", "orders-uid", true), (owner.Kind, owner.Name, owner.Uid, owner.Controller == true));
        Assert.Equal("orders", ingress.Metadata.Labels[ApiGroup.ExposureLabel]);
        Assert.Equal("https://orders.acme-dev.apps.acme.example/orders", ExposureResources.Endpoint("orders", "acme-dev", e.Spec, Options));
    }

    [Fact]
    public void Realtime_GetsWebsocketFriendlyTimeouts_AndASmallBurstStillGetsMultiplierOne()
    {
        var e = Exp("feed", "acme-dev", host: "feed.acme.example");
        e.Spec.Type = "Realtime";
        e.Spec.RatePlan = new RatePlan { RequestsPerMinute = 600, Burst = 100 };
        var a = ExposureResources.Ingress(e, e.Spec, 1, Options).Metadata.Annotations;
        Assert.Equal("3600", a[ExposureResources.ProxyReadTimeout]);
        Assert.Equal("3600", a[ExposureResources.ProxySendTimeout]);
        Assert.Equal("off", a[ExposureResources.ProxyBuffering]);
        Assert.Equal("1", a[ExposureResources.LimitBurstMultiplier]);
        Assert.Equal("feed.acme.example/orders", ExposureResources.ClaimedRoute(e, Options));
    }

    [Fact]
    public void BackendProblem_NamesTheFieldAndWhatExists()
    {
        var spec = Exp("orders", "ns").Spec;
        Assert.Equal("spec.backend.service: Service orders does not exist in namespace ns", ExposureResources.BackendProblem("ns", spec, null));
        var service = new V1Service { Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 80 }, new V1ServicePort { Port = 443 }] } };
        Assert.Equal("spec.backend.port: Service orders in namespace ns has no port 8080 (its ports: 80, 443)", ExposureResources.BackendProblem("ns", spec, service));
        service.Spec.Ports.Add(new V1ServicePort { Port = 8080 });
        Assert.Null(ExposureResources.BackendProblem("ns", spec, service));
    }

    [Fact]
    public void RouteHolder_IsWhoServesIt_ThenTheOldest_ThenByName()
    {
        var route = new ExposureResources.RouteKey("q", "api.acme.example", "/orders");
        var older = Exp("a", "x", host: "api.acme.example", secondsAfterEpoch: 1);
        var newer = Exp("b", "y", host: "api.acme.example", secondsAfterEpoch: 2);
        Assert.Same(older, ExposureResources.RouteHolder([newer, older], route, Options));

        // The newer one already serves the route (it moved there while the older claimed elsewhere, then the older moved).
        var serving = Exp("b", "y", host: "elsewhere.example", secondsAfterEpoch: 2, live: Exp("b", "y", host: "api.acme.example").Spec);
        Assert.Same(serving, ExposureResources.RouteHolder([older, serving], route, Options));

        var tieA = Exp("a", "x", host: "api.acme.example");
        var tieB = Exp("a", "w", host: "api.acme.example");
        Assert.Same(tieB, ExposureResources.RouteHolder([tieA, tieB], route, Options));
        Assert.Null(ExposureResources.RouteHolder([Exp("c", "z", host: "other.example")], route, Options));
    }

    [Fact]
    public void Routes_ContendByOverlappingPrefix_AcrossWorkspaces_AndByTheSamePrefix_InsideOne()
    {
        var key = (string ns, string path) => new ExposureResources.RouteKey(ns, "api.acme.example", ExposureHosts.NormalPath(path));
        Assert.True(ExposureResources.Contend(key("a", "/orders"), key("b", "/orders/admin")));
        Assert.True(ExposureResources.Contend(key("a", "/orders"), key("b", "/")));
        Assert.True(ExposureResources.Contend(key("a", "/p"), key("a", "/p/")));
        Assert.False(ExposureResources.Contend(key("a", "/orders"), key("b", "/ordersx")));
        Assert.False(ExposureResources.Contend(key("a", "/orders"), key("a", "/orders/admin")));
        Assert.False(ExposureResources.Contend(key("a", "/orders"), new ExposureResources.RouteKey("b", "other.example", "/orders")));
    }

    [Theory]
    [InlineData("/x;}location /{return 200 pwned;}#")]
    [InlineData("/a b")]
    [InlineData("/a//b")]
    [InlineData("/a/../admin")]
    [InlineData("/a/./b")]
    [InlineData("/a%2e%2e/b")]
    [InlineData("/a?b")]
    [InlineData("/a\\b")]
    [InlineData("/a\"b")]
    [InlineData("orders")]
    public void PathProblem_RefusesUnsafeOrNonNormalPaths_NamingTheField(string path) =>
        Assert.StartsWith("spec.path: ", ExposureHosts.PathProblem(path));

    [Fact]
    public void Hosts_AreDelegatedToOneTenant_OrAWorkspacesDefaultDomain_NeverClaimed()
    {
        var platform = new ExposureOptions { Domain = "apps.example.com" };
        DomainDelegation[] delegations = [new("acme", "api.acme.example"), new("acme", "*.acme.example"), new("globex", "api.globex.example")];
        string? Problem(string host, string ws = "acme-dev", string tenant = "acme") => ExposureHosts.HostProblem(host, ws, tenant, delegations, platform);

        Assert.Null(Problem("api.acme.example"));
        Assert.Null(Problem("a.b.acme.example"));
        Assert.Null(Problem("*.eu.acme.example"));
        Assert.Null(Problem("orders.acme-dev.apps.example.com"));
        Assert.StartsWith("spec.host: \"api.globex.example\" is not delegated to tenant acme", Problem("api.globex.example"));
        Assert.StartsWith("spec.host: \"acme.example\" is not delegated", Problem("acme.example"));
        Assert.StartsWith("spec.host: \"login.example\" is not delegated", Problem("login.example"));
        Assert.Contains("is under the platform's domain", Problem("orders.globex-dev.apps.example.com"));
        Assert.Contains("is under the platform's domain", Problem("*.apps.example.com"));
        Assert.Contains("is under the platform's domain", Problem("*.acme-dev.apps.example.com"));
        Assert.Contains("is under the platform's domain", Problem("apps.example.com"));
        Assert.StartsWith("spec.host: \"" + new string('a', 64) + ".acme.example\" is not a DNS name", Problem(new string('a', 64) + ".acme.example"));
        Assert.Contains("is not a DNS name", Problem(string.Join('.', Enumerable.Repeat(new string('b', 60), 4)) + ".acme-dev.apps.example.com"));
        Assert.Contains("is also delegated to another tenant", ExposureHosts.HostProblem("x.acme.example", "acme-dev", "acme", [.. delegations, new("globex", "x.acme.example")], platform));

        var problems = ExposureHosts.DelegationProblems("globex", ["*.acme.example", "*.apps.example.com", "*.com", "ok.globex.example", "x.ok.globex.example", "*.ok.globex.example"],
            delegations, platform).ToList();
        Assert.Contains(problems, p => p.StartsWith("spec.exposure.allowedDomains[0]: \"*.acme.example\" overlaps \"api.acme.example\", delegated to tenant acme", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.exposure.allowedDomains[1]: \"*.apps.example.com\" reaches into the platform's default domain", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.exposure.allowedDomains[2]: \"*.com\" delegates a whole top-level domain", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.exposure.allowedDomains[5]: \"*.ok.globex.example\" overlaps spec.exposure.allowedDomains[4]", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.StartsWith("spec.exposure.allowedDomains[3]", StringComparison.Ordinal));
    }

    [Fact]
    public void BackendRefusal_OnlyAClusterIpServiceWithASelector()
    {
        var backend = new ExposureBackend { Service = "orders", Port = 8080 };
        Assert.Contains("is of type ExternalName", ExposureResources.BackendRefusal("ns", backend, new V1Service { Spec = new V1ServiceSpec { Type = "ExternalName", ExternalName = "kubernetes.default.svc.cluster.local" } }));
        Assert.Contains("has no selector", ExposureResources.BackendRefusal("ns", backend, new V1Service { Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 8080 }] } }));
        Assert.Null(ExposureResources.BackendRefusal("ns", backend, new V1Service { Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = "orders" } } }));
        Assert.Null(ExposureResources.BackendRefusal("ns", backend, null));
    }

    [Fact]
    public void JsonPatch_DiffsMemberByMember_EscapesNames_AndReplacesChangedArraysWhole()
    {
        var before = JsonNode.Parse("""{"a":1,"b":{"c":"x","d/e":[1,2]},"gone":true}""");
        var after = JsonNode.Parse("""{"a":1,"b":{"c":"y","d/e":[1,3]},"new":{"k":"v"}}""");
        var patch = JsonPatch.Diff(before, after).ToJsonString();
        Assert.Equal("""[{"op":"replace","path":"/b/c","value":"y"},{"op":"replace","path":"/b/d~1e","value":[1,3]},{"op":"remove","path":"/gone"},{"op":"add","path":"/new","value":{"k":"v"}}]""", patch);
        Assert.Empty(JsonPatch.Diff(before, before!.DeepClone()));
    }

    [Fact]
    public void Change_InAMetadataOnlyTenant_KeepsPathsAndHashes_NeverValues()
    {
        var live = Exp("orders", "ns", host: "partner-one.example").Spec;
        var next = Exp("orders", "ns", host: "partner-two.example").Spec;
        var full = ExposureResources.Change(live, next, metadataOnly: false);
        Assert.Contains("partner-two.example", full.ToJsonString());

        var hashed = ExposureResources.Change(live, next, metadataOnly: true);
        var text = hashed.ToJsonString();
        Assert.DoesNotContain("partner", text);
        var op = Assert.Single(hashed)!;
        Assert.Equal("/host", op["path"]!.GetValue<string>());
        Assert.Equal(SystemDatabase.Sha256Hex("\"partner-two.example\""), op["value"]!["sha256"]!.GetValue<string>());

        // The first publication is a patch from nothing: every field added.
        Assert.Contains(ExposureResources.Change(null, next, metadataOnly: false), o => o!["op"]!.GetValue<string>() == "add" && o["path"]!.GetValue<string>() == "/backend");
    }
}
