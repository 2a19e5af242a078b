using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// An AccessRequest's reconciler with no webhook in front (its own checks): the requester's own approval never
/// counts, whatever admission was skipped; Active on another Approver's approval, then idle with zero writes to the
/// API server and Postgres; and Postgres refusing the audit row still ends the grant (the binding goes), with
/// Ready=False/DatabaseUnavailable until the row is written once. Expiry under faults (the operator SIGKILLed as a
/// grant falls due, the API server down at expiry, a leader hand-over): AccessRequestTests.Faults.cs.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class AccessRequestTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Requests = ResourceType.For<AccessRequest>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<string> WorkspaceAsync()
    {
        var tenant = Unique("ar");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Database = new WorkspaceDatabase { Enabled = false },
                Members =
                [
                    new WorkspaceMember { Kind = "User", Name = "wade@example.com", Role = "Approver" },
                    new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
                ],
            },
        }, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready", TimeSpan.FromSeconds(90));
        return name;
    }

    /// <summary>What the webhook would have stamped, written by hand (no webhook runs in this collection).</summary>
    Task<AccessRequest> RequestAsync(string ns, string name, string duration) =>
        cluster.Api.CreateAsync(Requests, ns, new AccessRequest
        {
            Metadata = new V1ObjectMeta { Name = name, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "wade@example.com" } },
            Spec = new AccessRequestSpec { Role = "Operator", Duration = duration, Justification = "Investigate the failing payment batch job in its logs" },
        }, CancellationToken.None);

    async Task<Approval> ApproveAsync(AccessRequest target, string approver) =>
        await cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = AccessRequest.KubeKind, Name = target.Metadata.Name },
                Approver = approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation,
            },
        }, CancellationToken.None);

    Task<AccessRequest> WaitAsync(string ns, string name, Func<AccessRequest, bool> condition, string what, TimeSpan? timeout = null) =>
        cluster.WaitForObjectAsync(Requests, ns, name, condition, what, timeout);

    Task<V1RoleBinding?> BindingAsync(string ns, string request) =>
        cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, ns, "controlplane-access-" + request, CancellationToken.None);

    [Fact]
    public async Task TheRequestersOwnApprovalNeverCounts_AnotherApproversDoes_ThenItIdlesWithZeroWrites()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        var created = await RequestAsync(ns, "debug", "2h");
        await WaitAsync(ns, "debug", r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");

        // wade holds Approver; written past admission, his approval of his own request still does not count.
        var own = await ApproveAsync(created, "wade@example.com");
        await Net.WaitUntilAsync(async () => (await cluster.Api.GetAsync<Approval>(Approvals, ns, own.Metadata.Name, CancellationToken.None)).Status?.Conditions?
            .FirstOrDefault(c => c.Type == "Ready") is { Status: "False", Reason: ApprovalReasons.SelfApproval }, TimeSpan.FromSeconds(60), "wade's own approval does not count");
        Assert.Equal(AccessRequestPhase.Pending, (await cluster.Api.GetAsync<AccessRequest>(Requests, ns, "debug", CancellationToken.None)).Status!.Phase);
        Assert.Null(await BindingAsync(ns, "debug"));

        await ApproveAsync(created, "carol@example.com");
        var active = await WaitAsync(ns, "debug", r => r.Status?.Phase == AccessRequestPhase.Active, "Active");
        Assert.Equal("carol@example.com", active.Status!.ApprovedBy);
        Assert.Contains(active.Status.Conditions!, c => c is { Type: "Ready", Status: "True", Reason: AccessRequestReasons.Active });
        await Net.WaitUntilAsync(async () => await BindingAsync(ns, "debug") is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");

        // Idle: reconciled again (twice, after two to settle), nothing is written to the API server or Postgres.
        var controller = op.Runtime.Controllers.Single(c => c.Name == "accessrequest");
        var reconciled = 0;
        void Count(string c, string key, string result)
        {
            if (c == "accessrequest" && key == $"{ns}/debug") Interlocked.Increment(ref reconciled);
        }

        op.Runtime.Reconciled += Count;
        async Task ResyncAsync(int times)
        {
            for (var i = 0; i < times; i++)
            {
                var want = Volatile.Read(ref reconciled) + 1;
                controller.ResyncNow();
                await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconciled) >= want), TimeSpan.FromSeconds(30), "the request reconciled again");
            }
        }

        await ResyncAsync(2);
        var before = (op.Requests.Writes, op.Runtime.Database.Writes);
        var version = (await cluster.Api.GetAsync<AccessRequest>(Requests, ns, "debug", CancellationToken.None)).Metadata.ResourceVersion;
        await ResyncAsync(2);
        op.Runtime.Reconciled -= Count;
        Assert.Equal(before, (op.Requests.Writes, op.Runtime.Database.Writes));
        Assert.Equal(version, (await cluster.Api.GetAsync<AccessRequest>(Requests, ns, "debug", CancellationToken.None)).Metadata.ResourceVersion);
    }

    [Fact]
    public async Task PostgresRefusingTheAuditRow_StillEndsTheGrant_AndIsAConditionAndARetry()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        await op.WaitUntilLeaderAndSyncedAsync(); // migrations ran
        var ns = await WorkspaceAsync();
        var name = Unique("down");
        var created = await RequestAsync(ns, name, "15s");
        await WaitAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Pending, "Pending");
        await ApproveAsync(created, "carol@example.com");
        await WaitAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Active, "Active");

        // The system of record refuses this request's expiry row; every other row is written.
        await using (await cluster.RefuseAuditRowAsync(AccessRequest.KubeKind, $"{ns}/{name}", "access.expired"))
        {
            var held = await WaitAsync(ns, name, r => r.Status?.Conditions?.Any(c => c is { Type: "Ready", Status: "False", Reason: AccessRequestReasons.DatabaseUnavailable }) == true,
                "Ready=False/DatabaseUnavailable");
            // Less access is always safe: the binding is gone though its record waits.
            Assert.Null(await BindingAsync(ns, name));
            Assert.NotEqual(AccessRequestPhase.Expired, held.Status!.Phase);
        }

        // Reachable again: retried on its own, Expired, audited once.
        await WaitAsync(ns, name, r => r.Status?.Phase == AccessRequestPhase.Expired, "Expired after the retry");
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var count = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'AccessRequest' AND object_name = $1 AND action = 'access.expired'");
        count.Parameters.AddWithValue($"{ns}/{name}");
        Assert.Equal(1L, (long)(await count.ExecuteScalarAsync())!);
    }
}
