using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// What a tenant can do with its own database credentials, and what a name or a retained database
/// must never give it: each test performs the attack as the tenant would.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DatabaseIsolationTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Secrets = WorkspaceReconciler.Secrets;

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    Task<Workspace> CreateWorkspaceAsync(string name, string tenant, Action<WorkspaceSpec>? edit = null) => cluster.CreateWorkspaceAsync(name, tenant, edit);

    Task<Workspace?> GetWorkspaceAsync(string name) => cluster.GetWorkspaceAsync(name);

    Task<Workspace> WaitForWorkspaceAsync(string name, Func<Workspace, bool> condition, string what, TimeSpan? timeout = null) =>
        cluster.WaitForWorkspaceAsync(name, condition, what, timeout);

    static bool IsReady(Workspace w) => ClusterFixture.IsReady(w);

    static V1Condition? Condition(Workspace w, string type) => ClusterFixture.Condition(w, type);

    static Func<Workspace, bool> DatabaseNotReady(string reason) =>
        w => Condition(w, WorkspaceConditions.DatabaseReady) is { Status: "False" } c && c.Reason == reason && c.ObservedGeneration == w.Metadata.Generation;

    async Task<V1Secret> SecretOfAsync(string workspace) => await cluster.Api.GetAsync<V1Secret>(Secrets, workspace, workspace + "-db", CancellationToken.None);

    static string SecretValue(V1Secret s, string key) => Encoding.UTF8.GetString(s.Data[key]);

    /// <summary>The tenant's own connection: exactly what its Secret gives it.</summary>
    static NpgsqlConnection TenantConnection(V1Secret credentials, string? database = null) => new(new NpgsqlConnectionStringBuilder
    {
        Host = SecretValue(credentials, "host"), Port = int.Parse(SecretValue(credentials, "port"), System.Globalization.CultureInfo.InvariantCulture),
        Username = SecretValue(credentials, "username"), Password = SecretValue(credentials, "password"),
        Database = database ?? SecretValue(credentials, "database"), Pooling = false, Timeout = 5,
    }.ConnectionString);

    static async Task<bool> CanLoginAsync(V1Secret credentials, string? database = null)
    {
        try
        {
            await using var conn = TenantConnection(credentials, database);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT 1", conn);
            return (int)(await cmd.ExecuteScalarAsync())! == 1;
        }
        catch (PostgresException e) when (e.SqlState is "28P01" or "42501" or "28000")
        {
            return false;
        }
    }

    static async Task ExecAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>The test server's superuser (not the operator's connection), for what only it can see.</summary>
    async Task<T?> AsSuperuserAsync<T>(string sql, string? database = null, params object[] args)
    {
        var b = new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString()) { Pooling = false };
        if (database is not null) b.Database = database;
        await using var conn = new NpgsqlConnection(b.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var a in args) cmd.Parameters.AddWithValue(a);
        var value = await cmd.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }

    async Task<(V1Secret Before, V1Secret After)> RotateAsync(string workspace)
    {
        var before = await SecretOfAsync(workspace);
        await cluster.Api.PatchAsync<V1Secret>(Secrets, workspace, workspace + "-db", """{"metadata":{"annotations":{"controlplane.io/rotate":"true"}}}""",
            PatchTypes.Merge, CancellationToken.None);
        var after = before;
        await Net.WaitUntilAsync(async () =>
        {
            after = await SecretOfAsync(workspace);
            return SecretValue(after, "password") != SecretValue(before, "password") && after.Metadata.Annotations?.ContainsKey("controlplane.io/rotate") != true;
        }, TimeSpan.FromSeconds(30), "password rotated by the operator");
        return (before, after);
    }

    // ---- A: tenant-controlled code ---------------------------------------------------------------

    [Fact]
    public async Task CatalogNamedView_OnTheTenantsSearchPath_NeverRunsForTheOperator_AndTheRoleStaysNonSuperuser()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant, w => w.Database = new WorkspaceDatabase { Extensions = ["pgcrypto"] });
        var ws = await WaitForWorkspaceAsync(name, IsReady, "Ready");
        var db = ws.Status!.Database!.Name!;
        var secret = await SecretOfAsync(name);
        var role = SecretValue(secret, "username");

        // The attack, with the workspace's own credentials: its database's search_path puts public
        // first, and public.pg_extension is a view over a function that makes the role a superuser
        // whenever a superuser reads it (and leaves a mark whoever reads it).
        await using (var conn = TenantConnection(secret))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, $"ALTER DATABASE \"{db}\" SET search_path = public, pg_catalog");
            await ExecAsync(conn, "CREATE TABLE public.attack_marker (who text, superuser text)");
            await ExecAsync(conn, $$"""
                CREATE FUNCTION public.attack() RETURNS SETOF name LANGUAGE plpgsql AS $f$
                BEGIN
                    INSERT INTO public.attack_marker VALUES (current_user, current_setting('is_superuser'));
                    IF current_setting('is_superuser') = 'on' THEN
                        EXECUTE 'ALTER ROLE "{{role}}" SUPERUSER';
                    END IF;
                    RETURN QUERY SELECT e.extname FROM pg_catalog.pg_extension e;
                END $f$
                """);
            await ExecAsync(conn, "CREATE VIEW public.pg_extension AS SELECT public.attack() AS extname");
        }

        // Then it asks for rotation, and the operator connects into its database again.
        var (_, rotated) = await RotateAsync(name);
        await op.WaitUntilIdleAsync();

        Assert.False(await AsSuperuserAsync<bool>("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1", null, role));
        Assert.Equal(0L, await AsSuperuserAsync<long>("SELECT count(*) FROM public.attack_marker", db));
        Assert.True(await CanLoginAsync(rotated));
        Assert.Equal("True", Condition((await GetWorkspaceAsync(name))!, WorkspaceConditions.DatabaseReady)?.Status);

        // Every operator connection pins search_path, the system of record's too.
        await using var cmd = op.Runtime.Database.DataSource.CreateCommand("SHOW search_path");
        Assert.Equal(RegionDatabases.PinnedSearchPath, (string)(await cmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task SuperuserRegionConnection_IsRefused_WithAConditionOnTheWorkspace()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output,
            o => o.Regions["eu"] = new RegionOptions { Database = cluster.Postgres.ConnectionString() }, expectedErrors: ["connects as a superuser"]);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant);
        var ws = await WaitForWorkspaceAsync(name, DatabaseNotReady("UnsafeRegionRole"), "UnsafeRegionRole");
        Assert.Contains("superuser", Condition(ws, WorkspaceConditions.DatabaseReady)!.Message);
        Assert.Null(await AsSuperuserAsync<string>("SELECT datname::text FROM pg_catalog.pg_database WHERE datname = $1", null, RegionDatabases.DatabaseName(name)));
    }

    // ---- B: names that collide -------------------------------------------------------------------

    [Fact]
    public async Task NameBuiltToCollide_GetsItsOwnDatabase_TheFirstTenantsPasswordAndDataUntouched()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var red = Unique("red");
        var blue = Unique("blue");
        await cluster.CreateTenantAsync(red);
        await cluster.CreateTenantAsync(blue);

        // Red's name is long enough to be cut and hashed; blue's is built to equal the result.
        var redName = ("red-" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N"))[..61];
        var derived = RegionDatabases.DatabaseName(redName);
        var blueName = derived[3..].Replace('_', '-');
        Assert.Equal(derived, RegionDatabases.DatabaseName(blueName));

        await CreateWorkspaceAsync(redName, red);
        var redWs = await WaitForWorkspaceAsync(redName, IsReady, "Ready");
        var redDb = redWs.Status!.Database!.Name!;
        Assert.Equal(derived, redDb);
        var redSecret = await SecretOfAsync(redName);
        await using (var conn = TenantConnection(redSecret))
        {
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE public.ledger (v text); INSERT INTO public.ledger VALUES ('red data')");
        }

        await CreateWorkspaceAsync(blueName, blue);
        var blueWs = await WaitForWorkspaceAsync(blueName, IsReady, "Ready");
        var blueDb = blueWs.Status!.Database!.Name!;
        Assert.NotEqual(redDb, blueDb);
        var blueSecret = await SecretOfAsync(blueName);
        Assert.Equal(blueDb, SecretValue(blueSecret, "database"));
        Assert.NotEqual(SecretValue(redSecret, "username"), SecretValue(blueSecret, "username"));
        Assert.False(await CanLoginAsync(blueSecret, database: redDb));

        // Red still logs in with the Secret it had, and reads its own row.
        await using (var conn = TenantConnection(redSecret))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT v FROM public.ledger", conn);
            Assert.Equal("red data", (string)(await cmd.ExecuteScalarAsync())!);
        }

        Assert.Equal(redDb, (await op.Runtime.Database.GetWorkspaceAsync(redName, CancellationToken.None))!.DatabaseName);
        Assert.Equal(blueDb, (await op.Runtime.Database.GetWorkspaceAsync(blueName, CancellationToken.None))!.DatabaseName);
    }

    [Fact]
    public async Task RoleOnTheServer_NotRecordedForTheWorkspace_IsNeverTouched_AndTheWorkspaceIsAllocatedAnotherName()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        // Someone else's role already has the name the workspace would get first.
        var foreign = RegionDatabases.DatabaseName(name);
        var verifier = RegionDatabases.ScramVerifier("foreign-password");
        await AsSuperuserAsync<object>($"CREATE ROLE \"{foreign}\" LOGIN PASSWORD '{verifier}'");
        var before = await AsSuperuserAsync<string>("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", null, foreign);

        // The allocation checks the server too (issue 22: a name taken there, e.g. by a restore, is skipped): another name, never the foreign role.
        await CreateWorkspaceAsync(name, tenant);
        var ws = await WaitForWorkspaceAsync(name, w => w.Status?.Phase == WorkspacePhase.Ready, "Ready");
        Assert.NotEqual(foreign, ws.Status!.Database!.Name);
        Assert.StartsWith(foreign[..Math.Min(foreign.Length, 54)] + "_", ws.Status.Database.Name);
        Assert.Equal(before, await AsSuperuserAsync<string>("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", null, foreign));

        // Deleting the workspace leaves the foreign role alone too.
        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetWorkspaceAsync(name) is null, TimeSpan.FromSeconds(60), "workspace deleted");
        Assert.Equal(before, await AsSuperuserAsync<string>("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", null, foreign));
        await AsSuperuserAsync<object>($"DROP ROLE \"{foreign}\"");
    }

    // ---- C: retained databases ---------------------------------------------------------------------

    [Fact]
    public async Task RetainedDatabase_IsLocked_NotGivenToAnotherTenant_AndTakenBackOnlyByItsTenantAskingForIt()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var owner = Unique("t");
        var other = Unique("t");
        await cluster.CreateTenantAsync(owner);
        await cluster.CreateTenantAsync(other);
        var name = Unique("shared");
        await CreateWorkspaceAsync(name, owner);
        var ws = await WaitForWorkspaceAsync(name, IsReady, "Ready");
        var db = ws.Status!.Database!.Name!;
        var old = await SecretOfAsync(name);
        await using var session = TenantConnection(old);
        await session.OpenAsync();
        await ExecAsync(session, "CREATE TABLE public.ledger (v text); INSERT INTO public.ledger VALUES ('owner data')");

        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetWorkspaceAsync(name) is null, TimeSpan.FromSeconds(60), "workspace deleted");

        // Retained and locked: the old credentials are refused and the open session was ended.
        Assert.True(await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", db, CancellationToken.None));
        Assert.False(await CanLoginAsync(old));
        await Assert.ThrowsAnyAsync<Exception>(async () => await ExecAsync(session, "SELECT 1"));

        // Another tenant takes the name: a condition, no database, no credentials.
        await CreateWorkspaceAsync(name, other, w => w.Database = new WorkspaceDatabase { ReuseRetained = true });
        var refused = await WaitForWorkspaceAsync(name, DatabaseNotReady("RetainedDatabaseExists"), "RetainedDatabaseExists");
        Assert.Contains("another tenant", Condition(refused, WorkspaceConditions.DatabaseReady)!.Message);
        Assert.Null(refused.Status!.Database);
        Assert.Null(await cluster.Api.TryGetAsync<V1Secret>(Secrets, name, name + "-db", CancellationToken.None));
        Assert.False(await CanLoginAsync(old));
        await cluster.Api.DeleteAsync(ClusterFixture.Workspaces, null, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await GetWorkspaceAsync(name) is null, TimeSpan.FromSeconds(60), "other tenant's workspace deleted");
        Assert.True(await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", db, CancellationToken.None));

        // Its own tenant, without asking: the same condition, naming the field.
        await CreateWorkspaceAsync(name, owner);
        var waiting = await WaitForWorkspaceAsync(name, DatabaseNotReady("RetainedDatabaseExists"), "RetainedDatabaseExists for the owner");
        Assert.Contains("spec.database.reuseRetained", Condition(waiting, WorkspaceConditions.DatabaseReady)!.Message);
        Assert.Null(await cluster.Api.TryGetAsync<V1Secret>(Secrets, name, name + "-db", CancellationToken.None));

        // Asking for it: the old database and data, with a new password.
        await cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, name, """{"spec":{"database":{"reuseRetained":true}}}""", PatchTypes.Merge, CancellationToken.None);
        var back = await WaitForWorkspaceAsync(name, IsReady, "Ready with the retained database");
        Assert.Equal(db, back.Status!.Database!.Name);
        var renewed = await SecretOfAsync(name);
        Assert.NotEqual(SecretValue(old, "password"), SecretValue(renewed, "password"));
        Assert.False(await CanLoginAsync(old));
        await using var conn = TenantConnection(renewed);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT v FROM public.ledger", conn);
        Assert.Equal("owner data", (string)(await cmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task Migration_BackfillsWhatEarlierVersionsMade_OneOwnerPerName_RetainedUnlessRecordedDropped()
    {
        // A system of record as version 2 left it, in a database of its own.
        var scratch = "migrate_" + Guid.NewGuid().ToString("N")[..8];
        await AsSuperuserAsync<object>($"CREATE DATABASE {scratch}");
        try
        {
            var cs = new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString(scratch)) { Pooling = false }.ConnectionString;
            await using (var conn = new NpgsqlConnection(cs))
            {
                await conn.OpenAsync();
                await ExecAsync(conn, "CREATE SCHEMA controlplane; CREATE TABLE controlplane.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
                foreach (var m in Migrations.All.Where(m => m.Version <= 2))
                {
                    await ExecAsync(conn, m.Sql);
                    await ExecAsync(conn, $"INSERT INTO controlplane.schema_migrations (version, name) VALUES ({m.Version}, 'v{m.Version}')");
                }

                await ExecAsync(conn, """
                    INSERT INTO controlplane.workspaces (id, name, tenant_name, region, environment, data_mode, spec_hash, database_name, created_at, deleted_at) VALUES
                      (gen_random_uuid(), 'live', 'red', 'eu', 'dev', 'full', 'h', 'ws_live', now() - interval '3 day', NULL),
                      (gen_random_uuid(), 'kept', 'red', 'eu', 'dev', 'full', 'h', 'ws_kept', now() - interval '3 day', now() - interval '1 day'),
                      (gen_random_uuid(), 'gone', 'red', 'eu', 'dev', 'full', 'h', 'ws_gone', now() - interval '3 day', now() - interval '1 day'),
                      (gen_random_uuid(), 'first', 'red', 'eu', 'dev', 'full', 'h', 'ws_same', now() - interval '2 day', NULL),
                      (gen_random_uuid(), 'second', 'blue', 'eu', 'dev', 'full', 'h', 'ws_same', now() - interval '1 day', NULL);
                    INSERT INTO controlplane.audit_events (occurred_at, actor, action, kind, object_name, details, prev_hash, hash)
                    SELECT deleted_at, 'op', 'workspace.deleted', 'Workspace', name,
                           jsonb_build_object('databaseDeleted', name = 'gone'), '', md5(name)
                    FROM controlplane.workspaces WHERE deleted_at IS NOT NULL;
                    """);
            }

            await using var ds = NpgsqlDataSource.Create(RegionDatabases.Pin(new NpgsqlConnectionStringBuilder(cs)).ConnectionString);
            var system = new SystemDatabase(ds, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            Assert.False(system.Migrated.IsCompleted); // loops that read the newer tables (the backup janitor) wait for this
            Assert.Equal(Migrations.All.Count - 2, await system.MigrateAsync(CancellationToken.None));
            Assert.True(system.Migrated.IsCompletedSuccessfully);

            await using var cmd = ds.CreateCommand("SELECT workspace || ':' || name || ':' || state || ':' || tenant FROM controlplane.workspace_databases ORDER BY workspace");
            var rows = new List<string>();
            await using (var r = await cmd.ExecuteReaderAsync())
            {
                while (await r.ReadAsync()) rows.Add(r.GetString(0));
            }

            Assert.Equal(["first:ws_same:active:red", "kept:ws_kept:retained:red", "live:ws_live:active:red"], rows);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await AsSuperuserAsync<object>($"DROP DATABASE {scratch} WITH (FORCE)");
        }
    }

    // ---- D: passwords and extensions ---------------------------------------------------------------

    [Fact]
    public async Task Password_IsStoredAsTheScramVerifierWeSent_AndTheSecretLogsInAfterCreationAndRotation()
    {
        // Every statement of the region role goes to the server log, where a plaintext password would show.
        await AsSuperuserAsync<object>($"ALTER ROLE {LocalPostgres.OperatorRole} SET log_statement = 'all'");
        try
        {
            await PasswordsAsync();
        }
        finally
        {
            await AsSuperuserAsync<object>($"ALTER ROLE {LocalPostgres.OperatorRole} RESET log_statement");
        }
    }

    async Task PasswordsAsync()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant);
        await WaitForWorkspaceAsync(name, IsReady, "Ready");
        var secret = await SecretOfAsync(name);
        var role = SecretValue(secret, "username");
        Assert.True(await CanLoginAsync(secret));
        var stored = await AsSuperuserAsync<string>("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", null, role);
        Assert.StartsWith("SCRAM-SHA-256$4096:", stored);
        Assert.DoesNotContain(SecretValue(secret, "password"), stored!);

        var (before, after) = await RotateAsync(name);
        Assert.True(await CanLoginAsync(after));
        Assert.False(await CanLoginAsync(before));
        var rotated = await AsSuperuserAsync<string>("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", null, role);
        Assert.StartsWith("SCRAM-SHA-256$4096:", rotated);
        Assert.NotEqual(stored, rotated);
        Assert.False(await AsSuperuserAsync<bool>("SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = $1", null, role));

        var log = await ReadSharedAsync(cluster.Postgres.LogFile);
        Assert.DoesNotContain(SecretValue(before, "password"), log);
        Assert.DoesNotContain(SecretValue(after, "password"), log);
        Assert.Contains($"ALTER ROLE \"{role}\" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:", log); // the statements were logged
    }

    static async Task<string> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }

    [Fact]
    public async Task ExtensionOutsideTheRegionsAllowlist_IsRefused_NamingTheField_AndNothingIsMade()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant, w => w.Database = new WorkspaceDatabase { Extensions = ["pgcrypto", "file_fdw"] });
        var ws = await WaitForWorkspaceAsync(name, DatabaseNotReady("ExtensionNotAllowed"), "ExtensionNotAllowed");
        Assert.Contains("spec.database.extensions[1]", Condition(ws, WorkspaceConditions.DatabaseReady)!.Message);
        Assert.False(await op.Runtime.RegionDatabases.DatabaseExistsAsync("eu", RegionDatabases.DatabaseName(name), CancellationToken.None));
    }

    [Fact]
    public async Task ExtensionTheServerRefuses_IsAProvisioningFailure_WithItsSqlState_NotAnUnreachableServer()
    {
        // An administrator allowed an extension that is not trusted: the workspace role may not create it.
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.Regions["eu"].AllowedExtensions = ["pgcrypto", "file_fdw"]);
        var tenant = Unique("t");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await CreateWorkspaceAsync(name, tenant, w => w.Database = new WorkspaceDatabase { Extensions = ["file_fdw"] });
        var ws = await WaitForWorkspaceAsync(name, DatabaseNotReady("ProvisioningFailed"), "ProvisioningFailed");
        var message = Condition(ws, WorkspaceConditions.DatabaseReady)!.Message;
        Assert.Contains("SQLSTATE 42501", message);
        Assert.Null(await cluster.Api.TryGetAsync<V1Secret>(Secrets, name, name + "-db", CancellationToken.None));
    }
}
