using System.Globalization;
using Microsoft.Extensions.Logging;
using k8s.Models;

namespace ControlPlane.Runtime;

public sealed record LeaderElectionOptions
{
    public bool Enabled { get; init; } = true;
    public string Namespace { get; init; } = "controlplane-system";
    public string LeaseName { get; init; } = "controlplane-operator";
    public string Identity { get; init; } = $"{Environment.MachineName}_{Guid.NewGuid():N}";
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is taken
/// when it is free or its holder has not renewed within the lease duration (measured on our own
/// clock from when we last saw the record change); the leader renews every retry period and steps
/// down if it cannot renew within the renew deadline; on shutdown it releases the lease (empty
/// holder) so a successor takes over at once. KubernetesClient's LeaderElector does not release on
/// cancellation, which is why this one exists.
/// </summary>
public sealed class LeaderElector(KubeApi api, LeaderElectionOptions options, OperatorMetrics metrics, ILogger logger, TimeProvider? time = null,
    Action<string>? fatal = null)
{
    readonly TimeProvider clock = time ?? TimeProvider.System;
    string? observedResourceVersion;
    DateTimeOffset observedAt;
    V1Lease? lastLease;

    public bool IsLeader { get; private set; }

    public string Identity => options.Identity;

    /// <summary>Campaigns until <paramref name="ct"/> ends; runs <paramref name="lead"/> for each term won.</summary>
    public async Task RunAsync(Func<CancellationToken, Task> lead, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (!await TryAcquireOrRenewAsync(ct).ConfigureAwait(false))
            {
                await DelayAsync(Jittered(options.RetryPeriod), ct).ConfigureAwait(false);
                continue;
            }

            logger.LogInformation("{Identity} became leader of lease {Namespace}/{Lease}", options.Identity, options.Namespace, options.LeaseName);
            metrics.LeaderStatus.WithLabels(options.LeaseName).Set(1);
            using var term = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var leading = Task.Run(() => lead(term.Token), CancellationToken.None);
            await RenewLoopAsync(term, leading, ct).ConfigureAwait(false);
            term.Cancel();
            // Another replica may take the lease LeaseDuration after our last renewal, and we stopped
            // renewing at most RenewDeadline after it: we must have stopped reconciling within the rest.
            var grace = options.LeaseDuration - options.RenewDeadline;
            if (!ct.IsCancellationRequested && await Task.WhenAny(leading, Task.Delay(grace, clock, CancellationToken.None)).ConfigureAwait(false) != leading)
            {
                metrics.LeaderStatus.WithLabels(options.LeaseName).Set(0);
                IsLeader = false;
                fatal?.Invoke($"{options.Identity} lost lease {options.LeaseName} but could not stop reconciling within {grace.TotalSeconds:0.#} s");
                return;
            }

            try
            {
                await leading.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // The term ended by itself: a loop of the runtime died. Stop campaigning; the process exits.
                metrics.LeaderStatus.WithLabels(options.LeaseName).Set(0);
                IsLeader = false;
                await ReleaseAsync().ConfigureAwait(false);
                fatal?.Invoke($"the leader's work stopped: {e.GetType().Name}: {e.Message}");
                return;
            }

            metrics.LeaderStatus.WithLabels(options.LeaseName).Set(0);
            if (ct.IsCancellationRequested) await ReleaseAsync().ConfigureAwait(false);
            else logger.LogWarning("{Identity} lost leadership of {Lease}", options.Identity, options.LeaseName);
            IsLeader = false;
        }
    }

    /// <summary>
    /// Renews every retry period until the lease is lost, <paramref name="ct"/> ends, or the term's work
    /// (<paramref name="leading"/>) ends by itself. Each attempt is bounded by what is left of the renew
    /// deadline, so a hung request cannot keep an expired leader reconciling.
    /// </summary>
    async Task RenewLoopAsync(CancellationTokenSource term, Task leading, CancellationToken ct)
    {
        var lastRenew = clock.GetUtcNow();
        while (!ct.IsCancellationRequested && !term.IsCancellationRequested)
        {
            await Task.WhenAny(leading, DelayAsync(options.RetryPeriod, ct)).ConfigureAwait(false);
            if (ct.IsCancellationRequested || leading.IsCompleted) return;
            var left = options.RenewDeadline - (clock.GetUtcNow() - lastRenew);
            if (left <= TimeSpan.Zero) return;
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attempt.CancelAfter(left);
            if (await TryAcquireOrRenewAsync(attempt.Token).ConfigureAwait(false))
            {
                lastRenew = clock.GetUtcNow();
            }
            else if (!IsLeader || clock.GetUtcNow() - lastRenew >= options.RenewDeadline)
            {
                logger.LogWarning("{Identity} could not renew lease {Lease} within {Deadline}: stepping down", options.Identity, options.LeaseName, options.RenewDeadline);
                return; // another holder took it, or we could not renew in time
            }
        }
    }

    async Task DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, clock, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    static TimeSpan Jittered(TimeSpan d) => d * (1 + Random.Shared.NextDouble() * 0.2);

    internal async Task<bool> TryAcquireOrRenewAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        try
        {
            var lease = await api.TryGetAsync<V1Lease>(ResourceType.Leases, options.Namespace, options.LeaseName, ct).ConfigureAwait(false);
            if (lease is null)
            {
                lease = new V1Lease
                {
                    ApiVersion = "coordination.k8s.io/v1",
                    Kind = "Lease",
                    Metadata = new V1ObjectMeta { Name = options.LeaseName, NamespaceProperty = options.Namespace },
                    Spec = NewSpec(now, 0, now),
                };
                lastLease = await api.CreateAsync(ResourceType.Leases, options.Namespace, lease, ct).ConfigureAwait(false);
                return IsLeader = true;
            }

            if (lease.Metadata.ResourceVersion != observedResourceVersion)
            {
                observedResourceVersion = lease.Metadata.ResourceVersion;
                observedAt = now;
            }

            var holder = lease.Spec?.HolderIdentity;
            var duration = TimeSpan.FromSeconds(lease.Spec?.LeaseDurationSeconds ?? (int)options.LeaseDuration.TotalSeconds);
            var mine = holder == options.Identity;
            if (!mine && !string.IsNullOrEmpty(holder) && observedAt + duration > now)
            {
                IsLeader = false;
                return false;
            }

            var transitions = lease.Spec?.LeaseTransitions ?? 0;
            lease.Spec = NewSpec(mine ? lease.Spec!.AcquireTime ?? now.UtcDateTime : now, mine ? transitions : transitions + 1, now);
            lastLease = await api.ReplaceAsync(ResourceType.Leases, options.Namespace, options.LeaseName, lease, ct).ConfigureAwait(false);
            observedResourceVersion = lastLease.Metadata.ResourceVersion;
            observedAt = now;
            return IsLeader = true;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return false; // shutting down (RunAsync releases the lease), or the attempt ran out of its deadline
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or TaskCanceledException)
        {
            logger.LogDebug("lease {Lease} not acquired: {Error}", options.LeaseName, e.Message);
            return false;
        }
    }

    V1LeaseSpec NewSpec(DateTimeOffset acquired, int transitions, DateTimeOffset now) => new()
    {
        HolderIdentity = options.Identity,
        LeaseDurationSeconds = (int)options.LeaseDuration.TotalSeconds,
        AcquireTime = acquired.UtcDateTime,
        RenewTime = now.UtcDateTime,
        LeaseTransitions = transitions,
    };

    async Task ReleaseAsync()
    {
        if (lastLease?.Spec?.HolderIdentity != options.Identity) return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var now = clock.GetUtcNow().UtcDateTime;
            lastLease.Spec.HolderIdentity = null;
            lastLease.Spec.LeaseDurationSeconds = 1;
            lastLease.Spec.RenewTime = now;
            await api.ReplaceAsync(ResourceType.Leases, options.Namespace, options.LeaseName, lastLease, timeout.Token).ConfigureAwait(false);
            logger.LogInformation("{Identity} released lease {Lease} at {Time}", options.Identity, options.LeaseName, now.ToString("O", CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or OperationCanceledException)
        {
            logger.LogWarning("could not release lease {Lease}: {Error}", options.LeaseName, e.Message);
        }
    }
}
