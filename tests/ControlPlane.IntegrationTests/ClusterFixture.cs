using System.Collections.Concurrent;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}

/// <summary>
/// One real control plane (etcd, kube-apiserver, kube-controller-manager) and one real PostgreSQL
/// for all integration tests, started by the tests themselves. Tests in the collection run one at
/// a time, since some stop and start the servers.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    readonly string root = Path.Combine(Path.GetTempPath(), "controlplane-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public LocalControlPlane Plane { get; private set; } = null!;
    public LocalPostgres Postgres { get; private set; } = null!;
    public KubeApi Api { get; private set; } = null!;

    /// <summary>The regions' evidence storage (DeploymentIntent evidence packs are kept here, write-once): s3rver, bucket <see cref="Evidence.Bucket"/>.</summary>
    public LocalS3 EvidenceS3 { get; private set; } = null!;

    /// <summary>The kubelet's stand-in: binds pods to a fake Node and reports them Running (or crash-looping for bad images).</summary>
    public NodeStandIn Node { get; private set; } = null!;

    /// <summary>The operator's ServiceAccount (config/rbac/operator.yaml): every test operator runs with these credentials.</summary>
    public string OperatorKubeconfigPath { get; private set; } = "";

    public k8s.KubernetesClientConfiguration OperatorClientConfig() => k8s.KubernetesClientConfiguration.BuildConfigFromConfigFile(OperatorKubeconfigPath);

    public string KeyEncryptionKey { get; } = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public static readonly ResourceType Tenants = ResourceType.For<Tenant>(false);
    public static readonly ResourceType Workspaces = ResourceType.For<Workspace>(false);

    public async Task InitializeAsync()
    {
        Plane = await LocalControlPlane.StartAsync(Path.Combine(root, "k8s"));
        Postgres = await LocalPostgres.StartAsync(root);
        // Exactly what `make install` applies; the operator then runs as its own ServiceAccount under it.
        await Plane.InstallManifestsAsync(ControlPlane.LocalEnv.Program.FindRepoRoot());
        OperatorKubeconfigPath = await Plane.OperatorKubeconfigAsync();
        Api = Plane.NewApi();
        Node = await NodeStandIn.StartAsync(Plane.NewApi());
        EvidenceS3 = await LocalS3.StartAsync(root, [Evidence.Bucket]);
        await Evidence.CreateStorageSecretAsync(Api);
    }

    public async Task DisposeAsync()
    {
        if (Node is not null) await Node.DisposeAsync();
        if (EvidenceS3 is not null) await EvidenceS3.DisposeAsync();
        Api.Dispose();
        await Postgres.DisposeAsync();
        await Plane.DisposeAsync();
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public ControlPlaneOptions OperatorOptions(string lease) => new()
    {
        SystemDatabase = Postgres.ConnectionString(),
        Regions = new(StringComparer.OrdinalIgnoreCase)
        {
            ["eu"] = new RegionOptions { Database = Postgres.RegionConnectionString(), EvidenceStorage = Evidence.Storage(EvidenceS3, "eu") },
            ["us"] = new RegionOptions { Database = Postgres.RegionConnectionString(), EvidenceStorage = Evidence.Storage(EvidenceS3, "us") },
        },
        Workers = 2,
        KeyEncryptionKey = KeyEncryptionKey,
        KeyRotationGrace = TimeSpan.FromSeconds(3),
        KeyPurgeInterval = TimeSpan.FromMilliseconds(500),
        MaxTransientRetryDelay = TimeSpan.FromSeconds(1),
        LeaderElection = new LeaderElectionSettings
        {
            LeaseName = lease,
            LeaseDuration = TimeSpan.FromSeconds(4),
            RenewDeadline = TimeSpan.FromSeconds(3),
            RetryPeriod = TimeSpan.FromMilliseconds(500),
        },
    };

    public async Task<Tenant> CreateTenantAsync(string name, string region = "eu", Action<TenantSpec>? edit = null)
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = name } };
        tenant.Spec.Region = region;
        tenant.Spec.DisplayName = $"Tenant {name}";
        edit?.Invoke(tenant.Spec);
        return await Api.CreateAsync(Tenants, null, tenant, CancellationToken.None);
    }

    public Task<Tenant?> GetTenantAsync(string name) => Api.TryGetAsync<Tenant>(Tenants, null, name, CancellationToken.None);

    public async Task<Tenant> WaitForTenantAsync(string name, Func<Tenant, bool> condition, string what, TimeSpan? timeout = null)
    {
        Tenant? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await GetTenantAsync(name);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(30), $"tenant {name}: {what}");
        }
        catch (TimeoutException e)
        {
            var conditions = string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason}: {c.Message}") ?? []);
            throw new TimeoutException($"{e.Message} (phase {last?.Status?.Phase}, conditions: {conditions})");
        }

        return last!;
    }

    public async Task<Workspace> CreateWorkspaceAsync(string name, string tenant, Action<WorkspaceSpec>? edit = null)
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        edit?.Invoke(ws.Spec);
        return await Api.CreateAsync(Workspaces, null, ws, CancellationToken.None);
    }

    public Task<Workspace?> GetWorkspaceAsync(string name) => Api.TryGetAsync<Workspace>(Workspaces, null, name, CancellationToken.None);

    /// <summary>Polls a workspace until <paramref name="condition"/> holds; a timeout reports its generation, phase and conditions.</summary>
    public async Task<Workspace> WaitForWorkspaceAsync(string name, Func<Workspace, bool> condition, string what, TimeSpan? timeout = null)
    {
        Workspace? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await GetWorkspaceAsync(name);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(30), $"workspace {name}: {what}");
        }
        catch (TimeoutException e)
        {
            var conditions = string.Join("; ", last?.Status?.Conditions?.Select(c => $"{c.Type}={c.Status} {c.Reason} (gen {c.ObservedGeneration}): {c.Message}") ?? []);
            throw new TimeoutException($"{e.Message} (generation {last?.Metadata.Generation}, phase {last?.Status?.Phase}, conditions: {conditions})");
        }

        return last!;
    }

    public static bool IsReady(Workspace w) => w.Status?.Phase == WorkspacePhase.Ready && w.Status.ObservedGeneration == w.Metadata.Generation;

    public static V1Condition? Condition(Workspace w, string type) => w.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    public static bool IsReady(Tenant t) =>
        t.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True" && c.ObservedGeneration == t.Metadata.Generation) == true;

    public static V1Condition? Condition(Tenant t, string type) => t.Status?.Conditions?.FirstOrDefault(c => c.Type == type);
}

/// <summary>An operator instance running in the test process against the fixture's servers.</summary>
public sealed class TestOperator : IAsyncDisposable
{
    readonly CancellationTokenSource stop = new();
    readonly ILoggerFactory loggers;
    Task? run;

    TestOperator(OperatorRuntime runtime, ILoggerFactory loggers)
    {
        Runtime = runtime;
        this.loggers = loggers;
    }

    public OperatorRuntime Runtime { get; }

    public RequestMetricsHandler Requests => Runtime.Requests;

    // Error-level lines the operator logged; each test states which it expects, any other fails it.
    ConcurrentQueue<string> errorSink = new();
    IReadOnlyCollection<string> expectedErrors = [];

    /// <param name="expectedErrors">Substrings of the error-level log lines this test provokes on purpose.</param>
    public static TestOperator Start(ClusterFixture fixture, string lease, ITestOutputHelper output, Action<ControlPlaneOptions>? tweak = null,
        IReadOnlyCollection<string>? expectedErrors = null)
    {
        var options = fixture.OperatorOptions(lease);
        tweak?.Invoke(options);
        var errors = new ConcurrentQueue<string>();
        var loggers = LoggerFactory.Create(b => b.AddProvider(new TestOutputLoggerProvider(output, errors)).SetMinimumLevel(LogLevel.Information));
        var op = new TestOperator(new OperatorRuntime(options, fixture.OperatorClientConfig(), loggers), loggers);
        op.errorSink = errors;
        op.expectedErrors = expectedErrors ?? [];
        op.run = Task.Run(() => op.Runtime.RunAsync(op.stop.Token));
        return op;
    }

    public Task WaitUntilLeaderAndSyncedAsync(TimeSpan? timeout = null) =>
        Net.WaitUntilAsync(() => Task.FromResult(Runtime.IsLeader && Runtime.Informers.Count > 0 && Runtime.Informers.All(i => i.HasSynced)),
            timeout ?? TimeSpan.FromSeconds(30), "operator leading with synced caches");

    public Task WaitUntilIdleAsync() => Net.WaitUntilAsync(() => Task.FromResult(Runtime.IsIdle), TimeSpan.FromSeconds(30), "operator idle");

    /// <summary>
    /// Settled: a resync that reconciles every one of <paramref name="keys"/> ("controller namespace/name")
    /// again makes no write to the API server or Postgres (retried while something else still settles).
    /// </summary>
    public Task ResyncWritesNothingAsync(params string[] keys) => Net.WaitUntilAsync(async () =>
    {
        var writesBefore = Requests.Writes;
        var dbBefore = Runtime.Database.Writes;
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        void Count(string controller, string key, string result) => seen[$"{controller} {key}"] = true;
        Runtime.Reconciled += Count;
        try
        {
            Runtime.ResyncAll();
            await Net.WaitUntilAsync(() => Task.FromResult(keys.All(seen.ContainsKey)), TimeSpan.FromSeconds(20), "reconciled again");
        }
        finally
        {
            Runtime.Reconciled -= Count;
        }

        return writesBefore == Requests.Writes && dbBefore == Runtime.Database.Writes;
    }, TimeSpan.FromSeconds(30), "a resync with zero writes");

    public async Task StopAsync()
    {
        if (run is null) return;
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        run = null;
    }

    /// <summary>Error-level lines logged so far that the test did not say it expects.</summary>
    public IReadOnlyList<string> UnexpectedErrors => errorSink.Where(line => !expectedErrors.Any(x => line.Contains(x, StringComparison.Ordinal))).ToList();

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await Runtime.DisposeAsync();
        loggers.Dispose();
        stop.Dispose();
        // The next NullReferenceException in a handler must not pass silently again.
        if (UnexpectedErrors is { Count: > 0 } unexpected)
        {
            throw new Xunit.Sdk.XunitException($"the operator logged {unexpected.Count} unexpected error(s):\n{string.Join("\n", unexpected.Take(5))}");
        }
    }
}

sealed class TestOutputLoggerProvider(ITestOutputHelper output, ConcurrentQueue<string>? errors = null) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new TestOutputLogger(output, categoryName, errors);

    public void Dispose()
    {
    }

    sealed class TestOutputLogger(ITestOutputHelper output, string category, ConcurrentQueue<string>? errors) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category.Split('.').Last()}: {formatter(state, exception)}";
            if (logLevel >= LogLevel.Error) errors?.Enqueue(line);
            try
            {
                output.WriteLine(line);
            }
            catch (InvalidOperationException)
            {
                // the test has finished; its output is closed
            }
        }
    }
}
