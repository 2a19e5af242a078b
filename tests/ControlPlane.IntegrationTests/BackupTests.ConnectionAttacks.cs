using System.Net.Sockets;
using System.Net;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 22, class 1: the workspace's credentials Secret is the tenant's to edit (WorkspaceAdmin, IntegrationAdmin), so
/// where and as whom backups and restores connect never comes from it. bob, WorkspaceAdmin, edits it as a token user:
/// its host and port to an address of his (a port scan, a rogue server), its host to the server's trusted local socket
/// and its username to the region role (a takeover), its owner reference stripped so the operator does not repair it.
/// </summary>
public sealed partial class BackupTests
{
    /// <summary>A TCP listener on loopback that counts the connections it is offered (what a port scan would find).</summary>
    sealed class ConnectionCounter : IDisposable
    {
        readonly TcpListener listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource stop = new();
        int accepted;

        public ConnectionCounter()
        {
            listener.Start();
            _ = AcceptAsync();
        }

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref accepted);

        async Task AcceptAsync()
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    using var client = await listener.AcceptTcpClientAsync(stop.Token);
                    Interlocked.Increment(ref accepted);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
            stop.Dispose();
        }
    }

    static string SecretPatch(bool stripOwner, params (string Key, string Value)[] data)
    {
        var fields = string.Join(",", data.Select(d => $"\"{d.Key}\":\"{Convert.ToBase64String(Encoding.UTF8.GetBytes(d.Value))}\""));
        return stripOwner ? $"{{\"metadata\":{{\"ownerReferences\":null}},\"data\":{{{fields}}}}}" : $"{{\"data\":{{{fields}}}}}";
    }

    async Task<Backup> WaitForBackupFinishedAsync(string ws, string name) =>
        await WaitForBackupAsync(ws, name, b => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed, "finished", TimeSpan.FromSeconds(90));

    [Fact]
    public async Task ACredentialsSecretPointedAtAnotherAddress_NeverMakesTheOperatorConnectThere_RepairedWhenOwned_RefusedWhenStripped()
    {
        var bobUser = cluster.Plane.Users["bob"];
        var (ws, credentials) = await WorkspaceWithMembersAsync("conn-probe", "dev", new WorkspaceMember { Kind = "User", Name = bobUser.Name, Role = "WorkspaceAdmin" });
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        var (_, db, _, _) = await BackedUpAsync(ws);
        var bob = new KubeApi(cluster.Plane.ClientConfigFor(bobUser));
        using var probe = new ConnectionCounter();
        var realHost = Value(await DatabaseSecretAsync(ws), "host");

        // 1. Host and port edited, the owner reference left: the Workspace reconciler rewrites the Secret; a backup
        //    then connects to the region's server as the workspace role (verified), never to bob's address.
        await bob.PatchAsync<V1Secret>(Secrets, ws, ws + "-db", SecretPatch(false, ("host", "127.0.0.1"), ("port", probe.Port.ToString())), PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => Value(await DatabaseSecretAsync(ws), "port") != probe.Port.ToString(), TimeSpan.FromSeconds(30), "the edited Secret repaired");
        Assert.Equal(realHost, Value(await DatabaseSecretAsync(ws), "host"));
        await CreateBackupAsync(ws, "after-repair", "nightly");
        var repaired = await WaitForBackupFinishedAsync(ws, "after-repair");
        Assert.True(repaired.Status!.Phase == BackupPhase.Completed, $"{Condition(repaired.Status.Conditions, "Ready")?.Reason}: {Condition(repaired.Status.Conditions, "Ready")?.Message}");
        Assert.Contains($"dumped as role {db} (session_user verified)", Condition(repaired.Status.Conditions, "Ready")!.Message);

        // 2. The same edit with the owner reference stripped (the operator does not adopt it): the Workspace reports
        //    CredentialsTampered and a backup is refused with that reason before anything connects.
        await bob.PatchAsync<V1Secret>(Secrets, ws, ws + "-db", SecretPatch(true, ("host", "127.0.0.1"), ("port", probe.Port.ToString())), PatchTypes.Merge, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(ws, w => Condition(w.Status?.Conditions, "DatabaseReady")?.Reason == "CredentialsTampered", "DatabaseReady=False CredentialsTampered");
        await CreateBackupAsync(ws, "after-strip", "nightly");
        var refused = await WaitForBackupFinishedAsync(ws, "after-strip");
        Assert.True(refused.Status!.Phase == BackupPhase.Failed, $"{refused.Status.Phase}: {Condition(refused.Status.Conditions, "Ready")?.Message}");
        Assert.Equal("CredentialsTampered", Condition(refused.Status.Conditions, "Ready")?.Reason);
        var message = Condition(refused.Status.Conditions, "Ready")!.Message;
        Assert.Contains("data.port differs from the operator's record", message);
        Assert.Contains("metadata.ownerReferences", message);
        Assert.DoesNotContain(probe.Port.ToString(), message);
        Assert.Equal(0, probe.Accepted);

        // Deleting the Secret has a new one written (new password); backups run again.
        await bob.DeleteAsync(Secrets, ws, ws + "-db", CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready again with a new Secret");
        await CreateBackupAsync(ws, "after-delete", "nightly");
        Assert.Equal(BackupPhase.Completed, (await WaitForBackupFinishedAsync(ws, "after-delete")).Status!.Phase);
        Assert.Equal(0, probe.Accepted);
    }

    [Fact]
    public async Task ACraftedArchive_WithTheSecretPointedAtTheTrustedSocketAsTheRegionRole_IsRefused_AndRestoredAsTheWorkspaceRoleGainsNothing()
    {
        var bobUser = cluster.Plane.Users["bob"];
        var (victim, credentials) = await WorkspaceWithMembersAsync("conn-victim", "dev");
        var (mine, _) = await WorkspaceWithMembersAsync("conn-bob", "dev", new WorkspaceMember { Kind = "User", Name = bobUser.Name, Role = "WorkspaceAdmin" });
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(Unique("conn"), credentials));
        await cluster.WaitForWorkspaceAsync(victim, ClusterFixture.IsReady, "Ready");
        await cluster.WaitForWorkspaceAsync(mine, ClusterFixture.IsReady, "Ready");
        var victimSecret = await DatabaseSecretAsync(victim);
        var victimRole = Value(victimSecret, "username");
        await using (var conn = TenantConnection(victimSecret))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE public.payroll (who text); INSERT INTO public.payroll VALUES ('top secret')");
        }

        // With his workspace's own database credentials: a VOLATILE function in a CHECK constraint, run for every row
        // pg_restore loads, that tries to give his role CREATEROLE and the victim's role.
        var mySecret = await DatabaseSecretAsync(mine);
        var myRole = Value(mySecret, "username");
        await using (var conn = TenantConnection(mySecret))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, $"""
                CREATE FUNCTION public.grab() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
                BEGIN
                  BEGIN EXECUTE 'ALTER ROLE "{myRole}" CREATEROLE CREATEDB'; EXCEPTION WHEN others THEN NULL; END;
                  BEGIN EXECUTE 'GRANT "{victimRole}" TO "{myRole}"'; EXCEPTION WHEN others THEN NULL; END;
                  RETURN true;
                END $f$;
                CREATE TABLE public.loot (id int CHECK (public.grab()));
                INSERT INTO public.loot VALUES (1);
                """);
        }

        var (_, db, _, _) = await BackedUpAsync(mine);

        // The Secret pointed at the server's local socket (trust auth) as the region role (CREATEROLE), owner reference stripped.
        var bob = new KubeApi(cluster.Plane.ClientConfigFor(bobUser));
        await bob.PatchAsync<V1Secret>(Secrets, mine, mine + "-db",
            SecretPatch(true, ("host", cluster.Postgres.SocketDirectory), ("port", cluster.Postgres.Port.ToString()), ("username", LocalPostgres.OperatorRole)), PatchTypes.Merge, CancellationToken.None);
        await CreateRestoreAsync(mine, "steal", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = db + "_steal" }), bob);
        var steal = await WaitForRestoreAsync(mine, "steal", RestoreFinished, "finished", TimeSpan.FromSeconds(90));
        Assert.True(steal.Status!.Phase == RestorePhase.Failed && ReadyReason(steal) == "CredentialsTampered", $"{steal.Status.Phase} {ReadyReason(steal)}: {Condition(steal.Status.Conditions, "Ready")?.Message}");
        Assert.False(await DatabaseExistsAsync(db + "_steal"));
        await AssertRoleGainedNothingAsync(myRole, victimRole);

        // With the Secret rewritten, the same archive restores as the workspace role: the function runs, and gains nothing.
        await bob.DeleteAsync(Secrets, mine, mine + "-db", CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(mine, ClusterFixture.IsReady, "Ready again with a new Secret");
        await CreateRestoreAsync(mine, "copy", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = db + "_copy" }), bob);
        var copy = await WaitForRestoreAsync(mine, "copy", RestoreFinished, "finished", TimeSpan.FromSeconds(90));
        Assert.True(copy.Status!.Phase == RestorePhase.Completed, $"{ReadyReason(copy)}: {Condition(copy.Status.Conditions, "Ready")?.Message}");
        Assert.StartsWith($"connected as role {myRole} to {db}_copy (verified server-side: session_user and current_user are {myRole}", copy.Status.SmokeCheck!.Message);
        await AssertRoleGainedNothingAsync(myRole, victimRole);
        await using (var conn = TenantConnection(await DatabaseSecretAsync(mine), db + "_copy"))
        {
            await conn.OpenAsync();
            Assert.Equal(1L, await ScalarAsync<long>(conn, "SELECT pg_catalog.count(*) FROM public.loot"));
        }

        // His credentials still reach neither the victim's database nor its table.
        var e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = TenantConnection(await DatabaseSecretAsync(mine), Value(victimSecret, "database"));
            await conn.OpenAsync();
        });
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
    }

    async Task AssertRoleGainedNothingAsync(string role, string otherRole)
    {
        await using var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb, pg_catalog.pg_has_role(r.oid, o.oid, 'MEMBER')
            FROM pg_catalog.pg_roles r, pg_catalog.pg_roles o WHERE r.rolname = $1 AND o.rolname = $2
            """, admin);
        cmd.Parameters.AddWithValue(role);
        cmd.Parameters.AddWithValue(otherRole);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.False(r.GetBoolean(0), $"{role} gained SUPERUSER, CREATEROLE or CREATEDB");
        Assert.False(r.GetBoolean(1), $"{role} became a member of {otherRole}");
    }

    /// <summary>
    /// Issue 22 (medium): a Restore into "&lt;own&gt;_x" took the name workspace "&lt;own ws&gt;-x" (of any tenant) would be allocated
    /// later, leaving that workspace in DatabaseConflict. Allocation now skips names restores recorded or the server holds,
    /// and a restore is refused a name an existing workspace holds or would be given.
    /// </summary>
    [Fact]
    public async Task ARestoreIntoTheNameOfAFutureWorkspace_DoesNotSquatIt_AndARestoreIntoAnExistingWorkspacesName_IsRefused()
    {
        var (ws, credentials) = await WorkspaceWithMembersAsync("sq", "dev");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(ws, credentials));
        var (_, db, _, _) = await BackedUpAsync(ws);
        var squatted = ControlPlane.Operator.Store.RegionDatabases.DatabaseName(ws + "-x");
        Assert.Equal(db + "_x", squatted);
        await CreateRestoreAsync(ws, "squat", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = squatted }));
        Assert.Equal(RestorePhase.Completed, (await WaitForRestoreAsync(ws, "squat", RestoreFinished, "finished", TimeSpan.FromSeconds(90))).Status!.Phase);

        // Another tenant's workspace of that name later: Ready, on another database; the restored copy is not its.
        var other = Unique("sq-other");
        await cluster.CreateTenantAsync(other);
        await cluster.CreateWorkspaceAsync(ws + "-x", other);
        var later = await cluster.WaitForWorkspaceAsync(ws + "-x", ClusterFixture.IsReady, "Ready on a database of its own");
        Assert.NotEqual(squatted, later.Status!.Database!.Name);

        // A workspace that exists: a restore into its (first-candidate) name is refused at reconcile, naming the field.
        await cluster.CreateWorkspaceAsync(ws + "-y", other, w => w.Database = new WorkspaceDatabase { Enabled = false });
        var taken = ControlPlane.Operator.Store.RegionDatabases.DatabaseName(ws + "-y");
        await CreateRestoreAsync(ws, "grab", s => (s.Backup, s.Into) = ("first", new RestoreTarget { Database = taken }));
        var grab = await WaitForRestoreAsync(ws, "grab", RestoreFinished, "finished");
        Assert.True(grab.Status!.Phase == RestorePhase.Failed && ReadyReason(grab) == "DatabaseNameReserved", $"{grab.Status.Phase} {ReadyReason(grab)}");
        Assert.StartsWith("spec.into.database", Condition(grab.Status.Conditions, "Ready")!.Message);
        Assert.False(await DatabaseExistsAsync(taken));
    }

    /// <summary>
    /// The server-side check before any SQL: a workspace role that gained more than a login (here CREATEDB and another
    /// tenant's role, as a restore run as someone else would have given it) is never used: the Backup fails SessionNotVerified.
    /// </summary>
    [Fact]
    public async Task AWorkspaceRoleThatGainedPrivileges_IsNotUsed_TheBackupFailsSessionNotVerified()
    {
        var (victim, credentials) = await WorkspaceWithMembersAsync("conn-v2", "dev");
        var (mine, _) = await WorkspaceWithMembersAsync("conn-gain", "dev");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(Unique("conn"), credentials));
        await cluster.WaitForWorkspaceAsync(victim, ClusterFixture.IsReady, "Ready");
        var (_, db, _, _) = await BackedUpAsync(mine);
        var victimRole = Value(await DatabaseSecretAsync(victim), "username");
        await using (var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await admin.OpenAsync();
            await ExecAsync(admin, $"ALTER ROLE \"{db}\" CREATEDB; GRANT \"{victimRole}\" TO \"{db}\"");
        }

        await CreateBackupAsync(mine, "gained", "nightly");
        var gained = await WaitForBackupFinishedAsync(mine, "gained");
        Assert.True(gained.Status!.Phase == BackupPhase.Failed, $"{gained.Status.Phase}: {Condition(gained.Status.Conditions, "Ready")?.Message}");
        Assert.Equal("SessionNotVerified", Condition(gained.Status.Conditions, "Ready")?.Reason);
        Assert.Contains("CREATEDB, membership of another role", Condition(gained.Status.Conditions, "Ready")!.Message);

        await using (var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await admin.OpenAsync();
            await ExecAsync(admin, $"ALTER ROLE \"{db}\" NOCREATEDB; REVOKE \"{victimRole}\" FROM \"{db}\"");
        }
    }
}
