using System.Diagnostics;
using Npgsql;

namespace ControlPlane.LocalEnv;

/// <summary>
/// A throwaway PostgreSQL 15 cluster (initdb + pg_ctl from Debian's postgresql-15) in a temp folder
/// on a free loopback port, with scram-sha-256 over TCP and a generated superuser password.
/// </summary>
public sealed class LocalPostgres : IAsyncDisposable
{
    public const string BinDir = "/usr/lib/postgresql/15/bin";
    readonly string dir;
    readonly string? runAs;

    /// <summary>The region role: what ControlPlane:Regions:&lt;r&gt;:Database must be, LOGIN CREATEDB CREATEROLE and not a superuser.</summary>
    public const string OperatorRole = "controlplane_operator";

    LocalPostgres(string dir, int port, string password, string? runAs)
    {
        this.dir = dir;
        Port = port;
        Password = password;
        this.runAs = runAs;
    }

    public int Port { get; }
    public string Password { get; }
    public string OperatorPassword { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    public string DataDir => Path.Combine(dir, "data");

    /// <summary>The server's unix socket directory (local connections there are trusted: what a tampered Secret would point at).</summary>
    public string SocketDirectory => dir;

    /// <summary>The server's log (statements appear here when a test turns log_statement on).</summary>
    public string LogFile => Path.Combine(dir, "postgres.log");

    /// <summary>The connection string of a region: the non-superuser <see cref="OperatorRole"/>.</summary>
    public string RegionConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder(ConnectionString(database)) { Username = OperatorRole, Password = OperatorPassword }.ConnectionString;

    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = "postgres",
            Password = Password,
            Database = database,
            Timeout = 5,
            Pooling = true,
        }.ConnectionString;

    public static async Task<LocalPostgres> StartAsync(string root, bool fsync = true)
    {
        if (!File.Exists(Path.Combine(BinDir, "initdb")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed ({BinDir}/initdb missing): run `make tools` (hack/install-control-plane.sh).");
        }

        var dir = Path.Combine(root, "postgres");
        Directory.CreateDirectory(dir);
        // initdb refuses to run as root; the postgres account from Debian's package runs it then.
        var runAs = Environment.UserName == "root" ? "postgres" : null;
        var password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        var pwfile = Path.Combine(dir, "pwfile");
        await File.WriteAllTextAsync(pwfile, password);
        if (runAs is not null) await Run("chown", ["-R", runAs, dir]);
        var pg = new LocalPostgres(dir, Net.FreePort(), password, runAs);
        await pg.RunAsPg("initdb", ["-D", pg.DataDir, "-U", "postgres", "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]);
        File.Delete(pwfile);
        await File.AppendAllTextAsync(Path.Combine(pg.DataDir, "postgresql.conf"),
            $"\nlisten_addresses = '127.0.0.1'\nport = {pg.Port}\nunix_socket_directories = '{dir}'\nmax_connections = 300\nfsync = {(fsync ? "on" : "off")}\nsynchronous_commit = {(fsync ? "on" : "off")}\nfull_page_writes = {(fsync ? "on" : "off")}\nshared_buffers = 128MB\n");
        await pg.StartServerAsync();
        await pg.CreateOperatorRoleAsync();
        return pg;
    }

    /// <summary>The region role as README documents it; its password goes over as a SCRAM verifier.</summary>
    async Task CreateOperatorRoleAsync()
    {
        await using var conn = new NpgsqlConnection(ConnectionString());
        await conn.OpenAsync();
        var verifier = ControlPlane.Operator.Store.RegionDatabases.ScramVerifier(OperatorPassword);
        await using var cmd = new NpgsqlCommand(
            $"CREATE ROLE {OperatorRole} LOGIN CREATEDB CREATEROLE NOSUPERUSER NOREPLICATION NOBYPASSRLS PASSWORD '{verifier}'", conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Starts the server again; pooled connections to the old one are dropped, so no caller gets a 57P01 from a connection it killed.</summary>
    public async Task StartServerAsync()
    {
        await RunAsPg("pg_ctl", ["-D", DataDir, "-l", Path.Combine(dir, "postgres.log"), "-w", "-t", "60", "start"]);
        NpgsqlConnection.ClearAllPools();
    }

    public Task StopServerAsync() => RunAsPg("pg_ctl", ["-D", DataDir, "-m", "fast", "-w", "-t", "60", "stop"]);

    Task RunAsPg(string tool, IReadOnlyList<string> args) =>
        runAs is null ? Run(Path.Combine(BinDir, tool), args) : Run("runuser", ["-u", runAs, "--", Path.Combine(BinDir, tool), .. args]);

    static async Task Run(string file, IReadOnlyList<string> args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = "/" };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', args.Take(3))} failed ({p.ExitCode}): {await stderr}{await stdout}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopServerAsync();
        }
        catch (InvalidOperationException)
        {
        }

        NpgsqlConnection.ClearAllPools();
    }
}
