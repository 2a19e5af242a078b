using System.Diagnostics;
using System.Net.Sockets;
using System.Net;

namespace ControlPlane.LocalEnv;

public static class Net
{
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Polls a condition until it holds or the deadline passes.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken ct = default)
    {
        var deadline = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or SocketException)
            {
            }

            if (deadline.Elapsed > timeout) throw new TimeoutException($"{what}: not true after {timeout.TotalSeconds:0} s");
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 1.5, 250));
        }
    }
}

/// <summary>A child process whose output goes to a log file; killed on dispose.</summary>
sealed class ChildProcess(string name, string fileName, IReadOnlyList<string> args, string logPath, string? runAs = null) : IAsyncDisposable
{
    Process? process;

    public string Name => name;
    public string LogPath => logPath;
    public bool Running => process is { HasExited: false };

    public void Start()
    {
        var info = new ProcessStartInfo(runAs is null ? fileName : "runuser")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (runAs is not null)
        {
            foreach (var a in new[] { "-u", runAs, "--", fileName }) info.ArgumentList.Add(a);
        }

        foreach (var a in args) info.ArgumentList.Add(a);
        var log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    static void Write(StreamWriter log, string? line)
    {
        if (line is null) return;
        lock (log) log.WriteLine(line);
    }

    /// <summary>Sends a signal (STOP freezes the process as a hung server would look; CONT resumes it).</summary>
    public async Task SignalAsync(string signal)
    {
        if (process is null || process.HasExited) throw new InvalidOperationException($"{name} is not running");
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {name} failed ({kill.ExitCode})");
    }

    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (process is null || process.HasExited) return;
        try
        {
            // SIGTERM first, then SIGKILL: the API server and etcd shut down cleanly on TERM.
            Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])?.WaitForExit();
            using var cts = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    public string Tail(int lines = 30)
    {
        try
        {
            using var stream = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException)
        {
            return "";
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(TimeSpan.FromSeconds(5));
}
