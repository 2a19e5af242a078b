using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Bench;

/// <summary>Backup of a pgbench-filled workspace database against pg_dump -Fc streamed by the same client, and its restore.</summary>
public static partial class Program
{
    // pgbench scale: 68 is about 1 GiB on disk (pgbench_accounts holds scale x 100,000 rows).
    static readonly int BackupScale = Env("BENCH_BACKUP_SCALE", 68);

    static readonly ResourceType BackupPlanType = ResourceType.For<BackupPlan>(true);
    static readonly ResourceType BackupType = ResourceType.For<Backup>(true);
    const string BackupBucket = "backups";
    const string BackupCredentials = "bench-s3";

    /// <summary>
    /// One workspace database filled by pgbench as the workspace's role. Floor: pg_dump -Fc of it piped
    /// to s3rver by the operator's own ObjectStore (multipart, same part size), interleaved with the
    /// backups (the best of each side is compared: the shared machine's load only ever adds). Backup: a
    /// Backup object, from its create until the operator reports it Completed (dump, upload, read-back
    /// verification). Restore: the stored object read by the same client, streamed into pg_restore, into
    /// a new database owned by the workspace's role, as that role: the restore's mechanism.
    /// </summary>
    static async Task<JsonObject> BackupAsync(BenchEnv env, string root)
    {
        await using var s3 = await LocalS3.StartAsync(root, [BackupBucket]);
        var pgDump = Path.Combine(LocalPostgres.BinDir, "pg_dump");
        var partSize = new BackupOptions().PartSizeBytes;
        await env.Api.CreateAsync(ResourceType.Secrets, "controlplane-system", new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = BackupCredentials, NamespaceProperty = "controlplane-system" },
            Data = new Dictionary<string, byte[]> { ["accessKeyId"] = Encoding.UTF8.GetBytes(LocalS3.AccessKey), ["secretAccessKey"] = Encoding.UTF8.GetBytes(LocalS3.SecretKey) },
        }, CancellationToken.None);
        await using var op = RunningOperator.Start(env, o =>
        {
            o.Regions["eu"].BackupStorage = new BackupStorageOptions { Endpoint = s3.Endpoint, Bucket = BackupBucket, Prefix = "platform", CredentialsSecret = BackupCredentials };
            o.Backup.PgDumpPath = pgDump;
        });
        await op.WaitSyncedAsync();
        await CreateTenantsAsync(env, 10);
        var ws = NewWorkspace(0, db: true);
        await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
        var ns = ws.Metadata.Name;
        await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ns, CancellationToken.None)).Status?.Phase == WorkspacePhase.Ready,
            TimeSpan.FromMinutes(2), "workspace Ready");
        var secret = await env.Api.GetAsync<V1Secret>(ResourceType.Secrets, ns, ns + "-db", CancellationToken.None);
        string Value(string key) => Encoding.UTF8.GetString(secret.Data[key]);
        var login = new PgLogin(Value("host"), int.Parse(Value("port"), CultureInfo.InvariantCulture), Value("database"), Value("username"), Value("password"));

        var fill = Stopwatch.StartNew();
        await PgBenchInitAsync(login, BackupScale);
        Console.WriteLine($"backup: pgbench -i -s {BackupScale} as {login.User} in {fill.Elapsed.TotalSeconds:0.0} s");
        var databaseBytes = await ScalarAsync<long>(login, "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())");

        var tools = new PgTools(new BackupOptions { PgDumpPath = pgDump });
        using var store = new ObjectStore(new S3Target(s3.Endpoint, BackupBucket, "floor", LocalS3.AccessKey, LocalS3.SecretKey));
        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "bench", NamespaceProperty = ns } };
        plan.Spec.Schedule = "0 0 1 1 *"; // yearly: only the hand-made Backups below run
        await env.Api.CreateAsync(BackupPlanType, ns, plan, CancellationToken.None);
        // Not WaitIdleAsync: a plan always has its next schedule queued, so the operator is never idle.
        await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<BackupPlan>(BackupPlanType, ns, "bench", CancellationToken.None)).Status?.ObservedGeneration == 1,
            TimeSpan.FromMinutes(2), "backup plan reconciled");

        // Floor and backup interleaved, BackupRuns times each: the shared machine's load only ever adds,
        // so each side is taken at its best (the minimum), and the medians are shown beside.
        var floors = new List<(double Seconds, UploadResult Upload)>();
        var backups = new List<(double Seconds, Backup Backup)>();
        for (var run = 1; run <= BackupRuns; run++)
        {
            floors.Add(await FloorDumpAsync(tools, store, login, $"floor/run-{run}.dump", partSize));
            Console.WriteLine($"backup: floor {run} {floors[^1].Seconds:0.00} s, {floors[^1].Upload.SizeBytes} bytes");
            backups.Add(await TimedBackupAsync(env, ns, $"bench-{run}"));
            Console.WriteLine($"backup: Backup {run} Completed in {backups[^1].Seconds:0.00} s, {backups[^1].Backup.Status!.SizeBytes} bytes");
        }

        var floorSeconds = floors.Min(f => f.Seconds);
        var backupSeconds = backups.Min(b => b.Seconds);
        var backup = backups.MinBy(b => b.Seconds).Backup;
        var lastFloor = floors[^1];

        // Where the backup's time beyond the floor goes: its read-back verification, timed alone on the floor's object.
        var verifyWatch = Stopwatch.StartNew();
        var verification = await BackupVerifier.VerifyAsync(store, tools, $"floor/run-{BackupRuns}.dump", lastFloor.Upload, CancellationToken.None);
        var verifySeconds = verifyWatch.Elapsed.TotalSeconds;
        if (!verification.Ok) throw new InvalidOperationException($"floor verification: {verification.Message}");

        var (restoreSeconds, restoredRows) = await RestoreAsync(env, tools, s3, login, backup.Status!.Key!);
        if (restoredRows != BackupScale * 100_000L) throw new InvalidOperationException($"restored pgbench_accounts has {restoredRows} rows, expected {BackupScale * 100_000L}");
        await op.StopAsync();
        return new JsonObject
        {
            ["scale"] = BackupScale,
            ["databaseMB"] = Math.Round(databaseBytes / 1048576.0, 1),
            ["backupMB"] = Math.Round(backup.Status.SizeBytes!.Value / 1048576.0, 1),
            ["backupSeconds"] = Math.Round(backupSeconds, 2),
            ["backupStatusSeconds"] = Math.Round((backup.Status.CompletedAt!.Value - backup.Status.StartedAt!.Value).TotalSeconds, 2),
            ["floorSeconds"] = Math.Round(floorSeconds, 2),
            ["floorRunsSeconds"] = new JsonArray([.. floors.Select(f => (JsonNode)Math.Round(f.Seconds, 2))]),
            ["backupRunsSeconds"] = new JsonArray([.. backups.Select(b => (JsonNode)Math.Round(b.Seconds, 2))]),
            ["ratio"] = Math.Round(backupSeconds / floorSeconds, 3),
            ["ratioOfMedians"] = Math.Round(Median(backups.Select(b => b.Seconds)) / Median(floors.Select(f => f.Seconds)), 3),
            ["verifySeconds"] = Math.Round(verifySeconds, 2),
            ["restoreSeconds"] = Math.Round(restoreSeconds, 2),
            ["note"] = "backup: Backup create until status Completed (pg_dump -Fc as the workspace role, multipart upload, read-back with sha256 and pg_restore --list); " +
                       "floor: the same pg_dump piped by the same ObjectStore to the same s3rver; the backup is seen Completed through a watch; floor and backup interleaved 3 times, ratio = best backup / best floor; verify: the read-back alone, on the floor's object; " +
                       "restore: CREATE DATABASE owned by the workspace role, then the object streamed by the same client into pg_restore --single-transaction as that role",
        };
    }

    const int BackupRuns = 3;

    static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>
    /// A Backup from its create until the operator reports it Completed, seen through a watch: no
    /// observation lag and no polling load (on two cores, a 20 ms poll took CPU from pg_dump that the
    /// floor did not lose).
    /// </summary>
    static async Task<(double Seconds, Backup Backup)> TimedBackupAsync(BenchEnv env, string ns, string name)
    {
        var list = await env.Api.ListAsync<Backup>(BackupType, ns, null, 1, null, CancellationToken.None);
        using var response = await env.Api.WatchAsync(BackupType, ns, list.ResourceVersion ?? "0", 3600, CancellationToken.None, fieldSelector: $"metadata.name={name}");
        await using var body = await response.Content.ReadAsStreamAsync();
        using var lines = new StreamReader(body);
        var watch = Stopwatch.StartNew();
        await env.Api.CreateAsync(BackupType, ns, new Backup { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns }, Spec = new BackupSpec { BackupPlan = "bench" } },
            CancellationToken.None);
        while (await lines.ReadLineAsync() is { } line)
        {
            if (JsonNode.Parse(line)?["object"] is not JsonObject o || o["kind"]?.GetValue<string>() != "Backup") continue;
            var backup = k8s.KubernetesJson.Deserialize<Backup>(o.ToJsonString());
            if (backup.Status?.Phase == BackupPhase.Failed) throw new InvalidOperationException($"backup failed: {backup.Status.Conditions?.FirstOrDefault()?.Message}");
            if (backup.Status?.Phase == BackupPhase.Completed) return (watch.Elapsed.TotalSeconds, backup);
        }

        throw new InvalidOperationException($"backup {name}: the watch ended before it Completed");
    }

    static async Task<(double Seconds, UploadResult Upload)> FloorDumpAsync(PgTools tools, ObjectStore store, PgLogin login, string key, int partSize)
    {
        var watch = Stopwatch.StartNew();
        var upload = await tools.DumpAsync(login, stdout => store.UploadAsync(key, stdout, partSize, _ => Task.CompletedTask, CancellationToken.None), CancellationToken.None);
        return (watch.Elapsed.TotalSeconds, upload);
    }

    static async Task<(double Seconds, long Rows)> RestoreAsync(BenchEnv env, PgTools tools, LocalS3 s3, PgLogin login, string key)
    {
        var target = login with { Database = login.Database + "_restored" };
        var watch = Stopwatch.StartNew();
        // The platform creates the new database (the workspace role may not); everything in it is then the role's own.
        await using (var admin = new NpgsqlConnection(env.Postgres.RegionConnectionString()))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{target.Database}\" OWNER \"{target.User}\"", admin);
            await create.ExecuteNonQueryAsync();
        }

        using var store = new ObjectStore(new S3Target(s3.Endpoint, BackupBucket, "platform", LocalS3.AccessKey, LocalS3.SecretKey));
        await tools.RestoreAsync(target, async stdin => await store.ReadAsync(key, stdin, CancellationToken.None), CancellationToken.None);
        var seconds = watch.Elapsed.TotalSeconds;
        return (seconds, await ScalarAsync<long>(target, "SELECT pg_catalog.count(*) FROM public.pgbench_accounts"));
    }

    static async Task PgBenchInitAsync(PgLogin login, int scale)
    {
        var info = new ProcessStartInfo(Path.Combine(LocalPostgres.BinDir, "pgbench")) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture), "-h", login.Host, "-p", login.Port.ToString(CultureInfo.InvariantCulture), "-U", login.User, login.Database })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["PGPASSWORD"] = login.Password;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start pgbench");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"pgbench -i exited with {process.ExitCode}: {await stderr}{await stdout}");
    }

    static async Task<T> ScalarAsync<T>(PgLogin login, string sql)
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = login.Host, Port = login.Port, Database = login.Database, Username = login.User, Password = login.Password, Pooling = false,
        }.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
