namespace ControlPlane.LocalEnv.Chaos;

/// <summary>
/// Keeps one operator process running, as a Deployment would: the harness kills it (and starts the
/// next incarnation itself); an incarnation that exits on its own (a fatal error, a lease it could
/// not renew) is restarted after a short pause and recorded.
/// </summary>
public sealed class OperatorSupervisor : IAsyncDisposable
{
    readonly string dll;
    readonly IReadOnlyDictionary<string, string> settings;
    readonly StreamWriter log;
    readonly SemaphoreSlim gate = new(1, 1);
    readonly CancellationTokenSource stop = new();
    readonly List<(int Incarnation, int ExitCode)> selfExits = [];
    readonly Task watcher;
    OperatorProcess current;
    int incarnations;
    int errorLines;
    readonly List<string> errors = [];
    bool disposed;

    public OperatorSupervisor(string dll, IReadOnlyDictionary<string, string> settings, string logPath)
    {
        this.dll = dll;
        this.settings = settings;
        log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        current = OperatorProcess.Start(dll, settings, ++incarnations, log);
        watcher = Task.Run(WatchAsync);
    }

    public OperatorProcess Current => Volatile.Read(ref current);

    public int Incarnations => incarnations;

    /// <summary>Incarnations that exited without being killed, with their exit codes.</summary>
    public IReadOnlyList<(int Incarnation, int ExitCode)> SelfExits
    {
        get
        {
            lock (selfExits) return [.. selfExits];
        }
    }

    /// <summary>Error-level lines logged by every incarnation so far.</summary>
    public int ErrorLines => disposed ? errorLines : errorLines + Current.ErrorLines;

    /// <summary>Some of those lines, each with its incarnation.</summary>
    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (errors) return disposed ? [.. errors] : [.. errors, .. Current.Errors.Select(e => $"[{Current.Incarnation}] {e}")];
        }
    }


    /// <summary>SIGKILL the running incarnation and start the next one at once.</summary>
    public async Task KillAndRestartAsync()
    {
        await gate.WaitAsync();
        try
        {
            await current.KillAsync();
            await ReplaceAsync();
        }
        finally
        {
            gate.Release();
        }
    }

    void Collect()
    {
        errorLines += current.ErrorLines;
        lock (errors) errors.AddRange(current.Errors.Select(e => $"[{current.Incarnation}] {e}").Take(Math.Max(0, 50 - errors.Count)));
    }

    async Task ReplaceAsync()
    {
        Collect();
        var old = current;
        Volatile.Write(ref current, OperatorProcess.Start(dll, settings, ++incarnations, log));
        await old.DisposeAsync();
    }

    async Task WatchAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                if (!current.HasExited || current.KilledByHarness) continue;
                await gate.WaitAsync(stop.Token);
                try
                {
                    if (!current.HasExited || current.KilledByHarness) continue;
                    lock (selfExits) selfExits.Add((current.Incarnation, current.ExitCode ?? -1));
                    // What a Deployment's restart backoff would do, briefly.
                    await Task.Delay(TimeSpan.FromMilliseconds(500), stop.Token);
                    await ReplaceAsync();
                }
                finally
                {
                    gate.Release();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await watcher;
        await gate.WaitAsync();
        Collect();
        disposed = true;
        await current.DisposeAsync();
        gate.Release();
        await log.DisposeAsync();
        stop.Dispose();
        gate.Dispose();
    }
}
