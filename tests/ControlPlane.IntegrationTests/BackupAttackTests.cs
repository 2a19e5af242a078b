using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Backups attacked at admission as a token user (bob, Operator of his own workspace only) through the
/// real webhooks: another tenant's database, a bucket of his own where tenant storage is not allowed,
/// a restore into another workspace's database or outside his prefix, a Backup outside a workspace.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class BackupAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static readonly ResourceType Plans = ResourceType.For<BackupPlan>(true);
    static readonly ResourceType Backups = ResourceType.For<Backup>(true);
    static readonly ResourceType Restores = ResourceType.For<Restore>(true);

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    async Task<Workspace> WorkspaceAsync(string? member)
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = Unique(tenant) } };
        ws.Spec.Tenant = tenant;
        if (member is not null) ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = Cluster.Plane.Users[member].Name, Role = "Operator" }];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        Workspace? ready = null;
        await Net.WaitUntilAsync(async () =>
        {
            ready = await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, ws.Metadata.Name, CancellationToken.None);
            return ready?.Status?.Phase == WorkspacePhase.Ready && ready.Status.Database?.Name is not null;
        }, TimeSpan.FromSeconds(30), $"workspace {ws.Metadata.Name} Ready with its database");
        return ready!;
    }

    [Fact]
    public async Task AMemberOfOneTenant_CannotBackUpOrRestoreAnothersDatabase_NorUseItsOwnBucketWhereNotAllowed()
    {
        var mine = await WorkspaceAsync("bob");
        var theirs = await WorkspaceAsync(null);
        using var bob = As("bob");
        var ns = mine.Metadata.Name;
        var theirDatabase = theirs.Status!.Database!.Name!;

        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "nightly" } };
        plan.Spec.Schedule = "0 2 * * *";
        plan.Spec.Database = theirDatabase;
        var foreign = await Refused(() => bob.CreateAsync(Plans, ns, plan, CancellationToken.None));
        Assert.Contains($"spec.database: \"{theirDatabase}\" is not this workspace's database", foreign.StatusMessage);

        plan.Spec.Database = null;
        plan.Spec.Storage = new BackupStorage { S3 = new S3Storage { Endpoint = "http://127.0.0.1:9", Bucket = "mine", CredentialsSecret = new LocalObjectReference { Name = "s3" } } };
        var bucket = await Refused(() => bob.CreateAsync(Plans, ns, plan, CancellationToken.None));
        Assert.Contains("spec.storage.s3", bucket.StatusMessage);
        Assert.Contains("AllowTenantStorage", bucket.StatusMessage);

        // His own plan on the platform storage is fine; an update to a foreign database is refused as a create is.
        plan.Spec.Storage = null;
        await bob.CreateAsync(Plans, ns, plan, CancellationToken.None);
        var update = await Refused(() => bob.PatchAsync<BackupPlan>(Plans, ns, "nightly", $"{{\"spec\":{{\"database\":\"{theirDatabase}\"}}}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.database", update.StatusMessage);

        // A Backup in a namespace that is no workspace: refused (bob cannot even reach theirs: RBAC).
        var stray = new Backup { Metadata = new V1ObjectMeta { Name = "grab" }, Spec = new BackupSpec { BackupPlan = "nightly" } };
        var notMine = await Refused(() => bob.CreateAsync(Backups, theirs.Metadata.Name, stray, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, notMine.StatusCode);
        var outside = await Refused(() => Cluster.Api.CreateAsync(Backups, "default", stray, CancellationToken.None));
        Assert.Contains("is not a workspace", outside.StatusMessage);

        var restore = new Restore { Metadata = new V1ObjectMeta { Name = "back" } };
        restore.Spec.BackupPlan = "nightly";
        restore.Spec.Backup = "nightly-1";
        restore.Spec.Into = new RestoreTarget { Database = theirDatabase };
        var into = await Refused(() => bob.CreateAsync(Restores, ns, restore, CancellationToken.None));
        Assert.Contains("spec.into.database", into.StatusMessage);
        restore.Spec.Into = new RestoreTarget { Database = "restored_copy" };
        var prefix = await Refused(() => bob.CreateAsync(Restores, ns, restore, CancellationToken.None));
        Assert.Contains($"inside this workspace's database prefix \"{mine.Status!.Database!.Name}_\"", prefix.StatusMessage);
        restore.Spec.Into = new RestoreTarget { Database = theirDatabase + "_x" };
        var theirPrefix = await Refused(() => bob.CreateAsync(Restores, ns, restore, CancellationToken.None));
        Assert.Contains("spec.into.database", theirPrefix.StatusMessage);

        // Inside his prefix, but the name another tenant's workspace "<his>-x" holds (issue 22: a restore squatting it).
        await Cluster.CreateWorkspaceAsync(ns + "-x", theirs.Spec.Tenant, w => w.Database = new WorkspaceDatabase { Enabled = false });
        restore.Spec.Into = new RestoreTarget { Database = mine.Status.Database.Name + "_x" };
        KubeApiException? squat = null;
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                restore.Metadata.Name = Unique("squat");
                await bob.CreateAsync(Restores, ns, restore, CancellationToken.None);
                await Cluster.Api.DeleteAsync(Restores, ns, restore.Metadata.Name, CancellationToken.None);
                return false; // the webhook's cache had not seen the new workspace yet
            }
            catch (KubeApiException e)
            {
                squat = e;
                return true;
            }
        }, TimeSpan.FromSeconds(60), "the squatting restore refused");
        Assert.Contains($"spec.into.database: \"{mine.Status.Database.Name}_x\" is the database name of workspace {ns}-x", squat!.StatusMessage);
    }

    [Fact]
    public async Task APlanNameLongerThanALabelValue_IsRefusedAtAdmission_NamingTheField()
    {
        var mine = await WorkspaceAsync("bob");
        using var bob = As("bob");
        var name = "nightly-" + new string('a', 60);
        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = name } };
        plan.Spec.Schedule = "0 2 * * *";
        var refused = await Refused(() => bob.CreateAsync(Plans, mine.Metadata.Name, plan, CancellationToken.None));
        Assert.Contains($"metadata.name: {name.Length} characters, at most 63", refused.StatusMessage);

        // 63 characters is a label value: admitted.
        plan.Metadata.Name = name[..63];
        await bob.CreateAsync(Plans, mine.Metadata.Name, plan, CancellationToken.None);
    }
}
