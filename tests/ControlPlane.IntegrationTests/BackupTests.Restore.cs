using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Restores on real Postgres and s3rver: into a new database, in place (the old one kept), approvals, the recoverability window.</summary>
public sealed partial class BackupTests
{
    internal static readonly ResourceType Restores = ResourceType.For<Restore>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);

    async Task<Restore> CreateRestoreAsync(string ws, string name, Action<RestoreSpec> edit, KubeApi? api = null)
    {
        var restore = new Restore { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ws }, Spec = new RestoreSpec { BackupPlan = "nightly" } };
        edit(restore.Spec);
        return await (api ?? cluster.Api).CreateAsync(Restores, ws, restore, CancellationToken.None);
    }

    async Task<Restore> WaitForRestoreAsync(string ws, string name, Func<Restore, bool> condition, string what, TimeSpan? timeout = null)
    {
        Restore? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<Restore>(Restores, ws, name, CancellationToken.None);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(60), $"restore {ws}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            var conditions = string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? []);
            throw new TimeoutException($"{e.Message} (phase {last?.Status?.Phase}, conditions: {conditions})");
        }

        return last!;
    }

    static bool RestoreFinished(Restore r) => r.Status?.Phase is RestorePhase.Completed or RestorePhase.Failed;

    static string? ReadyReason(Restore r) => Condition(r.Status?.Conditions, "Ready")?.Reason;

    /// <summary>An approval (or with decision "reject", a rejection) as the webhook would have stamped it (approver, target UID and generation, groups).</summary>
    async Task<Approval> ApproveAsync(Restore target, string approver, string decision = "approve")
    {
        var approval = new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = "Restore", Name = target.Metadata.Name },
                Approver = approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation, Decision = decision,
            },
        };
        return await cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, approval, CancellationToken.None);
    }

    async Task<string> ChecksumOfAsync(string ws, string? database = null)
    {
        await using var conn = TenantConnection(await DatabaseSecretAsync(ws), database);
        await conn.OpenAsync();
        return await ChecksumAsync(conn);
    }

    async Task<bool> DatabaseExistsAsync(string database)
    {
        await using var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", admin);
        cmd.Parameters.AddWithValue(database);
        return await cmd.ExecuteScalarAsync() is not null;
    }

    async Task<List<string>> AuditActionsAsync(string objectName)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'Restore' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(objectName);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    async Task<(string Id, string Phase, string? Replaced)> RestoreRowAsync(string uid)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT id::text, phase, replaced_database FROM controlplane.restores WHERE k8s_uid = $1", conn);
        cmd.Parameters.AddWithValue(uid);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync(), "a row in controlplane.restores");
        return (r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2));
    }

    /// <summary>A Ready workspace with rows, a plan and one Completed on-demand backup; the checksum of the rows it holds; then more rows written after it.</summary>
    async Task<(string Workspace, string Database, string AtBackup, Backup Backup)> BackedUpAsync(string ws, string backupName = "first")
    {
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await WriteRowsAsync(ws, 1, 300);
        await CreatePlanAsync(ws, "nightly", Yearly);
        await CreateBackupAsync(ws, backupName, "nightly");
        var backup = await WaitForBackupAsync(ws, backupName, b => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed, "finished");
        Assert.Equal(BackupPhase.Completed, backup.Status!.Phase);
        var atBackup = await ChecksumOfAsync(ws);
        await WriteRowsAsync(ws, 301, 50);
        return (ws, Value(await DatabaseSecretAsync(ws), "database"), atBackup, backup);
    }

    /// <summary>A workspace of an environment with these users as Approvers, and its region's storage credentials (its prefix is its name).</summary>
    async Task<(string Workspace, string CredentialsSecret)> WorkspaceWithApproversAsync(string name, string environment, params string[] approvers) =>
        await WorkspaceWithMembersAsync(name, environment, approvers.Select(a => new WorkspaceMember { Kind = "User", Name = a, Role = "Approver" }).ToArray());

    async Task<(string Workspace, string CredentialsSecret)> WorkspaceWithMembersAsync(string name, string environment, params WorkspaceMember[] members)
    {
        var tenant = Unique(name + "-t");
        var ws = Unique(name);
        await cluster.CreateTenantAsync(tenant);
        await cluster.CreateWorkspaceAsync(ws, tenant, w =>
        {
            w.Environment = environment;
            w.Members = [.. members];
        });
        var credentials = Unique("s3");
        await cluster.Api.CreateAsync(Secrets, OperatorNamespace, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = credentials, NamespaceProperty = OperatorNamespace },
            Data = new Dictionary<string, byte[]>
            {
                ["accessKeyId"] = System.Text.Encoding.UTF8.GetBytes(ControlPlane.LocalEnv.LocalS3.AccessKey),
                ["secretAccessKey"] = System.Text.Encoding.UTF8.GetBytes(ControlPlane.LocalEnv.LocalS3.SecretKey),
            },
        }, CancellationToken.None);
        return (ws, credentials);
    }

    [Fact]
    public async Task Restore_IntoANewDatabase_HoldsTheBackupsData_IsRecordedAndAudited_AndANoOpReconcileWritesNothing()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("rst-new");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        var (_, db, atBackup, backup) = await BackedUpAsync(ws);

        // Outside prod a restore into a new database needs no approval.
        var into = db + "_restored";
        await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = into }));
        var done = await WaitForRestoreAsync(ws, "copy", RestoreFinished, "finished");
        Assert.True(done.Status!.Phase == RestorePhase.Completed, $"{ReadyReason(done)}: {Condition(done.Status.Conditions, "Ready")?.Message}");
        Assert.Equal("first", done.Status.Backup);
        Assert.Equal(into, done.Status.Database);
        Assert.Null(done.Status.ReplacedDatabase);
        Assert.NotNull(done.Status.StartedAt);
        Assert.NotNull(done.Status.CompletedAt);
        Assert.True(done.Status.SmokeCheck!.Passed);
        Assert.Equal(1, done.Status.SmokeCheck.Tables);
        Assert.Equal("True", Condition(done.Status.Conditions, "Approved")?.Status);

        // The restored database holds the rows of the backup (not those written after), reachable with the workspace's own credentials.
        Assert.Equal(atBackup, await ChecksumOfAsync(ws, into));
        Assert.NotEqual(atBackup, await ChecksumOfAsync(ws));

        // The row is finished just after the status is written: waited for.
        await Net.WaitUntilAsync(async () => (await RestoreRowAsync(done.Metadata.Uid)).Phase == "Completed", TimeSpan.FromSeconds(60), "recorded Completed");
        var row = await RestoreRowAsync(done.Metadata.Uid);
        Assert.Equal(done.Status.CorrelationId, row.Id);
        Assert.Equal("Completed", row.Phase);
        Assert.Equal(["restore.requested", "restore.started", "restore.completed"], await AuditActionsAsync($"{ws}/copy"));

        // Settled: reconciling it again writes nothing to the API server or Postgres.
        await op.ResyncWritesNothingAsync($"restore {ws}/copy");

        // The same name again: the database exists, so it is refused (never overwritten).
        await CreateRestoreAsync(ws, "again", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = into }));
        var again = await WaitForRestoreAsync(ws, "again", RestoreFinished, "finished");
        Assert.Equal(RestorePhase.Failed, again.Status!.Phase);
        Assert.Equal("DatabaseExists", ReadyReason(again));
        Assert.Equal(atBackup, await ChecksumOfAsync(ws, into));

        // Before the plan's first recoverability point: refused, naming it.
        var plan = await WaitForPlanAsync(ws, "nightly", p => p.Status?.FirstRecoverabilityPoint is not null, "a recoverability point");
        await CreateRestoreAsync(ws, "too-old", s => (s.TargetTime, s.Into) = (plan.Status!.FirstRecoverabilityPoint!.Value.AddHours(-1), new RestoreTarget { Database = db + "_old" }));
        var old = await WaitForRestoreAsync(ws, "too-old", RestoreFinished, "finished");
        Assert.Equal(RestorePhase.Failed, old.Status!.Phase);
        Assert.Equal("OutsideRecoverabilityWindow", ReadyReason(old));
        Assert.Contains("firstRecoverabilityPoint", Condition(old.Status.Conditions, "Ready")!.Message);
        Assert.Contains(plan.Status!.FirstRecoverabilityPoint!.Value.ToUniversalTime().ToString("O"), Condition(old.Status.Conditions, "Ready")!.Message);
        Assert.False(await DatabaseExistsAsync(db + "_old"));
        // Refused for good: counted as a terminal error, not as a successful reconcile. The status is written
        // inside the reconcile and the metric counted when it returns: waited for, not read at once.
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.Metrics.TerminalReconcileErrors.WithLabels("restore").Value >= 1
                                                       && op.Runtime.Metrics.ReconcileTotal.WithLabels("restore", "terminal").Value >= 1),
            TimeSpan.FromSeconds(60), "the refused restore counted as a terminal reconcile");
        Assert.Equal(backup.Status!.Sha256, (await cluster.Api.GetAsync<Backup>(Backups, ws, "first", CancellationToken.None)).Status!.Sha256);
    }

    [Fact]
    public async Task Restore_InPlace_AfterOneApproval_KeepsTheOldDatabaseRenamed_EndsItsSessions_AndHoldsTheBackupsData()
    {
        var (ws, credentials) = await WorkspaceWithApproversAsync("rst-inplace", "dev", "carol@example.com");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        var (_, db, atBackup, _) = await BackedUpAsync(ws);
        var afterBackup = await ChecksumOfAsync(ws);

        var restore = await CreateRestoreAsync(ws, "undo", s => (s.TargetTime, s.Into, s.Reason) = (DateTime.UtcNow.AddMinutes(5), new RestoreTarget { InPlace = true }, "bad migration"));
        var waiting = await WaitForRestoreAsync(ws, "undo", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "awaiting approval");
        Assert.Equal("False", Condition(waiting.Status!.Conditions, "Approved")?.Status);
        await LiveHealth.AssertAsync(cluster.Api, Restores, ws, "undo", "in place, awaiting approval");

        // A session of the tenant's on the live database: the swap ends it.
        await using var session = TenantConnection(await DatabaseSecretAsync(ws));
        await session.OpenAsync();
        await ApproveAsync(restore, "carol@example.com");
        var done = await WaitForRestoreAsync(ws, "undo", RestoreFinished, "finished", TimeSpan.FromSeconds(90));
        Assert.True(done.Status!.Phase == RestorePhase.Completed, $"{ReadyReason(done)}: {Condition(done.Status.Conditions, "Ready")?.Message}");
        var replaced = done.Status.ReplacedDatabase!;
        Assert.Matches($"^{db}_pre_restore_[0-9]{{14}}$", replaced);
        Assert.Equal(db, done.Status.Database);

        Assert.Equal(atBackup, await ChecksumOfAsync(ws));
        Assert.Equal(afterBackup, await ChecksumOfAsync(ws, replaced));
        await Assert.ThrowsAnyAsync<NpgsqlException>(async () =>
        {
            await using var cmd = new NpgsqlCommand("SELECT 1", session);
            await cmd.ExecuteScalarAsync();
        });
        await Net.WaitUntilAsync(async () => (await RestoreRowAsync(done.Metadata.Uid)).Phase == "Completed", TimeSpan.FromSeconds(60), "recorded Completed");
        Assert.Equal(replaced, (await RestoreRowAsync(done.Metadata.Uid)).Replaced);
        Assert.Equal(["restore.requested", "restore.approved", "restore.started", "restore.completed"], await AuditActionsAsync($"{ws}/undo"));
        Assert.False(await DatabaseExistsAsync(RestoreResources.StagingName(db, done.Metadata.Uid)));

        // The workspace stays Ready on the restored database.
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready after the restore");
    }

    [Fact]
    public async Task Restore_InProd_WaitsForTwoApprovers()
    {
        var (ws, credentials) = await WorkspaceWithApproversAsync("rst-prod", "prod", "carol@example.com", "dave@example.com");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        var (_, db, atBackup, _) = await BackedUpAsync(ws);

        var restore = await CreateRestoreAsync(ws, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = db + "_copy" }));
        await WaitForRestoreAsync(ws, "copy", r => r.Status?.Phase == RestorePhase.AwaitingApproval, "awaiting approval");
        // approval.requested names who may approve: the request's audit row says how many and which roles.
        await using (var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand(
                "SELECT details->'approvers'->>'required', details->'approvers'->'roles' FROM controlplane.audit_events WHERE kind = 'Restore' AND object_name = $1 AND action = 'restore.requested'", conn);
            cmd.Parameters.AddWithValue($"{ws}/copy");
            await using var row = await cmd.ExecuteReaderAsync();
            Assert.True(await row.ReadAsync());
            Assert.Equal("2", row.GetString(0));
            Assert.Contains("Approver", row.GetString(1), StringComparison.OrdinalIgnoreCase);
        }

        await ApproveAsync(restore, "carol@example.com");
        var one = await WaitForRestoreAsync(ws, "copy", r => Condition(r.Status?.Conditions, "Approved")?.Message?.StartsWith("1 of 2") == true, "one of two approvals");
        Assert.Equal(RestorePhase.AwaitingApproval, one.Status!.Phase);
        Assert.False(await DatabaseExistsAsync(db + "_copy"));

        await ApproveAsync(restore, "dave@example.com");
        var done = await WaitForRestoreAsync(ws, "copy", RestoreFinished, "finished", TimeSpan.FromSeconds(90));
        Assert.True(done.Status!.Phase == RestorePhase.Completed, $"{ReadyReason(done)}: {Condition(done.Status.Conditions, "Ready")?.Message}");
        Assert.Contains("carol@example.com", Condition(done.Status.Conditions, "Approved")!.Message);
        Assert.Contains("dave@example.com", Condition(done.Status.Conditions, "Approved")!.Message);
        Assert.Equal(atBackup, await ChecksumOfAsync(ws, db + "_copy"));
    }
}
