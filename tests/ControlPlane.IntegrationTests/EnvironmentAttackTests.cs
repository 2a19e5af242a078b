using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// A workspace's environment is a classification its tenant must not control (issue 22, class 4):
/// attacked as a tenant owner (olga, in no group any cluster-wide role names) through the real webhooks.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class EnvironmentAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Name(string user) => Cluster.Plane.Users[user].Name;

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    static Workspace NewWorkspace(string name, string tenant, string environment) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new WorkspaceSpec { Tenant = tenant, Environment = environment, Database = new WorkspaceDatabase { Enabled = false } },
    };

    static string EnvironmentPatch(string environment) => "{\"spec\":{\"environment\":\"" + environment + "\"}}";

    async Task WaitForEnvironmentAsync(string name, string environment)
    {
        await Cluster.WaitForWorkspaceAsync(name, w => ClusterFixture.IsReady(w) && w.Status!.Environment == environment, $"status.environment {environment}");
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<V1Namespace>(ResourceType.Namespaces, null, name, CancellationToken.None))?
            .Metadata.Labels?.TryGetValue(ApiGroup.EnvironmentLabel, out var label) == true && label == environment, TimeSpan.FromSeconds(30), $"namespace {name} labelled {environment}");
    }

    async Task<List<string>> AuditActionsAsync(string ws)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'Workspace' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(ws);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    [Fact]
    public async Task AnOwner_CannotLowerAProdWorkspace_ToDeleteIt_OnlyThePlatform_AfterLiftingTheGuard()
    {
        var tenant = Unique("env");
        await Cluster.CreateTenantAsync(tenant, edit: s => s.Owners = [new Subject { Kind = "User", Name = Name("olga") }]);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<V1ClusterRoleBinding>(TenantReconciler.ClusterRoleBindings, null, SelfService.OwnersBindingName(tenant), CancellationToken.None))?
            .Subjects?.Any(s => s.Name == Name("olga")) == true, TimeSpan.FromSeconds(30), "olga bound as owner");
        using var olga = As("olga");
        var prod = (await olga.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(tenant), tenant, "prod"), CancellationToken.None)).Metadata.Name;
        await WaitForEnvironmentAsync(prod, "prod");

        // prod -> dev (then delete it) and prod -> test: refused, naming the field; the guard still holds the delete.
        foreach (var lower in new[] { "dev", "test" })
        {
            var e = await Refused(() => olga.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, prod, EnvironmentPatch(lower), PatchTypes.Merge, CancellationToken.None));
            Assert.Contains($"spec.environment: may not be lowered from prod to {lower}", e.StatusMessage);
        }

        var delete = await Refused(() => olga.DeleteAsync(ClusterFixture.Workspaces, null, prod, CancellationToken.None));
        Assert.Contains("spec.environment: prod", delete.StatusMessage);
        var still = await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, prod, CancellationToken.None);
        Assert.Equal(("prod", "prod"), (still.Spec.Environment, still.Status!.Environment));

        // Raising is hers to do; lowering it back is not.
        var dev = (await olga.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(tenant), tenant, "dev"), CancellationToken.None)).Metadata.Name;
        await olga.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, dev, EnvironmentPatch("test"), PatchTypes.Merge, CancellationToken.None);
        await WaitForEnvironmentAsync(dev, "test");
        var back = await Refused(() => olga.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, dev, EnvironmentPatch("dev"), PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.environment: may not be lowered from test to dev", back.StatusMessage);

        // The approved path: a platform administrator lifts the guard, then lowers it; the operator follows and audits it.
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, prod,
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.AllowDeleteAnnotation + "\":\"true\"}}}", PatchTypes.Merge, CancellationToken.None);
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, prod, EnvironmentPatch("dev"), PatchTypes.Merge, CancellationToken.None);
        await WaitForEnvironmentAsync(prod, "dev");
        Assert.Contains("workspace.environmentChanged", await AuditActionsAsync(prod));

        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, prod, CancellationToken.None);
        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, dev, CancellationToken.None);
    }
}
