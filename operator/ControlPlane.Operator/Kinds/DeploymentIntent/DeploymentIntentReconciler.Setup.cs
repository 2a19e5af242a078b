using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>How the DeploymentIntent kind plugs into the runtime: what it caches, indexes and watches.</summary>
public sealed partial class DeploymentIntentReconciler
{
    public static void Setup(TermBuilder b, SystemDatabase database, HttpMessageHandler planeHandler, IntentMetrics metrics, ControlPlaneOptions options)
    {
        var intents = b.Informer<DeploymentIntent>(Type).AddIndex(DeploymentIntentResources.ApplicationIndex, i => i.Spec.Application);
        var rollouts = b.Informer<Rollout>(RolloutReconciler.Type);
        var rolloutApplier = new ChildApplier(b.Api);
        var planes = new ExecutionPlaneFactory(b.Api, options.DeploymentIntent, planeHandler, intent => new KubernetesExecutionPlane(b.Api, rolloutApplier, rollouts, intent));
        var caches = new IntentCaches(intents, WorkspaceReconciler.WorkspacesOf(b), b.Informer<Tenant>(TenantReconciler.Type),
            b.Informer<Approval>(ApprovalReconciler.Type), WorkspaceReconciler.RoleBindingsOf(b),
            // Only the one ConfigMap that can hold the risk model (its namespace is checked on use).
            b.Informer<V1ConfigMap>(WorkspaceReconciler.ConfigMaps, b.DefaultInformerOptions with { FieldSelector = "metadata.name=" + RiskModel.ConfigMapName, IndexByNamespace = false }),
            b.Informer<Application>(ApplicationReconciler.Type),
            ExceptionReconciler.ExceptionsOf(b));
        metrics.Source = intents.List;
        var writes = new OwnWrites();
        var reconciler = new DeploymentIntentReconciler(caches, b.Api, database, planes, StalledStatus.Writer(b, writes), b.Events, metrics, options, b.Time,
            b.Loggers.CreateLogger<DeploymentIntentReconciler>());
        // A trusted key that does not parse verifies nothing (every artifact it should vouch for becomes UnsignedPackage): say so.
        foreach (var problem in ArtifactSignatures.KeyProblems(options.DeploymentIntent.TrustedSigningKeys)) b.Loggers.CreateLogger<DeploymentIntentReconciler>().LogWarning("{Problem}", problem);
        b.Controller("deploymentintent", intents, reconciler)
            .SkipsEchoesOf(writes)
            // A ring finishing in one change frees the ring for the others of the same application.
            .WatchesEvents(intents, e => e.Type == InformerEventType.Added
                                         || (e.Type == InformerEventType.Modified && DeploymentIntentResources.ActiveRings(e.Old!).SequenceEqual(DeploymentIntentResources.ActiveRings(e.Object)))
                ? []
                : intents.ByIndex(DeploymentIntentResources.ApplicationIndex, e.Object.Spec.Application).Where(o => o.Metadata.Uid != e.Object.Metadata.Uid).Select(KeyOf))
            .WatchesEvents(caches.Approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == DeploymentIntent.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            .Watches(caches.RoleBindings, rb => intents.InNamespace(rb.Metadata.NamespaceProperty).Select(KeyOf))
            // An Application's approved scope (its status) or its spec: the intents naming it in its namespace decide again.
            .Watches(caches.Applications, a => intents.ByIndex(DeploymentIntentResources.ApplicationIndex, a.Metadata.Name)
                .Where(i => i.Metadata.NamespaceProperty == a.Metadata.NamespaceProperty).Select(KeyOf))
            // An Exception, or an Approval of one, changes what covers the intents of its digest.
            .Watches(caches.Exceptions, x => IntentsOfDigest(intents, x.Metadata.NamespaceProperty, x.Spec.Artifact.Sha256))
            .WatchesEvents(caches.Approvals, e => e.Object.Spec.Target.Kind != SecurityException.KubeKind
                                                  || (e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation)
                ? []
                : caches.Exceptions.Get($"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}") is { } x
                    ? IntentsOfDigest(intents, x.Metadata.NamespaceProperty, x.Spec.Artifact.Sha256)
                    : [])
            // An invalid risk model holds intents Pending unscored: once it is fixed or removed they are assessed.
            .Watches(caches.RiskModels, _ => intents.List().Where(i => i.Status?.RiskScore is null).Select(KeyOf))
            // The kubernetes plane's Rollouts: a ring's progress is theirs.
            .WatchesEvents(rollouts, e => e.Object.Metadata.Labels?.TryGetValue(ApiGroup.IntentLabel, out var owner) == true
                                          && (e.Type != InformerEventType.Modified || e.Old?.Status?.Phase != e.Object.Status?.Phase)
                ? [$"{e.Object.Metadata.NamespaceProperty}/{owner}"]
                : [])
            // Ring membership and environment are workspace labels and spec; the tenant's scopes and suspension its spec.
            .WatchesEvents(caches.Workspaces, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                                                   && SameLabels(e.Old, e.Object) && e.Old?.Status?.Environment == e.Object.Status?.Environment
                ? []
                : caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Spec.Tenant).SelectMany(w => intents.InNamespace(w.Metadata.Name)).Select(KeyOf))
            .WatchesEvents(caches.Tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name).SelectMany(w => intents.InNamespace(w.Metadata.Name)).Select(KeyOf));
    }

    static bool SameLabels(Workspace? a, Workspace b) =>
        a is not null && (a.Metadata.Labels ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key).SequenceEqual((b.Metadata.Labels ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key));

    static IEnumerable<string> IntentsOfDigest(Informer<DeploymentIntent> intents, string ns, string sha256) =>
        intents.InNamespace(ns).Where(i => string.Equals(i.Spec.Artifact.Sha256, sha256, StringComparison.OrdinalIgnoreCase)).Select(KeyOf);

    static string KeyOf(DeploymentIntent i) => $"{i.Metadata.NamespaceProperty}/{i.Metadata.Name}";
}
