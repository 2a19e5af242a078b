using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>How the Exposure kind plugs into the runtime: what it caches, indexes and watches.</summary>
public sealed partial class ExposureReconciler
{
    /// <summary>The term's Exposure informer (shared with the Approval kind), indexed by the hosts claimed and served.</summary>
    public static Informer<Exposure> ExposuresOf(TermBuilder b, ExposureOptions options) =>
        b.Informer<Exposure>(Type)
            .AddIndex(ExposureResources.ClaimedHostIndex, e => ExposureResources.ClaimedHost(e, options))
            .AddIndex(ExposureResources.LiveHostIndex, e => ExposureResources.LiveHost(e, options));

    public static void Setup(TermBuilder b, SystemDatabase database, ControlPlaneOptions options)
    {
        var exposures = ExposuresOf(b, options.Exposure);
        var caches = new ExposureCaches(exposures, WorkspaceReconciler.WorkspacesOf(b), b.Informer<Tenant>(TenantReconciler.Type),
            b.Informer<Approval>(ApprovalReconciler.Type), WorkspaceReconciler.RoleBindingsOf(b),
            // Backends are the tenants' own Services: those of workspace namespaces, type, selector and ports only.
            GovernedCaches.ServicesOf(b),
            b.Informer<V1Ingress>(ExposureResources.Ingresses, WorkspaceReconciler.Owned(b) with { IndexByNamespace = false }));
        var writes = new OwnWrites();
        var reconciler = new ExposureReconciler(caches, b.Api, database, StalledStatus.Writer(b, writes), new ChildApplier(b.Api, writes), b.Events,
            options.Exposure, b.Time, b.Loggers.CreateLogger<ExposureReconciler>());
        // An Exposure gone lets go of its namespace's Services.
        exposures.AddHandler(e =>
        {
            if (e.Type == InformerEventType.Deleted) caches.Services.Forget(KeyOf(e.Object));
        });
        b.Controller("exposure", exposures, reconciler)
            .SkipsEchoesOf(writes)
            // A route freed or taken: the other claimants of the old and the new route decide again.
            .WatchesEvents(exposures, e => reconciler.RouteNeighbours(e))
            // A new, changed (spec) or withdrawn approval; its status (written by the approval kind) changes nothing here.
            .WatchesEvents(caches.Approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == Exposure.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            // Who may approve changed.
            .Watches(caches.RoleBindings, rb => KeysIn(exposures, rb.Metadata.NamespaceProperty))
            .Watches(caches.Services, s => exposures.InNamespace(s.Metadata.NamespaceProperty)
                .Where(e => e.Spec.Backend.Service == s.Metadata.Name || e.Status?.PublishedSpec?.Backend.Service == s.Metadata.Name)
                .Select(e => $"{e.Metadata.NamespaceProperty}/{e.Metadata.Name}"))
            .Watches(caches.Ingresses, i => i.Metadata.Labels?.TryGetValue(ApiGroup.ExposureLabel, out var name) == true
                ? [$"{i.Metadata.NamespaceProperty}/{name}"]
                : [])
            // The environment (how many approvals) and the tenant (suspended, data mode) are spec: status updates change nothing here.
            .WatchesEvents(caches.Workspaces, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : KeysIn(exposures, e.Object.Metadata.Name))
            .WatchesEvents(caches.Tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name).SelectMany(w => KeysIn(exposures, w.Metadata.Name))
                    .Concat(DelegationChanged(e) ? OnDelegatedHosts(exposures) : Enumerable.Empty<string>()));
    }

    /// <summary>A tenant's delegations changed: another tenant's Exposure on an overlapping host may now be contested (or free again).</summary>
    static bool DelegationChanged(InformerEvent<Tenant> e) =>
        !(e.Old?.Spec.Exposure?.AllowedDomains ?? []).SequenceEqual(e.Object.Spec.Exposure?.AllowedDomains ?? [], StringComparer.Ordinal);

    static IEnumerable<string> OnDelegatedHosts(Informer<Exposure> exposures) =>
        exposures.List().Where(x => !string.IsNullOrEmpty(x.Spec.Host) || !string.IsNullOrEmpty(x.Status?.PublishedSpec?.Host))
            .Select(x => $"{x.Metadata.NamespaceProperty}/{x.Metadata.Name}");

    static IEnumerable<string> KeysIn(Informer<Exposure> exposures, string ns) =>
        exposures.InNamespace(ns).Select(e => $"{e.Metadata.NamespaceProperty}/{e.Metadata.Name}");

    /// <summary>The other Exposures on the hosts this one claimed or served before and after the change.</summary>
    public IEnumerable<string> RouteNeighbours(InformerEvent<Exposure> e)
    {
        if (e.Type == InformerEventType.Modified && e.Old is not null
            && ExposureResources.ClaimedRoute(e.Old, options) == ExposureResources.ClaimedRoute(e.Object, options)
            && ExposureResources.LiveRoute(e.Old, options) == ExposureResources.LiveRoute(e.Object, options)) return [];
        var hosts = new[] { e.Old, e.Object }.OfType<Exposure>()
            .SelectMany(x => new[] { ExposureResources.ClaimedHost(x, options), ExposureResources.LiveHost(x, options) })
            .OfType<string>().Distinct();
        return hosts.SelectMany(OnHost).Where(x => x.Metadata.Uid != e.Object.Metadata.Uid).Select(KeyOf).Distinct();
    }
}
