using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The Exposure reconciler's own guards, with no admission webhook in front (as if it were bypassed
/// or down): two claims on one route that slipped in together, an Ingress edited by hand, a status
/// copy that differs from the record, a foreign Ingress under our name; and zero writes when idle.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ExposureReconcileTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    const string Approver = "carol@example.com";

    /// <summary>
    /// A Ready workspace with carol as Approver and a Service "orders" on 8080; a new tenant (when none
    /// is named) is delegated *.&lt;workspace&gt;.example (<see cref="HostIn"/>), unique to it.
    /// </summary>
    async Task<string> WorkspaceAsync(string? tenant = null)
    {
        var fresh = tenant is null;
        tenant ??= Unique("t");
        var name = Unique(tenant);
        if (fresh) await cluster.CreateTenantAsync(tenant, edit: t => t.Exposure = new TenantExposure { AllowedDomains = [$"*.{name}.example"] });

        await cluster.CreateWorkspaceAsync(name, tenant, w =>
        {
            w.Database = new WorkspaceDatabase { Enabled = false };
            w.Members = [new WorkspaceMember { Kind = "User", Name = Approver, Role = "Approver" }];
        });
        await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        await cluster.Api.CreateAsync(ExposureResources.Services, name, new V1Service
        {
            ApiVersion = "v1", Kind = "Service", Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = "orders" }, Ports = [new V1ServicePort { Port = 8080 }] },
        }, CancellationToken.None);
        return name;
    }

    /// <summary>A host under the delegation of the tenant <paramref name="ws"/> was created with.</summary>
    static string HostIn(string ws, string prefix) => $"{Unique(prefix)}.{ws}.example";

    async Task<Exposure> CreateAsync(string ws, string name, string host, string path = "/api")
    {
        var e = new Exposure
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new ExposureSpec { Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Host = host, Path = path, Publish = true },
        };
        return await cluster.Api.CreateAsync(Exposures, ws, e, CancellationToken.None);
    }

    /// <summary>What the webhook would have stamped, written by hand (no webhook runs in this collection).</summary>
    async Task ApproveAsync(Exposure target)
    {
        var approval = new Approval
        {
            Metadata = new V1ObjectMeta
            {
                Name = Unique("apr"),
                Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) },
            },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "Exposure", Name = target.Metadata.Name },
                Approver = Approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation,
            },
        };
        await cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, approval, CancellationToken.None);
    }

    Task<Exposure> WaitForAsync(string ws, string name, Func<Exposure, bool> condition, string what) => ExposureWaits.WaitForAsync(cluster.Api, ws, name, condition, what);

    static string? ReadyReason(Exposure e) => ExposureWaits.ReadyReason(e);

    Task<V1Ingress?> IngressAsync(string ws, string name) => cluster.Api.TryGetAsync<V1Ingress>(ExposureResources.Ingresses, ws, name, CancellationToken.None);

    async Task<long> SecurityAuditCountAsync(string objectName, string action)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM controlplane.audit_events WHERE object_name = $1 AND action = $2 AND severity = 'security'", conn);
        cmd.Parameters.AddWithValue(objectName);
        cmd.Parameters.AddWithValue(action);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task TwoClaimsOnOneRoute_ThatSlippedPastAdmission_OnlyTheFirstIsPublished_TheOtherIsAConflict()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        // Two workspaces of one tenant (a delegated host is that tenant's alone).
        var a = await WorkspaceAsync();
        var b = await WorkspaceAsync(a[..a.LastIndexOf('-')]);
        var host = HostIn(a, "shared");
        var first = await CreateAsync(a, "orders", host);
        var second = await CreateAsync(b, "shop", host);
        await ApproveAsync(first);
        await ApproveAsync(second);

        // Created within the same second (creation times have one-second precision): which one holds the
        // route is settled by name then; either way exactly one is published and the other is a Conflict.
        (string Ns, string Name, string OtherNs, string Other)? settled = null;
        await Net.WaitUntilAsync(async () =>
        {
            var x = await cluster.Api.GetAsync<Exposure>(Exposures, a, "orders", CancellationToken.None);
            var y = await cluster.Api.GetAsync<Exposure>(Exposures, b, "shop", CancellationToken.None);
            settled = x.Status?.Phase == ExposurePhase.Published && ReadyReason(y) == "Conflict" ? (a, "orders", b, "shop")
                : y.Status?.Phase == ExposurePhase.Published && ReadyReason(x) == "Conflict" ? (b, "shop", a, "orders")
                : null;
            return settled is not null;
        }, TimeSpan.FromSeconds(30), "one published, the other in conflict");
        var holder = settled!.Value;
        var conflict = await cluster.Api.GetAsync<Exposure>(Exposures, holder.OtherNs, holder.Other, CancellationToken.None);
        Assert.Contains($"{host}/api is already claimed by Exposure {holder.Ns}/{holder.Name}", conflict.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        Assert.Null(await IngressAsync(holder.OtherNs, holder.Other));
        await Net.WaitUntilAsync(async () => await SecurityAuditCountAsync($"{holder.OtherNs}/{holder.Other}", "exposure.refused") == 1, TimeSpan.FromSeconds(60), "conflict audited");

        // The holder leaves: the other one's claim is settled and it goes live.
        await cluster.Api.DeleteAsync(Exposures, holder.Ns, holder.Name, CancellationToken.None);
        await WaitForAsync(holder.OtherNs, holder.Other, e => e.Status?.Phase == ExposurePhase.Published, "the other published once the route is free");
        Assert.NotNull(await IngressAsync(holder.OtherNs, holder.Other));
    }

    [Fact]
    public async Task WhatAdmissionRefuses_ThatSlippedPastIt_IsRefusedAtReconcile_ForeignHosts_UnsafePaths_OverlappingPrefixes()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var a = await WorkspaceAsync();
        var b = await WorkspaceAsync(a[..a.LastIndexOf('-')]);
        var other = await WorkspaceAsync();
        var host = HostIn(a, "api");
        var holder = await CreateAsync(a, "orders", host, "/orders");
        await ApproveAsync(holder);
        await WaitForAsync(a, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");

        // Another workspace nests under the live prefix; another tenant uses the host; a path carries nginx configuration.
        var nested = await CreateAsync(b, "admin", host, "/orders/admin");
        var foreign = await CreateAsync(other, "grab", host, "/grab");
        var injected = await CreateAsync(other, "inject", HostIn(other, "x"), "/x;}location /{return 200 pwned;}#");
        foreach (var e in new[] { nested, foreign, injected }) await ApproveAsync(e);

        var conflict = await WaitForAsync(b, "admin", e => ReadyReason(e) == "Conflict", "Conflict");
        Assert.Contains($"{host}/orders/admin overlaps a prefix held by Exposure {a}/orders", conflict.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        var notDelegated = await WaitForAsync(other, "grab", e => ReadyReason(e) == "HostNotDelegated", "HostNotDelegated");
        Assert.Contains($"spec.host: \"{host}\" is not delegated to tenant", notDelegated.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        var invalid = await WaitForAsync(other, "inject", e => ReadyReason(e) == "InvalidPath", "InvalidPath");
        Assert.StartsWith("spec.path: ", invalid.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        Assert.Null(await IngressAsync(b, "admin"));
        Assert.Null(await IngressAsync(other, "grab"));
        Assert.Null(await IngressAsync(other, "inject"));
        Assert.Equal("/orders", (await IngressAsync(a, "orders"))!.Spec.Rules.Single().Http.Paths.Single().Path);
    }

    [Fact]
    public async Task ANameLongerThanALabelValue_ThatSlippedPastAdmission_IsInvalidName_NotAnEndlessReconcileError()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ws = await WorkspaceAsync();
        var name = "orders-" + new string('a', 60);
        var e = await CreateAsync(ws, name, HostIn(ws, "api"));
        await ApproveAsync(e);
        var invalid = await WaitForAsync(ws, name, x => ReadyReason(x) == "InvalidName", "InvalidName");
        Assert.StartsWith("metadata.name: 67 characters, at most 63", invalid.Status!.Conditions!.Single(c => c.Type == "Ready").Message);
        Assert.Null(await IngressAsync(ws, name));
    }

    [Fact]
    public async Task AnIngressEditedByHand_IsRestoredToTheApprovedGeneration_AndAForgedStatusCopyIsNeverServed()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ws = await WorkspaceAsync();
        var exposure = await CreateAsync(ws, "orders", HostIn(ws, "drift"));
        await ApproveAsync(exposure);
        var published = await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");

        // A cluster admin points the Ingress elsewhere: repaired.
        await cluster.Api.PatchAsync<V1Ingress>(ExposureResources.Ingresses, ws, "orders",
            """{"spec":{"rules":[{"host":"evil.example","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"exfiltrate","port":{"number":9999}}}}]}}]}}""",
            PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await IngressAsync(ws, "orders"))!.Spec.Rules.Single().Host == published.Spec.Host, TimeSpan.FromSeconds(60), "ingress repaired");

        // Someone with status rights rewrites the approved copy: it differs from the record, so it is not served.
        var forged = k8s.KubernetesJson.Serialize(new ExposureSpec { Backend = new ExposureBackend { Service = "exfiltrate", Port = 9999 }, Host = "evil.example", Path = "/" });
        await cluster.Api.PatchAsync<Exposure>(Exposures, ws, "orders", "{\"status\":{\"publishedSpec\":" + forged + "}}", PatchTypes.Merge, CancellationToken.None, "status");
        // A status-only change starts no reconcile (that is every status echo); the next periodic resync does.
        // Resynced until it is seen: a resync before the operator's cache has the forged copy finds nothing to refuse.
        Exposure? refused = null;
        await Net.WaitUntilAsync(async () =>
        {
            op.Runtime.ResyncAll();
            refused = await cluster.Api.GetAsync<Exposure>(Exposures, ws, "orders", CancellationToken.None);
            return ReadyReason(refused) == "PublishedSpecMismatch";
        }, TimeSpan.FromSeconds(30), "forged copy refused");
        Assert.Equal("False", refused!.Status!.Conditions!.Single(c => c.Type == "Ready").Status);
        var ingress = (await IngressAsync(ws, "orders"))!;
        Assert.Equal(published.Spec.Host, ingress.Spec.Rules.Single().Host);
        Assert.Equal("orders", ingress.Spec.Rules.Single().Http.Paths.Single().Backend.Service.Name);
    }

    [Fact]
    public async Task AForeignIngressUnderTheExposuresName_IsNotAdopted_AndNothingIsPublished()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ws = await WorkspaceAsync();
        await cluster.Api.CreateAsync(ExposureResources.Ingresses, ws, new V1Ingress
        {
            Metadata = new V1ObjectMeta { Name = "orders", Labels = new Dictionary<string, string> { [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue } },
            Spec = new V1IngressSpec { Rules = [new V1IngressRule { Host = "theirs.example" }] },
        }, CancellationToken.None);
        var exposure = await CreateAsync(ws, "orders", HostIn(ws, "foreign"));
        await ApproveAsync(exposure);
        var refused = await WaitForAsync(ws, "orders", e => ReadyReason(e) == "IngressConflict", "IngressConflict");
        Assert.Null(refused.Status!.PublishedGeneration);
        Assert.Equal("theirs.example", (await IngressAsync(ws, "orders"))!.Spec.Rules.Single().Host);

        // Deleting the Exposure leaves the Ingress it never owned.
        await cluster.Api.DeleteAsync(Exposures, ws, "orders", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<Exposure>(Exposures, ws, "orders", CancellationToken.None) is null,
            TimeSpan.FromSeconds(120), "exposure gone");
        Assert.NotNull(await IngressAsync(ws, "orders"));
    }

    [Fact]
    public async Task UnchangedExposures_ReconcileWithZeroWrites_ToTheApiServerAndToPostgres()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ws = await WorkspaceAsync();
        var published = await CreateAsync(ws, "orders", HostIn(ws, "idle"));
        await ApproveAsync(published);
        var pending = await CreateAsync(ws, "pending", HostIn(ws, "idle"));
        await WaitForAsync(ws, "orders", e => e.Status?.Phase == ExposurePhase.Published, "Published");
        await WaitForAsync(ws, "pending", e => e.Status?.Phase == ExposurePhase.PendingApproval, "PendingApproval");
        Assert.NotNull(pending);
        await op.WaitUntilIdleAsync();

        // Only the exposure controller resyncs (other kinds' leftovers of earlier tests in this collection keep their own pace).
        var controller = op.Runtime.Controllers.Single(c => c.Name == "exposure");
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        void Count(string c, string key, string result)
        {
            if (c == "exposure" && key.StartsWith(ws + "/", StringComparison.Ordinal)) seen.AddOrUpdate(key, 1, (_, n) => n + 1);
        }

        op.Runtime.Reconciled += Count;
        async Task ResyncAsync()
        {
            var target = seen.Values.Sum() + 2;
            controller.ResyncNow();
            await Net.WaitUntilAsync(() => Task.FromResult(seen.Values.Sum() >= target), TimeSpan.FromSeconds(20), "both exposures reconciled again");
        }

        await ResyncAsync();
        var before = (Api: op.Requests.Writes, Db: op.Runtime.Database.Writes);
        await ResyncAsync();
        await ResyncAsync();
        op.Runtime.Reconciled -= Count;
        Assert.Equal(before, (op.Requests.Writes, op.Runtime.Database.Writes));
    }
}
