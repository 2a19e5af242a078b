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
/// Self-service, attacked as token users of the local API server through the real webhooks. The
/// users here (olga, wade, mona) are in no group any cluster-wide role names: what they may do comes
/// only from a tenant's spec.owners (olga) or a workspace's spec.members (wade, mona).
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class SelfServiceTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Name(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType Bindings = TenantReconciler.ClusterRoleBindings;

    static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    static Workspace NewWorkspace(string name, string tenant, string environment = "dev")
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Environment = environment;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        return ws;
    }

    /// <summary>RBAC follows the operator: wait until the tenant's binding names the subject.</summary>
    async Task WaitForBindingAsync(string name, string subject, bool present = true) =>
        await Net.WaitUntilAsync(async () =>
        {
            var binding = await Cluster.Api.TryGetAsync<V1ClusterRoleBinding>(Bindings, null, name, CancellationToken.None);
            return (binding?.Subjects ?? []).Any(s => s.Name == subject) == present;
        }, TimeSpan.FromSeconds(30), $"ClusterRoleBinding {name} {(present ? "names" : "no longer names")} {subject}");

    async Task<bool> CanListPodsAsync(string user, string ns)
    {
        try
        {
            await As(user).ListAsync<V1Pod>(Deployments.Pods, ns, null, 10, null, CancellationToken.None);
            return true;
        }
        catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Forbidden)
        {
            return false;
        }
    }

    async Task<List<(string Actor, string Action, string Details)>> AuditAsync(string ws)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT actor, action, details::text FROM controlplane.audit_events WHERE kind = 'Workspace' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(ws);
        var rows = new List<(string, string, string)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        return rows;
    }

    /// <summary>As kubectl edit does: read, change, replace; a conflict (the operator wrote meanwhile) is read again.</summary>
    async Task<Workspace> EditAsync(string user, string name, Action<Workspace> edit)
    {
        var api = As(user);
        for (var attempt = 1; ; attempt++)
        {
            var ws = await api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None);
            edit(ws);
            try
            {
                return await api.ReplaceAsync(ClusterFixture.Workspaces, null, name, ws, CancellationToken.None);
            }
            catch (KubeApiException e) when (e.IsConflict && e.Reason != "Invalid" && attempt < 5)
            {
            }
        }
    }

    [Fact]
    public async Task AnOwner_CreatesEditsAndDeletesTheirTenantsWorkspaces_ButNotAnotherTenants_NorPastMaxWorkspaces_NorUnguardsProd()
    {
        var own = Unique("own");
        var other = Unique("oth");
        await Cluster.CreateTenantAsync(own, edit: s =>
        {
            s.Owners = [new Subject { Kind = "User", Name = Name("olga") }];
            s.Quota = new TenantQuota { MaxWorkspaces = 2 };
        });
        await Cluster.CreateTenantAsync(other);
        await WaitForBindingAsync(SelfService.OwnersBindingName(own), Name("olga"));
        var olga = As("olga");

        // Create: stamped as olga's, Ready like any other.
        var dev = await olga.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(own), own), CancellationToken.None);
        Assert.Equal(Name("olga"), dev.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        await Cluster.WaitForWorkspaceAsync(dev.Metadata.Name, ClusterFixture.IsReady, "owner's workspace Ready");
        var prod = await olga.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(own), own, "prod"), CancellationToken.None);

        // Edit: members and quota of their own workspace.
        var edited = await EditAsync("olga", dev.Metadata.Name, w =>
        {
            w.Spec.Members = [new WorkspaceMember { Kind = "User", Name = Name("mona"), Role = "Auditor" }];
            w.Spec.Quota = new WorkspaceQuota { Pods = 20 };
        });
        Assert.Equal(20, edited.Spec.Quota!.Pods);

        // Past maxWorkspaces: once admission's cache has the second workspace (dry runs create nothing).
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                var body = k8s.KubernetesJson.Serialize(NewWorkspace(Unique(own), own));
                await olga.SendAsync(HttpMethod.Post, ClusterFixture.Workspaces.CollectionPath(null) + "?dryRun=All", body, "application/json", CancellationToken.None);
                return false;
            }
            catch (KubeApiException e) when (e.StatusMessage.Contains("maxWorkspaces"))
            {
                return true;
            }
        }, TimeSpan.FromSeconds(60), "admission counts the owner's second workspace");
        var third = await Refused(() => olga.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(own), own), CancellationToken.None));
        Assert.Contains("maxWorkspaces", third.StatusMessage);

        // Another tenant's: create, edit, delete, and moving one there.
        var foreign = await Refused(() => olga.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(other), other), CancellationToken.None));
        Assert.Contains($"not an owner of tenant {other}", foreign.StatusMessage);
        var theirs = await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(other), other), CancellationToken.None);
        var edit = await Refused(() => EditAsync("olga", theirs.Metadata.Name, w => w.Spec.Members = [new WorkspaceMember { Kind = "User", Name = Name("olga"), Role = "WorkspaceAdmin" }]));
        Assert.Contains($"neither an owner of tenant {other}", edit.StatusMessage);
        var delete = await Refused(() => olga.DeleteAsync(ClusterFixture.Workspaces, null, theirs.Metadata.Name, CancellationToken.None));
        Assert.Contains($"not an owner of tenant {other}", delete.StatusMessage);
        var move = await Refused(() => EditAsync("olga", dev.Metadata.Name, w => w.Spec.Tenant = other));
        Assert.Contains("spec.tenant", move.StatusMessage);

        // Prod's deletion guard holds for the owner, who cannot lift it either.
        var guarded = await Refused(() => olga.DeleteAsync(ClusterFixture.Workspaces, null, prod.Metadata.Name, CancellationToken.None));
        Assert.Contains("spec.environment: prod", guarded.StatusMessage);
        var unlock = await Refused(() => EditAsync("olga", prod.Metadata.Name, w => w.Metadata.Annotations[ApiGroup.AllowDeleteAnnotation] = "true"));
        Assert.Contains("only a platform administrator", unlock.StatusMessage);

        // A user who owns nothing is refused by RBAC before admission.
        await Refused(() => As("mona").CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(own), own), CancellationToken.None), HttpStatusCode.Forbidden);

        // Delete their own dev workspace: it goes.
        await olga.DeleteAsync(ClusterFixture.Workspaces, null, dev.Metadata.Name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.GetWorkspaceAsync(dev.Metadata.Name) is null, TimeSpan.FromSeconds(60), "owner's workspace deleted");
        Assert.Contains(await AuditAsync(dev.Metadata.Name), a => a.Action == "workspace.created" && a.Actor == Name("olga"));

        // Cleanup by the platform.
        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, theirs.Metadata.Name, CancellationToken.None);
    }

    [Fact]
    public async Task AWorkspaceAdmin_AddsAndRemovesMembers_Audited_ButCannotEscalate_RemoveAnOwner_OrTouchAnotherWorkspace()
    {
        var tenant = Unique("wa");
        await Cluster.CreateTenantAsync(tenant, edit: s => s.Owners = [new Subject { Kind = "User", Name = Name("olga") }]);
        var ws = NewWorkspace(Unique(tenant), tenant);
        ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = Name("wade"), Role = "WorkspaceAdmin" }];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        var sibling = await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(tenant), tenant), CancellationToken.None);
        var name = ws.Metadata.Name;
        await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "workspace Ready");
        await WaitForBindingAsync(SelfService.MemberManagersBindingName(tenant), Name("wade"));
        Assert.False(await CanListPodsAsync("mona", name));

        // Add: mona becomes Operator, and can act in the workspace.
        await EditAsync("wade", name, w => w.Spec.Members = [.. w.Spec.Members!, new WorkspaceMember { Kind = "User", Name = Name("mona"), Role = "Operator" }]);
        await Net.WaitUntilAsync(() => CanListPodsAsync("mona", name), TimeSpan.FromSeconds(30), "mona can act once added");
        await Net.WaitUntilAsync(async () => (await AuditAsync(name)).Any(a => a.Action == "workspace.membersChanged" && a.Actor == Name("wade")
                && a.Details.Contains($"User/{Name("mona")}:Operator") && a.Details.Contains("membersAdded")),
            TimeSpan.FromSeconds(30), "the addition audited with who and what");

        // Escalation: a role outside the five, cluster-admin, or any other field of the workspace.
        var clusterAdmin = await Refused(() => EditAsync("wade", name, w => w.Spec.Members = [.. w.Spec.Members!, new WorkspaceMember { Kind = "User", Name = Name("mona"), Role = "cluster-admin" }]));
        Assert.Contains("role", clusterAdmin.StatusMessage);
        await Refused(() => EditAsync("wade", name, w => w.Spec.Members = [.. w.Spec.Members!, new WorkspaceMember { Kind = "User", Name = Name("mona"), Role = "TenantOwner" }]));
        var other = await Refused(() => EditAsync("wade", name, w => w.Spec.Environment = "prod"));
        Assert.Contains("may change only spec.members", other.StatusMessage);
        await Refused(() => EditAsync("wade", name, w => w.Spec.Quota = new WorkspaceQuota { Pods = 1000 }));
        await Refused(() => EditAsync("wade", name, w => w.Metadata.Annotations[ApiGroup.AllowDeleteAnnotation] = "true"));

        // The owner's admin binding: not removable through the workspace, its RoleBinding, or the Tenant.
        var ownerBinding = (await Cluster.Api.ListAsync<V1RoleBinding>(WorkspaceReconciler.RoleBindings, name, "controlplane.io/binding=owner", 10, null, CancellationToken.None)).Items.Single();
        await Refused(() => As("wade").DeleteAsync(WorkspaceReconciler.RoleBindings, name, ownerBinding.Metadata.Name, CancellationToken.None), HttpStatusCode.Forbidden);
        await Refused(() => As("wade").PatchAsync<Tenant>(ClusterFixture.Tenants, null, tenant, """{"spec":{"owners":[]}}""", PatchTypes.Merge, CancellationToken.None), HttpStatusCode.Forbidden);

        // Another workspace (same tenant): refused; deleting their own: RBAC gives no delete.
        var sideways = await Refused(() => EditAsync("wade", sibling.Metadata.Name, w => w.Spec.Members = [new WorkspaceMember { Kind = "User", Name = Name("wade"), Role = "WorkspaceAdmin" }]));
        Assert.Contains("neither an owner", sideways.StatusMessage);
        await Refused(() => As("wade").DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None), HttpStatusCode.Forbidden);
        await Refused(() => As("wade").CreateAsync(ClusterFixture.Workspaces, null, NewWorkspace(Unique(tenant), tenant), CancellationToken.None), HttpStatusCode.Forbidden);

        // Remove: mona loses access; the owner's binding is still there; audited.
        await EditAsync("wade", name, w => w.Spec.Members = [.. w.Spec.Members!.Where(m => m.Name != Name("mona"))]);
        await Net.WaitUntilAsync(async () => !await CanListPodsAsync("mona", name), TimeSpan.FromSeconds(30), "mona cannot act once removed");
        await Net.WaitUntilAsync(async () => (await AuditAsync(name)).Any(a => a.Action == "workspace.membersChanged" && a.Actor == Name("wade") && a.Details.Contains("membersRemoved")
                && a.Details.Contains($"\"membersRemoved\": [\"User/{Name("mona")}:Operator\"]")),
            TimeSpan.FromSeconds(30), "the removal audited with who and what");
        Assert.NotNull(await Cluster.Api.TryGetAsync<V1RoleBinding>(WorkspaceReconciler.RoleBindings, name, ownerBinding.Metadata.Name, CancellationToken.None));
        Assert.True(await CanListPodsAsync("olga", name));

        // GitOps: the member list applied from a file with wade's own kubeconfig (kubectl apply's bookkeeping annotation passes).
        var file = Path.Combine(Path.GetTempPath(), $"{name}-members.yaml");
        await File.WriteAllTextAsync(file, $$"""
            apiVersion: controlplane.io/v1alpha1
            kind: Workspace
            metadata: {name: {{name}}}
            spec:
              tenant: {{tenant}}
              environment: dev
              database: {enabled: false}
              members:
              - {kind: User, name: {{Name("wade")}}, role: WorkspaceAdmin}
              - {kind: User, name: {{Name("mona")}}, role: Auditor}
            """);
        var wadeKubeconfig = Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-wade");
        await Cluster.Plane.KubectlAsync(CancellationToken.None, "--kubeconfig", wadeKubeconfig, "apply", "-f", file);
        await Net.WaitUntilAsync(() => CanListPodsAsync("mona", name), TimeSpan.FromSeconds(30), "mona can read once applied as Auditor");
        File.Delete(file);

        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, sibling.Metadata.Name, CancellationToken.None);
    }
}
