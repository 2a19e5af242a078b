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

/// <summary>One channel's run: its due deliveries in order, accepted ones recorded by group commit, a failure recorded with its backoff.</summary>
public sealed partial class NotificationDispatcher
{
    async Task RunChannelAsync(Live l, HttpClient client, SemaphoreSlim slots, CancellationToken ct)
    {
        await Task.Yield();
        var accepted = new List<NotificationStore.Delivered>();
        Task recording = Task.CompletedTask;
        // Records outlive the term by a few seconds: what a receiver accepted is recorded also on a graceful stop (a
        // record cancelled with the term would roll back, and the next leader would send it all again).
        using var records = new CancellationTokenSource();
        using var stopping = ct.Register(() => records.CancelAfter(TimeSpan.FromSeconds(5)));
        var progressed = false;
        try
        {
            var credentials = await CredentialsAsync(l.Channel, l.Scope.Reach, ct).ConfigureAwait(false);
            if (credentials is null) return;
            var maxFailures = NotificationChannelRules.MaxFailuresOf(l.Channel.Spec);
            var reach = HostWaits.ReachOf(l.Scope.Reach == ChannelReach.Platform, l.Scope.Tenant);
            // A bounded run, then the slot goes back: other channels waiting get their turn at the next look.
            var batch = await database.NextDeliveriesAsync(l.State.Uid, MaxPerRun, ct).ConfigureAwait(false);
            var sent = 0;
            foreach (var next in batch)
            {
                if (ct.IsCancellationRequested || next.NextAttemptAt > time.GetUtcNow().UtcDateTime) break;
                var (code, error, hostDown) = await SendAsync(l.Channel, client, credentials, next, ct).ConfigureAwait(false);
                if (ct.IsCancellationRequested) break;
                sent++;
                if (error is null)
                {
                    var now = time.GetUtcNow().UtcDateTime;
                    accepted.Add(new NotificationStore.Delivered(next.Id, code!.Value, now));
                    metrics.Deliveries.WithLabels("delivered").Inc();
                    metrics.Latency.Observe(Math.Max(0, (now - next.CommittedAt).TotalSeconds));
                    // The host answers: channels of the same reach waiting out a backoff because it was unavailable go now.
                    await RetrySameHostAsync(l.State.Uid, reach, ct).ConfigureAwait(false);
                    // Group commit: recorded while the next one is sent, one record transaction in flight at a time; what was
                    // accepted meanwhile goes in the next (so a crash re-sends at most what one transaction was recording).
                    if (recording.IsCompleted || accepted.Count >= RecordBatch)
                    {
                        await recording.ConfigureAwait(false);
                        recording = database.RecordDeliveredAsync(l.State.Uid, [.. accepted], records.Token);
                        accepted.Clear();
                        progressed = true;
                        statusChanged(l.Key);
                    }

                    continue;
                }

                if (hostDown && authorities.TryGetValue(l.State.Uid, out var host)) hostWaits.Unavailable(l.State.Uid, host, reach);
                // What was accepted before this failure is recorded first: the failure streak counts from there.
                await recording.ConfigureAwait(false);
                await database.RecordDeliveredAsync(l.State.Uid, [.. accepted], records.Token).ConfigureAwait(false);
                accepted.Clear();
                metrics.Deliveries.WithLabels("failed").Inc();
                var wait = NotificationRouting.Backoff(next.Attempts + 1, o.InitialBackoff, o.MaxBackoff, Random.Shared.NextDouble());
                var (streak, disabled) = await database.RecordFailedAsync(l.State.Uid, next.Id, code, error, time.GetUtcNow().UtcDateTime + wait, maxFailures,
                    l.Channel.Metadata.Generation ?? 0,
                    n => new AuditEntry("controlplane-operator", "channel.auto_disabled", NotificationChannel.KubeKind, l.Key, l.Scope.Tenant,
                        new System.Text.Json.Nodes.JsonObject
                        {
                            ["reason"] = "AutoDisabled", ["generation"] = l.Channel.Metadata.Generation, ["consecutiveFailures"] = n, ["lastError"] = error,
                            ["message"] = $"{l.Key} disabled after {n} failed attempts in a row",
                        }, "warning"), records.Token).ConfigureAwait(false);
                progressed = true;
                statusChanged(l.Key);
                if (disabled)
                {
                    logger.LogWarning("notification channel {Channel} auto-disabled after {Failures} failed attempts in a row", l.Key, streak);
                    await events.WarningAsync(l.Channel, NotificationChannelReasons.AutoDisabled,
                        $"disabled after {streak} failed delivery attempts in a row (last: {error}); change the spec to re-enable", ct).ConfigureAwait(false);
                }

                break; // the next attempt waits for its backoff: ordering holds the rest behind it
            }

            // A full batch sent: more may be waiting, so the next look should come now.
            if (sent == MaxPerRun) progressed = true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or KubeApiException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("notification channel {Channel}: delivery paused ({Error}: {Message})", l.Key, e.GetType().Name, e is Npgsql.PostgresException p ? p.SqlState + " " + p.MessageText : e.Message);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // Never silent, never fatal to other channels: this channel is looked at again next time.
            logger.LogError("notification channel {Channel}: delivery run failed ({Error})", l.Key, e.GetType().Name);
        }
        finally
        {
            try
            {
                // What the receiver accepted is recorded also when the run stops early or the term ends; not recorded
                // (Postgres down, a crash) means sent again with the same key.
                await RecordRestAsync(l, recording, accepted, records.Token).ConfigureAwait(false);
            }
            finally
            {
                running.TryRemove(l.State.Uid, out _);
                slots.Release();
                // Only a run that moved something asks for the next look at once: a channel that cannot run (its Secret
                // unusable) waits for the poll instead of spinning the loop.
                if (progressed) runEnded.Raise();
            }
        }
    }

    async Task RecordRestAsync(Live l, Task recording, List<NotificationStore.Delivered> accepted, CancellationToken token)
    {
        try
        {
            await recording.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            logger.LogWarning("notification channel {Channel}: a batch of accepted deliveries was not recorded; they are sent again ({Error})", l.Key, e.GetType().Name);
        }

        if (accepted.Count == 0) return;
        try
        {
            if (await database.RecordDeliveredAsync(l.State.Uid, [.. accepted], token).ConfigureAwait(false)) statusChanged(l.Key);
        }
        catch (Exception e)
        {
            logger.LogWarning("notification channel {Channel}: {Count} accepted deliveries not recorded; they are sent again ({Error})", l.Key, accepted.Count, e.GetType().Name);
        }
    }

    /// <summary>
    /// A delivery to this channel's host got through: the channels of the same reach waiting out a backoff because that
    /// host was unavailable (no connection, a timeout, 502/503/504) retry now (<see cref="HostWaits"/>), so a receiver
    /// back after an outage is drained by every channel at once instead of one by one as their backoffs end.
    /// </summary>
    async Task RetrySameHostAsync(string uid, string reach, CancellationToken ct)
    {
        if (!authorities.TryGetValue(uid, out var host)) return;
        var wake = hostWaits.Answered(uid, host, reach);
        if (wake.Count > 0 && await database.RetryNowAsync(wake, ct).ConfigureAwait(false)) runEnded.Raise();
    }
}
