using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using Xunit.Abstractions;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// spec.promote on real Deployments (no webhook in this collection: approvals carry the stamps the
/// webhook would write): it waits for an approval of its generation without a write per resync, then
/// ends the soak early, starts the next ring, is audited once, and the settled Rollout writes nothing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RolloutPromoteTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Rollouts = ResourceType.For<Rollout>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    const string Old = "registry.example/orders:1.0.0", New = "registry.example/orders:1.1.0";

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<string> WorkspaceAsync(string tenant)
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = Unique(tenant) } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" }];
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(ws.Metadata.Name, ClusterFixture.IsReady, "Ready");
        await Deployments.CreateAsync(cluster.Api, ws.Metadata.Name, "orders", Old);
        await Deployments.WaitAsync(cluster.Api, ws.Metadata.Name, "orders", Deployments.IsRolledOut, "rolled out on the old image");
        return ws.Metadata.Name;
    }

    async Task<Rollout> WaitAsync(string ns, string name, Func<Rollout, bool> condition, string what)
    {
        Rollout? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await cluster.Api.GetAsync<Rollout>(Rollouts, ns, name, CancellationToken.None)), TimeSpan.FromSeconds(120), $"rollout {name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}: {k8s.KubernetesJson.Serialize(last?.Status)}", e);
        }

        return last!;
    }

    async Task<List<string>> AuditActionsAsync(string objectName)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'Rollout' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(objectName);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    [Fact]
    public async Task Promote_WaitsForAnApprovalWithoutWriting_ThenEndsTheSoakEarly_AuditedOnce_AndSettlesWithoutWrites()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.Prometheus = new PrometheusOptions());
        var tenant = Unique("prm");
        await cluster.CreateTenantAsync(tenant);
        var lab = await WorkspaceAsync(tenant);
        var canary = await WorkspaceAsync(tenant);
        var rollout = new Rollout
        {
            Metadata = new V1ObjectMeta { Name = "orders", Annotations = new Dictionary<string, string>
            {
                // As the webhook stamps them: the requester (the admin here) and its groups.
                [ApiGroup.CreatedByAnnotation] = cluster.Plane.Admin.Name,
                [ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(null, cluster.Plane.Admin.Name, cluster.Plane.Admin.Groups),
            } },
            Spec = new RolloutSpec
            {
                Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = New }] },
                Rings = [new Ring { Name = "lab", Workspaces = [lab], Soak = "24h" }, new Ring { Name = "canary", Workspaces = [canary], Soak = "0s" }],
                Gates = new RolloutGates { ProgressDeadline = "2m" },
            },
        };
        await cluster.Api.CreateAsync(Rollouts, lab, rollout, CancellationToken.None);
        await WaitAsync(lab, "orders", r => r.Status?.Rings?[0].Phase == RingPhase.Soaking, "lab soaking");

        await cluster.Api.PatchAsync<Rollout>(Rollouts, lab, "orders", """{"spec":{"promote":"lab"}}""", PatchTypes.Merge, CancellationToken.None);
        var waiting = await WaitAsync(lab, "orders", r => r.Status?.Conditions?.Any(c => c.Type == "Progressing" && c.Reason == RolloutReasons.PromotionRefused) == true, "promotion waiting for approval");
        Assert.Contains($"spec.promote waits for approval of generation {waiting.Metadata.Generation}", waiting.Status!.Conditions!.Single(c => c.Type == "Progressing").Message, StringComparison.Ordinal);
        await op.ResyncWritesNothingAsync($"rollout {lab}/orders");
        // The wait was asked for once (approval.requested), with the ring and who may approve; the resync asked nothing again.
        var ask = await ApprovalAskRows.OneAsync(cluster.Postgres.ConnectionString(), "Rollout", $"{lab}/orders", "rollout.approval-requested");
        Assert.Equal(("promote:lab", "lab", "promote"), ((string?)ask["reason"], (string?)ask["ring"], (string?)ask["step"]));
        Assert.Equal(waiting.Metadata.Generation, (long)ask["generation"]!);
        Assert.Equal(1, (int)ask["approvers"]!["required"]!);

        // carol approves the promoted generation (as the webhook would stamp it): the soak ends, canary starts and (soak 0s) finishes.
        await cluster.Api.CreateAsync(Approvals, lab, new Approval
        {
            Metadata = new V1ObjectMeta { Name = "promote-lab", Annotations = new Dictionary<string, string> { [ApiGroup.TargetContentHashAnnotation] = ApprovalPolicy.ContentHash(waiting) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "Rollout", Name = "orders" }, Decision = "approve", Approver = "carol@example.com",
                TargetGeneration = waiting.Metadata.Generation, TargetUID = waiting.Metadata.Uid,
            },
        }, CancellationToken.None);
        var done = await WaitAsync(lab, "orders", r => r.Status?.Phase == RolloutPhase.Succeeded, "Succeeded after the early promotion");
        Assert.True(done.Status!.Rings![0].CompletedAt < done.Status.Rings[0].RolledOutAt!.Value.AddHours(1), "lab's 24h soak ended early");
        Assert.Equal(New, Deployments.ImageOf(await Deployments.GetAsync(cluster.Api, canary, "orders")));
        await Net.WaitUntilAsync(async () => (await AuditActionsAsync($"{lab}/orders")).Count(a => a == "rollout.promoted") == 1, TimeSpan.FromSeconds(30), "rollout.promoted audited once");
        await op.ResyncWritesNothingAsync($"rollout {lab}/orders");
        Assert.Equal(1, (await AuditActionsAsync($"{lab}/orders")).Count(a => a == "rollout.promoted"));
        Assert.Equal(1, (await AuditActionsAsync($"{lab}/orders")).Count(a => a == "rollout.approval-requested"));
    }
}
