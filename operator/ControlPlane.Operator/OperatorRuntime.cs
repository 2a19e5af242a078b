using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator;

/// <summary>
/// The operator's composition root: the API client, the system of record and the region servers,
/// and the kinds of <see cref="KindRegistry"/> registered with the generic <see cref="Manager"/> (each kind's Setup says what it
/// caches, indexes and watches). Only the leader migrates and reconciles; followers wait on the lease.
/// </summary>
public sealed class OperatorRuntime : IAsyncDisposable
{
    readonly ControlPlaneOptions options;
    readonly ILogger logger;
    readonly TimeProvider time;
    readonly NpgsqlDataSource dataSource;
    readonly Manager manager;
    readonly IntentMetrics intentMetrics;
    readonly KubeApi watchApi;

    // One connection pool for the http execution planes, for the life of the process.
    readonly SocketsHttpHandler planeHandler = ExecutionPlaneFactory.NewHandler();

    public OperatorRuntime(ControlPlaneOptions options, KubernetesClientConfiguration kubeConfig, ILoggerFactory loggers, TimeProvider? time = null)
    {
        this.options = options;
        this.time = time ?? TimeProvider.System;
        logger = loggers.CreateLogger<OperatorRuntime>();
        Metrics = new OperatorMetrics();
        Requests = new RequestMetricsHandler(Metrics.RestRequests);
        KubeConfig = kubeConfig;
        Api = new KubeApi(kubeConfig, Requests) { RequestTimeout = options.RequestTimeout };
        // The per-namespace watches of Pods, Deployments and Services (one per namespace a Rollout or
        // Exposure reads): multiplexed on their own connections, counted with the rest.
        watchApi = new KubeApi(kubeConfig, new RequestMetricsHandler(Metrics.RestRequests), multiplexed: true) { RequestTimeout = options.RequestTimeout };
        if (string.IsNullOrWhiteSpace(options.SystemDatabase))
        {
            throw new MissingConfigurationException("ControlPlane:SystemDatabase is not set: the operator needs its system of record (a Postgres connection string).");
        }

        var builder = new NpgsqlDataSourceBuilder(options.SystemDatabase);
        builder.ConnectionStringBuilder.Timeout = Math.Min(builder.ConnectionStringBuilder.Timeout, 5);
        // The operator sets no session state (its advisory locks are transaction-scoped), so the
        // DISCARD ALL Npgsql sends on every pooled open is pure cost: a statement per use.
        builder.ConnectionStringBuilder.NoResetOnClose = true;
        RegionDatabases.Pin(builder.ConnectionStringBuilder); // search_path = pg_catalog: every name the operator uses is qualified
        dataSource = builder.Build();
        Database = new SystemDatabase(dataSource, loggers.CreateLogger<SystemDatabase>());
        RegionDatabases = new RegionDatabases(options);
        Vault = string.IsNullOrWhiteSpace(options.KeyEncryptionKey) ? null : new KeyVault(options.KeyEncryptionKey);
        Identity = options.LeaderElection.Identity ?? $"{Environment.MachineName}_{Guid.NewGuid():N}";

        var le = options.LeaderElection;
        manager = new Manager(Api, Metrics, new ManagerOptions
        {
            InternOwnStrings = IInternStrings.Of,
            NamespacedWatchApi = watchApi,
            LeaderElection = new LeaderElectionOptions
            {
                Enabled = le.Enabled,
                Namespace = le.Namespace,
                LeaseName = le.LeaseName,
                Identity = Identity,
                LeaseDuration = le.LeaseDuration,
                RenewDeadline = le.RenewDeadline,
                RetryPeriod = le.RetryPeriod,
            },
            Controllers = new ControllerOptions
            {
                Workers = options.Workers,
                ResyncPeriod = options.ResyncPeriod,
                MaxTransientRetryDelay = options.MaxTransientRetryDelay,
                ReconcileTimeout = options.ReconcileTimeout,
            },
        }, loggers, this.time);
        intentMetrics = new IntentMetrics(Metrics);
        BackupMetrics = new BackupMetrics(Metrics.Registry);
        _ = new ObjectReadyMetrics(Metrics.Registry, () => manager.Informers); // lives as long as the registry's callback
        _ = new ExceptionMetrics(Metrics.Registry, () => manager.Informers, this.time); // likewise
        _ = new AccessRequestMetrics(Metrics.Registry, () => manager.Informers, this.time); // likewise
        _ = new BreakGlassMetrics(Metrics.Registry, () => manager.Informers, this.time); // likewise
        var backupJobs = new BackgroundJobs(options.Backup.MaxConcurrent, loggers.CreateLogger<BackgroundJobs>());
        var pgTools = new PgTools(options.Backup);
        BackupTargets BackupTargetsOf(TermBuilder b) => new(b.Api, WorkspaceReconciler.WorkspacesOf(b), b.Informer<Api.V1Alpha1.Tenant>(TenantReconciler.Type), options, Database, RegionDatabases);
        var dependencies = new ControllerDependencies(options, Database, RegionDatabases, Vault, planeHandler, intentMetrics, BackupMetrics, backupJobs, pgTools, BackupTargetsOf,
            new NotificationMetrics(Metrics.Registry));
        manager.AddStartup(MigrateUntilDoneAsync);
        // The kinds, each registered in one place (KindRegistry, its Setup), as controller-runtime's SetupWithManager.
        foreach (var kind in KindRegistry.Kinds)
        {
            if (kind.Controller is { } setup) manager.Add(b => setup(b, dependencies));
        }

        // Values kept as plain counters, read at scrape time.
        Metrics.Registry.AddBeforeCollectCallback(() =>
        {
            Metrics.PostgresWrites.WithLabels("system").IncTo(Database.Writes);
            Metrics.PostgresWrites.WithLabels("region").IncTo(RegionDatabases.Writes);
            Metrics.ControllersIdle.Set(IsIdle ? 1 : 0);
            foreach (var resource in Informers.GroupBy(i => i.Type.Plural)) Metrics.CachedObjects.WithLabels(resource.Key).Set(resource.Sum(i => i.Count));
        });
    }

    public KubeApi Api { get; }

    /// <summary>The credentials the operator talks to the API server with (its identity).</summary>
    public KubernetesClientConfiguration KubeConfig { get; }
    public OperatorMetrics Metrics { get; }
    public BackupMetrics BackupMetrics { get; }
    public RequestMetricsHandler Requests { get; }
    public SystemDatabase Database { get; }
    public RegionDatabases RegionDatabases { get; }
    public KeyVault? Vault { get; }
    public string Identity { get; }
    public bool IsLeader => manager.IsLeader;

    /// <summary>Ready: a follower is always ready to stand by; a leader once its caches have synced.</summary>
    public bool IsReady => manager.IsReady;

    public event Action<bool>? LeadershipChanged
    {
        add => manager.LeadershipChanged += value;
        remove => manager.LeadershipChanged -= value;
    }

    /// <summary>
    /// Why the runtime cannot go on (a loop died, or leadership could not be given up in time), or null.
    /// Once set, /healthz and /readyz fail and the process exits non-zero (see Program).
    /// </summary>
    public string? FatalError => manager.FatalError;

    /// <summary>Raised once with <see cref="FatalError"/>.</summary>
    public event Action<string>? Fatal
    {
        add => manager.Fatal += value;
        remove => manager.Fatal -= value;
    }

    /// <summary>Every reconcile of every controller: controller, key, result (diagnostics and benchmarks).</summary>
    public event Action<string, string, string>? Reconciled
    {
        add => manager.Reconciled += value;
        remove => manager.Reconciled -= value;
    }

    /// <summary>The informers of the current term (empty while following).</summary>
    public IReadOnlyList<IInformer> Informers => manager.Informers;

    public IReadOnlyList<IController> Controllers => manager.Controllers;

    public Informer<T>? InformerOf<T>() where T : class, IKubernetesObject<V1ObjectMeta> => manager.InformerOf<T>();

    public NamespacedInformer<T>? NamespacedInformerOf<T>() where T : class, IKubernetesObject<V1ObjectMeta> => manager.NamespacedInformerOf<T>();

    public void ResyncAll() => manager.ResyncAll();

    public bool IsIdle => manager.IsIdle;

    public Task RunAsync(CancellationToken ct) => manager.RunAsync(ct);

    /// <summary>Postgres may be down at start: keep trying, the reconcilers report it meanwhile.</summary>
    async Task MigrateUntilDoneAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var applied = await Database.MigrateAsync(ct).ConfigureAwait(false);
                logger.LogInformation("system of record migrated ({Applied} new migrations)", applied);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                Metrics.PostgresErrors.WithLabels("migrate").Inc();
                logger.LogWarning("system of record not reachable for migrations ({Error}); retrying in {Delay} ms", e.Message, (int)delay.TotalMilliseconds);
                try
                {
                    await Task.Delay(delay, time, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        watchApi.Dispose();
        planeHandler.Dispose();
        await RegionDatabases.DisposeAsync().ConfigureAwait(false);
        await dataSource.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Kubeconfig from the option, KUBECONFIG or ~/.kube/config, else the in-cluster service account.</summary>
    public static KubernetesClientConfiguration LoadKubeConfig(string? path)
    {
        if (!string.IsNullOrEmpty(path)) return KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
        if (KubernetesClientConfiguration.IsInCluster() && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBECONFIG")))
        {
            return KubernetesClientConfiguration.InClusterConfig();
        }

        return KubernetesClientConfiguration.BuildDefaultConfig();
    }
}
