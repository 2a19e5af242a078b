using System.Globalization;
using System.Text.RegularExpressions;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>Refused until the spec changes: Ready=False with this reason; the message names the field.</summary>
public sealed record RestoreRefusal(string Reason, string Message);

/// <summary>
/// Where a restore writes: pg_restore always fills a fresh database (<see cref="Staging"/>) that the
/// operator made for this restore, so a failed restore leaves nothing half-restored in a live database.
/// New database: the staging one is the target itself. In place: the live database is renamed to
/// <see cref="Replaced"/> (kept, so the restore can be undone) and the staging one takes its name.
/// </summary>
public sealed record RestoreTargetPlan(string Database, string Staging, string? Replaced)
{
    public bool InPlace => Replaced is not null;
}

/// <summary>The backup a restore uses, or why none (refused, or not yet: a named Backup still running).</summary>
public sealed record BackupChoice(Backup? Backup, RestoreRefusal? Refusal, string? WaitingFor);

/// <summary>Pure rules of a restore: its target names, its backup, its approvals. No I/O here.</summary>
public static partial class RestoreResources
{
    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex Identifier();

    /// <summary>In prod two approvers for any restore; elsewhere one for in place and none for a new database (<see cref="ApprovableKinds.Restore"/>).</summary>
    public static int RequiredApprovals(string environment, bool inPlace) => ApprovableKinds.RestoreApprovals(environment, inPlace);

    /// <summary>
    /// The one answer to "is this Restore approved for its current generation", for the Restore
    /// reconciler and the Approval reconciler's TargetApproved alike: <see cref="RequiredApprovals"/>
    /// distinct approvers; any counting reject wins, even where none is needed.
    /// </summary>
    public static ApprovalState ApprovalOf(Restore restore, string environment, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<k8s.Models.V1RoleBinding>>? bindingsIn = null) =>
        ApprovalPolicy.Evaluate(restore, ApprovableKinds.Restore.RequiredApprovals(restore, environment), approvals, holdsApproverRole, bindingsIn);

    /// <summary>
    /// The databases a restore touches, checked against the workspace's own database again whatever
    /// admission let through: a new database must be inside the workspace's prefix ("&lt;own&gt;_").
    /// </summary>
    public static RestoreTargetPlan Target(RestoreSpec spec, string ownDatabase, string uid, DateTime requestedAt, out RestoreRefusal? refusal)
    {
        refusal = null;
        if (spec.Into.InPlace == true)
        {
            if (spec.Into.Database is not null)
            {
                refusal = new(RestoreReasons.InvalidTarget, "spec.into: set exactly one of database or inPlace: true");
            }

            return new RestoreTargetPlan(ownDatabase, StagingName(ownDatabase, uid), ReplacedName(ownDatabase, requestedAt));
        }

        var into = spec.Into.Database;
        if (into is null)
        {
            refusal = new(RestoreReasons.InvalidTarget, "spec.into: set exactly one of database or inPlace: true");
            return new RestoreTargetPlan(ownDatabase, ownDatabase, null);
        }

        if (!Identifier().IsMatch(into) || !into.StartsWith(ownDatabase + "_", StringComparison.Ordinal))
        {
            refusal = new(RestoreReasons.DatabaseNotOwned,
                $"spec.into.database: \"{into}\" must be inside this workspace's database prefix \"{ownDatabase}_\" (at most 63 characters; lowercase letters, digits, underscores)");
        }

        return new RestoreTargetPlan(into, into, null);
    }

    /// <summary>
    /// A restore's new database must not take a name a workspace holds or would be given: the database of a
    /// workspace (as recorded in its status) or the first name a workspace's allocation tries
    /// (<see cref="Store.RegionDatabases.DatabaseName"/>). <paramref name="workspaces"/> are the existing ones;
    /// a future workspace is protected by its allocation, which skips every name a restore recorded or the server holds.
    /// </summary>
    public static RestoreRefusal? WorkspaceNameRefusal(string into, IEnumerable<Workspace> workspaces)
    {
        var holder = workspaces.FirstOrDefault(w => w.Status?.Database?.Name == into || Store.RegionDatabases.DatabaseName(w.Metadata.Name) == into);
        return holder is null ? null : new(RestoreReasons.DatabaseNameReserved,
            $"spec.into.database: \"{into}\" is the database name of workspace {holder.Metadata.Name}; a restore never takes a workspace's name, choose another");
    }

    /// <summary>Where an in-place restore keeps the replaced database: &lt;db&gt;_pre_restore_&lt;UTC yyyyMMddHHmmss&gt; (inside the workspace's prefix).</summary>
    public static string ReplacedName(string database, DateTime at)
    {
        const string infix = "_pre_restore_";
        var stamp = at.ToUniversalTime().ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        var head = database.Length + infix.Length + stamp.Length <= 63 ? database : database[..(63 - infix.Length - stamp.Length)];
        return head + infix + stamp;
    }

    /// <summary>The database an in-place restore fills before it takes the live one's name: unique per Restore (its UID).</summary>
    public static string StagingName(string database, string uid)
    {
        const string infix = "_restoring_";
        var tag = new string(uid.Where(char.IsAsciiHexDigitLower).Take(8).ToArray()).PadRight(8, '0');
        var head = database.Length + infix.Length + tag.Length <= 63 ? database : database[..(63 - infix.Length - tag.Length)];
        return head + infix + tag;
    }

    /// <summary>
    /// The backup to restore: by name (of this plan, Completed) or the newest Completed at or before
    /// targetTime, refused before the plan's first recoverability point (naming it).
    /// </summary>
    public static BackupChoice ChooseBackup(RestoreSpec spec, IReadOnlyList<Backup> inNamespace, DateTime? firstRecoverabilityPoint)
    {
        var ofPlan = inNamespace.Where(b => b.Spec.BackupPlan == spec.BackupPlan).ToList();
        if (spec.Backup is { } name)
        {
            var named = inNamespace.FirstOrDefault(b => b.Metadata.Name == name);
            if (named is null) return Refused(RestoreReasons.BackupNotFound, $"spec.backup: Backup \"{name}\" not found in this workspace");
            if (named.Spec.BackupPlan != spec.BackupPlan)
            {
                return Refused(RestoreReasons.BackupNotOfPlan, $"spec.backup: Backup \"{name}\" belongs to BackupPlan \"{named.Spec.BackupPlan}\", not to spec.backupPlan \"{spec.BackupPlan}\"");
            }

            if (named.Metadata.DeletionTimestamp is not null) return Refused(RestoreReasons.BackupNotFound, $"spec.backup: Backup \"{name}\" is being deleted");
            return named.Status?.Phase switch
            {
                BackupPhase.Completed => new BackupChoice(named, null, null),
                BackupPhase.Failed => Refused(RestoreReasons.BackupFailed, $"spec.backup: Backup \"{name}\" failed; only a Completed backup can be restored"),
                _ => new BackupChoice(null, null, $"Backup \"{name}\" is {named.Status?.Phase ?? BackupPhase.Pending}"),
            };
        }

        if (spec.TargetTime is not { } target) return Refused(RestoreReasons.InvalidSource, "spec: set exactly one of targetTime or backup");
        var targetUtc = target.ToUniversalTime();
        if (firstRecoverabilityPoint is null || !ofPlan.Any(b => b.Status?.Phase == BackupPhase.Completed))
        {
            return Refused(RestoreReasons.NoBackup, $"spec.targetTime: BackupPlan \"{spec.BackupPlan}\" has no Completed backup to restore");
        }

        if (targetUtc < firstRecoverabilityPoint.Value.ToUniversalTime())
        {
            return Refused(RestoreReasons.OutsideRecoverabilityWindow,
                $"spec.targetTime: {targetUtc:O} is before BackupPlan \"{spec.BackupPlan}\"'s firstRecoverabilityPoint {firstRecoverabilityPoint.Value.ToUniversalTime():O}: no backup that old is kept");
        }

        var chosen = BackupRules.AtOrBefore(ofPlan, targetUtc);
        return chosen is null
            ? Refused(RestoreReasons.OutsideRecoverabilityWindow, $"spec.targetTime: no Completed backup of BackupPlan \"{spec.BackupPlan}\" at or before {targetUtc:O}")
            : new BackupChoice(chosen, null, null);
    }

    static BackupChoice Refused(string reason, string message) => new(null, new RestoreRefusal(reason, message), null);

    /// <summary>
    /// A Backup is this workspace's only if its stored object is where this workspace's backups go
    /// (the key is derived from tenant, workspace, plan, name and UID) and it names the workspace's own
    /// database: a status pointing at another workspace's object is refused.
    /// </summary>
    public static RestoreRefusal? BackupOfWorkspaceRefusal(Backup backup, string keyPrefix, string tenant, string workspace, string ownDatabase)
    {
        var expected = BackupRules.ObjectKey(keyPrefix, tenant, workspace, backup);
        if (backup.Status?.Key != expected || backup.Status?.Database != ownDatabase || string.IsNullOrEmpty(backup.Status?.Sha256))
        {
            return new(RestoreReasons.BackupNotOfWorkspace, $"spec: Backup \"{backup.Metadata.Name}\" is not a backup of this workspace's database {ownDatabase}; it is refused");
        }

        return null;
    }
}
