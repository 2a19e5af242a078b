using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Store;
using Npgsql;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The pure parts: DDL carries no password, errors are classified, the allowlist names the field's index.</summary>
public sealed class DatabaseIsolationUnitTests
{
    [Fact]
    public void RoleDdl_CarriesOnlyAScramVerifier_NeverThePassword_AndNoPrivilege()
    {
        var password = RegionDatabases.NewPassword();
        var verifier = RegionDatabases.ScramVerifier(password);
        Assert.Matches(@"^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$", verifier);
        foreach (var sql in new[] { RegionDatabases.CreateRoleSql("ws_acme", verifier), RegionDatabases.SetPasswordSql("ws_acme", verifier) })
        {
            Assert.DoesNotContain(password, sql);
            Assert.Contains(verifier, sql);
        }

        Assert.Contains("NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS", RegionDatabases.CreateRoleSql("ws_acme", verifier));
        Assert.Throws<ArgumentException>(() => RegionDatabases.SetPasswordSql("ws_acme", password));
        Assert.Throws<ArgumentException>(() => RegionDatabases.SetPasswordSql("ws_acme", verifier + "' SUPERUSER --"));
        // Same password and salt, same verifier (RFC 5802: PBKDF2-HMAC-SHA-256, then the keys); a new salt each time otherwise.
        var salt = new byte[16];
        Assert.Equal(RegionDatabases.ScramVerifier("pencil", salt), RegionDatabases.ScramVerifier("pencil", salt));
        Assert.NotEqual(RegionDatabases.ScramVerifier("pencil"), RegionDatabases.ScramVerifier("pencil"));
    }

    [Fact]
    public void AlternativeNames_AreValidIdentifiers_AndDifferFromTheFirstCandidate()
    {
        var name = "red-" + new string('a', 57);
        var first = RegionDatabases.DatabaseName(name);
        var alternative = RegionDatabases.AlternativeDatabaseName(name);
        Assert.NotEqual(first, alternative);
        Assert.Matches("^[a-z_][a-z0-9_]{0,62}$", alternative);
        Assert.Matches("^[a-z_][a-z0-9_]{0,62}$", RegionDatabases.AlternativeDatabaseName("a"));
    }

    [Fact]
    public void Extensions_OutsideTheRegionsAllowlist_AreNamedWithTheirIndex()
    {
        var options = new ControlPlaneOptions();
        options.Regions["eu"] = new RegionOptions { Database = "Host=x" };
        Assert.Equal([(1, "plpython3u")], Placement.Region(options, "eu").DisallowedExtensions(["pgcrypto", "plpython3u", "uuid-ossp"]));
        options.Regions["eu"].AllowedExtensions = ["postgis"];
        Assert.Equal([(0, "pgcrypto")], Placement.Region(options, "eu").DisallowedExtensions(["pgcrypto", "postgis"]));
        Assert.Empty(Placement.Region(options, "eu").DisallowedExtensions(null));
    }

    [Fact]
    public void ServerRefusals_AreNotTransient_ConnectionFailuresAre()
    {
        Assert.False(RegionDatabases.IsTransient(new PostgresException("permission denied to create extension", "ERROR", "ERROR", "42501")));
        Assert.True(RegionDatabases.IsTransient(new PostgresException("too many connections", "FATAL", "FATAL", "53300")));
        Assert.True(RegionDatabases.IsTransient(new NpgsqlException("connection refused")));
        Assert.True(RegionDatabases.IsTransient(new TimeoutException()));
        Assert.False(RegionDatabases.IsTransient(new DatabaseConflictException("DatabaseConflict", "x")));
    }
}
