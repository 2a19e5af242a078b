using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The pure restore rules: approvals, target names inside the workspace's prefix, the backup chosen, a backup of another workspace.</summary>
public sealed class RestoreResourcesTests
{
    static readonly DateTime T0 = new(2026, 1, 4, 10, 0, 0, DateTimeKind.Utc);
    const string Own = "ws_acme_dev";
    const string Uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    static Backup Backup(string name, string phase, DateTime? at, string plan = "nightly", string? uid = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "acme-dev", Uid = uid ?? name + "-uid" },
        Spec = new BackupSpec { BackupPlan = plan },
        Status = new BackupStatus { Phase = Enum.Parse<BackupPhase>(phase), CompletedAt = at },
    };

    static RestoreSpec Spec(string? backup = null, DateTime? targetTime = null, string? into = null, bool? inPlace = null) =>
        new() { BackupPlan = "nightly", Backup = backup, TargetTime = targetTime, Into = new RestoreTarget { Database = into, InPlace = inPlace } };

    [Fact]
    public void Approvals_TwoInProdForAnyRestore_OneInPlaceElsewhere_NoneForANewDatabaseElsewhere()
    {
        Assert.Equal(2, RestoreResources.RequiredApprovals("prod", inPlace: false));
        Assert.Equal(2, RestoreResources.RequiredApprovals("prod", inPlace: true));
        Assert.Equal(1, RestoreResources.RequiredApprovals("staging", inPlace: true));
        Assert.Equal(0, RestoreResources.RequiredApprovals("dev", inPlace: false));
    }

    /// <summary>
    /// The one count both the Restore reconciler (its Approved condition) and the Approval reconciler (TargetApproved) use:
    /// prod and non-prod, new database and in place; n distinct approvers approve it exactly when n reaches that count, and any reject wins.
    /// </summary>
    [Theory]
    [InlineData("prod", false, 2)]
    [InlineData("prod", true, 2)]
    [InlineData("dev", false, 0)]
    [InlineData("dev", true, 1)]
    [InlineData("staging", false, 0)]
    [InlineData("staging", true, 1)]
    public void ApprovalOf_ARestoreIsApprovedByAsManyApproversAsItsEnvironmentAndTargetNeed_AndAnyRejectWins(string environment, bool inPlace, int required)
    {
        Assert.Equal(required, RestoreResources.RequiredApprovals(environment, inPlace));
        var restore = new Restore
        {
            Metadata = new V1ObjectMeta
            {
                Name = "undo", NamespaceProperty = "acme-dev", Uid = Uid, Generation = 3,
                Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "bob@example.com" },
            },
            Spec = inPlace ? Spec(backup: "b1", inPlace: true) : Spec(backup: "b1", into: Own + "_copy"),
        };
        Approval Of(string approver, string decision = "approve") => new()
        {
            Metadata = new V1ObjectMeta { Name = approver.Split('@')[0] + "-" + decision, NamespaceProperty = "acme-dev" },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "Restore", Name = "undo" }, Approver = approver, TargetUID = Uid, TargetGeneration = 3, Decision = decision,
            },
        };

        string[] approvers = ["carol@example.com", "dave@example.com"];
        for (var n = 0; n <= approvers.Length; n++)
        {
            var state = RestoreResources.ApprovalOf(restore, environment, approvers.Take(n).Select(a => Of(a)), _ => true);
            Assert.Equal(required, state.Required);
            Assert.True(state.Approved == n >= required, $"{environment}, in place {inPlace}: {n} approver(s): {state.Message}");
            Assert.False(state.Rejected);
        }

        // The author approving does not count; one counting reject outweighs every approval, even where none is needed.
        Assert.Equal(required == 0, RestoreResources.ApprovalOf(restore, environment, [Of("bob@example.com")], _ => true).Approved);
        var rejected = RestoreResources.ApprovalOf(restore, environment, [Of("carol@example.com"), Of("dave@example.com"), Of("erin@example.com", "reject")], _ => true);
        Assert.Equal((false, true), (rejected.Approved, rejected.Rejected));
        Assert.Contains("erin@example.com", rejected.Message);
    }

    [Fact]
    public void Target_ANewDatabaseMustBeInsideTheWorkspacePrefix_InPlaceKeepsTheOldOneUnderARecordedName()
    {
        var ok = RestoreResources.Target(Spec(into: Own + "_restored"), Own, Uid, T0, out var none);
        Assert.Null(none);
        Assert.Equal(new RestoreTargetPlan(Own + "_restored", Own + "_restored", null), ok);

        foreach (var bad in new[] { "ws_other_dev_x", Own, "ws_acme_devx", Own + "_" + new string('a', 60) })
        {
            RestoreResources.Target(Spec(into: bad), Own, Uid, T0, out var refusal);
            Assert.NotNull(refusal);
            Assert.Equal("DatabaseNotOwned", refusal.Reason);
            Assert.Contains("spec.into.database", refusal.Message);
        }

        var inPlace = RestoreResources.Target(Spec(inPlace: true), Own, Uid, T0, out var r2);
        Assert.Null(r2);
        Assert.True(inPlace.InPlace);
        Assert.Equal(Own, inPlace.Database);
        Assert.Equal(Own + "_pre_restore_20260104100000", inPlace.Replaced);
        Assert.Equal(Own + "_restoring_0f1e2d3c", inPlace.Staging);

        // Long names are cut to 63 and stay inside the prefix of the first 36+ characters.
        var longDb = "ws_" + new string('x', 60);
        Assert.Equal(63, RestoreResources.ReplacedName(longDb, T0).Length);
        Assert.Equal(63, RestoreResources.StagingName(longDb, Uid).Length);
    }

    [Fact]
    public void ChooseBackup_ByNameOrByTime_RefusedOutsideTheWindowNamingFirstRecoverabilityPoint()
    {
        var all = new List<Backup>
        {
            Backup("b1", "Completed", T0.AddHours(-3)), Backup("b2", "Completed", T0.AddHours(-1)), Backup("b3", "Running", null),
            Backup("b4", "Failed", T0.AddHours(-2)), Backup("other", "Completed", T0.AddHours(-2), plan: "weekly"),
        };
        var frp = T0.AddHours(-3);
        Assert.Equal("b1", RestoreResources.ChooseBackup(Spec(targetTime: T0.AddHours(-2)), all, frp).Backup?.Metadata.Name);
        Assert.Equal("b2", RestoreResources.ChooseBackup(Spec(targetTime: T0), all, frp).Backup?.Metadata.Name);
        Assert.Equal("b2", RestoreResources.ChooseBackup(Spec(backup: "b2"), all, frp).Backup?.Metadata.Name);
        Assert.NotNull(RestoreResources.ChooseBackup(Spec(backup: "b3"), all, frp).WaitingFor);
        Assert.Equal("BackupFailed", RestoreResources.ChooseBackup(Spec(backup: "b4"), all, frp).Refusal?.Reason);
        Assert.Equal("BackupNotOfPlan", RestoreResources.ChooseBackup(Spec(backup: "other"), all, frp).Refusal?.Reason);
        Assert.Equal("BackupNotFound", RestoreResources.ChooseBackup(Spec(backup: "nope"), all, frp).Refusal?.Reason);

        var outside = RestoreResources.ChooseBackup(Spec(targetTime: T0.AddHours(-4)), all, frp).Refusal;
        Assert.Equal("OutsideRecoverabilityWindow", outside?.Reason);
        Assert.Contains("firstRecoverabilityPoint", outside!.Message);
        Assert.Contains(frp.ToString("O"), outside.Message);
        Assert.Equal("NoBackup", RestoreResources.ChooseBackup(Spec(targetTime: T0), [], null).Refusal?.Reason);
    }

    [Fact]
    public void ABackupWhoseStatusPointsAtAnotherWorkspacesObject_IsRefused()
    {
        var mine = Backup("b1", "Completed", T0, uid: "u1");
        mine.Status!.Sha256 = new string('a', 64);
        mine.Status.Database = Own;
        mine.Status.Key = BackupRules.ObjectKey("eu/", "acme", "acme-dev", mine);
        Assert.Null(RestoreResources.BackupOfWorkspaceRefusal(mine, "eu/", "acme", "acme-dev", Own));

        var forged = Backup("b1", "Completed", T0, uid: "u1");
        forged.Status!.Sha256 = mine.Status.Sha256;
        forged.Status.Database = Own;
        forged.Status.Key = BackupRules.ObjectKey("eu/", "globex", "globex-prod", mine);
        Assert.Equal("BackupNotOfWorkspace", RestoreResources.BackupOfWorkspaceRefusal(forged, "eu/", "acme", "acme-dev", Own)?.Reason);
        forged.Status.Key = mine.Status.Key;
        forged.Status.Database = "ws_globex_prod";
        Assert.Equal("BackupNotOfWorkspace", RestoreResources.BackupOfWorkspaceRefusal(forged, "eu/", "acme", "acme-dev", Own)?.Reason);
    }
}
