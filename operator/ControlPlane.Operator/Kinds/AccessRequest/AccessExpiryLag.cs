using Prometheus;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// controlplane_access_expiry_lag_seconds: from a grant's recorded status.expiresAt to the deletion of its
/// RoleBinding by the operator, observed once per expired grant (when the delete succeeds). The bound of the
/// delegation expirer (p99 at most 2 s) is read from it; a grant that fell due while no operator could act
/// (stopped, not leading, API server down) shows its whole wait here.
/// </summary>
public sealed class AccessExpiryLag
{
    public const string Name = "controlplane_access_expiry_lag_seconds";

    readonly Histogram lag;

    public AccessExpiryLag(CollectorRegistry registry) =>
        // Created again by every leadership term's setup: the registry hands back the same histogram.
        lag = Metrics.WithCustomRegistry(registry).CreateHistogram(Name,
            "Seconds from an AccessRequest's recorded status.expiresAt to the deletion of its RoleBinding (one observation per expired grant).",
            new HistogramConfiguration { Buckets = [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 900, 3600] });

    public void Observe(DateTime expiresAt, DateTime deletedAt) => lag.Observe(Math.Max(0, (deletedAt.ToUniversalTime() - expiresAt.ToUniversalTime()).TotalSeconds));
}
