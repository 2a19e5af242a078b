namespace ControlPlane.LocalEnv;

/// <summary>
/// A throwaway S3-compatible server (npm's s3rver, installed by hack/install-s3.sh) on a free
/// loopback port with its objects in a temp folder. s3rver checks request signatures against its one
/// account (<see cref="AccessKey"/>/<see cref="SecretKey"/>), so wrong credentials are refused as S3 refuses them.
/// </summary>
public sealed class LocalS3 : IAsyncDisposable
{
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";
    readonly ChildProcess process;

    LocalS3(ChildProcess process, int port, string directory)
    {
        this.process = process;
        Port = port;
        Directory = directory;
    }

    public int Port { get; }

    /// <summary>Where s3rver keeps the objects (a test may corrupt one here).</summary>
    public string Directory { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>The s3rver module: $S3RVER_INSTALL_DIR, else where hack/install-s3.sh puts it.</summary>
    public static string ModuleDirectory()
    {
        var dir = Environment.GetEnvironmentVariable("S3RVER_INSTALL_DIR")
                  ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "controlplane-tools", "s3rver");
        return Path.Combine(dir, "node_modules", "s3rver");
    }

    /// <summary>Starts s3rver with the given buckets created at startup, on <paramref name="port"/> or a free one (a test restarting storage on the same address).</summary>
    public static async Task<LocalS3> StartAsync(string root, IEnumerable<string> buckets, CancellationToken ct = default, int? port = null)
    {
        var module = ModuleDirectory();
        if (!File.Exists(Path.Combine(module, "package.json"))) throw new InvalidOperationException($"s3rver is not installed ({module} missing): run `make tools` (hack/install-s3.sh).");
        // Our launcher adds the multipart operations s3rver lacks (abort, list uploads).
        var launcher = Path.Combine(Program.FindRepoRoot(), "hack", "s3rver-server.js");
        var dir = Path.Combine(root, "s3");
        System.IO.Directory.CreateDirectory(dir);
        var data = Path.Combine(dir, "data");
        System.IO.Directory.CreateDirectory(data);
        var listen = port ?? Net.FreePort();
        List<string> args = [launcher, module, data, listen.ToString(System.Globalization.CultureInfo.InvariantCulture), .. buckets];
        var process = new ChildProcess("s3rver", "node", args, Path.Combine(dir, "s3rver.log"));
        process.Start();
        var s3 = new LocalS3(process, listen, data);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Net.WaitUntilAsync(async () =>
        {
            if (!process.Running) throw new InvalidOperationException($"s3rver exited: {process.Tail()}");
            // Any HTTP answer (403 to an unsigned request) means it listens.
            using var response = await http.GetAsync(s3.Endpoint, ct);
            return true;
        }, TimeSpan.FromSeconds(30), "s3rver listening", ct);
        return s3;
    }

    public async ValueTask DisposeAsync() => await process.DisposeAsync();
}
