using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>A Restore's change of phase is audited before the status that reports it, and once, even when that status write is lost.</summary>
public sealed partial class BackupTests
{
    [Fact]
    public async Task Restore_AStatusWriteLostAfterItsAuditRow_IsWrittenAgain_ButTheRequestAndTheRejectionAreAuditedOnce()
    {
        var (ws, credentials) = await WorkspaceWithApproversAsync("rst-once", "dev", "carol@example.com");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        await BackedUpAsync(ws);
        var undo = await CreateRestoreAsync(ws, "undo", s => (s.Backup, s.Into) = ("first", new RestoreTarget { InPlace = true }));
        await WaitForRestoreAsync(ws, "undo", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "awaiting approval");
        Assert.Equal(["restore.requested"], await AuditActionsAsync($"{ws}/undo"));
        var controller = op.Runtime.Controllers.Single(c => c.Name == "restore");

        // The status written after an audit row is lost (as a conflict with a lagging cache, or a crash between the two, loses
        // it): the next pass (a status change alone wakes none: a resync) decides from the old status and writes it again.
        async Task LoseStatusAsync(string patch, Func<Restore, bool> rewritten, string what)
        {
            var lost = await cluster.Api.PatchAsync<Restore>(Restores, ws, "undo", patch, PatchTypes.Merge, CancellationToken.None, "status");
            await Net.WaitUntilAsync(async () =>
            {
                controller.ResyncNow();
                var r = await cluster.Api.GetAsync<Restore>(Restores, ws, "undo", CancellationToken.None);
                return r.Metadata.ResourceVersion != lost.Metadata.ResourceVersion && rewritten(r);
            }, TimeSpan.FromSeconds(60), what);
        }

        // The request's status lost: the Restore looks new again; the request is not audited again.
        await LoseStatusAsync("""{"status":null}""", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "AwaitingApproval written again");
        Assert.Equal(["restore.requested"], await AuditActionsAsync($"{ws}/undo"));

        // The rejection's status lost: still rejected, Failed again, the rejection on record once.
        await ApproveAsync(undo, "carol@example.com", "reject");
        await WaitForRestoreAsync(ws, "undo", r => r.Status?.Phase == RestorePhase.Failed, "Failed (rejected)");
        Assert.Equal(["restore.requested", "restore.rejected"], await AuditActionsAsync($"{ws}/undo"));
        await LoseStatusAsync("""{"status":{"phase":"AwaitingApproval","completedAt":null}}""", r => r.Status?.Phase == RestorePhase.Failed, "Failed written again");
        Assert.Equal("Rejected", ReadyReason(await cluster.Api.GetAsync<Restore>(Restores, ws, "undo", CancellationToken.None)));
        Assert.Equal(["restore.requested", "restore.rejected"], await AuditActionsAsync($"{ws}/undo"));
    }
}
