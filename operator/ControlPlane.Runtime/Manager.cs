using Microsoft.Extensions.Logging;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

public sealed record ManagerOptions
{
    public LeaderElectionOptions? LeaderElection { get; init; }
    public ControllerOptions Controllers { get; init; } = new();
    public string EventSource { get; init; } = "controlplane-operator";

    /// <summary>
    /// The client of the namespaced informer sets' members (a watch per held namespace): its own
    /// connections, multiplexed, so many watches never take the connections other requests need.
    /// Null: the manager's client.
    /// </summary>
    public KubeApi? NamespacedWatchApi { get; init; }

    /// <summary>How the kinds share their own strings in the term's caches (see <see cref="StringPool.InternOwn"/>).</summary>
    public Action<object, Func<string?, string?>>? InternOwnStrings { get; init; }
}

/// <summary>
/// What a kind registers for each leadership term, as controller-runtime's SetupWithManager does: its
/// informers (shared with other kinds by resource and options), indexes, controllers and watches.
/// Nothing in the runtime names a kind; each kind's setup calls these.
/// </summary>
public sealed class TermBuilder
{
    readonly Manager manager;
    readonly Dictionary<(ResourceType, InformerOptions), IInformer> informers = [];
    readonly Dictionary<IInformer, NamespaceScope> scopes = [];
    readonly Dictionary<(ResourceType, InformerOptions), IInformer> namespaced = [];

    internal TermBuilder(Manager manager, EventRecorder events)
    {
        this.manager = manager;
        Events = events;
        // Strings shared by every cache of the term (labels, namespaces, owner references, conditions).
        DefaultInformerOptions = new InformerOptions { Strings = new StringPool(internOwn: manager.Options.InternOwnStrings) };
    }

    public KubeApi Api => manager.Api;
    public OperatorMetrics Metrics => manager.Metrics;
    public ILoggerFactory Loggers => manager.Loggers;
    public TimeProvider Time => manager.Time;
    public EventRecorder Events { get; }
    public ControllerOptions ControllerOptions => manager.Options.Controllers;
    public InformerOptions DefaultInformerOptions { get; }

    internal List<IController> Controllers { get; } = [];
    internal List<(string Name, Func<CancellationToken, Task> Run)> Loops { get; } = [];
    internal IReadOnlyCollection<IInformer> Informers => [.. informers.Values, .. namespaced.Values];

    /// <summary>The term's informer for a resource with these options: made once, shared by every kind that asks.</summary>
    public Informer<T> Informer<T>(ResourceType type, InformerOptions? options = null) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        options ??= DefaultInformerOptions;
        if (informers.TryGetValue((type, options), out var existing)) return (Informer<T>)existing;
        var informer = new Informer<T>(Api, type, Metrics, Loggers.CreateLogger("informer." + type.Plural), options);
        informers[(type, options)] = informer;
        return informer;
    }

    /// <summary>
    /// The term's cache of <paramref name="type"/> kept only in the namespaces its readers hold (see
    /// <see cref="NamespacedInformer{T}"/>): one informer per held namespace with these options. Made
    /// once per resource and options, shared by every kind that asks.
    /// </summary>
    public NamespacedInformer<T> NamespacedInformer<T>(ResourceType type, InformerOptions? options = null) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        options ??= DefaultInformerOptions;
        if (options.Scope is not null || options.Namespace is not null) throw new ArgumentException("a namespaced informer sets the namespace of each member itself", nameof(options));
        if (namespaced.TryGetValue((type, options), out var existing)) return (NamespacedInformer<T>)existing;
        // One namespace per member: an index by namespace would hold one bucket.
        var member = options with { IndexByNamespace = false };
        var logger = Loggers.CreateLogger("informer." + type.Plural);
        var api = manager.Options.NamespacedWatchApi ?? Api;
        var informer = new NamespacedInformer<T>(type, ns => new Informer<T>(api, type, Metrics, logger, member with { Namespace = ns }), logger);
        namespaced[(type, options)] = informer;
        return informer;
    }

    /// <summary>
    /// The term's namespace scope kept from <paramref name="source"/> (made once per source, so informers
    /// scoped by it share options and are shared between kinds).
    /// </summary>
    public NamespaceScope Scope<T>(Informer<T> source, Func<T, string?> namespaceOf) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (scopes.TryGetValue(source, out var existing)) return existing;
        var scope = NamespaceScope.Of(source, namespaceOf);
        scopes[source] = scope;
        return scope;
    }

    /// <summary>A controller for a kind; it runs for the term once the caches it watches have synced.</summary>
    public Controller<T> Controller<T>(string name, Informer<T> primary, IReconciler<T> reconciler) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var controller = new Controller<T>(name, primary, reconciler, Metrics, Loggers.CreateLogger("controller." + name), ControllerOptions, Time);
        Controllers.Add(controller);
        return controller;
    }

    /// <summary>A background loop that runs for the whole term (it must only end when the term does).</summary>
    public void Loop(string name, Func<CancellationToken, Task> run) => Loops.Add((name, run));
}

/// <summary>
/// Runs the registered kinds under leader election. For each term it builds every kind's informers and
/// controllers anew, runs them with the term's startup tasks, and fails the process (see
/// <see cref="Fatal"/>) when a loop dies or leadership cannot be given up in time.
/// </summary>
public sealed class Manager(KubeApi api, OperatorMetrics metrics, ManagerOptions options, ILoggerFactory loggers, TimeProvider time)
{
    readonly List<Action<TermBuilder>> setups = [];
    readonly List<Func<CancellationToken, Task>> startups = [];
    readonly ILogger logger = loggers.CreateLogger<Manager>();
    // Snapshots of the current term, replaced whole (read from other threads: readiness, tests).
    IReadOnlyList<IInformer> informers = [];
    IReadOnlyList<IController> controllers = [];
    EventRecorder? events;
    volatile bool leading;

    public KubeApi Api => api;
    public OperatorMetrics Metrics => metrics;
    public ILoggerFactory Loggers => loggers;
    public TimeProvider Time => time;
    public ManagerOptions Options => options;
    public string Identity => options.LeaderElection?.Identity ?? "";

    /// <summary>Registers a kind: called at the start of every term to make its informers and controllers.</summary>
    public Manager Add(Action<TermBuilder> setup)
    {
        setups.Add(setup);
        return this;
    }

    /// <summary>Work each term starts with and that ends when done (e.g. migrations, retried until they pass).</summary>
    public Manager AddStartup(Func<CancellationToken, Task> startup)
    {
        startups.Add(startup);
        return this;
    }

    public bool IsLeader => leading;

    /// <summary>
    /// Ready: a follower is always ready to stand by; a leader once its caches have synced. Without
    /// leader election there is no follower: not ready until the (only) term's caches have synced.
    /// </summary>
    public bool IsReady => leading ? informers.All(i => i.HasSynced) : options.LeaderElection is { Enabled: true };

    public bool IsIdle => controllers.Count > 0 && controllers.All(c => c.IsIdle) && events?.Pending is null or 0;

    public IReadOnlyList<IInformer> Informers => informers;

    public IReadOnlyList<IController> Controllers => controllers;

    public event Action<bool>? LeadershipChanged;

    /// <summary>Every reconcile of every controller: controller, key, result (diagnostics and benchmarks).</summary>
    public event Action<string, string, string>? Reconciled;

    /// <summary>Why the manager cannot go on (a loop died, or leadership could not be given up in time), or null.</summary>
    public string? FatalError { get; private set; }

    /// <summary>Raised once with <see cref="FatalError"/>: the process should exit non-zero.</summary>
    public event Action<string>? Fatal;

    void Fail(string reason)
    {
        if (FatalError is not null) return;
        FatalError = reason;
        logger.LogCritical("operator runtime failed: {Reason}", reason);
        Fatal?.Invoke(reason);
    }

    public Informer<T>? InformerOf<T>() where T : class, IKubernetesObject<V1ObjectMeta> => informers.OfType<Informer<T>>().FirstOrDefault();

    public NamespacedInformer<T>? NamespacedInformerOf<T>() where T : class, IKubernetesObject<V1ObjectMeta> => informers.OfType<NamespacedInformer<T>>().FirstOrDefault();

    public void ResyncAll()
    {
        foreach (var c in controllers) c.ResyncNow();
    }

    public async Task RunAsync(CancellationToken ct)
    {
        if (options.LeaderElection is not { Enabled: true } election)
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

        var elector = new LeaderElector(api, election, metrics, loggers.CreateLogger<LeaderElector>(), time, Fail);
        await elector.RunAsync(LeadAsync, ct).ConfigureAwait(false);
    }

    async Task LeadAsync(CancellationToken ct)
    {
        try
        {
            var term = new TermBuilder(this, new EventRecorder(api, options.EventSource, Identity, time, loggers.CreateLogger<EventRecorder>()));
            foreach (var setup in setups) setup(term);
            foreach (var c in term.Controllers)
            {
                var name = c.Name;
                c.Reconciled += (key, result) => Reconciled?.Invoke(name, key, result);
            }

            informers = [.. term.Informers];
            controllers = [.. term.Controllers];
            events = term.Events;
            // Leading only once the term's caches exist: readiness is judged by them (before, by the
            // previous term's, or by none at all, which /readyz took for synced).
            leading = true;
            LeadershipChanged?.Invoke(true);
            var startupTasks = startups.Select(s => s(ct)).ToList();
            // Every loop runs for the whole term: one that ends before the term does died, and the term ends with it.
            var loops = new List<Task>();
            loops.AddRange(term.Loops.Select(l => Loop(l.Name, l.Run(ct), ct)));
            // Events are written in the background: a reconcile does not wait for them.
            loops.Add(Loop("event sender", term.Events.RunAsync(ct), ct));
            loops.AddRange(informers.Select(i => Loop("informer " + i.Type.Plural, i.RunAsync(ct), ct)));
            loops.AddRange(controllers.Select(c => Loop("controller " + c.Name, c.RunAsync(ct), ct)));
            var first = await Task.WhenAny(loops).ConfigureAwait(false);
            if (!ct.IsCancellationRequested) await first.ConfigureAwait(false); // throws why it ended
            await Task.WhenAll([.. startupTasks, .. loops]).ConfigureAwait(false);
        }
        finally
        {
            if (leading)
            {
                leading = false;
                LeadershipChanged?.Invoke(false);
            }
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
}
