using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Controllers;
using ControlPlane.Operator.Store;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Operator.Runtime;

/// <summary>
/// Composes the operator: API client, leader election, the system of record, informers and
/// controllers. Only the leader migrates and reconciles; followers wait on the lease.
/// </summary>
public sealed class OperatorRuntime : IAsyncDisposable
{
    readonly ControlPlaneOptions options;
    readonly ILoggerFactory loggers;
    readonly ILogger logger;
    readonly TimeProvider time;
    readonly NpgsqlDataSource dataSource;
    readonly List<IInformer> informers = [];
    readonly List<IController> controllers = [];
    volatile bool leading;

    public OperatorRuntime(ControlPlaneOptions options, KubernetesClientConfiguration kubeConfig, ILoggerFactory loggers, TimeProvider? time = null)
    {
        this.options = options;
        this.loggers = loggers;
        this.time = time ?? TimeProvider.System;
        logger = loggers.CreateLogger<OperatorRuntime>();
        Metrics = new OperatorMetrics();
        Requests = new RequestMetricsHandler(Metrics.RestRequests);
        Api = new KubeApi(kubeConfig, Requests);
        if (string.IsNullOrWhiteSpace(options.SystemDatabase))
        {
            throw new InvalidOperationException("ControlPlane:SystemDatabase is not set: the operator needs its system of record (a Postgres connection string).");
        }

        var builder = new NpgsqlDataSourceBuilder(options.SystemDatabase);
        builder.ConnectionStringBuilder.Timeout = Math.Min(builder.ConnectionStringBuilder.Timeout, 5);
        dataSource = builder.Build();
        Database = new SystemDatabase(dataSource, loggers.CreateLogger<SystemDatabase>());
        Identity = options.LeaderElection.Identity ?? $"{Environment.MachineName}_{Guid.NewGuid():N}";
    }

    public KubeApi Api { get; }
    public OperatorMetrics Metrics { get; }
    public RequestMetricsHandler Requests { get; }
    public SystemDatabase Database { get; }
    public string Identity { get; }
    public bool IsLeader => leading;

    /// <summary>Ready: a follower is always ready to stand by; a leader once its caches have synced.</summary>
    public bool IsReady => !leading || informers.All(i => i.HasSynced);

    public event Action<bool>? LeadershipChanged;

    /// <summary>The informers of the current term (empty while following).</summary>
    public IReadOnlyList<IInformer> Informers => informers;

    public IReadOnlyList<IController> Controllers => controllers;

    public Informer<T>? InformerOf<T>() where T : class, IKubernetesObject<V1ObjectMeta> => informers.OfType<Informer<T>>().FirstOrDefault();

    public void ResyncAll()
    {
        foreach (var c in controllers) c.ResyncNow();
    }

    public bool IsIdle => controllers.Count > 0 && controllers.All(c => c.IsIdle);

    public async Task RunAsync(CancellationToken ct)
    {
        var le = options.LeaderElection;
        if (!le.Enabled)
        {
            await LeadAsync(ct).ConfigureAwait(false);
            return;
        }

        var elector = new LeaderElector(Api, new LeaderElectionOptions
        {
            Namespace = le.Namespace,
            LeaseName = le.LeaseName,
            Identity = Identity,
            LeaseDuration = le.LeaseDuration,
            RenewDeadline = le.RenewDeadline,
            RetryPeriod = le.RetryPeriod,
        }, Metrics, loggers.CreateLogger<LeaderElector>(), time);
        await elector.RunAsync(LeadAsync, ct).ConfigureAwait(false);
    }

    async Task LeadAsync(CancellationToken ct)
    {
        leading = true;
        LeadershipChanged?.Invoke(true);
        informers.Clear();
        controllers.Clear();
        try
        {
            var tasks = new List<Task> { MigrateUntilDoneAsync(ct) };
            var informerOptions = new InformerOptions();
            var tenants = new Informer<Tenant>(Api, TenantReconciler.Type, Metrics, loggers.CreateLogger("informer.tenants"), informerOptions);
            var workspaces = new Informer<Workspace>(Api, ResourceType.For<Workspace>(false), Metrics, loggers.CreateLogger("informer.workspaces"), informerOptions);
            informers.AddRange([tenants, workspaces]);

            var writer = new ObjectWriter(Api);
            var events = new EventRecorder(Api, "controlplane-operator", Identity, time, loggers.CreateLogger<EventRecorder>());
            var controllerOptions = new ControllerOptions
            {
                Workers = options.Workers,
                ResyncPeriod = options.ResyncPeriod,
                MaxTransientRetryDelay = options.MaxTransientRetryDelay,
            };
            var tenantController = new Controller<Tenant>("tenant", tenants,
                    new TenantReconciler(workspaces, Database, writer, events, options, time, loggers.CreateLogger<TenantReconciler>()),
                    Metrics, loggers.CreateLogger("controller.tenant"), controllerOptions, time)
                .Watches(workspaces, TenantReconciler.TenantOfWorkspace);

            controllers.Add(tenantController);
            tasks.AddRange(informers.Select(i => i.RunAsync(ct)));
            tasks.AddRange(controllers.Select(c => c.RunAsync(ct)));
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            leading = false;
            LeadershipChanged?.Invoke(false);
        }
    }

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
