using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The leader's delivery loop (a term loop: it runs only while leading and stops with the term). Each look:
/// one query for every channel's state; when a table's head is past a channel's cursor, the new committed rows
/// are read once, mapped (<see cref="NotificationEvents"/>) and routed (<see cref="NotificationRouting"/>), and
/// every channel's deliveries are recorded with its advanced cursors in one transaction; then every channel with a
/// due undelivered event delivers, oldest first, one at a time (ordering per channel), at most
/// MaxConcurrentChannels channels at once. A look comes at each poll, or sooner when this process commits a
/// chained row or a channel's run ends. State lives only in Postgres, so a killed leader's successor resumes
/// where it stopped: an attempt in flight, or accepted but not yet recorded (a run records its deliveries in
/// batches), is made again (at least once; receivers de-duplicate by the event id). An idle look only reads.
/// </summary>
public sealed partial class NotificationDispatcher(
    Informer<NotificationChannel> channels,
    Informer<Workspace> workspaces,
    KubeApi api,
    SystemDatabase database,
    ControlPlaneOptions options,
    NotificationEgress egress,
    EventRecorder events,
    TimeProvider time,
    NotificationMetrics metrics,
    Action<string> statusChanged,
    ILogger<NotificationDispatcher> logger)
{
    readonly NotificationOptions o = options.NotificationDelivery;
    readonly ConcurrentDictionary<string, Task> running = new();

    /// <summary>Deliveries one channel makes per run before giving its slot back (read in one query).</summary>
    const int MaxPerRun = 100;

    /// <summary>At most this many accepted deliveries wait for their record (one transaction, written while the next ones are sent).</summary>
    const int RecordBatch = 25;

    /// <summary>How often delivered history rows past NotificationDelivery:HistoryRetention are pruned, and how many per transaction.</summary>
    static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(10);
    const int PruneBatch = 5_000;

    /// <summary>Looks that a burst of commits or ended runs causes are at least this far apart.</summary>
    static readonly TimeSpan LookSpacing = TimeSpan.FromMilliseconds(40);

    readonly HashSet<string> exported = [];
    readonly CommitSignal runEnded = new();
    readonly ConcurrentDictionary<string, (Credentials? Value, DateTime ReadAt, long Generation)> credentialCache = new();
    readonly ConcurrentDictionary<string, string> authorities = new();
    readonly HostWaits hostWaits = new();
    bool warned;

    public async Task RunAsync(CancellationToken ct)
    {
        using var slots = new SemaphoreSlim(Math.Max(1, o.MaxConcurrentChannels));
        using var platform = egress.Client(ChannelReach.Platform);
        using var tenant = egress.Client(ChannelReach.Workspace);
        try
        {
            await channels.WaitForSyncAsync(ct).ConfigureAwait(false);
            await workspaces.WaitForSyncAsync(ct).ConfigureAwait(false);
            await database.Migrated.WaitAsync(ct).ConfigureAwait(false);
            long? prunedAt = null;
            while (!ct.IsCancellationRequested)
            {
                var (committed, ended) = (database.Appended.Version, runEnded.Version);
                var lookedAt = time.GetTimestamp();
                try
                {
                    await LookAsync(slots, platform, tenant, ct).ConfigureAwait(false);
                    if (prunedAt is not { } p || time.GetElapsedTime(p) >= PruneInterval)
                    {
                        await PruneAsync(ct).ConfigureAwait(false);
                        prunedAt = time.GetTimestamp();
                    }

                    warned = false;
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
                {
                    // Postgres down: nothing is lost (the rows and cursors are there when it is back); the channels' status says so.
                    if (!warned) logger.LogWarning("notification delivery paused: the system of record is unreachable ({Error})", e.Message);
                    warned = true;
                }

                await NextLookAsync(lookedAt, warned ? null : [database.Appended.WaitAsync(committed), runEnded.WaitAsync(ended)], ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        // The term is over: let the deliveries in flight see the cancellation.
        try
        {
            await Task.WhenAll(running.Values.ToArray()).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Delivered history past the retention window goes, in bounded transactions (a backlog, undelivered, never does).</summary>
    async Task PruneAsync(CancellationToken ct)
    {
        var before = time.GetUtcNow().UtcDateTime - o.HistoryRetention;
        for (var round = 0; round < 20; round++)
        {
            if (await database.PruneHistoryAsync(before, PruneBatch, ct).ConfigureAwait(false) < PruneBatch) return;
        }
    }

    /// <summary>Waits for the poll interval, or for one of <paramref name="wakes"/> but never less than <see cref="LookSpacing"/> after the last look.</summary>
    async Task NextLookAsync(long lookedAt, Task[]? wakes, CancellationToken ct)
    {
        using var poll = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var delay = Task.Delay(o.PollInterval, time, poll.Token);
        var woken = wakes is null ? delay : await Task.WhenAny([delay, .. wakes]).ConfigureAwait(false);
        if (woken != delay)
        {
            poll.Cancel();
            var wait = LookSpacing - time.GetElapsedTime(lookedAt);
            if (wait > TimeSpan.Zero) await Task.Delay(wait, time, ct).ConfigureAwait(false);
        }
        else
        {
            await delay.ConfigureAwait(false);
        }
    }

    sealed record Live(NotificationChannel Channel, ChannelScope Scope, ChannelState State, string Key);

    async Task LookAsync(SemaphoreSlim slots, HttpClient platform, HttpClient tenant, CancellationToken ct)
    {
        var states = await database.GetChannelStatesAsync(ct).ConfigureAwait(false);
        var byUid = channels.List().Where(c => c.Metadata.Uid is not null).ToDictionary(c => c.Metadata.Uid!);
        // Channels deleted: their cursors and history go (a channel made again under the name is another UID).
        await database.ForgetChannelsAsync(states.Where(s => !byUid.ContainsKey(s.Uid)).Select(s => s.Uid).ToList(), ct).ConfigureAwait(false);
        foreach (var gone in credentialCache.Keys.Concat(authorities.Keys).Concat(hostWaits.Channels).Where(uid => !byUid.ContainsKey(uid)).Distinct().ToList())
        {
            credentialCache.TryRemove(gone, out _);
            authorities.TryRemove(gone, out _);
            hostWaits.Forget(gone);
        }

        var live = new List<Live>();
        foreach (var s in states)
        {
            if (!byUid.TryGetValue(s.Uid, out var c)) continue;
            var scope = ScopeOf(c);
            if (scope is null) continue;
            live.Add(new Live(c, scope, s, $"{c.Metadata.NamespaceProperty}/{c.Metadata.Name}"));
        }

        ExportBacklog(live);
        var queued = await EnqueueAsync(live, ct).ConfigureAwait(false);
        var now = time.GetUtcNow().UtcDateTime;
        // Fairness: the channel whose oldest undelivered event has waited longest gets a free slot first (a fixed order
        // starved the same channels while busy ones kept refilling).
        foreach (var l in live.OrderBy(l => queued.Contains(l.State.Uid) && l.State.NextDue is null ? now : l.State.NextDue ?? DateTime.MaxValue))
        {
            var disabled = l.State.DisabledGeneration is { } at && at >= (l.Channel.Metadata.Generation ?? 0);
            if (disabled || l.Channel.Status?.Phase is not NotificationChannelPhase.Active) continue;
            // A channel whose oldest undelivered event waits out a backoff is not due, also when new events were queued behind it.
            var due = l.State.NextDue is not { } next ? queued.Contains(l.State.Uid) : next <= now && (l.State.Pending > 0 || queued.Contains(l.State.Uid));
            if (!due || running.ContainsKey(l.State.Uid)) continue;
            if (!slots.Wait(0)) break;
            var client = l.Scope.Reach == ChannelReach.Platform ? platform : tenant;
            running[l.State.Uid] = RunChannelAsync(l, client, slots, ct);
        }
    }

    /// <summary>Reach, tenant and workspace from the operator's records; null while the channel is not usable (its reconciler says why).</summary>
    ChannelScope? ScopeOf(NotificationChannel c)
    {
        var reach = NotificationRouting.ReachOf(c, options.OperatorNamespace);
        if (reach == ChannelReach.Platform) return new ChannelScope(reach, null, null, c.Spec.Type, c.Spec.Events ?? [], c.Spec.WorkspaceSelector);
        var ws = workspaces.Get(c.Metadata.NamespaceProperty);
        if (ws is null) return null;
        // Re-checked on every look: a spec the rules refuse, whatever admission let through, is never routed to.
        if (NotificationChannelRules.Problems(c.Spec, reach, url => egress.UrlProblem("spec.url", url, reach)).Count > 0) return null;
        return new ChannelScope(reach, ws.Spec.Tenant, ws.Metadata.Name, c.Spec.Type, c.Spec.Events ?? [], c.Spec.WorkspaceSelector);
    }

    void ExportBacklog(List<Live> live)
    {
        var keys = live.Select(l => l.Key).ToHashSet();
        foreach (var gone in exported.Where(k => !keys.Contains(k)).ToList())
        {
            metrics.Backlog.RemoveLabelled(gone);
            exported.Remove(gone);
        }

        foreach (var l in live)
        {
            metrics.Backlog.WithLabels(l.Key).Set(l.State.Pending);
            exported.Add(l.Key);
        }
    }

    /// <summary>Reads the rows committed past the slowest cursor once, and records each channel's share with its new cursors.</summary>
    async Task<HashSet<string>> EnqueueAsync(List<Live> live, CancellationToken ct)
    {
        var queued = new HashSet<string>();
        if (live.Count == 0) return queued;
        var heads = await database.HeadsAsync(ct).ConfigureAwait(false);
        var behind = live.Where(l => l.State.AuditCursor < heads.Audit || l.State.DeploymentCursor < heads.Deployment).ToList();
        if (behind.Count == 0) return queued;
        var fromAudit = behind.Min(l => l.State.AuditCursor);
        var fromDeployment = behind.Min(l => l.State.DeploymentCursor);
        var rows = await database.ReadSourceRowsAsync(fromAudit, fromDeployment, o.BatchSize, ct).ConfigureAwait(false);
        var audit = rows.Where(r => r.Source == NotificationSource.Audit).ToList();
        var deployment = rows.Where(r => r.Source == NotificationSource.Deployment).ToList();
        // What was read ends where a full page ended: a channel's cursor never passes a row not read.
        var auditEnd = audit.Count == o.BatchSize ? audit[^1].Id : heads.Audit;
        var deploymentEnd = deployment.Count == o.BatchSize ? deployment[^1].Id : heads.Deployment;
        // One order for a channel's share: commit time, then table and id.
        var ordered = rows.Where(r => r.Source == NotificationSource.Audit ? r.Id <= auditEnd : r.Id <= deploymentEnd)
            .OrderBy(r => r.OccurredAt).ThenBy(r => r.Source).ThenBy(r => r.Id).ToList();
        var mapped = ordered.Select(r => (Row: r, Events: NotificationEvents.Of(r))).ToList();
        var advances = new List<NotificationStore.ChannelAdvance>();
        foreach (var l in behind)
        {
            var to = (Math.Max(l.State.AuditCursor, auditEnd), Math.Max(l.State.DeploymentCursor, deploymentEnd));
            var deliveries = new List<NewDelivery>();
            foreach (var (row, evs) in mapped)
            {
                if (row.Source == NotificationSource.Audit ? row.Id <= l.State.AuditCursor : row.Id <= l.State.DeploymentCursor) continue;
                if (NotificationRouting.SiemReceives(l.Scope))
                {
                    var line = NotificationEvents.SiemLine(row);
                    deliveries.Add(new NewDelivery((string)line["id"]!, "siem." + (row.Source == NotificationSource.Audit ? "audit" : "deployment"), line, row.OccurredAt));
                    continue;
                }

                foreach (var e in evs)
                {
                    if (!NotificationRouting.Receives(l.Scope, e, e.Workspace is null ? null : workspaces.Get(e.Workspace)?.Metadata.Labels)) continue;
                    deliveries.Add(new NewDelivery(e.Id, e.Type, e.ToJson(), e.Time));
                }
            }

            advances.Add(new NotificationStore.ChannelAdvance(l.State.Uid, (l.State.AuditCursor, l.State.DeploymentCursor), to, deliveries));
        }

        // Every channel's share in one transaction (a look per commit at 100 events/s stays one round trip, not one per channel).
        var advanced = await database.AdvanceAsync(advances, ct).ConfigureAwait(false);
        var gained = advances.Where(a => a.Deliveries.Count > 0).Select(a => a.Uid).ToHashSet(StringComparer.Ordinal);
        foreach (var l in behind)
        {
            if (!advanced.Contains(l.State.Uid) || !gained.Contains(l.State.Uid)) continue;
            queued.Add(l.State.Uid);
            statusChanged(l.Key);
        }

        return queued;
    }
}
