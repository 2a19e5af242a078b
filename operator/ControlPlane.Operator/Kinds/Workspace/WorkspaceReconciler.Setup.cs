using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>How the Workspace kind plugs into the runtime: what it caches, indexes and watches, and its background loop.</summary>
public sealed partial class WorkspaceReconciler
{
    /// <summary>The term's Workspace informer, indexed by tenant (shared with the Tenant and Approval kinds).</summary>
    public static Informer<Workspace> WorkspacesOf(TermBuilder b) =>
        Indexed(b.Informer<Workspace>(Type));

    /// <summary>The indexes the Workspace kind reads its cache by (by tenant; those with a ServiceAccount member).</summary>
    public static Informer<Workspace> Indexed(Informer<Workspace> workspaces) =>
        workspaces.AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant, versioned: true)
            .AddIndex(WorkspaceResources.ServiceAccountMemberIndex, w => (w.Spec.Members ?? []).Any(m => KubernetesIdentities.NamespaceOf(m) is not null) ? "yes" : null);

    /// <summary>Owned children are cached only when they carry our label.</summary>
    public static InformerOptions Owned(TermBuilder b) => b.DefaultInformerOptions with { LabelSelector = WorkspaceResources.ManagedSelector };

    /// <summary>The term's cache of the RoleBindings the operator made (shared with the Approval kind).</summary>
    public static Informer<V1RoleBinding> RoleBindingsOf(TermBuilder b) => b.Informer<V1RoleBinding>(RoleBindings, Owned(b));

    public static WorkspaceCaches CachesOf(TermBuilder b)
    {
        // Children read by key only need no per-namespace index.
        var byKey = Owned(b) with { IndexByNamespace = false };
        return new WorkspaceCaches(WorkspacesOf(b), b.Informer<Tenant>(TenantReconciler.Type),
            b.Informer<V1Namespace>(ResourceType.Namespaces, Owned(b)),
            RoleBindingsOf(b),
            b.Informer<V1ResourceQuota>(Quotas, byKey with { DropStatus = true }),
            b.Informer<V1LimitRange>(LimitRanges, byKey),
            b.Informer<V1NetworkPolicy>(NetworkPolicies, byKey),
            b.Informer<V1ConfigMap>(ConfigMaps, byKey),
            b.Informer<V1Secret>(Secrets, byKey),
            // Provider keys are the user's own Secrets: service-account tokens (one per namespace) are never one,
            // and only a workspace namespace holds one (the cluster's other Secrets are not even looked at).
            b.Informer<PartialObjectMetadata>(Secrets, b.DefaultInformerOptions with
            {
                MetadataOnly = true, IndexByNamespace = false, FieldSelector = "type!=kubernetes.io/service-account-token", Scope = GovernedCaches.WorkspaceNamespaces(b),
            }));
    }

    public static void Setup(TermBuilder b, SystemDatabase database, RegionDatabases regions, KeyVault? vault, ControlPlaneOptions options)
    {
        var caches = CachesOf(b);
        // The controller keeps the versions its own writes produced, to skip their watch echoes.
        var writes = new OwnWrites();
        var reconciler = new WorkspaceReconciler(caches, b.Api, database, regions, vault, StalledStatus.Writer(b, writes), new ChildApplier(b.Api, writes), b.Events,
            options, b.Time, b.Loggers.CreateLogger<WorkspaceReconciler>());
        b.Controller("workspace", caches.Workspaces, reconciler)
            .SkipsEchoesOf(writes)
            // Workspaces read their tenant's spec only: its status updates (counts, usage) re-reconcile nothing.
            .WatchesEvents(caches.Tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : reconciler.WorkspacesOfTenant(e.Object))
            .WatchesEvents(caches.Workspaces, e => reconciler.SiblingsAffectedBy(e).Concat(reconciler.MembersInNamespaceOf(e)))
            .Watches(caches.Namespaces, OwnerOf)
            .Watches(caches.RoleBindings, OwnerOf)
            .Watches(caches.Quotas, OwnerOf)
            .Watches(caches.LimitRanges, OwnerOf)
            .Watches(caches.NetworkPolicies, OwnerOf)
            .Watches(caches.ConfigMaps, OwnerOf)
            .Watches(caches.Secrets, OwnerOf)
            // The typed Secret watch takes the echoes of our writes; this one maps users' provider-key Secrets.
            .Watches(caches.AllSecretsMetadata, reconciler.WorkspaceReferencingSecret, skipOwnEchoes: false);
        var purgeLog = b.Loggers.CreateLogger<WorkspaceReconciler>();
        b.Loop("provider-key purge", ct => PurgeProviderKeysAsync(database, options.KeyPurgeInterval, b.Metrics, purgeLog, b.Time, ct));
    }

    /// <summary>The background pass that removes provider keys whose rotation grace period ended.</summary>
    static async Task PurgeProviderKeysAsync(SystemDatabase database, TimeSpan interval, OperatorMetrics metrics, ILogger logger, TimeProvider time, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    var purged = await database.PurgeExpiredProviderKeysAsync(ct).ConfigureAwait(false);
                    if (purged > 0) logger.LogInformation("purged {Count} provider key(s) past their rotation grace period", purged);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    metrics.PostgresErrors.WithLabels("purge-provider-keys").Inc();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
