using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using ControlPlane.Operator.Configuration;
using Npgsql;

namespace ControlPlane.Operator.Store;

public sealed record DatabaseEndpoint(string Host, int Port);

/// <summary>What ensuring a workspace database changed (nothing, on an unchanged workspace).</summary>
public sealed record DatabaseChanges(bool RoleCreated, bool DatabaseCreated, IReadOnlyList<string> ExtensionsCreated)
{
    public bool Any => RoleCreated || DatabaseCreated || ExtensionsCreated.Count > 0;
}

/// <summary>
/// Workspace databases on the server configured for each region. A workspace database can only be
/// placed on its own region's server: every call names the region, and an unconfigured region throws.
/// Identifiers are validated and quoted; passwords are generated hex and never logged.
/// </summary>
public sealed partial class RegionDatabases(ControlPlaneOptions options) : IAsyncDisposable
{
    readonly ConcurrentDictionary<string, NpgsqlDataSource> sources = new(StringComparer.OrdinalIgnoreCase);
    long writes;

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex Identifier();

    [GeneratedRegex("^[a-z0-9_-]+$")]
    private static partial Regex Extension();

    public long Writes => Interlocked.Read(ref writes);

    /// <summary>ws_ + workspace name with dashes as underscores (Postgres identifiers are at most 63 bytes).</summary>
    public static string DatabaseName(string workspace)
    {
        var name = "ws_" + workspace.Replace('-', '_');
        return name.Length <= 63 ? name : name[..54] + "_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)))[..8];
    }

    public static string NewPassword() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));

    public bool IsConfigured(string region) => options.Regions.TryGetValue(region, out var r) && !string.IsNullOrWhiteSpace(r.Database);

    NpgsqlDataSource Source(string region, string? database = null)
    {
        if (!options.Regions.TryGetValue(region, out var r) || string.IsNullOrWhiteSpace(r.Database))
        {
            throw new InvalidOperationException($"region \"{region}\" has no database server configured (ControlPlane:Regions:{region}:Database)");
        }

        return sources.GetOrAdd(region + "/" + (database ?? ""), _ =>
        {
            // No session state is ever set (locks are transaction-scoped): skip the DISCARD ALL on every pooled open.
            var b = new NpgsqlConnectionStringBuilder(r.Database) { Timeout = 5, NoResetOnClose = true };
            if (database is not null)
            {
                b.Database = database;
                b.Pooling = false; // short-lived maintenance connections into workspace databases
            }

            return NpgsqlDataSource.Create(b.ConnectionString);
        });
    }

    public DatabaseEndpoint Endpoint(string region)
    {
        var b = new NpgsqlConnectionStringBuilder(options.Regions[region].Database);
        return new DatabaseEndpoint(b.Host ?? "localhost", b.Port);
    }

    static string Quote(string identifier) => Identifier().IsMatch(identifier)
        ? "\"" + identifier + "\""
        : throw new ArgumentException($"\"{identifier}\" is not a valid Postgres identifier (lowercase letters, digits, underscores; at most 63)");

    static string Literal(string password) => Regex.IsMatch(password, "^[a-f0-9]+$")
        ? "'" + password + "'"
        : throw new ArgumentException("generated passwords are lowercase hex");

    /// <summary>Creates what is missing (role, database, extensions); reads only when all exist.</summary>
    public async Task<DatabaseChanges> EnsureAsync(string region, string database, string role, string? newRolePassword,
        IReadOnlyList<string> extensions, CancellationToken ct)
    {
        var ds = Source(region);
        var roleExists = await ExistsAsync(ds, "SELECT 1 FROM pg_roles WHERE rolname = $1", role, ct).ConfigureAwait(false);
        var dbExists = await ExistsAsync(ds, "SELECT 1 FROM pg_database WHERE datname = $1", database, ct).ConfigureAwait(false);
        if (!roleExists)
        {
            if (newRolePassword is null) throw new InvalidOperationException("a new role needs a password");
            await ExecAsync(ds, $"CREATE ROLE {Quote(role)} LOGIN PASSWORD {Literal(newRolePassword)}", ct).ConfigureAwait(false);
        }

        if (!dbExists)
        {
            await ExecAsync(ds, $"CREATE DATABASE {Quote(database)} OWNER {Quote(role)}", ct).ConfigureAwait(false);
            // Only the workspace's own role may connect: another workspace's credentials are refused.
            await ExecAsync(ds, $"REVOKE ALL ON DATABASE {Quote(database)} FROM PUBLIC", ct).ConfigureAwait(false);
            await ExecAsync(ds, $"GRANT ALL ON DATABASE {Quote(database)} TO {Quote(role)}", ct).ConfigureAwait(false);
        }

        var created = new List<string>();
        if (extensions.Count > 0)
        {
            var inDb = Source(region, database);
            var present = new HashSet<string>();
            await using (var cmd = inDb.CreateCommand("SELECT extname FROM pg_extension"))
            await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false)) present.Add(r.GetString(0));
            }

            foreach (var ext in extensions.Where(e => !present.Contains(e)))
            {
                if (!Extension().IsMatch(ext)) throw new ArgumentException($"spec.database.extensions: \"{ext}\" is not a valid extension name");
                await ExecAsync(inDb, $"CREATE EXTENSION IF NOT EXISTS \"{ext}\"", ct).ConfigureAwait(false);
                created.Add(ext);
            }
        }

        return new DatabaseChanges(!roleExists, !dbExists, created);
    }

    public Task SetPasswordAsync(string region, string role, string password, CancellationToken ct) =>
        ExecAsync(Source(region), $"ALTER ROLE {Quote(role)} WITH LOGIN PASSWORD {Literal(password)}", ct);

    public async Task DropAsync(string region, string database, string role, CancellationToken ct)
    {
        var ds = Source(region);
        if (sources.TryRemove(region + "/" + database, out var inDb)) await inDb.DisposeAsync().ConfigureAwait(false);
        await ExecAsync(ds, $"DROP DATABASE IF EXISTS {Quote(database)} WITH (FORCE)", ct).ConfigureAwait(false);
        await ExecAsync(ds, $"DROP ROLE IF EXISTS {Quote(role)}", ct).ConfigureAwait(false);
    }

    public async Task<bool> DatabaseExistsAsync(string region, string database, CancellationToken ct) =>
        await ExistsAsync(Source(region), "SELECT 1 FROM pg_database WHERE datname = $1", database, ct).ConfigureAwait(false);

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

    public async ValueTask DisposeAsync()
    {
        foreach (var ds in sources.Values) await ds.DisposeAsync().ConfigureAwait(false);
        sources.Clear();
    }
}
