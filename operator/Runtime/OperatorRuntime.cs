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
    // Snapshots of the current term, replaced whole (read from other threads: readiness, tests).
    IReadOnlyList<IInformer> informers = [];
    IReadOnlyList<IController> controllers = [];
    volatile bool leading;

    public OperatorRuntime(ControlPlaneOptions options, KubernetesClientConfiguration kubeConfig, ILoggerFactory loggers, TimeProvider? time = null)
    {
        this.options = options;
        this.loggers = loggers;
        this.time = time ?? TimeProvider.System;
        logger = loggers.CreateLogger<OperatorRuntime>();
        Metrics = new OperatorMetrics();
        Requests = new RequestMetricsHandler(Metrics.RestRequests);
        KubeConfig = kubeConfig;
        Api = new KubeApi(kubeConfig, Requests) { RequestTimeout = options.RequestTimeout };
        if (string.IsNullOrWhiteSpace(options.SystemDatabase))
        {
            throw new InvalidOperationException("ControlPlane:SystemDatabase is not set: the operator needs its system of record (a Postgres connection string).");
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
        // Values the runtime keeps as plain counters, read at scrape time.
        Metrics.Registry.AddBeforeCollectCallback(() =>
        {
            Metrics.PostgresWrites.WithLabels("system").IncTo(Database.Writes);
            Metrics.PostgresWrites.WithLabels("region").IncTo(RegionDatabases.Writes);
            Metrics.ControllersIdle.Set(IsIdle ? 1 : 0);
            foreach (var resource in informers.GroupBy(i => i.Type.Plural)) Metrics.CachedObjects.WithLabels(resource.Key).Set(resource.Sum(i => i.Count));
        });
    }

    public KubeApi Api { get; }

    /// <summary>The credentials the operator talks to the API server with (its identity).</summary>
    public KubernetesClientConfiguration KubeConfig { get; }
    public OperatorMetrics Metrics { get; }
    public RequestMetricsHandler Requests { get; }
    public SystemDatabase Database { get; }
    public RegionDatabases RegionDatabases { get; }
    public KeyVault? Vault { get; }
    public string Identity { get; }
    public bool IsLeader => leading;

    /// <summary>Ready: a follower is always ready to stand by; a leader once its caches have synced.</summary>
    public bool IsReady => !leading || informers.All(i => i.HasSynced);

    public event Action<bool>? LeadershipChanged;

    /// <summary>
    /// Why the runtime cannot go on (a loop died, or leadership could not be given up in time), or null.
    /// Once set, /healthz and /readyz fail and the process exits non-zero (see Program).
    /// </summary>
    public string? FatalError { get; private set; }

    /// <summary>Raised once with <see cref="FatalError"/>.</summary>
    public event Action<string>? Fatal;

    void Fail(string reason)
    {
        if (FatalError is not null) return;
        FatalError = reason;
        logger.LogCritical("operator runtime failed: {Reason}", reason);
        Fatal?.Invoke(reason);
    }

    /// <summary>Every reconcile of every controller: controller, key, result (diagnostics and benchmarks).</summary>
    public event Action<string, string, string>? Reconciled;

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
            try
            {
                await LeadAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                Fail($"the operator's work stopped: {e.GetType().Name}: {e.Message}");
            }

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
        }, Metrics, loggers.CreateLogger<LeaderElector>(), time, Fail);
        await elector.RunAsync(LeadAsync, ct).ConfigureAwait(false);
    }

    async Task LeadAsync(CancellationToken ct)
    {
        leading = true;
        LeadershipChanged?.Invoke(true);
        var termInformers = new List<IInformer>();
        var termControllers = new List<IController>();
        try
        {
            var tasks = new List<Task> { MigrateUntilDoneAsync(ct) };
            var informerOptions = new InformerOptions { Strings = new StringPool() };
            Informer<T> Inform<T>(ResourceType type, InformerOptions? o = null) where T : class, IKubernetesObject<V1ObjectMeta>
            {
                var informer = new Informer<T>(Api, type, Metrics, loggers.CreateLogger("informer." + type.Plural), o ?? informerOptions);
                termInformers.Add(informer);
                return informer;
            }

            // Owned children are cached only when they carry our label; Secrets' bodies only when ours.
            var owned = informerOptions with { LabelSelector = WorkspaceResources.ManagedSelector };
            // Children read by key only need no per-namespace index.
            var byKey = owned with { IndexByNamespace = false };
            var tenants = Inform<Tenant>(TenantReconciler.Type);
            var workspaces = Inform<Workspace>(WorkspaceReconciler.Type).AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true);
            var caches = new WorkspaceCaches(workspaces, tenants,
                Inform<V1Namespace>(ResourceType.Namespaces, owned),
                Inform<V1RoleBinding>(WorkspaceReconciler.RoleBindings, owned),
                Inform<V1ResourceQuota>(WorkspaceReconciler.Quotas, byKey),
                Inform<V1LimitRange>(WorkspaceReconciler.LimitRanges, byKey),
                Inform<V1NetworkPolicy>(WorkspaceReconciler.NetworkPolicies, byKey),
                Inform<V1ConfigMap>(WorkspaceReconciler.ConfigMaps, byKey),
                Inform<V1Secret>(WorkspaceReconciler.Secrets, byKey),
                // Provider keys are the user's own Secrets: service-account tokens (one per namespace) are never one.
                Inform<PartialObjectMetadata>(WorkspaceReconciler.Secrets, informerOptions with { MetadataOnly = true, IndexByNamespace = false, FieldSelector = "type!=kubernetes.io/service-account-token" }));

            // Each controller keeps the versions its own writes produced, to skip their watch echoes.
            var tenantWrites = new OwnWrites();
            var workspaceWrites = new OwnWrites();
            var approvalWrites = new OwnWrites();
            var events = new EventRecorder(Api, "controlplane-operator", Identity, time, loggers.CreateLogger<EventRecorder>());
            var controllerOptions = new ControllerOptions
            {
                Workers = options.Workers,
                ResyncPeriod = options.ResyncPeriod,
                MaxTransientRetryDelay = options.MaxTransientRetryDelay,
                ReconcileTimeout = options.ReconcileTimeout,
            };
            var tenantController = new Controller<Tenant>("tenant", tenants,
                    new TenantReconciler(workspaces, Database, new ObjectWriter(Api, tenantWrites), events, options, time, loggers.CreateLogger<TenantReconciler>()),
                    Metrics, loggers.CreateLogger("controller.tenant"), controllerOptions, time)
                .SkipsEchoesOf(tenantWrites)
                // A tenant only counts and sums its workspaces: a burst of workspace events is one reconcile.
                .Watches(workspaces, TenantReconciler.TenantOfWorkspace, coalesce: TimeSpan.FromMilliseconds(500));

            var workspaceReconciler = new WorkspaceReconciler(caches, Api, Database, RegionDatabases, Vault, new ObjectWriter(Api, workspaceWrites), new ChildApplier(Api, workspaceWrites), events,
                options, time, loggers.CreateLogger<WorkspaceReconciler>());
            var workspaceController = new Controller<Workspace>("workspace", workspaces, workspaceReconciler, Metrics,
                    loggers.CreateLogger("controller.workspace"), controllerOptions, time)
                .SkipsEchoesOf(workspaceWrites)
                // Workspaces read their tenant's spec only: its status updates (counts, usage) re-reconcile nothing.
                .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                    ? []
                    : workspaceReconciler.WorkspacesOfTenant(e.Object))
                .WatchesEvents(workspaces, workspaceReconciler.SiblingsAffectedBy)
                .Watches(caches.Namespaces, WorkspaceReconciler.OwnerOf)
                .Watches(caches.RoleBindings, WorkspaceReconciler.OwnerOf)
                .Watches(caches.Quotas, WorkspaceReconciler.OwnerOf)
                .Watches(caches.LimitRanges, WorkspaceReconciler.OwnerOf)
                .Watches(caches.NetworkPolicies, WorkspaceReconciler.OwnerOf)
                .Watches(caches.ConfigMaps, WorkspaceReconciler.OwnerOf)
                .Watches(caches.Secrets, WorkspaceReconciler.OwnerOf)
                // The typed Secret watch takes the echoes of our writes; this one maps users' provider-key Secrets.
                .Watches(caches.AllSecretsMetadata, workspaceReconciler.WorkspaceReferencingSecret, skipOwnEchoes: false);
            termControllers.Add(workspaceController);

            var approvals = Inform<Approval>(ApprovalReconciler.Type);
            var exposures = Inform<Exposure>(ResourceType.For<Exposure>(true));
            var intents = Inform<DeploymentIntent>(ResourceType.For<DeploymentIntent>(true));
            var restores = Inform<Restore>(ResourceType.For<Restore>(true));
            var approvalReconciler = new ApprovalReconciler(exposures, intents, restores, workspaces, caches.RoleBindings, approvals, new ObjectWriter(Api, approvalWrites), time);
            var approvalController = new Controller<Approval>("approval", approvals, approvalReconciler, Metrics,
                    loggers.CreateLogger("controller.approval"), controllerOptions, time)
                .SkipsEchoesOf(approvalWrites)
                .Watches(exposures, t => approvalReconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
                .Watches(intents, t => approvalReconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
                .Watches(restores, t => approvalReconciler.ApprovalsOf(t, approvals.InNamespace(t.Metadata.NamespaceProperty)))
                .Watches(caches.RoleBindings, b => approvals.InNamespace(b.Metadata.NamespaceProperty).Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}"))
                // Another approval of the same target arriving or leaving changes TargetApproved (status writes change nothing).
                .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                    ? []
                    : ApprovalReconciler.SiblingsOf(e.Object, approvals.InNamespace(e.Object.Metadata.NamespaceProperty)));
            termControllers.Add(approvalController);
            tasks.Add(PurgeProviderKeysAsync(ct));
            termControllers.Add(tenantController);
            foreach (var c in termControllers)
            {
                var name = c.Name;
                c.Reconciled += (key, result) => Reconciled?.Invoke(name, key, result);
            }

            informers = termInformers;
            controllers = termControllers;
            // Every loop runs for the whole term: one that ends before the term does died, and the term ends with it.
            var loops = new List<Task> { Loop("provider-key purge", tasks[1], ct) }; // the migration (tasks[0]) ends when done
            loops.AddRange(termInformers.Select(i => Loop("informer " + i.Type.Plural, i.RunAsync(ct), ct)));
            loops.AddRange(termControllers.Select(c => Loop("controller " + c.Name, c.RunAsync(ct), ct)));
            var first = await Task.WhenAny(loops).ConfigureAwait(false);
            if (!ct.IsCancellationRequested) await first.ConfigureAwait(false); // throws why it ended
            await Task.WhenAll([tasks[0], .. loops]).ConfigureAwait(false);
        }
        finally
        {
            leading = false;
            LeadershipChanged?.Invoke(false);
        }
    }

    /// <summary>A loop of the term; one that returns or throws before shutdown is reported as dead.</summary>
    static async Task Loop(string name, Task run, CancellationToken ct)
    {
        Exception? died = null;
        try
        {
            await run.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            died = e;
        }

        if (died is null && ct.IsCancellationRequested) return;
        throw new InvalidOperationException(died is null ? $"{name} ended before the term did" : $"{name} died: {died.GetType().Name}: {died.Message}", died);
    }

    /// <summary>The background pass that removes provider keys whose rotation grace period ended.</summary>
    async Task PurgeProviderKeysAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(options.KeyPurgeInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    var purged = await Database.PurgeExpiredProviderKeysAsync(ct).ConfigureAwait(false);
                    if (purged > 0) logger.LogInformation("purged {Count} provider key(s) past their rotation grace period", purged);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    Metrics.PostgresErrors.WithLabels("purge-provider-keys").Inc();
                }
            }
        }
        catch (OperationCanceledException)
        {
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
