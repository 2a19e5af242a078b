using System.Net;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Admission;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Bad quantities, names, members and provider keys, and workspaces of a terminating tenant, sent
/// by a token user through the real API server and webhook: each is refused with the field named.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class AdmissionLimitsTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    /// <summary>A Workspace as raw JSON, so quantities reach the server exactly as an attacker writes them.</summary>
    static string WorkspaceJson(string name, string tenant, Action<JsonObject>? spec = null)
    {
        var s = new JsonObject { ["tenant"] = tenant, ["database"] = new JsonObject { ["enabled"] = false } };
        spec?.Invoke(s);
        return new JsonObject
        {
            ["apiVersion"] = ApiGroup.ApiVersion, ["kind"] = "Workspace", ["metadata"] = new JsonObject { ["name"] = name }, ["spec"] = s,
        }.ToJsonString();
    }

    static string TenantJson(string name, Action<JsonObject>? spec = null)
    {
        var s = new JsonObject { ["region"] = "eu" };
        spec?.Invoke(s);
        return new JsonObject { ["apiVersion"] = ApiGroup.ApiVersion, ["kind"] = "Tenant", ["metadata"] = new JsonObject { ["name"] = name }, ["spec"] = s }.ToJsonString();
    }

    static Task<string> PostAsync(KubeApi api, ResourceType type, string json) =>
        api.SendAsync(HttpMethod.Post, type.CollectionPath(null), json, "application/json", CancellationToken.None);

    static JsonObject Members(params (string Kind, string Name, string Role)[] members) => new()
    {
        ["members"] = new JsonArray(members.Select(m => (JsonNode)new JsonObject { ["kind"] = m.Kind, ["name"] = m.Name, ["role"] = m.Role }).ToArray()),
    };

    async Task<string> TenantAsync(Action<TenantSpec>? edit = null)
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant, edit: edit);
        return tenant;
    }

    [Fact]
    public async Task Quantities_NegativeOrHuge_AreRefused_NamingTheFieldAndTheBound()
    {
        var tenant = await TenantAsync(t => t.Quota = new TenantQuota { Cpu = new ResourceQuantity("64") });
        using var bob = As("bob");

        var negative = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(Unique(tenant), tenant, s => s["quota"] = new JsonObject { ["cpu"] = "-10" })));
        Assert.Contains("spec.quota.cpu", negative.StatusMessage);
        var negativeNumber = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(Unique(tenant), tenant, s => s["quota"] = new JsonObject { ["cpu"] = -10 })));
        Assert.Contains("spec.quota.cpu", negativeNumber.StatusMessage);

        var huge = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(Unique(tenant), tenant, s => s["quota"] = new JsonObject { ["cpu"] = "1e30" })));
        Assert.Contains("spec.quota.cpu: \"1e30\" is out of bounds", huge.StatusMessage);
        Assert.Contains("at most 1000000 cores", huge.StatusMessage);
        var hugeMemory = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(Unique(tenant), tenant, s => s["quota"] = new JsonObject { ["memory"] = "9Ei" })));
        Assert.Contains("spec.quota.memory: \"9Ei\" is out of bounds", hugeMemory.StatusMessage);
        Assert.Contains("9223372036854775807 bytes", hugeMemory.StatusMessage);

        // A tenant's own quota is bounded the same way.
        var hugeTenant = await Refused(() => PostAsync(bob, ClusterFixture.Tenants, TenantJson(Unique("t"), s => s["quota"] = new JsonObject { ["cpu"] = "1e30" })));
        Assert.Contains("spec.quota.cpu: \"1e30\" is out of bounds", hugeTenant.StatusMessage);

        // A sane workspace still passes, and raising it past the bound later is refused too.
        var name = Unique(tenant);
        await PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(name, tenant, s => s["quota"] = new JsonObject { ["cpu"] = "2" }));
        var raised = await Refused(() => bob.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, name, """{"spec":{"quota":{"cpu":"1e30"}}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.quota.cpu", raised.StatusMessage);
        Assert.Equal("2", (await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None)).Spec.Quota!.Cpu!.CanonicalizeString());
    }

    [Fact]
    public async Task Names_ThatAreNotDnsLabels_AreRefused_NamingMetadataName()
    {
        var tenant = await TenantAsync();
        using var bob = As("bob");
        var dotted = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson("dot." + Unique("ws"), tenant)));
        Assert.Contains("metadata.name", dotted.StatusMessage);
        Assert.Contains("DNS-1123 label", dotted.StatusMessage);

        var longName = new string('a', 94) + Guid.NewGuid().ToString("N")[..6];
        var tooLong = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(longName, tenant)));
        Assert.Contains("metadata.name", tooLong.StatusMessage);
        Assert.Contains("at most 63 characters", tooLong.StatusMessage);

        var dottedTenant = await Refused(() => PostAsync(bob, ClusterFixture.Tenants, TenantJson("dot." + Unique("t"))));
        Assert.Contains("metadata.name", dottedTenant.StatusMessage);
        Assert.Null(await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, longName, CancellationToken.None));
    }

    [Fact]
    public async Task Members_WithBadNamesOrDuplicated_AreRefused_NamingTheField()
    {
        var tenant = await TenantAsync();
        using var bob = As("bob");
        var badSa = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces,
            WorkspaceJson(Unique(tenant), tenant, s => s["members"] = Members(("ServiceAccount", "x/Bad_Name", "Operator"))["members"]!.DeepClone())));
        Assert.Contains("spec.members[0].name", badSa.StatusMessage);
        Assert.Contains("Bad_Name", badSa.StatusMessage);

        var control = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces,
            WorkspaceJson(Unique(tenant), tenant, s => s["members"] = Members(("User", "carol@example.com", "Auditor"), ("User", "bob\u0001@example.com", "Operator"))["members"]!.DeepClone())));
        Assert.Contains("spec.members[1].name", control.StatusMessage);
        Assert.Contains("control characters", control.StatusMessage);

        var duplicate = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces,
            WorkspaceJson(Unique(tenant), tenant, s => s["members"] = Members(("User", "carol@example.com", "Auditor"), ("User", "carol@example.com", "Auditor"))["members"]!.DeepClone())));
        Assert.Contains("spec.members[1]: duplicates spec.members[0]", duplicate.StatusMessage);

        // An update that adds a bad member to a workspace that was fine is refused the same way.
        var name = Unique(tenant);
        await PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(name, tenant, s => s["members"] = Members(("User", "carol@example.com", "Auditor"))["members"]!.DeepClone()));
        var added = await Refused(() => bob.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, name,
            """{"spec":{"members":[{"kind":"User","name":"carol@example.com","role":"Auditor"},{"kind":"ServiceAccount","name":"x/Bad_Name","role":"WorkspaceAdmin"}]}}""",
            PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.members[1].name", added.StatusMessage);
        var stored = await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        Assert.Single(stored.Spec.Members!);
    }

    [Fact]
    public async Task DuplicateProviderKeys_AreRefused_NamingTheEntry()
    {
        var tenant = await TenantAsync();
        using var bob = As("bob");
        JsonNode Key(string secret) => new JsonObject { ["provider"] = "openai", ["secretRef"] = new JsonObject { ["name"] = secret, ["key"] = "apiKey" } };
        var name = Unique(tenant);
        var twice = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(name, tenant, s => s["providerKeys"] = new JsonArray(Key("one"), Key("two")))));
        Assert.Contains("spec.providerKeys[1]", twice.StatusMessage);
        Assert.Null(await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None));
    }

    [Fact]
    public async Task ATerminatingTenant_ShowsTerminating_AndGetsNoNewWorkspace()
    {
        var tenant = await TenantAsync();
        await Cluster.WaitForTenantAsync(tenant, ClusterFixture.IsReady, "Ready");
        var first = Unique(tenant);
        await PostAsync(Cluster.Api, ClusterFixture.Workspaces, WorkspaceJson(first, tenant));
        await Cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant,
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.AllowDeleteAnnotation + "\":\"true\"}}}", PatchTypes.Merge, CancellationToken.None);
        await Cluster.Api.DeleteAsync(ClusterFixture.Tenants, null, tenant, CancellationToken.None);

        // Its finalizer holds it while the workspace remains; meanwhile it says so.
        var terminating = await Cluster.WaitForTenantAsync(tenant, t => t.Status?.Phase == TenantPhase.Terminating, "phase Terminating");
        Assert.NotNull(terminating.Metadata.DeletionTimestamp);

        using var bob = As("bob");
        var refused = await Refused(() => PostAsync(bob, ClusterFixture.Workspaces, WorkspaceJson(Unique(tenant), tenant)));
        Assert.Contains("spec.tenant", refused.StatusMessage);
        Assert.Contains("being deleted", refused.StatusMessage);

        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, first, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.GetTenantAsync(tenant) is null, TimeSpan.FromSeconds(120), $"tenant {tenant} gone");
    }
}
