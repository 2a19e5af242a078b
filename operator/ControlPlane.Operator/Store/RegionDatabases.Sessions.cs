using Npgsql;

namespace ControlPlane.Operator.Store;

/// <summary>What the server said about a session opened as a workspace role, before any of the operator's SQL ran in it.</summary>
public sealed record VerifiedSession(string Role, string Database)
{
    /// <summary>For status and Events: what was checked, never a password.</summary>
    public string Describe() =>
        $"connected as role {Role} to {Database} (verified server-side: session_user and current_user are {Role}; no superuser, CREATEROLE, CREATEDB, replication or role memberships)";
}

/// <summary>A session was not the workspace role's own, or that role holds more than a login: nothing is run in it.</summary>
public sealed class SessionNotVerifiedException(string message) : Exception(message);

/// <summary>Sessions as a workspace role: where they go is the region's configured server, never a tenant's Secret.</summary>
public sealed partial class RegionDatabases
{
    /// <summary>
    /// Opens a session as <paramref name="role"/> on the region's configured server (host, port and TLS
    /// settings from ControlPlane:Regions, never from a tenant's Secret) and verifies it before returning it:
    /// the server sees that role as both session_user and current_user (a role default such as
    /// <c>SET role</c> cannot switch it), and the role is a plain login: no superuser, CREATEROLE, CREATEDB,
    /// replication, BYPASSRLS, and a member of no other role. A role that gained any of these (a restore run as
    /// someone else) is refused here, so nothing is run as it.
    /// </summary>
    public async Task<(NpgsqlConnection Connection, VerifiedSession Session)> OpenVerifiedAsync(string region, string database, string role, string password, CancellationToken ct)
    {
        var conn = AsWorkspaceRole(region, database, role, password);
        try
        {
            await conn.OpenAsync(ct).ConfigureAwait(false);
            return (conn, await VerifyAsync(conn, role, database, ct).ConfigureAwait(false));
        }
        catch
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary><see cref="OpenVerifiedAsync"/>, for a session that a child process (pg_dump, pg_restore) then opens the same way.</summary>
    public async Task<VerifiedSession> VerifySessionAsync(string region, string database, string role, string password, CancellationToken ct)
    {
        var (conn, session) = await OpenVerifiedAsync(region, database, role, password, ct).ConfigureAwait(false);
        await conn.DisposeAsync().ConfigureAwait(false);
        return session;
    }

    /// <summary>The check of <see cref="VerifySessionAsync"/> on an open session of the caller's.</summary>
    public static async Task<VerifiedSession> VerifyAsync(NpgsqlConnection conn, string role, string database, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT pg_catalog.session_user()::text, pg_catalog.current_user()::text, pg_catalog.current_database()::text,
                   r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
                   EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid)
            FROM pg_catalog.pg_roles r WHERE r.rolname = pg_catalog.session_user()
            """, conn);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) throw new SessionNotVerifiedException($"the session's role is not in pg_catalog.pg_roles; expected {role}");
        var (session, current, db) = (r.GetString(0), r.GetString(1), r.GetString(2));
        if (session != role || current != role)
        {
            throw new SessionNotVerifiedException($"the session runs as session_user {session}, current_user {current}, not as the workspace role {role}; nothing was run");
        }

        if (db != database) throw new SessionNotVerifiedException($"the session is in database {db}, not {database}; nothing was run");
        var extra = new[] { (r.GetBoolean(3), "SUPERUSER"), (r.GetBoolean(4), "CREATEROLE"), (r.GetBoolean(5), "CREATEDB"), (r.GetBoolean(6), "REPLICATION"),
            (r.GetBoolean(7), "BYPASSRLS"), (r.GetBoolean(8), "membership of another role") }.Where(x => x.Item1).Select(x => x.Item2).ToList();
        if (extra.Count > 0)
        {
            throw new SessionNotVerifiedException($"the workspace role {role} holds {string.Join(", ", extra)}, which the operator never grants; nothing was run");
        }

        return new VerifiedSession(role, database);
    }
}
