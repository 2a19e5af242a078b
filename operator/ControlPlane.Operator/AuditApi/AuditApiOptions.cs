namespace ControlPlane.Operator.AuditApi;

/// <summary>The "ControlPlane:AuditApi" configuration section: the aggregated API audit.controlplane.io (docs/audit-api.md).</summary>
public sealed class AuditApiOptions
{
    /// <summary>Off unless configured (the chart turns it on): it needs the API server's front proxy and an APIService.</summary>
    public bool Enabled { get; set; }
    public string BindAddress { get; set; } = "0.0.0.0";
    public int Port { get; set; } = 9444;

    /// <summary>Where platform events (rows about no workspace) are served; the operator's namespace.</summary>
    public string PlatformNamespace { get; set; } = "controlplane-system";

    /// <summary>Whether the operator writes the APIService (with the serving certificate's CA) itself, as it does the webhook configurations.</summary>
    public bool Register { get; set; } = true;

    /// <summary>
    /// The Service the APIService names, and its port in front of the audit port: by default the webhook's
    /// Service, whose name the serving certificate (the webhook's) already carries.
    /// </summary>
    public string ServiceNamespace { get; set; } = "controlplane-system";
    public string ServiceName { get; set; } = "controlplane-webhook";
    public int ServicePort { get; set; } = 8443;

    /// <summary>How often both chains are verified (incrementally, from the last verified row).</summary>
    public TimeSpan VerifyInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often the verification starts again from the first row (a row changed after it was verified is caught then).</summary>
    public TimeSpan FullVerifyInterval { get; set; } = TimeSpan.FromHours(6);

    /// <summary>How long an allowed SubjectAccessReview answer is reused for the same user, groups and request.</summary>
    public TimeSpan AuthorizationCacheTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a watch looks for new rows (a new row reaches its watchers within this, plus a query).</summary>
    public TimeSpan WatchPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);
}
