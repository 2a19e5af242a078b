using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Where a tenant's and a workspace's data live, and what the configuration allows there: the one place
/// that resolves a region (admission, the Tenant, Workspace and Backup reconcilers and the region servers
/// all ask here). Pure: the configuration and the objects in, a decision out.
/// </summary>
public static class Placement
{
    /// <summary>
    /// A workspace's region: its own spec.region, else its tenant's (the mutating webhook copies the tenant's
    /// at creation; an object written past it may lack one), else "" when the tenant is not known either.
    /// </summary>
    public static string WorkspaceRegion(Workspace ws, Tenant? tenant) =>
        string.IsNullOrEmpty(ws.Spec.Region) ? tenant?.Spec.Region ?? "" : ws.Spec.Region;

    /// <summary>A workspace is pinned to its tenant's region: whether <paramref name="region"/> is that one (compared exactly, as stored).</summary>
    public static bool IsTenantRegion(string region, Tenant tenant) => region == tenant.Spec.Region;

    /// <summary>A region and what ControlPlane:Regions says of it (nothing, when it is not configured).</summary>
    public static RegionPlacement Region(ControlPlaneOptions options, string region) =>
        new(region, options.Regions.TryGetValue(region, out var settings) ? settings : null);

    /// <summary>The regions with a database server, in ordinal order: the ones a new tenant may name.</summary>
    public static IReadOnlyList<string> ServedRegions(ControlPlaneOptions options) =>
        options.Regions.Where(kv => !string.IsNullOrWhiteSpace(kv.Value.Database)).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Admission's rule for a tenant's spec.region: one of the regions with a database server (case-insensitive,
    /// as configuration keys are). Null when it is; otherwise the message, naming the served regions.
    /// </summary>
    public static string? UnservedTenantRegion(ControlPlaneOptions options, string region)
    {
        var served = ServedRegions(options);
        return served.Contains(region, StringComparer.OrdinalIgnoreCase)
            ? null
            : $"spec.region: \"{region}\" is not a configured region (configured: {(served.Count == 0 ? "none" : string.Join(", ", served))})";
    }

    /// <summary>
    /// The Tenant reconciler's rule: the region is a key of ControlPlane:Regions. Looser than admission's on
    /// purpose: a tenant admitted before its region lost its server keeps its record, and its workspaces say
    /// InvalidRegion (<see cref="RegionPlacement.HasServer"/>). Null when it is; otherwise the message.
    /// </summary>
    public static string? UndeclaredTenantRegion(ControlPlaneOptions options, string region) => UndeclaredTenantRegion(options.Regions.Keys, region);

    /// <summary>The same rule over the configured region names (a dictionary's keys keep its comparer).</summary>
    public static string? UndeclaredTenantRegion(IReadOnlyCollection<string> declared, string region) =>
        declared.Contains(region)
            ? null
            : $"spec.region: \"{region}\" is not a configured region (configured: {string.Join(", ", declared.Order())})";
}

/// <summary>A region's platform backup storage, complete; the credentials Secret (accessKeyId, secretAccessKey) is in the operator's namespace.</summary>
public sealed record PlatformBackupStorage(string Endpoint, string Bucket, string Prefix, string CredentialsSecret, string SigningRegion);

/// <summary>One region and its settings (null: not in ControlPlane:Regions): its server, its allowlists, its backup storage.</summary>
public sealed record RegionPlacement(string Name, RegionOptions? Settings)
{
    /// <summary>Listed in ControlPlane:Regions, with or without a server.</summary>
    public bool Declared => Settings is not null;

    /// <summary>Has a database server: workspace databases can be placed here.</summary>
    public bool HasServer => !string.IsNullOrWhiteSpace(Settings?.Database);

    /// <summary>Connection string of the region's server (null without one). Never logged.</summary>
    public string? Server => HasServer ? Settings!.Database : null;

    /// <summary>The extensions a workspace may ask for here: the region's list, else PostgreSQL's trusted ones (also for a region not configured).</summary>
    public IReadOnlyList<string> AllowedExtensions => Settings?.AllowedExtensions ?? RegionOptions.DefaultAllowedExtensions;

    /// <summary>The requested extensions this region does not allow, with their index in spec.database.extensions (what the webhook and the reconciler refuse).</summary>
    public IReadOnlyList<(int Index, string Name)> DisallowedExtensions(IReadOnlyList<string>? requested)
    {
        var allowed = AllowedExtensions;
        return (requested ?? []).Select((name, i) => (i, name)).Where(e => !allowed.Contains(e.name, StringComparer.Ordinal)).ToList();
    }

    /// <summary>The setting that names the region's platform backup storage (for messages).</summary>
    public string BackupStorageSetting => $"ControlPlane:Regions:{Name}:BackupStorage";

    /// <summary>The region's platform backup storage, when complete (Endpoint, Bucket and CredentialsSecret); otherwise null (region residency: backups go nowhere else).</summary>
    public PlatformBackupStorage? BackupStorage => Settings?.BackupStorage is { Endpoint: { } endpoint, Bucket: { } bucket, CredentialsSecret: { } secret } storage
        ? new PlatformBackupStorage(endpoint, bucket, storage.Prefix ?? "", secret, storage.SigningRegion)
        : null;

    /// <summary>Why a backup has nowhere to go in this region.</summary>
    public string NoBackupStorage => $"region {Name} has no backup storage configured ({BackupStorageSetting}: Endpoint, Bucket and CredentialsSecret)";
}
