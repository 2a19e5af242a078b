using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using System.Text;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Npgsql;

namespace ControlPlane.Operator.Store;

public sealed record DatabaseEndpoint(string Host, int Port);

/// <summary>What ensuring a workspace database changed (nothing, on an unchanged workspace).</summary>
public sealed record DatabaseChanges(bool RoleCreated, bool DatabaseCreated, IReadOnlyList<string> ExtensionsCreated)
{
    public bool Any => RoleCreated || DatabaseCreated || ExtensionsCreated.Count > 0;
}

/// <summary>A database or role on the server that is not the one recorded for this workspace: it is left untouched.</summary>
public sealed class DatabaseConflictException(string reason, string message) : Exception(message)
{
    public string Reason { get; } = reason;
}

/// <summary>The region's connection is a superuser: the operator refuses to provision with it.</summary>
public sealed class UnsafeRegionRoleException(string message) : Exception(message);

/// <summary>
/// Workspace databases on the server configured for each region. A workspace database can only be
/// placed on its own region's server: every call names the region, and an unconfigured region throws.
/// Every connection pins search_path to pg_catalog and every catalog is schema-qualified, so nothing a
/// tenant creates in its database (a view named like a catalog) is ever resolved. The region role is a
/// non-superuser with CREATEDB and CREATEROLE (a superuser is refused); work inside a workspace database
/// is done as the workspace role itself. Passwords travel only as SCRAM verifiers and are never logged.
/// </summary>
public sealed partial class RegionDatabases(ControlPlaneOptions options) : IAsyncDisposable
{
    /// <summary>search_path of every operator connection: catalogs only, temporary objects last.</summary>
    public const string PinnedSearchPath = "pg_catalog, pg_temp";

    const string OwnerMarkPrefix = "controlplane workspace database ";
    readonly ConcurrentDictionary<string, NpgsqlDataSource> sources = new(StringComparer.OrdinalIgnoreCase);
    // Regions whose role was checked and found not to be a superuser.
    readonly ConcurrentDictionary<string, bool> safeRegions = new(StringComparer.OrdinalIgnoreCase);
    long writes;

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex Identifier();

    [GeneratedRegex("^[a-z0-9_-]+$")]
    private static partial Regex Extension();

    [GeneratedRegex(@"^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$")]
    private static partial Regex Verifier();

    public long Writes => Interlocked.Read(ref writes);

    /// <summary>
    /// The first candidate name of a workspace's database and role: ws_ + workspace name with dashes as
    /// underscores (Postgres identifiers are at most 63 bytes). Only a candidate: the name actually used
    /// is the one allocated and recorded in controlplane.workspace_databases, unique per region.
    /// </summary>
    public static string DatabaseName(string workspace)
    {
        var name = "ws_" + workspace.Replace('-', '_');
        return name.Length <= 63 ? name : name[..54] + "_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..8];
    }

    /// <summary>A further candidate when the first is taken: the first cut to 54 characters and a random suffix.</summary>
    public static string AlternativeDatabaseName(string workspace)
    {
        var first = DatabaseName(workspace);
        return (first.Length > 54 ? first[..54] : first) + "_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
    }

    /// <summary>Sets the pinned search_path on a connection string (every operator connection goes through here).</summary>
    public static NpgsqlConnectionStringBuilder Pin(NpgsqlConnectionStringBuilder b)
    {
        b.SearchPath = PinnedSearchPath;
        return b;
    }

    public static string NewPassword() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    /// <summary>
    /// The SCRAM-SHA-256 verifier of a password (RFC 5802/7677), as PostgreSQL stores it, so the password
    /// itself never appears in DDL, server logs or pg_stat_statements.
    /// </summary>
    public static string ScramVerifier(string password, byte[]? salt = null, int iterations = 4096)
    {
        salt ??= RandomNumberGenerator.GetBytes(16);
        // Generated passwords are ASCII: SASLprep leaves them unchanged.
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }

    /// <summary>DDL of a new workspace role: no privilege beyond logging in, stated explicitly.</summary>
    public static string CreateRoleSql(string role, string verifier) =>
        $"CREATE ROLE {Quote(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {VerifierLiteral(verifier)}";

    public static string SetPasswordSql(string role, string verifier) => $"ALTER ROLE {Quote(role)} WITH LOGIN PASSWORD {VerifierLiteral(verifier)}";

    /// <summary>Connection failures and timeouts: retried and shown as DatabaseUnavailable, not as a provisioning error.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        TimeoutException => true,
        PostgresException p => p.IsTransient,
        NpgsqlException => true, // not from the server: the connection itself failed
        _ => false,
    };

    NpgsqlConnectionStringBuilder RegionBuilder(string region)
    {
        var server = Placement.Region(options, region).Server
                     ?? throw new InvalidOperationException($"region \"{region}\" has no database server configured (ControlPlane:Regions:{region}:Database)");
        return new NpgsqlConnectionStringBuilder(server);
    }

    NpgsqlDataSource Source(string region) =>
        sources.GetOrAdd(region, _ =>
        {
            // No session state is ever set (locks are transaction-scoped): skip the DISCARD ALL on every pooled open.
            var b = Pin(RegionBuilder(region));
            b.Timeout = 5;
            b.NoResetOnClose = true;
            return NpgsqlDataSource.Create(b.ConnectionString);
        });

    /// <summary>A short-lived connection into a workspace database as the workspace role itself, never as a privileged one.</summary>
    NpgsqlConnection AsWorkspaceRole(string region, string database, string role, string password)
    {
        var b = Pin(RegionBuilder(region));
        b.Database = database;
        b.Username = role;
        b.Password = password;
        b.Pooling = false;
        b.Timeout = 5;
        b.Options = null;
        return new NpgsqlConnection(b.ConnectionString);
    }

    public DatabaseEndpoint Endpoint(string region)
    {
        var b = RegionBuilder(region);
        return new DatabaseEndpoint(b.Host ?? "localhost", b.Port);
    }

    static string Quote(string identifier) => Identifier().IsMatch(identifier)
        ? "\"" + identifier + "\""
        : throw new ArgumentException($"\"{identifier}\" is not a valid Postgres identifier (lowercase letters, digits, underscores; at most 63)");

    static string VerifierLiteral(string verifier) => Verifier().IsMatch(verifier)
        ? "'" + verifier + "'"
        : throw new ArgumentException("a role password is set only as a SCRAM-SHA-256 verifier");

    static string OwnerMark(Guid allocation) => OwnerMarkPrefix + allocation.ToString("D");

    /// <summary>
    /// Refuses a region whose role is a superuser: such a connection could be made to run tenant code
    /// with every privilege. Checked once per region per process while it passes; re-checked while it fails.
    /// </summary>
    public async Task CheckRegionRoleAsync(string region, CancellationToken ct)
    {
        if (safeRegions.ContainsKey(region)) return;
        await using var cmd = Source(region).CreateCommand(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = pg_catalog.current_user()");
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) throw new UnsafeRegionRoleException($"region {region}: the connection's role is not in pg_catalog.pg_roles");
        if (r.GetBoolean(0))
        {
            throw new UnsafeRegionRoleException(
                $"ControlPlane:Regions:{region}:Database connects as a superuser; the operator refuses it. Use a dedicated role with LOGIN CREATEDB CREATEROLE NOSUPERUSER (see README, Configuration).");
        }

        if (!r.GetBoolean(1) || !r.GetBoolean(2))
        {
            throw new UnsafeRegionRoleException($"ControlPlane:Regions:{region}:Database: the connection's role needs CREATEDB and CREATEROLE");
        }

        safeRegions[region] = true;
    }

    sealed record ServerState(bool RoleExists, bool RoleSuper, string? RoleMark, bool Member, bool DatabaseExists, string? DatabaseOwner);

    async Task<ServerState> InspectAsync(NpgsqlDataSource ds, string database, string role, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT r.rolsuper, pg_catalog.shobj_description(r.oid, 'pg_authid'), pg_catalog.pg_has_role(pg_catalog.current_user(), r.oid, 'MEMBER')
            FROM pg_catalog.pg_roles r WHERE r.rolname = $1
            """);
        cmd.Parameters.AddWithValue(role);
        bool roleExists = false, roleSuper = false, member = false;
        string? mark = null;
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            if (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                roleExists = true;
                roleSuper = r.GetBoolean(0);
                mark = r.IsDBNull(1) ? null : r.GetString(1);
                member = r.GetBoolean(2);
            }
        }

        await using var db = ds.CreateCommand("SELECT pg_catalog.pg_get_userbyid(d.datdba)::text FROM pg_catalog.pg_database d WHERE d.datname = $1");
        db.Parameters.AddWithValue(database);
        var owner = await db.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        return new ServerState(roleExists, roleSuper, mark, member, owner is not null, owner);
    }

    /// <summary>
    /// Creates what is missing (role, database, extensions) for the allocation recorded for this
    /// workspace; reads only when all exist. A role or database of that name that this allocation did
    /// not make is never touched (<see cref="DatabaseConflictException"/>): before the allocation is
    /// marked provisioned, a role is ours only if it carries this allocation's mark, and a database
    /// only if that role owns it. A non-null <paramref name="newRolePassword"/> is set (on a new or an
    /// existing role) before extensions are created, connected as the workspace role with <paramref name="password"/>.
    /// </summary>
    public async Task<DatabaseChanges> EnsureAsync(string region, Guid allocation, bool provisioned, string database, string role, string? newRolePassword,
        string password, IReadOnlyList<string> extensions, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        var state = await InspectAsync(ds, database, role, ct).ConfigureAwait(false);
        if (state.RoleExists && (state.RoleSuper || (!provisioned && state.RoleMark != OwnerMark(allocation))))
        {
            throw new DatabaseConflictException("DatabaseConflict",
                $"role {role} already exists on the {region} server and was not created for this workspace; it is left untouched");
        }

        if (state.DatabaseExists && (state.DatabaseOwner != role || (!provisioned && !state.RoleExists)))
        {
            throw new DatabaseConflictException("DatabaseConflict",
                $"database {database} already exists on the {region} server and was not created for this workspace; it is left untouched");
        }

        if (!state.RoleExists)
        {
            if (newRolePassword is null) throw new InvalidOperationException("a new role needs a password");
            // One transaction: the role exists only with its mark and the operator's membership (to
            // create its database, drop it, and end its sessions), never half-made.
            await using var conn = await ds.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
            await ExecAsync(conn, tx, CreateRoleSql(role, ScramVerifier(newRolePassword)), ct).ConfigureAwait(false);
            await ExecAsync(conn, tx, $"COMMENT ON ROLE {Quote(role)} IS '{OwnerMark(allocation)}'", ct).ConfigureAwait(false);
            await ExecAsync(conn, tx, $"GRANT {Quote(role)} TO CURRENT_USER", ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            Interlocked.Increment(ref writes);
        }
        else
        {
            if (!state.Member)
            {
                // A role made before the operator ran as a non-superuser: PG15 lets CREATEROLE grant it.
                await ExecAsync(ds, $"GRANT {Quote(role)} TO CURRENT_USER", ct).ConfigureAwait(false);
            }

            // Before anything is done as the role: it logs in with the password about to be handed out.
            if (newRolePassword is not null) await ExecAsync(ds, SetPasswordSql(role, ScramVerifier(newRolePassword)), ct).ConfigureAwait(false);
        }

        if (!state.DatabaseExists)
        {
            await ExecAsync(ds, $"CREATE DATABASE {Quote(database)} OWNER {Quote(role)}", ct).ConfigureAwait(false);
            // Only the workspace's own role may connect: another workspace's credentials are refused.
            await ExecAsync(ds, $"REVOKE ALL ON DATABASE {Quote(database)} FROM PUBLIC", ct).ConfigureAwait(false);
            await ExecAsync(ds, $"GRANT ALL ON DATABASE {Quote(database)} TO {Quote(role)}", ct).ConfigureAwait(false);
        }

        var created = new List<string>();
        if (extensions.Count > 0)
        {
            foreach (var ext in extensions.Where(e => !Extension().IsMatch(e)))
            {
                throw new ArgumentException($"spec.database.extensions: \"{ext}\" is not a valid extension name");
            }

            await using var conn = AsWorkspaceRole(region, database, role, password);
            await conn.OpenAsync(ct).ConfigureAwait(false);
            // Extension scripts run as this session: only as the plain workspace role, verified by the server.
            await VerifyAsync(conn, role, database, ct).ConfigureAwait(false);
            var present = new HashSet<string>();
            await using (var cmd = new NpgsqlCommand("SELECT extname::text FROM pg_catalog.pg_extension", conn))
            await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false)) present.Add(r.GetString(0));
            }

            foreach (var ext in extensions.Where(e => !present.Contains(e)))
            {
                // An explicit schema: with the pinned search_path the default would be pg_catalog.
                await using var cmd = new NpgsqlCommand($"CREATE EXTENSION IF NOT EXISTS \"{ext}\" SCHEMA public", conn);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                Interlocked.Increment(ref writes);
                created.Add(ext);
            }
        }

        return new DatabaseChanges(!state.RoleExists, !state.DatabaseExists, created);
    }

    /// <summary>Whether the role and database are this allocation's to change: provisioned by it, or carrying its mark, and never a superuser.</summary>
    static (bool Role, bool Database) Ours(ServerState s, Guid allocation, bool provisioned, string role)
    {
        var roleOurs = s.RoleExists && !s.RoleSuper && (provisioned || s.RoleMark == OwnerMark(allocation));
        return (roleOurs, roleOurs && s.DatabaseExists && s.DatabaseOwner == role);
    }

    /// <summary>Locks a retained database: its role can no longer log in and its sessions end. Idempotent; touches only what the allocation made.</summary>
    public async Task LockAsync(string region, Guid allocation, bool provisioned, string database, string role, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        if (!Ours(await InspectAsync(ds, database, role, ct).ConfigureAwait(false), allocation, provisioned, role).Role) return;
        await ExecAsync(ds, $"ALTER ROLE {Quote(role)} NOLOGIN", ct).ConfigureAwait(false);
        await using var cmd = ds.CreateCommand("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1");
        cmd.Parameters.AddWithValue(role);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Drops the database and role the allocation made; anything else of those names is left alone.</summary>
    public async Task DropAsync(string region, Guid allocation, bool provisioned, string database, string role, CancellationToken ct)
    {
        await CheckRegionRoleAsync(region, ct).ConfigureAwait(false);
        var ds = Source(region);
        var ours = Ours(await InspectAsync(ds, database, role, ct).ConfigureAwait(false), allocation, provisioned, role);
        if (ours.Database) await ExecAsync(ds, $"DROP DATABASE IF EXISTS {Quote(database)} WITH (FORCE)", ct).ConfigureAwait(false);
        if (ours.Role) await ExecAsync(ds, $"DROP ROLE IF EXISTS {Quote(role)}", ct).ConfigureAwait(false);
    }

    /// <summary>Which of <paramref name="names"/> the region's server already has as a database or a role (whoever made it): never allocated to a workspace.</summary>
    public async Task<IReadOnlySet<string>> ExistingNamesAsync(string region, IReadOnlyList<string> names, CancellationToken ct)
    {
        await using var cmd = Source(region).CreateCommand("""
            SELECT datname::text FROM pg_catalog.pg_database WHERE datname::text = ANY($1)
            UNION SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname::text = ANY($1)
            """);
        cmd.Parameters.AddWithValue(names.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var found = new HashSet<string>(StringComparer.Ordinal);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) found.Add(r.GetString(0));
        return found;
    }

    public async Task<bool> DatabaseExistsAsync(string region, string database, CancellationToken ct) =>
        await ExistsAsync(Source(region), "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", database, ct).ConfigureAwait(false);

    static async Task<bool> ExistsAsync(NpgsqlDataSource ds, string sql, string arg, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand(sql);
        cmd.Parameters.AddWithValue(arg);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    async Task ExecAsync(NpgsqlDataSource ds, string sql, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        Interlocked.Increment(ref writes);
    }

    static async Task ExecAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var ds in sources.Values) await ds.DisposeAsync().ConfigureAwait(false);
        sources.Clear();
    }
}
