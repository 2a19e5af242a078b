using System.Text.Json.Nodes;
using ControlPlane.Operator.AuditApi;
using ControlPlane.Operator.Store;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The audit API's pure parts (docs/audit-api.md): the hash rule clients use, verification, selectors, objects, front-proxy headers.</summary>
public sealed class AuditApiUnitTests
{
    static readonly DateTime At = new(2026, 12, 7, 13, 20, 0, 123, 456, DateTimeKind.Utc);

    static AuditEntry Entry(string actor = "alice@acme.io") =>
        new(actor, "workspace.created", "Workspace", "acme-dev", "acme", new JsonObject { ["z"] = 1, ["a"] = new JsonObject { ["y"] = "ünï <&>", ["b"] = true } });

    [Fact]
    public void TheServedEventObject_HashesAsTheStoreChainsIt()
    {
        // What a client recomputes from the API object equals what the append computed: one rule.
        var e = Entry();
        Assert.Equal(SystemDatabase.ChainHash("prev", At, e), AuditLog.Hash("prev", AuditLog.AuditEvent(At, e)));
        var d = new DeploymentEvent("uid", "acme-prod", "checkout", "acme", "corr", 3, "PhaseChanged", "Pending", null, null, "bob@acme.io", "Approved",
            new JsonObject { ["k"] = "v" }, "dedupe");
        Assert.Equal(DeploymentEventStore.ChainHash("", At, d), AuditLog.Hash("", AuditLog.DeploymentEventObject(At, d)));
        // Serialised and parsed again (what travels through the API server), the hash is the same.
        Assert.Equal(SystemDatabase.ChainHash("p", At, e), AuditLog.Hash("p", JsonNode.Parse(AuditLog.AuditEvent(At, e).ToJsonString())!));
    }

    static AuditRecord Row(long id, string prev, string? tenant, long? seq, string? tenantPrev, string actor = "alice@acme.io", string? tenantHashOverride = null)
    {
        var ev = AuditLog.AuditEvent(At, Entry(actor));
        var original = AuditLog.AuditEvent(At, Entry());
        return new AuditRecord(id, At, "acme-dev", "acme-dev", ev, prev, AuditLog.Hash(prev, original), tenant, seq, tenantPrev,
            tenant is null ? null : tenantHashOverride ?? AuditLog.Hash(tenantPrev!, original), new Dictionary<string, string?>());
    }

    [Fact]
    public void Verification_FindsAChangedRow_AGap_AndAWrongLink()
    {
        var heads = new Dictionary<string, TenantLink>();
        var first = Row(1, "", "acme", 1, "");
        Assert.Null(AuditVerification.Check(first, "", heads));
        heads["acme"] = new TenantLink("acme", 1, first.TenantHash!);

        Assert.Null(AuditVerification.Check(Row(2, first.Hash, "acme", 2, first.TenantHash), first.Hash, heads));
        Assert.Contains("does not match its content", AuditVerification.Check(Row(2, first.Hash, "acme", 2, first.TenantHash, actor: "mallory"), first.Hash, heads));
        Assert.Contains("prevHash", AuditVerification.Check(Row(2, "forged", "acme", 2, first.TenantHash), first.Hash, heads));
        Assert.Contains("sequence 3 follows 1", AuditVerification.Check(Row(2, first.Hash, "acme", 3, first.TenantHash), first.Hash, heads));
        Assert.Contains("tenant hash", AuditVerification.Check(Row(2, first.Hash, "acme", 2, first.TenantHash, tenantHashOverride: "0"), first.Hash, heads));
        // Another tenant's chain starts at 1 whatever acme's is.
        Assert.Null(AuditVerification.Check(Row(2, first.Hash, "globex", 1, ""), first.Hash, heads));
        // A row before migration 0009 (no tenant chain) is checked on the global chain only.
        Assert.Null(AuditVerification.Check(Row(2, first.Hash, null, null, null), first.Hash, heads));
    }

    [Theory]
    [InlineData("Workspace", "acme-dev", "acme-dev")]
    [InlineData("Rollout", "acme-dev/web", "acme-dev")]
    [InlineData("Tenant", "acme", null)]
    public void ARow_IsServedInTheWorkspaceItIsAbout(string kind, string objectName, string? workspace)
    {
        Assert.Equal(workspace, TenantChains.WorkspaceOf(kind, objectName));
    }

    [Fact]
    public void Selectors_BecomeConditionsOnKnownColumns()
    {
        var c = Selectors.Parse(AuditTable.AuditEvents,
            "audit.controlplane.io/action in (a.b, c),audit.controlplane.io/kind!=Tenant,!audit.controlplane.io/severity,other/key=x",
            "actor=bob@acme.io,since=2026-12-01T00:00:00Z,metadata.namespace==acme-dev");
        Assert.Equal(7, c.Count);
        Assert.Equal(("a.action", "in"), (c[0].Column, c[0].Op));
        Assert.Equal(["a.b", "c"], c[0].Values);
        Assert.Equal(("a.kind", "!="), (c[1].Column, c[1].Op));
        Assert.Equal(("a.severity", "!exists"), (c[2].Column, c[2].Op));
        Assert.Null(c[3].Column); // a label no row carries
        Assert.Equal(("a.actor", "=", "bob@acme.io"), (c[4].Column, c[4].Op, c[4].Values[0]));
        Assert.Equal(">=time", c[5].Op);
        Assert.Equal("$namespace", c[6].Column);
    }

    [Theory]
    [InlineData(null, "colour=red", "colour")]
    [InlineData(null, "since=yesterday", "since")]
    [InlineData(null, "actor", "actor")]
    [InlineData("audit.controlplane.io/action in a,b", null, "parentheses")]
    public void ABadSelector_IsRefused_NamingWhatIsWrong(string? labels, string? fields, string named)
    {
        var e = Assert.Throws<SelectorException>(() => Selectors.Parse(AuditTable.AuditEvents, labels, fields));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Objects_CarryTheChains_AndLabelsOnlyWhereALabelCanHoldTheValue()
    {
        var ev = AuditLog.AuditEvent(At, Entry());
        var row = new AuditRecord(42, At, "acme-dev", "acme-dev", ev, "p", "aa".PadRight(64, '0'), "acme", 7, "tp", "th", new Dictionary<string, string?>
        {
            ["audit.controlplane.io/tenant"] = "acme",
            ["audit.controlplane.io/action"] = new string('x', 64),
        });
        var o = AuditObjects.Object(AuditObjects.AuditEvents, row);
        Assert.Equal("42", o["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal("42", o["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal(7, o["tenantChain"]!["sequence"]!.GetValue<long>());
        Assert.Equal("acme", o["metadata"]!["labels"]!["audit.controlplane.io/tenant"]!.GetValue<string>());
        Assert.Null(o["metadata"]!["labels"]!["audit.controlplane.io/action"]);
        Assert.True(JsonNode.DeepEquals(ev, o["event"]));

        var table = AuditObjects.Table(AuditObjects.AuditEvents, [row], 42, "next", "v1", "Metadata");
        Assert.Equal("meta.k8s.io/v1", table["apiVersion"]!.GetValue<string>());
        Assert.Equal("next", table["metadata"]!["continue"]!.GetValue<string>());
        var cells = table["rows"]![0]!["cells"]!.AsArray();
        Assert.Equal(table["columnDefinitions"]!.AsArray().Count, cells.Count);
        Assert.Equal("PartialObjectMetadata", table["rows"]![0]!["object"]!["kind"]!.GetValue<string>());
    }

    [Fact]
    public void TheTableVersion_IsReadFromAccept()
    {
        HttpContext With(string accept)
        {
            var http = new DefaultHttpContext();
            http.Request.Headers.Accept = accept;
            return http;
        }

        Assert.Equal("v1", AuditApiServer.TableRequest(With("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")));
        Assert.Equal("v1beta1", AuditApiServer.TableRequest(With("application/json;as=Table;v=v1beta1;g=meta.k8s.io")));
        Assert.Null(AuditApiServer.TableRequest(With("application/json")));
    }

    [Fact]
    public void TheFrontProxysHeaders_NameTheUser_OnlyThroughTheConfiguredNames()
    {
        var settings = new FrontProxySettings([], [], ["X-Remote-User"], ["X-Remote-Group"], ["X-Remote-Extra-"]);
        var headers = new HeaderDictionary
        {
            ["X-Remote-User"] = "bob@acme.io",
            ["X-Remote-Group"] = new(["devs", "system:authenticated"]),
            ["X-Remote-Extra-Scopes%2fone"] = "a",
            ["Impersonate-User"] = "admin",
        };
        var user = FrontProxy.UserOf(headers, settings)!;
        Assert.Equal("bob@acme.io", user.Name);
        Assert.Equal(["devs", "system:authenticated"], user.Groups);
        Assert.Equal(["a"], user.Extra["scopes/one"]);
        Assert.Null(FrontProxy.UserOf(new HeaderDictionary { ["Impersonate-User"] = "admin" }, settings));
        // No certificate, or no settings yet: never the front proxy.
        Assert.False(FrontProxy.IsFrontProxy(null, settings));
    }

    [Fact]
    public void TheApiService_NamesTheServiceAndCarriesTheCa()
    {
        var o = AuditApiService.Desired(new AuditApiOptions { ServiceNamespace = "cp", ServiceName = "svc", ServicePort = 8443 }, "PEM");
        Assert.Equal("v1alpha1.audit.controlplane.io", o["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal("svc", o["spec"]!["service"]!["name"]!.GetValue<string>());
        Assert.Equal(8443, o["spec"]!["service"]!["port"]!.GetValue<int>());
        Assert.Equal(Convert.ToBase64String("PEM"u8.ToArray()), o["spec"]!["caBundle"]!.GetValue<string>());
    }

    [Fact]
    public void ARowsDetails_ChangedToNullOrAnArray_AreReadAsAMarker_WhoseHashDoesNotVerify_NeverAThrow()
    {
        Assert.Equal("{\"a\":1}", ControlPlane.Operator.Store.SystemDatabase.DetailsOf("{\"a\":1}").ToJsonString());
        foreach (var tampered in new[] { "null", "[1,2]", "7" })
        {
            var read = ControlPlane.Operator.Store.SystemDatabase.DetailsOf(tampered);
            Assert.Equal(tampered, read["notAnObject"]!.GetValue<string>());
            Assert.NotEqual(ControlPlane.Operator.Store.SystemDatabase.Canonical(System.Text.Json.Nodes.JsonNode.Parse(tampered)), ControlPlane.Operator.Store.SystemDatabase.Canonical(read));
        }
    }
}
