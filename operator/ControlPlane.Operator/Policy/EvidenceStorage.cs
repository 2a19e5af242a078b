using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Policy;

/// <summary>What to do with an evidence pack's content-addressed key, given what the storage holds there.</summary>
public enum EvidenceWrite
{
    /// <summary>Nothing is there: write it (conditionally, If-None-Match: *, where the service honours it).</summary>
    Put,

    /// <summary>The same bytes are already there (another intent's copy of the same pack): nothing to write.</summary>
    AlreadyStored,

    /// <summary>Other bytes are there under this hash's key: never overwritten; the storage is not to be trusted until an admin looks.</summary>
    Conflict,
}

/// <summary>
/// The evidence store's rules, pure: where a pack goes (its region's evidence storage, else the
/// region's backup storage: region residency), under which key (content-addressed:
/// &lt;prefix&gt;evidence/&lt;tenant&gt;/&lt;sha256&gt;), and that a key is written once and never overwritten.
/// </summary>
public static class EvidenceStorage
{
    /// <summary>The region's evidence storage when complete (Endpoint, Bucket, CredentialsSecret); else its backup storage; else null.</summary>
    public static PlatformBackupStorage? Of(RegionPlacement region) =>
        region.Settings?.EvidenceStorage is { Endpoint: { } endpoint, Bucket: { } bucket, CredentialsSecret: { } secret } storage
            ? new PlatformBackupStorage(endpoint, bucket, storage.Prefix ?? "", secret, storage.SigningRegion)
            : region.BackupStorage;

    /// <summary>The setting that names it (for messages).</summary>
    public static string Setting(RegionPlacement region) =>
        region.Settings?.EvidenceStorage is not null ? $"ControlPlane:Regions:{region.Name}:EvidenceStorage" : $"ControlPlane:Regions:{region.Name}:EvidenceStorage (or BackupStorage)";

    /// <summary>Why a region has nowhere to keep evidence.</summary>
    public static string None(RegionPlacement region) =>
        $"region {region.Name} has no evidence storage configured (ControlPlane:Regions:{region.Name}:EvidenceStorage or BackupStorage: Endpoint, Bucket and CredentialsSecret)";

    /// <summary>
    /// The content-addressed key: the tenant (a DNS label, no '/') and the pack's SHA-256 (hex) under the storage prefix.
    /// Two intents of a tenant with the same pack share the one object; tenants never share a key.
    /// </summary>
    public static string Key(string keyPrefix, string tenant, string sha256)
    {
        if (!SpecRules.IsDnsLabel(tenant) && !SpecRules.IsDnsSubdomain(tenant)) throw new ArgumentException($"tenant \"{tenant}\" is not a DNS name", nameof(tenant));
        if (sha256.Length != 64 || !sha256.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f')) throw new ArgumentException("not a lowercase hex SHA-256", nameof(sha256));
        return $"{keyPrefix}evidence/{tenant}/{sha256}";
    }

    /// <summary>The write-once rule: the SHA-256 of what the key holds now (null: nothing) against the pack's.</summary>
    public static EvidenceWrite Decide(string? storedSha256, string sha256) =>
        storedSha256 is null ? EvidenceWrite.Put : storedSha256 == sha256 ? EvidenceWrite.AlreadyStored : EvidenceWrite.Conflict;
}
