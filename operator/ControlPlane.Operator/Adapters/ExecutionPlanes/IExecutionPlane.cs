namespace ControlPlane.Operator.Adapters;

/// <summary>
/// How a plane's failure is to be treated (the connector contract's error classes): TRANSIENT is
/// retried (after <see cref="PlaneError.RetryAfter"/> when the plane says), PERMANENT fails the intent
/// with the reason, POLICY_VIOLATION denies it and is a security event.
/// </summary>
public enum PlaneErrorClass { Transient, Permanent, PolicyViolation }

/// <summary>A failure the plane reported (or a transport failure, classified), with the plane's own code.</summary>
public sealed class PlaneError(PlaneErrorClass errorClass, string code, string message, TimeSpan? retryAfter = null)
    : Exception($"{errorClass}: {code}: {message}")
{
    public PlaneErrorClass Class { get; } = errorClass;

    /// <summary>The contract's code: rate_limit, timeout, service_unavailable, invalid_credentials, resource_not_found, invalid_request, scope_violation, unauthorized, quota_exceeded.</summary>
    public string Code { get; } = code;

    public string Detail { get; } = message;

    public TimeSpan? RetryAfter { get; } = retryAfter;

    /// <summary>No answer came (timeout, connection refused or lost): the plane is unavailable, not refusing.</summary>
    public bool NoAnswer { get; init; }
}

/// <summary>What a plane advertises (the connector contract's capabilities call).</summary>
public sealed record PlaneCapabilities(IReadOnlyList<string> RollbackStrategies)
{
    /// <summary>The strategies every plane this operator drives itself knows (the kubernetes plane's).</summary>
    public static readonly IReadOnlyList<string> BuiltInStrategies = ["previous-version", "specific-version", "none"];
}

/// <summary>One ring of one intent, as a plane sees it. The correlation id is the intent's idempotency key.</summary>
public sealed record PlaneDeployment(
    string CorrelationId,
    string Tenant,
    string Namespace,
    string Intent,
    string Application,
    string Version,
    string Image,
    string Sha256,
    string Ring,
    IReadOnlyList<string> Workspaces);

/// <summary>What the plane reports of a ring's deployment.</summary>
public sealed record PlaneStatus(
    string State,              // pending | in_progress | succeeded | failed | rolled_back
    string? ActualVersion,
    bool Assigned,
    IReadOnlyList<string> Workspaces,
    double? SuccessRate,
    int Incidents,
    string? Message);

/// <summary>The remediation actions of the contract.</summary>
public static class PlaneRemediation
{
    public const string Rollback = "rollback";
    public const string Uninstall = "uninstall";
    public const string Redeploy = "redeploy";
    public const string PinRing = "pin_ring";
}

/// <summary>
/// An execution plane: where a DeploymentIntent's rings are really deployed (Kubernetes through a
/// Rollout, or an endpoint management system behind the HTTP connector contract). The operator never
/// touches the targets directly. Every call carries the correlation id as its idempotency key, so a
/// replay (operator restart, retry) never deploys twice.
/// </summary>
public interface IExecutionPlane
{
    /// <summary>Starts (or, replayed with the same key, confirms) the deployment of one ring.</summary>
    Task<PlaneStatus> PublishAsync(PlaneDeployment deployment, CancellationToken ct);

    /// <summary>The ring's state on the plane: progress, and what is actually deployed (for drift).</summary>
    Task<PlaneStatus> QueryStatusAsync(PlaneDeployment deployment, CancellationToken ct);

    /// <summary>Rollback, uninstall, redeploy or pin the ring; <paramref name="version"/> is the target version where one applies.</summary>
    Task<PlaneStatus> RemediateAsync(PlaneDeployment deployment, string action, string? version, CancellationToken ct);

    /// <summary>As above, naming the rollback strategy (spec.rollbackPlan.strategy, one the plane advertises) the plane applies.</summary>
    Task<PlaneStatus> RemediateAsync(PlaneDeployment deployment, string action, string? version, string? strategy, CancellationToken ct);

    /// <summary>What the plane supports: the rollback strategies it advertises (checked at assessment).</summary>
    Task<PlaneCapabilities> CapabilitiesAsync(CancellationToken ct);

    /// <summary>Whether the plane already holds a deployment under this idempotency key (a publish would be a replay).</summary>
    Task<bool> VerifyIdempotencyAsync(PlaneDeployment deployment, CancellationToken ct);
}
