using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Exposure publication end to end, on the real API server and Postgres with the whole operator
/// (webhooks included), every step made by a token user: bob (Operator) authors, carol, erin and
/// alice approve, dave (Auditor) watches, and a member of another tenant attacks.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class ExposureTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType Services = ExposureResources.Services;
    static readonly ResourceType Ingresses = ExposureResources.Ingresses;

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static string Email(string user) => user + "@example.com";

    /// <summary>
    /// A Ready workspace, of a new tenant unless one is named (that tenant is delegated *.&lt;workspace&gt;.example):
    /// bob Operator, carol, erin and alice Approvers, dave Auditor.
    /// </summary>
    async Task<(string Tenant, string Workspace)> WorkspaceAsync(string environment = "dev", string dataMode = "full", string? inTenant = null)
    {
        var tenant = inTenant ?? Unique("t");
        var name = Unique(tenant);
        if (inTenant is null)
        {
            await Cluster.CreateTenantAsync(tenant, edit: t =>
            {
                t.DataMode = dataMode;
                t.Exposure = new TenantExposure { AllowedDomains = [$"*.{name}.example"] };
            });
        }

        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Environment = environment;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members =
        [
            new WorkspaceMember { Kind = "User", Name = Email("bob"), Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("alice"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("dave"), Role = "Auditor" },
        ];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None))?.Status?.Phase == WorkspacePhase.Ready,
            TimeSpan.FromSeconds(30), $"workspace {name} Ready");
        return (tenant, name);
    }

    static V1Service Service(string name, int port) => new()
    {
        ApiVersion = "v1", Kind = "Service", Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = name }, Ports = [new V1ServicePort { Port = port, Protocol = "TCP" }] },
    };

    static Exposure NewExposure(string name, string path = "/orders", bool publish = true, string? host = null, string type = "REST") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new ExposureSpec
        {
            Type = type, Version = "v1", Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Path = path, Host = host, Publish = publish,
            RatePlan = new RatePlan { RequestsPerMinute = 600, Burst = 100, MonthlyQuota = 1000000 },
        },
    };

    static Approval NewApproval(string target, string decision = "approve") => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exposure", Name = target }, Decision = decision },
    };

    Task<Exposure> WaitForAsync(string ws, string name, Func<Exposure, bool> condition, string what) => ExposureWaits.WaitForAsync(Cluster.Api, ws, name, condition, what);

    static V1Condition? Condition(Exposure e, string type) => e.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    static bool Reason(Exposure e, string reason) => Condition(e, ExposureConditions.Ready)?.Reason == reason;

    Task<V1Ingress?> IngressAsync(string ws, string name) => Cluster.Api.TryGetAsync<V1Ingress>(Ingresses, ws, name, CancellationToken.None);

    Task<IReadOnlyList<ExposurePublication>> PublicationsAsync(Exposure e) => fixture.Runtime.Database.GetPublicationsAsync(e.Metadata.Uid!, CancellationToken.None);

    async Task<List<(string Action, string Severity, string Details)>> AuditAsync(string ws, string name)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action, severity, details::text FROM controlplane.audit_events WHERE kind = 'Exposure' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue($"{ws}/{name}");
        var rows = new List<(string, string, string)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        return rows;
    }

    [Fact]
    public async Task APublishedExposure_WaitsForApproval_AndAnEditStaysUnpublished_UntilApproved_ARejectedEditLeavesTheApprovedOneLive()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        using var erin = As("erin");
        await bob.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);

        var pending = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.PendingApproval, "PendingApproval");
        Assert.Equal("AwaitingApproval", Condition(pending, ExposureConditions.Ready)!.Reason);
        await LiveHealth.AssertAsync(Cluster.Api, Exposures, ws, "orders", "awaiting approval");
        Assert.Null(await IngressAsync(ws, "orders"));
        Assert.Null(pending.Status!.Endpoint);

        // The wait is audited once for generation 1, naming who may approve (approval.requested); a resync asks nothing again.
        var key = $"{ws}/orders";
        var ask = await ApprovalAskRows.OneAsync(Cluster.Postgres.ConnectionString(), "Exposure", key, "exposure.approval-requested");
        Assert.Equal(1, (int)ask["generation"]!);
        Assert.Equal(1, (int)ask["approvers"]!["required"]!);
        Assert.Equal(1, (int)ask["approvers"]!["stillNeeded"]!);
        Assert.Contains(ControlPlane.Operator.Policy.WorkspaceRoles.ClusterRoleName("Approver"), ask["approvers"]!["roles"]!.AsArray().Select(r => (string)r!));
        await ApprovalAskRows.ResyncWritesNothingToPostgresAsync(fixture.Runtime, $"exposure {key}");
        Assert.Single(await ApprovalAskRows.DetailsAsync(Cluster.Postgres.ConnectionString(), "Exposure", key, "exposure.approval-requested"));

        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var published = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");
        Assert.Equal(1, published.Status!.PublishedGeneration);
        Assert.Equal($"https://orders.{ws}.apps.example.com/orders", published.Status.Endpoint);
        Assert.Equal([Email("carol")], published.Status.Approvals!.Select(a => a.Approver));
        Assert.Equal("True", Condition(published, ExposureConditions.Ready)!.Status);
        var ingress = (await IngressAsync(ws, "orders"))!;
        Assert.Equal("nginx", ingress.Spec.IngressClassName);
        Assert.Equal($"orders.{ws}.apps.example.com", ingress.Spec.Rules.Single().Host);
        Assert.Equal("/orders", ingress.Spec.Rules.Single().Http.Paths.Single().Path);
        Assert.Equal("600", ingress.Metadata.Annotations[ExposureResources.LimitRpm]);
        Assert.Equal("1", ingress.Metadata.Annotations[ApiGroup.PublishedGenerationAnnotation]);
        Assert.Equal(published.Metadata.Uid, ingress.Metadata.OwnerReferences.Single(o => o.Controller == true).Uid);

        // bob edits: generation 2 waits; the Ingress keeps serving generation 1.
        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/orders-v2","ratePlan":{"requestsPerMinute":6000}}}""", PatchTypes.Merge, CancellationToken.None);
        var edited = await WaitForAsync(ws, "orders", e => e.Metadata.Generation == 2 && e.Status?.Phase == ExposurePhase.PendingApproval, "edit pending");
        Assert.Equal(1, edited.Status!.PublishedGeneration);
        Assert.Contains("generation 1 is live", Condition(edited, ExposureConditions.Ready)!.Message);
        var still = (await IngressAsync(ws, "orders"))!;
        Assert.Equal("/orders", still.Spec.Rules.Single().Http.Paths.Single().Path);
        Assert.Equal("600", still.Metadata.Annotations[ExposureResources.LimitRpm]);
        // The edit is a new ask, with the live generation named.
        var editAsk = await ApprovalAskRows.OneAsync(Cluster.Postgres.ConnectionString(), "Exposure", key, "exposure.approval-requested", d => (int)d["generation"]! == 2);
        Assert.Equal(1, (int)editAsk["liveGeneration"]!);

        // erin rejects the edit: any reject wins, and generation 1 stays live, said so.
        await erin.CreateAsync(Approvals, ws, NewApproval("orders", "reject"), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var rejected = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Rejected, "Rejected");
        Assert.Equal(1, rejected.Status!.PublishedGeneration);
        Assert.Equal("Rejected", Condition(rejected, ExposureConditions.Approved)!.Reason);
        Assert.Contains("generation 1 is live", Condition(rejected, ExposureConditions.Ready)!.Message);
        Assert.Contains(Email("erin"), Condition(rejected, ExposureConditions.Ready)!.Message);
        Assert.Equal("/orders", (await IngressAsync(ws, "orders"))!.Spec.Rules.Single().Http.Paths.Single().Path);

        // A third generation, approved, goes live; the record holds each published generation with its diff.
        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/orders-v3"}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Metadata.Generation == 3 && e.Status?.Phase == ExposurePhase.PendingApproval, "generation 3 pending");
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var v3 = await WaitForAsync(ws, "orders", e => e.Status?.PublishedGeneration == 3 && e.Status.Phase == ExposurePhase.Published, "generation 3 published");
        await Net.WaitUntilAsync(async () => (await IngressAsync(ws, "orders"))!.Spec.Rules.Single().Http.Paths.Single().Path == "/orders-v3",
            TimeSpan.FromSeconds(60), "ingress serves generation 3");

        var rows = await PublicationsAsync(v3);
        Assert.Equal([1L, 3L], rows.Select(r => r.Generation));
        Assert.All(rows, r => Assert.Equal("published", r.Action));
        Assert.Equal(Email("bob"), rows[0].Author);
        Assert.Equal([Email("carol")], rows[1].Approvers);
        Assert.False(rows[1].ValuesRedacted);
        // Against generation 1 (the last published), not the rejected 2: path and rate both changed back/forth.
        Assert.Contains(rows[1].Diff, op => op!["path"]!.GetValue<string>() == "/path" && op["value"]!.GetValue<string>() == "/orders-v3");
        var audit = await AuditAsync(ws, "orders");
        Assert.Equal(["exposure.approval-requested", "exposure.published", "exposure.approval-requested", "exposure.rejected", "exposure.approval-requested", "exposure.published"],
            audit.Select(a => a.Action));
    }

    [Fact]
    public async Task InProd_PublicationNeedsTwoDistinctApprovers_NeverTheAuthor()
    {
        var (_, ws) = await WorkspaceAsync("prod");
        using var carol = As("carol");
        using var erin = As("erin");
        using var alice = As("alice");
        await Cluster.Api.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        // carol (an Approver) authors it: her own approval is refused at admission.
        await carol.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        var self = await Assert.ThrowsAsync<KubeApiException>(() => carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None));
        Assert.Contains("self-approval", self.StatusMessage);

        await erin.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await erin.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var one = await WaitForAsync(ws, "orders", e => Condition(e, ExposureConditions.Approved)?.Message.Contains("1 of 2") == true, "1 of 2");
        Assert.Equal(ExposurePhase.PendingApproval, one.Status!.Phase);
        Assert.Null(await IngressAsync(ws, "orders"));

        await alice.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var published = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");
        Assert.Equal([Email("alice"), Email("erin")], published.Status!.Approvals!.Select(a => a.Approver));
        Assert.NotNull(await IngressAsync(ws, "orders"));
    }

    [Fact]
    public async Task AMissingBackend_PublishesNothing_UntilTheServiceAndItsPortExist()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var missing = await WaitForAsync(ws, "orders", e => Reason(e, "BackendNotFound"), "BackendNotFound");
        Assert.Contains("spec.backend.service: Service orders does not exist", Condition(missing, ExposureConditions.Ready)!.Message);
        Assert.Null(await IngressAsync(ws, "orders"));

        await bob.CreateAsync(Services, ws, Service("orders", 80), CancellationToken.None);
        var wrongPort = await WaitForAsync(ws, "orders", e => Condition(e, ExposureConditions.Ready)?.Message.Contains("spec.backend.port") == true, "port named");
        Assert.Contains("has no port 8080 (its ports: 80)", Condition(wrongPort, ExposureConditions.Ready)!.Message);
        Assert.Null(await IngressAsync(ws, "orders"));

        await bob.DeleteAsync(Services, ws, "orders", CancellationToken.None);
        await bob.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published once the backend exists");
        Assert.NotNull(await IngressAsync(ws, "orders"));
    }

    [Fact]
    public async Task HostAndPath_AreUniqueAcrossTheCluster_ASecondClaimIsRefused_AnotherTenantCannotUseTheHostAtAll()
    {
        var (tenant, first) = await WorkspaceAsync();
        var (_, second) = await WorkspaceAsync(inTenant: tenant);
        var (_, foreign) = await WorkspaceAsync();
        var host = $"api.{first}.example";
        using var bob = As("bob");
        await bob.CreateAsync(Exposures, first, NewExposure("orders", host: host), CancellationToken.None);

        var refused = await Assert.ThrowsAsync<KubeApiException>(() => bob.CreateAsync(Exposures, second, NewExposure("shop", host: host), CancellationToken.None));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains($"spec.host/spec.path: {host}/orders is already claimed by Exposure {first}/orders", refused.StatusMessage);
        var theirs = await Assert.ThrowsAsync<KubeApiException>(() => bob.CreateAsync(Exposures, foreign, NewExposure("shop", path: "/shop", host: host), CancellationToken.None));
        Assert.Contains($"spec.host: \"{host}\" is not delegated to tenant", theirs.StatusMessage);

        // Another path on the same host is a different route; moving onto the claimed one is refused too.
        await bob.CreateAsync(Exposures, second, NewExposure("shop", path: "/shop", host: host), CancellationToken.None);
        var moved = await Assert.ThrowsAsync<KubeApiException>(() =>
            bob.PatchAsync<Exposure>(Exposures, second, "shop", """{"spec":{"path":"/orders"}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("already claimed", moved.StatusMessage);

        // Not outside a workspace's namespace either.
        var outside = await Assert.ThrowsAsync<KubeApiException>(() => Cluster.Api.CreateAsync(Exposures, "default", NewExposure("stray", path: "/stray"), CancellationToken.None));
        Assert.Contains("metadata.namespace: \"default\" is not the namespace of a workspace", outside.StatusMessage);
    }

    [Fact]
    public async Task Unpublishing_AndDeleting_TakeTheIngressDown_Recorded()
    {
        var (_, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var published = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");
        Assert.Contains(ApiGroup.Finalizer, published.Metadata.Finalizers);

        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"publish":false}}""", PatchTypes.Merge, CancellationToken.None);
        var draft = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Draft, "Draft");
        await LiveHealth.AssertAsync(Cluster.Api, Exposures, ws, "orders", "draft (spec.publish false)");
        Assert.Null(draft.Status!.PublishedGeneration);
        Assert.Null(draft.Status.Endpoint);
        await Net.WaitUntilAsync(async () => await IngressAsync(ws, "orders") is null, TimeSpan.FromSeconds(60), "ingress removed");

        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"publish":true}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.PendingApproval, "pending again");
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "published again");
        Assert.NotNull(await IngressAsync(ws, "orders"));

        await bob.DeleteAsync(Exposures, ws, "orders", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<Exposure>(Exposures, ws, "orders", CancellationToken.None) is null,
            TimeSpan.FromSeconds(30), "exposure finalized");
        Assert.Null(await IngressAsync(ws, "orders"));
        var rows = await PublicationsAsync(published);
        Assert.Equal(["published 1", "unpublished 1", "published 3", "unpublished 3"], rows.Select(r => $"{r.Action} {r.Generation}"));
        Assert.Equal(["Unpublished", "Deleted"], rows.Where(r => r.Action == "unpublished").Select(r => r.Reason));
        var audit = await AuditAsync(ws, "orders");
        Assert.Equal(2, audit.Count(a => a.Action == "exposure.unpublished"));
    }

    [Fact]
    public async Task ASuspendedTenant_PublishesNothingNew_WhatIsLiveStays_AndSaysWhy()
    {
        var (tenant, ws) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");

        await Cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant, """{"spec":{"suspended":true}}""", PatchTypes.Merge, CancellationToken.None);
        var suspended = await WaitForAsync(ws, "orders", e => Reason(e, "TenantSuspended"), "TenantSuspended");
        Assert.Contains("generation 1 is live", Condition(suspended, ExposureConditions.Ready)!.Message);

        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/v2"}}""", PatchTypes.Merge, CancellationToken.None);
        // The webhook fills targetGeneration from its cache: approve once generation 2 has been seen.
        await WaitForAsync(ws, "orders", e => e.Metadata.Generation == 2, "the edit seen");
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var approved = await WaitForAsync(ws, "orders", e => e.Metadata.Generation == 2 && Condition(e, ExposureConditions.Approved)?.Status == "True", "edit approved");
        Assert.Equal("TenantSuspended", Condition(approved, ExposureConditions.Ready)!.Reason);
        Assert.Equal(1, approved.Status!.PublishedGeneration);
        Assert.Equal("/orders", (await IngressAsync(ws, "orders"))!.Spec.Rules.Single().Http.Paths.Single().Path);

        await Cluster.Api.PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant, """{"spec":{"suspended":false}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.PublishedGeneration == 2, "published once resumed");
    }

    [Fact]
    public async Task InAMetadataOnlyTenant_TheRecordKeepsHashesOfChangedValues_NeverTheValues()
    {
        var (_, ws) = await WorkspaceAsync(dataMode: "metadataOnly");
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        await bob.CreateAsync(Exposures, ws, NewExposure("orders", host: $"secret-partner.{ws}.example"), CancellationToken.None);
        await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var published = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");

        var row = (await PublicationsAsync(published)).Single();
        Assert.True(row.ValuesRedacted);
        var diff = row.Diff.ToJsonString();
        Assert.DoesNotContain("secret-partner", diff);
        Assert.DoesNotContain("/orders", diff.Replace("\"path\":\"/", "", StringComparison.Ordinal));
        Assert.Contains(row.Diff, op => op!["path"]!.GetValue<string>() == "/host" && op["value"]!["sha256"] is not null);
        Assert.All(await AuditAsync(ws, "orders"), a => Assert.DoesNotContain("secret-partner", a.Details));
    }

    [Fact]
    public async Task Attacks_ForgedStatus_RawIngress_AndAnApproverOfAnotherTenant_AreRefused()
    {
        var (_, ws) = await WorkspaceAsync();
        var (_, other) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Services, ws, Service("orders", 8080), CancellationToken.None);
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.PendingApproval, "PendingApproval");

        // bob writes "published" into status himself: the status subresource is the operator's.
        var forged = await Assert.ThrowsAsync<KubeApiException>(() => bob.PatchAsync<Exposure>(Exposures, ws, "orders",
            """{"status":{"phase":"Published","publishedGeneration":1,"publishedSpec":{"type":"REST","version":"v1","backend":{"service":"orders","port":8080},"path":"/"}}}""",
            PatchTypes.Merge, CancellationToken.None, "status"));
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);

        // bob publishes around the approval with a raw Ingress: refused by RBAC, whatever he names.
        var raw = new V1Ingress
        {
            Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new V1IngressSpec { Rules = [new V1IngressRule { Host = "orders.example" }] },
        };
        await Assert.ThrowsAsync<KubeApiException>(() => bob.CreateAsync(Ingresses, ws, raw, CancellationToken.None));

        // carol is an Approver of the other tenant's workspace only: her approval here does not count.
        var w = await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        var members = k8s.KubernetesJson.Serialize(w.Spec.Members!.Where(m => m.Name != Email("carol")).ToList());
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, "{\"spec\":{\"members\":" + members + "}}", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.ListAsync<V1RoleBinding>(WorkspaceReconciler.RoleBindings, ws, null, 100, null, CancellationToken.None)).Items
            .All(b => b.Subjects?.Any(s => s.Name == Email("carol")) != true), TimeSpan.FromSeconds(30), "carol unbound");
        await Assert.ThrowsAsync<KubeApiException>(() => carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None));
        var stillPending = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.PendingApproval, "still pending");
        Assert.Null(stillPending.Status!.PublishedGeneration);
        Assert.Null(await IngressAsync(ws, "orders"));
        Assert.NotNull(other);
    }
}
