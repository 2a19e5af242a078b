using ControlPlane.Runtime;
using k8s;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The caches of workload kinds the tenants create and the operator only reads (Pods, Deployments,
/// Services): kept for the workspace namespaces alone (the namespaces the operator made, by its label)
/// and stripped to what their readers use. A cluster's other workloads are never cached and never
/// reach a handler; see "What the operator caches" in docs/operations.md.
/// </summary>
public static class GovernedCaches
{
    /// <summary>The workspace namespaces: those the operator made (its label), from the Workspace kind's own cache of them.</summary>
    public static NamespaceScope WorkspaceNamespaces(TermBuilder b) =>
        b.Scope(b.Informer<V1Namespace>(ResourceType.Namespaces, WorkspaceReconciler.Owned(b)), n => n.Metadata.Name);

    // Listed and watched only in the namespaces a reader holds (NamespacedInformer): a Rollout its ring
    // namespaces, an Exposure its own. The rest of the cluster is never listed, not even to be dropped.
    public static NamespacedInformer<V1Pod> PodsOf(TermBuilder b) =>
        b.NamespacedInformer<V1Pod>(RolloutReconciler.Pods, b.DefaultInformerOptions with { Transform = StripPod });

    public static NamespacedInformer<V1Deployment> DeploymentsOf(TermBuilder b) =>
        b.NamespacedInformer<V1Deployment>(RolloutReconciler.Deployments, b.DefaultInformerOptions with { Transform = StripDeployment });

    public static NamespacedInformer<V1Service> ServicesOf(TermBuilder b) =>
        b.NamespacedInformer<V1Service>(ExposureResources.Services, b.DefaultInformerOptions with { Transform = StripService });

    // One instance each: informer options are compared to share an informer between kinds.
    public static readonly Func<IKubernetesObject<V1ObjectMeta>, IKubernetesObject<V1ObjectMeta>> StripPod = o => Strip((V1Pod)o);
    public static readonly Func<IKubernetesObject<V1ObjectMeta>, IKubernetesObject<V1ObjectMeta>> StripDeployment = o => Strip((V1Deployment)o);
    public static readonly Func<IKubernetesObject<V1ObjectMeta>, IKubernetesObject<V1ObjectMeta>> StripService = o => Strip((V1Service)o);

    /// <summary>
    /// The identity, labels and owners every reader keys on. Annotations go: a tenant's
    /// last-applied-configuration is often the largest part of an object and nothing reads it.
    /// </summary>
    static V1ObjectMeta Meta(V1ObjectMeta m) => new()
    {
        Name = m.Name,
        NamespaceProperty = m.NamespaceProperty,
        Uid = m.Uid,
        ResourceVersion = m.ResourceVersion,
        Generation = m.Generation,
        CreationTimestamp = m.CreationTimestamp,
        DeletionTimestamp = m.DeletionTimestamp,
        Labels = m.Labels,
        OwnerReferences = m.OwnerReferences?.Select(o => new V1OwnerReference { ApiVersion = o.ApiVersion, Kind = o.Kind, Name = o.Name, Uid = o.Uid, Controller = o.Controller }).ToList(),
    };

    static List<V1Container> Images(IList<V1Container>? containers) =>
        (containers ?? []).Select(c => new V1Container { Name = c.Name, Image = c.Image }).ToList();

    /// <summary>
    /// A Pod as the Rollout kind reads it (RolloutResources.View): owner and template hash, container
    /// images, phase, readiness, and per container its restarts and when it last ended.
    /// </summary>
    public static V1Pod Strip(V1Pod pod) => new()
    {
        ApiVersion = pod.ApiVersion,
        Kind = pod.Kind,
        Metadata = Meta(pod.Metadata),
        Spec = new V1PodSpec { Containers = Images(pod.Spec?.Containers) },
        Status = pod.Status is not { } s ? null : new V1PodStatus
        {
            Phase = s.Phase,
            Conditions = s.Conditions?.Select(c => new V1PodCondition { Type = c.Type, Status = c.Status }).ToList(),
            ContainerStatuses = s.ContainerStatuses?.Select(c => new V1ContainerStatus
            {
                Name = c.Name,
                Image = c.Image,
                Ready = c.Ready,
                RestartCount = c.RestartCount,
                LastState = c.LastState?.Terminated?.FinishedAt is { } at
                    ? new V1ContainerState { Terminated = new V1ContainerStateTerminated { FinishedAt = at, ExitCode = c.LastState.Terminated.ExitCode } }
                    : null,
            }).ToList(),
        },
    };

    /// <summary>A Deployment as the Rollout kind reads it: replicas, container images, and the rollout counters of its status.</summary>
    public static V1Deployment Strip(V1Deployment d) => new()
    {
        ApiVersion = d.ApiVersion,
        Kind = d.Kind,
        Metadata = Meta(d.Metadata),
        Spec = new V1DeploymentSpec
        {
            Replicas = d.Spec?.Replicas,
            Selector = d.Spec?.Selector,
            Template = new V1PodTemplateSpec { Spec = new V1PodSpec { Containers = Images(d.Spec?.Template?.Spec?.Containers) } },
        },
        Status = d.Status is not { } s ? null : new V1DeploymentStatus
        {
            ObservedGeneration = s.ObservedGeneration,
            Replicas = s.Replicas,
            UpdatedReplicas = s.UpdatedReplicas,
            ReadyReplicas = s.ReadyReplicas,
            AvailableReplicas = s.AvailableReplicas,
        },
    };

    /// <summary>A Service as the Exposure kind reads it (ExposureResources.BackendProblem/BackendRefusal): type, selector, ports.</summary>
    public static V1Service Strip(V1Service svc) => new()
    {
        ApiVersion = svc.ApiVersion,
        Kind = svc.Kind,
        Metadata = Meta(svc.Metadata),
        Spec = svc.Spec is not { } s ? null : new V1ServiceSpec
        {
            Type = s.Type,
            Selector = s.Selector,
            Ports = s.Ports?.Select(p => new V1ServicePort { Name = p.Name, Port = p.Port, Protocol = p.Protocol, TargetPort = p.TargetPort }).ToList(),
        },
    };
}
