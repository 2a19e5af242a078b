namespace ControlPlane.Operator.Configuration;

/// <summary>The "ControlPlane" configuration section (appsettings.json, then environment: ControlPlane__Key).</summary>
public sealed class ControlPlaneOptions
{
    public const string Section = "ControlPlane";

    /// <summary>Connection string of the system of record. Never logged.</summary>
    public string? SystemDatabase { get; set; }

    /// <summary>The configured regions; the only valid spec.region values.</summary>
    public Dictionary<string, RegionOptions> Regions { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public LeaderElectionSettings LeaderElection { get; set; } = new();

    /// <summary>Concurrent reconciles per controller.</summary>
    public int Workers { get; set; } = 4;

    public TimeSpan ResyncPeriod { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Cap on the backoff of a transient dependency failure (Postgres down), so recovery is prompt.</summary>
    public TimeSpan MaxTransientRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Every API request but a watch is abandoned after this (a hung connection holds nothing).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A reconcile that runs longer is cancelled and retried on its backoff.</summary>
    public TimeSpan ReconcileTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Where /healthz, /readyz and /metrics listen.</summary>
    public string HealthUrls { get; set; } = "http://0.0.0.0:8081";

    /// <summary>Key-encryption key for provider keys: 32 random bytes, base64. Never logged.</summary>
    public string? KeyEncryptionKey { get; set; }

    /// <summary>How long a replaced provider key stays valid after rotation.</summary>
    public TimeSpan KeyRotationGrace { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often retired provider keys past their grace period are purged.</summary>
    public TimeSpan KeyPurgeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The namespace the operator runs in: no workspace may take its name.</summary>
    public string OperatorNamespace { get; set; } = "controlplane-system";

    /// <summary>More namespace names no workspace may take, exact or glob ('*': any run of characters, e.g. "corp-*"); kube-*, default and the operator's namespace always are.</summary>
    public List<string> ReservedNamespaces { get; set; } = [];

    /// <summary>Whether the shipped list of platform namespaces (istio-*, kyverno, openshift-*, cattle-*, argocd, ...) is reserved too; false clears it.</summary>
    public bool ReservedNamespaceDefaults { get; set; } = true;

    /// <summary>
    /// A new workspace's name must start with "&lt;tenant&gt;-" (as Capsule's forceTenantPrefix): no tenant can
    /// take a name another tenant, or the platform, will want. Off by default: names already in use
    /// across tenants keep working; workspaces provisioned before it was turned on keep their names.
    /// </summary>
    public bool ForceTenantPrefix { get; set; }

    /// <summary>Globs a new workspace's name must match one of ("{tenant}" is its tenant, e.g. "{tenant}-*"); empty: any name not reserved.</summary>
    public List<string> AllowedWorkspaceNames { get; set; } = [];

    /// <summary>
    /// URL prefixes (scheme, host, port, path) a notification channel's URL may be under. A tenant's channel names the
    /// URL; without this list (or <see cref="NotificationAllowedHosts"/>) the operator would call anywhere a tenant says.
    /// </summary>
    public List<string> NotificationUrlPrefixes { get; set; } = [];

    /// <summary>Hosts a notification channel's URL may name on any path: "host", "host:port" or "*.domain"; without a port only 443.</summary>
    public List<string> NotificationAllowedHosts { get; set; } = [];

    /// <summary>Whether notification deliveries may reach private (RFC 1918, CGNAT, fc00::/7) addresses: in-cluster receivers. Link-local (metadata) never.</summary>
    public bool NotificationAllowPrivateAddresses { get; set; }

    /// <summary>Whether notification deliveries may reach loopback, also over plain http: tests and local runs only.</summary>
    public bool NotificationAllowLoopback { get; set; }

    /// <summary>An HTTP proxy every notification delivery goes through (then the proxy must enforce egress too); unset: direct, and never a proxy from the environment.</summary>
    public string? NotificationProxy { get; set; }

    /// <summary>Connecting to a notification receiver (DNS resolution included) is abandoned after this.</summary>
    public TimeSpan NotificationConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A whole notification delivery (connect, send, read the bounded answer) is abandoned after this.</summary>
    public TimeSpan NotificationRequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Path to a kubeconfig; empty: KUBECONFIG, ~/.kube/config, then in-cluster.</summary>
    public string? Kubeconfig { get; set; }

    /// <summary>How Exposures are published (ControlPlane:Exposure).</summary>
    public ExposureOptions Exposure { get; set; } = new();

    /// <summary>DeploymentIntents and their execution planes (ControlPlane:DeploymentIntent).</summary>
    public DeploymentIntentOptions DeploymentIntent { get; set; } = new();

    /// <summary>The Prometheus that Rollouts' successRate gates query.</summary>
    public PrometheusOptions Prometheus { get; set; } = new();

    public BackupOptions Backup { get; set; } = new();

    /// <summary>How long after a BreakGlass is granted its review (an Approval of it) is due; later it shows ReviewOverdue.</summary>
    public TimeSpan BreakGlassReviewWindow { get; set; } = TimeSpan.FromHours(24);
    /// <summary>How NotificationChannels deliver (ControlPlane:NotificationDelivery); where they may send is the Notification* options above.</summary>
    public NotificationOptions NotificationDelivery { get; set; } = new();
}

/// <summary>ControlPlane:DeploymentIntent: where the operator may send requests on a tenant's behalf.</summary>
public sealed class DeploymentIntentOptions
{
    /// <summary>
    /// URL prefixes an `http` execution plane may have (e.g. https://intune-adapter.platform.svc/). A
    /// tenant's intent names the URL; without this list the operator would call anywhere a tenant says.
    /// </summary>
    public List<string> PlaneUrlPrefixes { get; set; } = [];

    /// <summary>URL prefixes an evidence pack may be fetched from; empty: only ConfigMap evidence.</summary>
    public List<string> EvidenceUrlPrefixes { get; set; } = [];

    /// <summary>Per request to an execution plane or an evidence URL.</summary>
    public TimeSpan PlaneTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>While a ring runs (or CAB has approved but the evidence pack is not there yet), the plane is asked again this often.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether a new intent must name a scan report (spec.artifact.scanReport): findings come from a
    /// scanner, not from the author. Default true; false lets intents go on the author's list alone.
    /// </summary>
    public bool RequireScanReport { get; set; } = true;

    /// <summary>
    /// PEM public keys (ECDSA P-256 or RSA) an artifact's spec.artifact.signature is verified against.
    /// Empty: no signature is checked and no UnsignedPackage finding is made. Never a tenant's key.
    /// </summary>
    public List<string> TrustedSigningKeys { get; set; } = [];
}

/// <summary>ControlPlane:Exposure: the Ingress class and the domain of default hosts.</summary>
public sealed class ExposureOptions
{
    /// <summary>spec.ingressClassName of every published Ingress.</summary>
    public string IngressClass { get; set; } = "nginx";

    /// <summary>An Exposure without spec.host is published at &lt;name&gt;.&lt;workspace&gt;.&lt;Domain&gt;.</summary>
    public string Domain { get; set; } = "apps.example.com";
}

public sealed class PrometheusOptions
{
    /// <summary>Base URL (e.g. http://prometheus.monitoring:9090); unset: a Rollout with a successRate gate pauses and says so.</summary>
    public string? Url { get; set; }

    /// <summary>How often a ring's successRate gate is evaluated while it rolls out and soaks.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A query that takes longer counts as Prometheus unreachable.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>The "ControlPlane:Backup" section: how backups and restores run.</summary>
public sealed class BackupOptions
{
    /// <summary>pg_dump to run; empty: pg_dump from PATH. Must be the region server's major version or newer.</summary>
    public string? PgDumpPath { get; set; }

    /// <summary>pg_restore to run; empty: next to <see cref="PgDumpPath"/>, else from PATH.</summary>
    public string? PgRestorePath { get; set; }

    /// <summary>Backups and restores running at once (each is a pg_dump or pg_restore child process).</summary>
    public int MaxConcurrent { get; set; } = 2;

    /// <summary>Whether a BackupPlan may name its own bucket (spec.storage.s3); otherwise only the region's platform storage.</summary>
    public bool AllowTenantStorage { get; set; }

    /// <summary>
    /// Where a plan's own bucket may be, when <see cref="AllowTenantStorage"/> is true: URL prefixes (scheme, host,
    /// port, path) of S3 endpoints. Empty: none; the operator never connects to an endpoint a tenant picks.
    /// </summary>
    public List<string> TenantStorageEndpoints { get; set; } = [];

    /// <summary>Multipart upload part size (S3 allows 5 MiB to 5 GiB; at most 10,000 parts).</summary>
    public int PartSizeBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// How long the completed backups of a workspace deleted with deletionPolicy Delete are kept before
    /// their stored objects are deleted: the window in which a mistaken deletion can still be undone.
    /// </summary>
    public TimeSpan DeleteGrace { get; set; } = TimeSpan.FromDays(7);

    public string EffectivePgDump => string.IsNullOrWhiteSpace(PgDumpPath) ? "pg_dump" : PgDumpPath;

    public string EffectivePgRestore => !string.IsNullOrWhiteSpace(PgRestorePath) ? PgRestorePath
        : string.IsNullOrWhiteSpace(PgDumpPath) || Path.GetDirectoryName(PgDumpPath) is not { Length: > 0 } dir ? "pg_restore"
        : Path.Combine(dir, "pg_restore");
}

/// <summary>A region's platform backup storage: an S3-compatible bucket; the credentials Secret lives in the operator's namespace.</summary>
public sealed class BackupStorageOptions
{
    public string? Endpoint { get; set; }

    public string? Bucket { get; set; }

    public string? Prefix { get; set; }

    /// <summary>Name of a Secret in the operator's namespace with keys accessKeyId and secretAccessKey.</summary>
    public string? CredentialsSecret { get; set; }

    /// <summary>The S3 signing region (any value for most S3-compatible services).</summary>
    public string SigningRegion { get; set; } = "us-east-1";
}

public sealed class RegionOptions
{
    /// <summary>
    /// Extensions PostgreSQL 15 marks trusted (a non-superuser database owner may create them), so the
    /// workspace role itself creates them: nothing is installed with more privilege than the tenant has.
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultAllowedExtensions =
    [
        "btree_gin", "btree_gist", "citext", "fuzzystrmatch", "hstore", "intarray", "ltree", "pg_trgm", "pgcrypto", "tablefunc", "unaccent", "uuid-ossp",
    ];

    /// <summary>
    /// Connection string of the server where this region's workspace databases go: a dedicated role with
    /// LOGIN CREATEDB CREATEROLE and NOT superuser (a superuser is refused). Never logged.
    /// </summary>
    public string? Database { get; set; }

    /// <summary>The extensions a workspace may ask for in this region; unset: <see cref="DefaultAllowedExtensions"/>. An array, so configuration replaces it rather than appending.</summary>
    public string[]? AllowedExtensions { get; set; }

    /// <summary>Where this region's workspace backups go (region residency: only here).</summary>
    public BackupStorageOptions? BackupStorage { get; set; }

    /// <summary>
    /// Where this region's DeploymentIntent evidence packs are kept, write-once, under
    /// evidence/&lt;tenant&gt;/&lt;sha256&gt;; unset: the region's <see cref="BackupStorage"/>.
    /// </summary>
    public BackupStorageOptions? EvidenceStorage { get; set; }
}

public sealed class LeaderElectionSettings
{
    public bool Enabled { get; set; } = true;
    public string Namespace { get; set; } = "controlplane-system";
    public string LeaseName { get; set; } = "controlplane-operator";
    public string? Identity { get; set; }
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);
    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);
}
