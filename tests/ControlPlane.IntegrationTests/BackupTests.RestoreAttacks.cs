using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Restores attacked past admission (no webhook here), as bob, WorkspaceAdmin of his own workspace only:
/// into another workspace's database or its prefix, outside his prefix, from another workspace's
/// Backup by name, and from a Backup whose status points at another workspace's object. The reconciler refuses each.
/// </summary>
public sealed partial class BackupTests
{
    [Fact]
    public async Task Restore_IntoAnotherWorkspacesDatabase_OrFromItsBackup_IsRefusedAtReconcile()
    {
        var bobUser = cluster.Plane.Users["bob"];
        var (victim, credentials) = await WorkspaceWithMembersAsync("rst-victim", "dev");
        var (mine, _) = await WorkspaceWithMembersAsync("rst-bob", "dev", new WorkspaceMember { Kind = "User", Name = bobUser.Name, Role = "WorkspaceAdmin" });
        var prefix = Unique("rst-attack");
        string theirDb, myDb, theirData;
        Backup theirs;
        await using (var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials)))
        {
            (_, theirDb, theirData, theirs) = await BackedUpAsync(victim, "victim-bk");
            (_, myDb, _, _) = await BackedUpAsync(mine);
            theirData = await ChecksumOfAsync(victim);
        }

        // A Backup in bob's workspace whose status (as if forged) points at the victim's stored object; written while no operator runs.
        var forged = await cluster.Api.CreateAsync(Backups, mine, new Backup
        {
            Metadata = new V1ObjectMeta { Name = "forged", NamespaceProperty = mine }, Spec = new BackupSpec { BackupPlan = "nightly" },
        }, CancellationToken.None);
        forged.Status = new BackupStatus
        {
            Phase = BackupPhase.Completed, CompletedAt = DateTime.UtcNow, Key = theirs.Status!.Key, Sha256 = theirs.Status.Sha256, SizeBytes = theirs.Status.SizeBytes, Database = myDb,
            CorrelationId = theirs.Status.CorrelationId,
        };
        await cluster.Api.ReplaceAsync(Backups, mine, "forged", forged, CancellationToken.None, "status");

        await using var next = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        var bob = new KubeApi(cluster.Plane.ClientConfigFor(bobUser));
        var attacks = new (string Name, Action<RestoreSpec> Spec, string Reason, string? MustNotExist)[]
        {
            ("into-theirs", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = theirDb }), "DatabaseNotOwned", null),
            ("into-their-prefix", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = theirDb + "_x" }), "DatabaseNotOwned", theirDb + "_x"),
            ("outside-prefix", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = "restored_copy" }), "DatabaseNotOwned", "restored_copy"),
            ("their-backup", s => (s.Backup, s.Into) = (theirs.Metadata.Name, new RestoreTarget { Database = myDb + "_a" }),
                "BackupNotFound", myDb + "_a"),
            ("forged-backup", s => (s.Backup, s.Into) = ("forged", new RestoreTarget { Database = myDb + "_b" }), "BackupNotOfWorkspace", myDb + "_b"),
        };
        foreach (var (name, spec, _, _) in attacks) await CreateRestoreAsync(mine, name, spec, bob);

        foreach (var (name, _, reason, mustNotExist) in attacks)
        {
            var refused = await WaitForRestoreAsync(mine, name, RestoreFinished, "finished");
            Assert.True(refused.Status!.Phase == RestorePhase.Failed, $"{name}: {refused.Status.Phase}");
            Assert.True(reason == ReadyReason(refused), $"{name}: {ReadyReason(refused)}: {Condition(refused.Status.Conditions, "Ready")?.Message}");
            Assert.StartsWith("spec", Condition(refused.Status.Conditions, "Ready")!.Message);
            if (mustNotExist is not null) Assert.False(await DatabaseExistsAsync(mustNotExist), $"{name}: {mustNotExist} was created");
        }

        Assert.Equal(theirData, await ChecksumOfAsync(victim));
    }
}
