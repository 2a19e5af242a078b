using System.Diagnostics;
using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Adapters;

/// <summary>
/// Where pg_dump and pg_restore connect, as the workspace's own role: built by <see cref="BackupTargets.LoginAsync"/>
/// from the operator's record (region server, recorded database and role), never from a tenant's Secret. ToString never shows the password.
/// </summary>
public sealed record PgLogin(string Host, int Port, string Database, string User, string Password)
{
    public override string ToString() => $"{User}@{Host}:{Port}/{Database}";
}

/// <summary>A pg_dump or pg_restore that failed: its exit code and the tail of its stderr (which carries no password).</summary>
public sealed class PgToolException(string tool, int exitCode, string stderr)
    : Exception($"{tool} exited with {exitCode}: {Tail(stderr)}")
{
    public int ExitCode { get; } = exitCode;

    static string Tail(string text)
    {
        var t = text.Trim();
        return t.Length <= 600 ? t : "..." + t[^600..];
    }
}

/// <summary>
/// pg_dump and pg_restore as child processes: the password goes in the child's environment
/// (PGPASSWORD: not on its command line, where ps would show it), never a prompt (-w).
/// </summary>
public sealed class PgTools(BackupOptions options)
{
    ProcessStartInfo Start(string file, PgLogin? login, IEnumerable<string> args, bool stdin)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin,
        };
        // Nothing from the operator's own environment chooses a server, a service file, a password file, TLS
        // settings or session options: every libpq variable (PGHOST, PGHOSTADDR, PGSERVICE, PGPASSFILE, PGSSLMODE,
        // PGOPTIONS, PGSYSCONFDIR...) goes; host, port, user and database are given explicitly below.
        foreach (var v in info.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList()) info.Environment.Remove(v);
        if (login is not null)
        {
            info.Environment["PGPASSWORD"] = login.Password;
            info.Environment["PGCONNECT_TIMEOUT"] = "10";
            info.Environment["PGAPPNAME"] = "controlplane-backup";
            foreach (var a in new[] { "-w", "-h", login.Host, "-p", login.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", login.User, "-d", login.Database })
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }

    /// <summary>
    /// Runs pg_dump -Fc and hands its output to <paramref name="consume"/> as a stream that reports the
    /// dump's failure at its end: a dump cut short is never read as a complete one. Cancelling kills pg_dump.
    /// </summary>
    public async Task<T> DumpAsync<T>(PgLogin login, Func<Stream, Task<T>> consume, CancellationToken ct)
    {
        using var process = Process.Start(Start(options.EffectivePgDump, login, ["-Fc", "--no-owner", "--no-privileges"], stdin: false))
                            ?? throw new InvalidOperationException($"could not start {options.EffectivePgDump}");
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await using var kill = ct.Register(() => Kill(process));
        try
        {
            return await consume(new ExitCheckingStream(process, "pg_dump", stderr)).ConfigureAwait(false);
        }
        catch
        {
            Kill(process);
            throw;
        }
    }

    /// <summary>pg_restore --list over what <paramref name="produce"/> writes: the archive's table of contents; throws when it does not parse.</summary>
    public async Task<string> ListAsync(Func<Stream, Task> produce, CancellationToken ct)
    {
        var (stdout, _) = await PipeAsync(null, ["--list"], produce, ct).ConfigureAwait(false);
        return stdout;
    }

    /// <summary>pg_restore into a database as its owner role: no ownership or grants from the archive, stop at the first error.</summary>
    public Task RestoreAsync(PgLogin login, Func<Stream, Task> produce, CancellationToken ct) =>
        PipeAsync(login, ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"], produce, ct);

    async Task<(string Stdout, string Stderr)> PipeAsync(PgLogin? login, string[] args, Func<Stream, Task> produce, CancellationToken ct)
    {
        using var process = Process.Start(Start(options.EffectivePgRestore, login, args, stdin: true))
                            ?? throw new InvalidOperationException($"could not start {options.EffectivePgRestore}");
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await using var kill = ct.Register(() => Kill(process));
        try
        {
            await using (var input = process.StandardInput.BaseStream)
            {
                await produce(input).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
            // pg_restore stopped reading (it failed): its exit code and stderr say why.
        }
        catch
        {
            Kill(process);
            throw;
        }

        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        var err = await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0) throw new PgToolException("pg_restore", process.ExitCode, err);
        return (await stdout.ConfigureAwait(false), err);
    }

    /// <summary>`pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.18 (Debian ...)".</summary>
    public async Task<string> DumpVersionAsync(CancellationToken ct)
    {
        using var process = Process.Start(Start(options.EffectivePgDump, null, ["--version"], stdin: false))
                            ?? throw new InvalidOperationException($"could not start {options.EffectivePgDump}");
        var text = await process.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        return text.Trim();
    }

    static void Kill(Process p)
    {
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>A child's stdout that, at its end, waits for the child and throws if it failed.</summary>
    sealed class ExitCheckingStream(Process process, string tool, Task<string> stderr) : Stream
    {
        readonly Stream inner = process.StandardOutput.BaseStream;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            var read = await inner.ReadAsync(buffer, ct).ConfigureAwait(false);
            if (read > 0) return read;
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            if (process.ExitCode != 0) throw new PgToolException(tool, process.ExitCode, await stderr.ConfigureAwait(false));
            return 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
