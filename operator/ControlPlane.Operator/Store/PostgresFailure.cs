using Npgsql;

namespace ControlPlane.Operator.Store;

/// <summary>
/// How a Postgres error is shown and retried. Transient ones (the connection, a timeout, a
/// serialization failure: <see cref="RegionDatabases.IsTransient"/>) are "unavailable" and retried
/// with backoff; the rest (permission, constraint, syntax, invalid object) would fail the same way
/// again, so they are a terminal condition naming the error class, retried when the spec changes.
/// Messages carry the SQLSTATE and the server's primary text only, never a statement or its values.
/// </summary>
public sealed record PostgresFailure(bool Transient, string Reason, string Message)
{
    public static PostgresFailure Of(Exception e, string what)
    {
        if (RegionDatabases.IsTransient(e)) return new(true, "DatabaseUnavailable", $"{what} unreachable: {e.Message}");
        // Every table the operator names is its own or pg_catalog's: a missing one means the leader's
        // migrations have not run yet (they run beside the first reconciles), which passes by itself.
        if (e is PostgresException { SqlState: PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName } missing)
        {
            return new(true, "DatabaseUnavailable", $"{what} is not migrated yet: {missing.MessageText}");
        }

        return e is PostgresException p
            ? new(false, "DatabaseError", $"{what} refused the operation: {ClassOf(p.SqlState)} (SQLSTATE {p.SqlState}): {p.MessageText}")
            : new(false, "DatabaseError", $"{what} failed: {e.GetType().Name}: {e.Message}");
    }

    /// <summary>The SQLSTATE class (its first two characters), in words.</summary>
    public static string ClassOf(string sqlState) => sqlState.Length < 2 ? "error" : sqlState[..2] switch
    {
        "08" => "connection exception",
        "22" => "data exception",
        "23" => "integrity constraint violation",
        "25" => "invalid transaction state",
        "28" => "invalid authorization",
        "3D" => "invalid catalog name",
        "3F" => "invalid schema name",
        "40" => "transaction rollback",
        "42" => sqlState == "42501" ? "insufficient privilege" : "syntax error or access rule violation",
        "53" => "insufficient resources",
        "54" => "program limit exceeded",
        "55" => "object not in prerequisite state",
        "57" => "operator intervention",
        "58" => "system error",
        "P0" => "PL/pgSQL error",
        "XX" => "internal error",
        _ => "error",
    };
}
