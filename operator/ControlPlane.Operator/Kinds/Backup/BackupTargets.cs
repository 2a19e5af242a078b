using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>Refused until the spec or configuration changes: the message names the field or setting.</summary>
public sealed class BackupRefusedException(string reason, string message) : Exception(message)
{
    public string Reason { get; } = reason;
}

/// <summary>Not yet possible (the workspace database is still being made): retried.</summary>
public sealed class BackupNotReadyException(string message) : Exception(message);

/// <summary>What a plan backs up: its workspace's own database, on the workspace's region.</summary>
public sealed record BackupSource(Workspace Workspace, string Tenant, string Region, string Database, string SecretName);

/// <summary>
/// Resolves, for a plan, the database (only its workspace's own), the workspace role's login (where and as
/// whom from the operator's own record; only the password from the Secret it wrote, and only while that
/// Secret is intact) and the storage (the region's platform
/// storage; the plan's own bucket only where allowed). Every reference is checked here again, whatever
/// admission let through.
/// </summary>
public sealed class BackupTargets(KubeApi api, Informer<Workspace> workspaces, Informer<Tenant> tenants, ControlPlaneOptions options,
    SystemDatabase database, RegionDatabases regions)
{
    public ControlPlaneOptions Options => options;

    /// <summary>The caches this reads: a controller using it watches them, so they have synced before its first reconcile.</summary>
    public Informer<Workspace> Workspaces => workspaces;

    public Informer<Tenant> Tenants => tenants;

    /// <param name="toRun">False when only the region matters (deleting a stored object): a workspace being deleted still has one.</param>
    public BackupSource Source(BackupPlan plan, bool toRun = true)
    {
        var ns = plan.Metadata.NamespaceProperty;
        var ws = workspaces.Get(ns) ?? throw new BackupRefusedException(BackupReasons.NotAWorkspace, $"metadata.namespace: \"{ns}\" is not a workspace");
        if (toRun && ws.Metadata.DeletionTimestamp is not null) throw new BackupNotReadyException($"workspace {ns} is being deleted");
        var db = ws.Status?.Database;
        if (toRun && (db?.Name is null || db.SecretName is null)) throw new BackupNotReadyException($"workspace {ns} has no database yet (status.database)");
        if (toRun && plan.Spec.Database is { } asked && asked != db!.Name)
        {
            throw new BackupRefusedException(BackupReasons.DatabaseNotOwned, $"spec.database: \"{asked}\" is not this workspace's database ({db.Name}); leave it empty to back up the workspace's own");
        }

        var tenant = tenants.Get(ws.Spec.Tenant) ?? throw new BackupNotReadyException($"tenant {ws.Spec.Tenant} of workspace {ns} is not in the cache yet");
        var region = Placement.WorkspaceRegion(ws, tenant);
        return new BackupSource(ws, ws.Spec.Tenant, region, db?.Name ?? "", db?.SecretName ?? "");
    }

    /// <summary>
    /// The workspace role's login, built once per job and passed down (never read again): the server is the
    /// region's configured one, the database and role are the allocation the operator recorded for this
    /// workspace (the role is named as its database). Only the password comes from the Secret the Workspace
    /// reconciler wrote, and only while that Secret is intact (<see cref="CredentialsTampering"/>); a tampered
    /// one is refused (CredentialsTampered) and nothing runs. Its host, port and username are never used.
    /// </summary>
    public async Task<PgLogin> LoginAsync(BackupSource source, CancellationToken ct)
    {
        var ws = source.Workspace;
        var ns = ws.Metadata.Name;
        var allocation = (await database.GetDatabaseAllocationsAsync(source.Region, ns, ct).ConfigureAwait(false))
            .FirstOrDefault(a => a.State == "active" && a.Tenant == source.Tenant && a.Provisioned);
        if (allocation is null) throw new BackupNotReadyException($"workspace {ns} has no provisioned database recorded in region {source.Region} yet");
        if (allocation.Name != source.Database)
        {
            throw new BackupRefusedException(BackupReasons.DatabaseNotRecorded,
                $"status.database.name of workspace {ns} ({source.Database}) is not the database recorded for it ({allocation.Name}); nothing runs");
        }

        var endpoint = regions.Endpoint(source.Region);
        var secret = await api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, source.SecretName, ct).ConfigureAwait(false)
                     ?? throw new BackupNotReadyException($"the workspace's credentials Secret {ns}/{source.SecretName} does not exist yet");
        var tampering = CredentialsTampering(secret, ws, endpoint, allocation.Name, allocation.Name);
        if (tampering.Count > 0)
        {
            throw new BackupRefusedException(BackupReasons.CredentialsTampered,
                $"Secret {ns}/{source.SecretName} was changed outside the operator ({string.Join("; ", tampering)}); nothing runs until the Workspace reconciler rewrites it (delete the Secret to have it recreated)");
        }

        return new PgLogin(endpoint.Host, endpoint.Port, allocation.Name, allocation.Name, Encoding.UTF8.GetString(secret.Data!["password"]));
    }

    /// <summary>
    /// How a workspace's credentials Secret differs from what the operator wrote (empty when intact): its
    /// controller reference and managed-by label, host, port, database and username against the record, and the
    /// password against the hash annotation. Only the differences are named, never a value.
    /// </summary>
    public static IReadOnlyList<string> CredentialsTampering(V1Secret secret, Workspace ws, DatabaseEndpoint endpoint, string database, string role)
    {
        var problems = new List<string>();
        if (secret.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == ws.Metadata.Uid) != true)
        {
            problems.Add("metadata.ownerReferences: the workspace's controller reference was removed");
        }

        if (secret.Metadata.Labels?.TryGetValue(ApiGroup.ManagedByLabel, out var by) != true || by != ApiGroup.ManagedByValue)
        {
            problems.Add($"metadata.labels: {ApiGroup.ManagedByLabel} was removed");
        }

        string? Field(string key) => secret.Data?.TryGetValue(key, out var v) == true ? Encoding.UTF8.GetString(v) : null;
        var expected = new (string Key, string Value)[]
        {
            ("host", endpoint.Host), ("port", endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("database", database), ("username", role),
        };
        problems.AddRange(expected.Where(e => Field(e.Key) != e.Value).Select(e => $"data.{e.Key} differs from the operator's record"));
        var password = Field("password");
        if (string.IsNullOrEmpty(password)
            || secret.Metadata.Annotations?.TryGetValue(ApiGroup.PasswordHashAnnotation, out var hash) != true || hash != WorkspaceResources.PasswordHash(password))
        {
            problems.Add($"data.password does not match the {ApiGroup.PasswordHashAnnotation} annotation");
        }

        return problems;
    }

    /// <summary>
    /// The server's own check of a login (<see cref="RegionDatabases.OpenVerifiedAsync"/>) before anything runs
    /// as it; a refusal is a <see cref="BackupRefusedException"/> with reason SessionNotVerified.
    /// </summary>
    public async Task<VerifiedSession> VerifyAsync(string region, PgLogin login, CancellationToken ct)
    {
        try
        {
            return await regions.VerifySessionAsync(region, login.Database, login.User, login.Password, ct).ConfigureAwait(false);
        }
        catch (SessionNotVerifiedException e)
        {
            throw new BackupRefusedException(BackupReasons.SessionNotVerified, e.Message);
        }
    }

    /// <summary>Where the plan's backups go. Region residency: the workspace's region's storage, or the plan's own bucket where allowed.</summary>
    public async Task<S3Target> StorageAsync(BackupPlan plan, string region, CancellationToken ct)
    {
        if (BackupRules.TenantStorageRefusal(plan, options.Backup) is { } refusal) throw new BackupRefusedException(BackupReasons.TenantStorageNotAllowed, refusal);
        if (plan.Spec.Storage?.S3 is { } own)
        {
            var (id, key) = await CredentialsAsync(plan.Metadata.NamespaceProperty, own.CredentialsSecret.Name ?? "", "spec.storage.s3.credentialsSecret", ct).ConfigureAwait(false);
            return new S3Target(own.Endpoint, own.Bucket, own.Prefix ?? "", id, key);
        }

        return await PlatformStorageAsync(region, ct).ConfigureAwait(false);
    }

    /// <summary>The region's platform storage, with its credentials from the operator's namespace.</summary>
    public async Task<S3Target> PlatformStorageAsync(string region, CancellationToken ct)
    {
        var placement = Placement.Region(options, region);
        var platform = placement.BackupStorage ?? throw new BackupRefusedException(BackupReasons.NoBackupStorage, placement.NoBackupStorage);
        var (accessKey, secretKey) = await CredentialsAsync(options.OperatorNamespace, platform.CredentialsSecret, placement.BackupStorageSetting + ":CredentialsSecret", ct).ConfigureAwait(false);
        return new S3Target(platform.Endpoint, platform.Bucket, platform.Prefix, accessKey, secretKey, platform.SigningRegion);
    }

    async Task<(string AccessKeyId, string SecretAccessKey)> CredentialsAsync(string ns, string name, string field, CancellationToken ct)
    {
        var secret = await api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, name, ct).ConfigureAwait(false)
                     ?? throw new BackupRefusedException(BackupReasons.CredentialsNotFound, $"{field}: Secret {ns}/{name} not found");
        string Field(string key) => secret.Data?.TryGetValue(key, out var v) == true && v.Length > 0 ? Encoding.UTF8.GetString(v)
            : throw new BackupRefusedException(BackupReasons.CredentialsInvalid, $"{field}: Secret {ns}/{name} has no {key}");
        return (Field("accessKeyId"), Field("secretAccessKey"));
    }
}
