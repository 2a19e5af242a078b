using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>One s3rver (npm, installed by hack/install-s3.sh) for the backup tests, on loopback with a temp folder.</summary>
public sealed class S3Fixture : IAsyncLifetime
{
    public const string Bucket = "backups";
    readonly string root = Path.Combine(Path.GetTempPath(), "controlplane-s3-" + Guid.NewGuid().ToString("N")[..8]);

    public LocalS3 S3 { get; private set; } = null!;

    public async Task InitializeAsync() => S3 = await LocalS3.StartAsync(root, [Bucket]);

    public async Task DisposeAsync()
    {
        await S3.DisposeAsync();
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public ObjectStore Store(string prefix, string accessKey = LocalS3.AccessKey) =>
        new(new S3Target(S3.Endpoint, Bucket, prefix, accessKey, LocalS3.SecretKey));
}

/// <summary>
/// Backups on real Postgres and a real S3 server (s3rver): pg_dump as the workspace role, streamed,
/// verified, pruned, and never left Running.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class BackupTests(ClusterFixture cluster, S3Fixture s3, ITestOutputHelper output) : IClassFixture<S3Fixture>
{
    internal static readonly ResourceType Plans = ResourceType.For<BackupPlan>(true);
    internal static readonly ResourceType Backups = ResourceType.For<Backup>(true);
    static readonly ResourceType Secrets = ResourceType.Secrets;
    const string OperatorNamespace = "controlplane-system";

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>A tenant and a Ready workspace, its region's platform storage (a Secret in the operator's namespace) under a prefix of its own.</summary>
    async Task<(string Workspace, string Prefix, string CredentialsSecret)> WorkspaceAsync(string name, string secretKey = LocalS3.SecretKey)
    {
        var tenant = Unique(name + "-t");
        var ws = Unique(name);
        await cluster.CreateTenantAsync(tenant);
        await cluster.CreateWorkspaceAsync(ws, tenant);
        var credentials = Unique("s3");
        await cluster.Api.CreateAsync(Secrets, OperatorNamespace, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = credentials, NamespaceProperty = OperatorNamespace },
            Data = new Dictionary<string, byte[]> { ["accessKeyId"] = Encoding.UTF8.GetBytes(LocalS3.AccessKey), ["secretAccessKey"] = Encoding.UTF8.GetBytes(secretKey) },
        }, CancellationToken.None);
        return (ws, ws, credentials);
    }

    Action<ControlPlaneOptions> Storage(string prefix, string credentialsSecret, Action<ControlPlaneOptions>? more = null) => o =>
    {
        o.Regions["eu"].BackupStorage = new BackupStorageOptions { Endpoint = s3.S3.Endpoint, Bucket = S3Fixture.Bucket, Prefix = prefix, CredentialsSecret = credentialsSecret };
        o.Backup.PartSizeBytes = 5 * 1024 * 1024;
        more?.Invoke(o);
    };

    async Task<V1Secret> DatabaseSecretAsync(string ws) => await cluster.Api.GetAsync<V1Secret>(Secrets, ws, ws + "-db", CancellationToken.None);

    static string Value(V1Secret s, string key) => Encoding.UTF8.GetString(s.Data[key]);

    /// <summary>The tenant's own connection, from its Secret.</summary>
    static NpgsqlConnection TenantConnection(V1Secret credentials, string? database = null) => new(new NpgsqlConnectionStringBuilder
    {
        Host = Value(credentials, "host"), Port = int.Parse(Value(credentials, "port"), System.Globalization.CultureInfo.InvariantCulture),
        Username = Value(credentials, "username"), Password = Value(credentials, "password"), Database = database ?? Value(credentials, "database"), Pooling = false, Timeout = 5,
    }.ConnectionString);

    static async Task ExecAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    async Task WriteRowsAsync(string ws, int from, int count)
    {
        await using var conn = TenantConnection(await DatabaseSecretAsync(ws));
        await conn.OpenAsync();
        await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS public.items (id int PRIMARY KEY, name text NOT NULL)");
        await ExecAsync(conn, $"INSERT INTO public.items SELECT g, 'item ' || g FROM pg_catalog.generate_series({from}, {from + count - 1}) g");
    }

    async Task<string> ChecksumAsync(NpgsqlConnection conn) =>
        await ScalarAsync<string>(conn, "SELECT pg_catalog.md5(pg_catalog.string_agg(id::text || ':' || name, ',' ORDER BY id)) || '/' || pg_catalog.count(*) FROM public.items");

    async Task<BackupPlan> CreatePlanAsync(string ws, string name, string schedule, int? keepLast = null, Action<BackupPlanSpec>? edit = null)
    {
        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ws } };
        plan.Spec.Schedule = schedule;
        if (keepLast is not null) plan.Spec.Retention = new BackupRetention { KeepLast = keepLast };
        edit?.Invoke(plan.Spec);
        return await cluster.Api.CreateAsync(Plans, ws, plan, CancellationToken.None);
    }

    async Task<Backup> CreateBackupAsync(string ws, string name, string plan)
    {
        var backup = new Backup { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ws }, Spec = new BackupSpec { BackupPlan = plan } };
        return await cluster.Api.CreateAsync(Backups, ws, backup, CancellationToken.None);
    }

    async Task<IReadOnlyList<Backup>> BackupsOfAsync(string ws) =>
        (await cluster.Api.ListAsync<Backup>(Backups, ws, null, 100, null, CancellationToken.None)).Items;

    async Task<Backup> WaitForBackupAsync(string ws, string name, Func<Backup, bool> condition, string what, TimeSpan? timeout = null)
    {
        Backup? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<Backup>(Backups, ws, name, CancellationToken.None);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(60), $"backup {ws}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            var conditions = string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? []);
            throw new TimeoutException($"{e.Message} (phase {last?.Status?.Phase}, conditions: {conditions})");
        }

        return last!;
    }

    async Task<BackupPlan> WaitForPlanAsync(string ws, string name, Func<BackupPlan, bool> condition, string what, TimeSpan? timeout = null)
    {
        BackupPlan? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await cluster.Api.TryGetAsync<BackupPlan>(Plans, ws, name, CancellationToken.None);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(60), $"backup plan {ws}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            var conditions = string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? []);
            throw new TimeoutException($"{e.Message} (conditions: {conditions})");
        }

        return last!;
    }

    /// <summary>The first Completed Backup of a plan; a timeout shows the plan's and its Backups' status.</summary>
    async Task<Backup> WaitForCompletedAsync(string ws, string plan, TimeSpan timeout, Func<Backup, bool>? which = null)
    {
        Backup? found = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                found = (await BackupsOfAsync(ws)).FirstOrDefault(b => b.Spec.BackupPlan == plan && b.Status?.Phase == BackupPhase.Completed && (which?.Invoke(b) ?? true));
                return found is not null;
            }, timeout, $"a Completed backup of {ws}/{plan}");
        }
        catch (TimeoutException e)
        {
            var p = await cluster.Api.TryGetAsync<BackupPlan>(Plans, ws, plan, CancellationToken.None);
            var backups = string.Join("; ", (await BackupsOfAsync(ws)).Select(b =>
                $"{b.Metadata.Name} {b.Status?.Phase} {string.Join(",", b.Status?.Conditions?.Select(c => $"{c.Reason}: {c.Message}") ?? [])}"));
            throw new TimeoutException($"{e.Message}: plan status {k8s.KubernetesJson.Serialize(p?.Status)}; backups: {backups}");
        }

        return found!;
    }

    static V1Condition? Condition(IReadOnlyList<V1Condition>? conditions, string type) => conditions?.FirstOrDefault(c => c.Type == type);

    /// <summary>A stand-in pg_dump (a shell script), for dumps that hang or produce garbage.</summary>
    static string FakePgDump(string body)
    {
        var dir = Path.Combine(Path.GetTempPath(), "controlplane-fake-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "pg_dump");
        File.WriteAllText(path, "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo 'pg_dump (PostgreSQL) 15.0'; exit 0; fi\n" + body + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.CreateSymbolicLink(Path.Combine(dir, "pg_restore"), "/usr/bin/pg_restore");
        return path;
    }

    [Fact]
    public async Task ScheduledBackups_OfRealData_AreVerified_RetentionPrunesTheOlderObject_AndTheDumpRestoresTheSameRows()
    {
        var (ws, prefix, credentials) = await WorkspaceAsync("bk-sched");
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, Storage(prefix, credentials));
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await WriteRowsAsync(ws, 1, 500);
        await CreatePlanAsync(ws, "minutely", "* * * * *", keepLast: 1);

        // The schedule (every minute, UTC) makes the first Backup; it completes, verified.
        var first = await WaitForCompletedAsync(ws, "minutely", TimeSpan.FromSeconds(100));
        Assert.Equal("true", first.Metadata.Labels[ApiGroup.ScheduledLabel]);
        Assert.Matches("^[a-f0-9]{64}$", first.Status!.Sha256);
        Assert.StartsWith("15.", first.Status.ServerVersion);
        Assert.Contains("15.", first.Status.PgDumpVersion);
        Assert.NotNull(first.Status.CorrelationId);
        using var store = s3.Store(prefix);
        var read = await store.ReadAsync(first.Status.Key!, null, CancellationToken.None);
        Assert.Equal(first.Status.Sha256, read.Sha256);
        Assert.Equal(first.Status.SizeBytes, read.SizeBytes);
        Assert.Equal(ByteSizes.Format(read.SizeBytes), first.Status.Size); // kubectl's SIZE column

        // The dump restores the same rows (into a scratch database the test owns).
        string expected;
        await using (var conn = TenantConnection(await DatabaseSecretAsync(ws)))
        {
            await conn.OpenAsync();
            expected = await ChecksumAsync(conn);
        }

        var scratch = "scratch_" + Guid.NewGuid().ToString("N")[..8];
        await using (var admin = new NpgsqlConnection(cluster.Postgres.ConnectionString()))
        {
            await admin.OpenAsync();
            await ExecAsync(admin, $"CREATE DATABASE {scratch}");
        }

        var tools = new PgTools(new BackupOptions());
        var b = new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString());
        await tools.RestoreAsync(new PgLogin(b.Host!, b.Port, scratch, b.Username!, b.Password!),
            async stdin => await store.ReadAsync(first.Status.Key!, stdin, CancellationToken.None), CancellationToken.None);
        await using (var restored = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cluster.Postgres.ConnectionString()) { Database = scratch }.ConnectionString))
        {
            await restored.OpenAsync();
            Assert.Equal(expected, await ChecksumAsync(restored));
        }

        // More data, the next minute's backup; keepLast 1 prunes the first: its object, then the Backup.
        await WriteRowsAsync(ws, 501, 100);
        await Net.WaitUntilAsync(async () =>
        {
            var all = await BackupsOfAsync(ws);
            return all.Count == 1 && all[0].Metadata.Name != first.Metadata.Name && all[0].Status?.Phase == BackupPhase.Completed;
        }, TimeSpan.FromSeconds(120), "the second backup Completed and the first pruned");
        var second = (await BackupsOfAsync(ws)).Single();
        await Net.WaitUntilAsync(async () => (await store.ListKeysAsync(prefix + "/", CancellationToken.None)).Count == 1, TimeSpan.FromSeconds(20), "one object left");
        Assert.Equal([second.Status!.Key!], await store.ListKeysAsync(prefix + "/", CancellationToken.None));

        var plan = await WaitForPlanAsync(ws, "minutely", p => p.Status?.LastBackup?.Name == second.Metadata.Name && p.Status.FirstRecoverabilityPoint is not null, "status summarises the second backup");
        Assert.Equal(second.Status.CompletedAt, plan.Status!.FirstRecoverabilityPoint);
        Assert.Equal("True", Condition(plan.Status.Conditions, BackupPlanConditions.LastBackupSucceeded)?.Status);
        Assert.Equal("False", Condition(plan.Status.Conditions, BackupPlanConditions.BackupOverdue)?.Status);
        Assert.Equal("True", Condition(plan.Status.Conditions, BackupPlanConditions.Ready)?.Status);
        Assert.NotNull(plan.Status.NextScheduleTime);
        // The metrics are set when the backup's reconcile returns, after its status is written: waited for.
        var completedAt = new DateTimeOffset(second.Status.CompletedAt!.Value.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0;
        await Net.WaitUntilAsync(() => Task.FromResult(op.Runtime.BackupMetrics.LastSuccess.WithLabels(ws, "minutely").Value == completedAt
                                                       && (long)op.Runtime.BackupMetrics.Size.WithLabels(ws, "minutely").Value == second.Status.SizeBytes),
            TimeSpan.FromSeconds(60), "last-success and size metrics of the second backup");

        // A minutely schedule left behind would write every minute under the next tests' operators (their zero-write checks).
        await cluster.Api.PatchAsync<BackupPlan>(ResourceType.For<BackupPlan>(true), ws, "minutely", """{"spec":{"suspend":true}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitForPlanAsync(ws, "minutely", p => Condition(p.Status?.Conditions, BackupPlanConditions.Ready)?.Reason == "Suspended", "suspended");
        await LiveHealth.AssertAsync(cluster.Api, Plans, ws, "minutely", "suspended (spec.suspend)");
    }
}
