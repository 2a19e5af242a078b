using ControlPlane.Operator.Store;
using Prometheus;

namespace ControlPlane.Operator.AuditApi;

/// <summary>
/// Verifies the audit trail's and the deployment event store's chains (global and per tenant) every
/// VerifyInterval, incrementally from the last verified row, and from the first row every
/// FullVerifyInterval (a row changed behind the triggers after it was verified is caught then).
/// Every replica verifies (reads only); each exports what it found:
/// controlplane_audit_chain_verified_timestamp_seconds, controlplane_audit_chain_broken and
/// controlplane_audit_chain_first_bad_sequence, per chain.
/// </summary>
public sealed class AuditChainVerifier
{
    readonly AuditLog log;
    readonly SystemDatabase database;
    readonly AuditApiOptions options;
    readonly TimeProvider time;
    readonly ILogger logger;
    readonly Gauge verified;
    readonly Gauge broken;
    readonly Gauge firstBad;
    readonly Dictionary<AuditTable, ChainCursor> cursors = new() { [AuditTable.AuditEvents] = ChainCursor.Start, [AuditTable.DeploymentEvents] = ChainCursor.Start };
    DateTimeOffset lastFull = DateTimeOffset.MinValue;

    public AuditChainVerifier(AuditLog log, SystemDatabase database, AuditApiOptions options, CollectorRegistry registry, TimeProvider time, ILogger logger)
    {
        this.log = log;
        this.database = database;
        this.options = options;
        this.time = time;
        this.logger = logger;
        var f = Metrics.WithCustomRegistry(registry);
        verified = f.CreateGauge("controlplane_audit_chain_verified_timestamp_seconds",
            "When the chain was last verified intact up to its head (Unix seconds), per chain (audit_events, deployment_events).", "chain");
        broken = f.CreateGauge("controlplane_audit_chain_broken", "1 while a row of the chain does not verify, else 0.", "chain");
        firstBad = f.CreateGauge("controlplane_audit_chain_first_bad_sequence", "The global sequence (id) of the first row that does not verify; 0 when none.", "chain");
        foreach (var chain in new[] { "audit_events", "deployment_events" })
        {
            broken.WithLabels(chain).Set(0);
            firstBad.WithLabels(chain).Set(0);
        }
    }

    static string ChainName(AuditTable table) => table == AuditTable.AuditEvents ? "audit_events" : "deployment_events";

    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await database.Migrated.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        while (!ct.IsCancellationRequested)
        {
            try
            {
                await VerifyOnceAsync(ct).ConfigureAwait(false);
                await Task.Delay(options.VerifyInterval, time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or InvalidOperationException)
            {
                // Postgres down: the timestamp goes stale (AuditChainVerificationStale) and this retries.
                logger.LogWarning("audit chain verification failed: {Message}", PostgresFailure.Of(e, "the system database").Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, options.VerifyInterval.TotalSeconds)), time, ct).ConfigureAwait(false);
            }
        }
    }

    public async Task VerifyOnceAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (now - lastFull >= options.FullVerifyInterval)
        {
            cursors[AuditTable.AuditEvents] = ChainCursor.Start;
            cursors[AuditTable.DeploymentEvents] = ChainCursor.Start;
            lastFull = now;
        }

        foreach (var table in cursors.Keys.ToList())
        {
            var chain = ChainName(table);
            var verdict = await AuditVerification.VerifyAsync(log, table, cursors[table], ct).ConfigureAwait(false);
            if (verdict.FirstBadId is { } bad)
            {
                // The cursor stays before the break: the next pass checks it again, and clears once it verifies.
                if (broken.WithLabels(chain).Value == 0) logger.LogError("audit chain {Chain} broken: {Problem}", chain, verdict.Problem);
                broken.WithLabels(chain).Set(1);
                firstBad.WithLabels(chain).Set(bad);
            }
            else
            {
                broken.WithLabels(chain).Set(0);
                firstBad.WithLabels(chain).Set(0);
                verified.WithLabels(chain).Set(time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0);
            }

            cursors[table] = verdict.Cursor;
        }
    }
}
