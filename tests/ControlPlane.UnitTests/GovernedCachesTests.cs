using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>What the workload caches keep (issue 29): every field their readers use, and little else.</summary>
public sealed class GovernedCachesTests
{
    static readonly DateTime T0 = new(2026, 12, 1, 10, 0, 0, DateTimeKind.Utc);

    static V1Deployment Deployment() => new()
    {
        ApiVersion = "apps/v1", Kind = "Deployment",
        Metadata = new V1ObjectMeta
        {
            Name = "orders", NamespaceProperty = "ws", Uid = "d-1", Generation = 3, ResourceVersion = "9",
            Annotations = new Dictionary<string, string> { ["deployment.kubernetes.io/revision"] = "3" },
            ManagedFields = [new V1ManagedFieldsEntry { Manager = "kubectl" }],
        },
        Spec = new V1DeploymentSpec
        {
            Replicas = 2,
            Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "orders" } },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = "orders" } },
                Spec = new V1PodSpec { Containers = [new V1Container { Name = "app", Image = "r/orders:2", Env = [new V1EnvVar { Name = "A", Value = "b" }] }, new V1Container { Name = "side", Image = "r/side:1" }] },
            },
        },
        Status = new V1DeploymentStatus { ObservedGeneration = 3, Replicas = 2, UpdatedReplicas = 2, AvailableReplicas = 2, ReadyReplicas = 2, Conditions = [new V1DeploymentCondition { Type = "Available", Status = "True" }] },
    };

    static V1Pod Pod(string name, int restarts, bool ready) => new()
    {
        ApiVersion = "v1", Kind = "Pod",
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = "ws", ResourceVersion = "5",
            Labels = new Dictionary<string, string> { ["app"] = "orders", ["pod-template-hash"] = "abc" },
            OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "orders-abc", Uid = "rs-1", Controller = true }],
            Annotations = new Dictionary<string, string> { ["big"] = new string('x', 1000) },
        },
        Spec = new V1PodSpec
        {
            NodeName = "n1",
            Containers = [new V1Container { Name = "app", Image = "r/orders:2", Args = ["--a"] }, new V1Container { Name = "side", Image = "r/side:1" }],
            Volumes = [new V1Volume { Name = "data", EmptyDir = new V1EmptyDirVolumeSource() }],
        },
        Status = new V1PodStatus
        {
            Phase = "Running", PodIP = "10.0.0.1", Message = "m",
            Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False", LastTransitionTime = T0 }],
            ContainerStatuses =
            [
                new V1ContainerStatus
                {
                    Name = "app", Image = "r/orders:2", ImageID = "sha", Ready = ready, RestartCount = restarts,
                    LastState = restarts == 0 ? null : new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 1, FinishedAt = T0.AddMinutes(restarts), Reason = "Error" } },
                    State = new V1ContainerState { Running = new V1ContainerStateRunning { StartedAt = T0 } },
                },
            ],
        },
    };

    static object Comparable(DeploymentView v) => new { v.Namespace, v.Exists, v.OnTarget, v.RolledOut, Images = string.Join(",", v.Images.Select(i => $"{i.Name}={i.Image}")), v.Restarts, v.NotReady, v.LastRestartAt, v.Summary };

    [Fact]
    public void TheRolloutView_OfStrippedObjects_IsTheViewOfTheWholeOnes()
    {
        var target = new List<ContainerImage> { new() { Name = "app", Image = "r/orders:2" } };
        var pods = new[] { Pod("a", 0, true), Pod("b", 3, false) };
        var whole = RolloutResources.View("ws", Deployment(), target, pods);
        var stripped = RolloutResources.View("ws", GovernedCaches.Strip(Deployment()), target, pods.Select(GovernedCaches.Strip).ToList());
        Assert.Equal(Comparable(whole), Comparable(stripped));
        Assert.Equal(3, stripped.Restarts);
        Assert.Equal(1, stripped.NotReady);
        Assert.Equal(T0.AddMinutes(3), stripped.LastRestartAt);
    }

    [Fact]
    public void AStrippedPod_KeepsOnlyWhatIsRead()
    {
        var pod = GovernedCaches.Strip(Pod("a", 1, true));
        Assert.Null(pod.Metadata.Annotations);
        Assert.Null(pod.Metadata.ManagedFields);
        Assert.Null(pod.Spec.Volumes);
        Assert.Null(pod.Spec.NodeName);
        Assert.All(pod.Spec.Containers, c => Assert.Null(c.Args));
        Assert.Null(pod.Status.PodIP);
        Assert.Null(pod.Status.Message);
        Assert.Equal("rs-1", Assert.Single(pod.Metadata.OwnerReferences).Uid);
        // Much smaller than what the server sends.
        Assert.True(KubernetesJson.Serialize(pod).Length * 3 < KubernetesJson.Serialize(Pod("a", 1, true)).Length);
    }

    [Fact]
    public void AStrippedService_AnswersTheBackendChecksAsTheWholeOne()
    {
        var whole = new V1Service
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "ws" },
            Spec = new V1ServiceSpec { Type = "ClusterIP", ClusterIP = "10.96.0.9", Selector = new Dictionary<string, string> { ["app"] = "web" }, Ports = [new V1ServicePort { Port = 8080, Protocol = "TCP" }] },
        };
        var backend = new ExposureBackend { Service = "web", Port = 8080 };
        var spec = new ExposureSpec { Backend = backend };
        var stripped = GovernedCaches.Strip(whole);
        Assert.Null(stripped.Spec.ClusterIP);
        Assert.Equal(ExposureResources.BackendProblem("ws", spec, whole), ExposureResources.BackendProblem("ws", spec, stripped));
        Assert.Equal(ExposureResources.BackendRefusal("ws", backend, whole), ExposureResources.BackendRefusal("ws", backend, stripped));
        whole.Spec.Type = "ExternalName";
        Assert.NotNull(ExposureResources.BackendRefusal("ws", backend, GovernedCaches.Strip(whole)));
    }

    [Fact]
    public void AnUpdateOfAFieldTheTransformDrops_IsTheSameAsCached_AReadFieldIsNot()
    {
        var cached = GovernedCaches.Strip(Pod("a", 0, true));
        var messageOnly = Pod("a", 0, true);
        messageOnly.Status.Message = "other";
        messageOnly.Metadata.ResourceVersion = "6";
        Assert.True(CacheCompaction.SameAsCached(cached, GovernedCaches.Strip(messageOnly), dropsParts: true));
        Assert.False(CacheCompaction.SameAsCached(cached, GovernedCaches.Strip(Pod("a", 1, true)), dropsParts: true));
    }

    [Fact]
    public void AnInformerWithATransform_StoresTheTransformedObject()
    {
        var api = new KubeApi(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });
        var informer = new Informer<V1Pod>(api, RolloutReconciler.Pods, new OperatorMetrics(), NullLogger.Instance, new InformerOptions { Transform = GovernedCaches.StripPod });
        informer.Seed(Pod("a", 0, true));
        Assert.Null(informer.Get("ws/a")!.Metadata.Annotations);
        Assert.Equal("app", informer.Get("ws/a")!.Spec.Containers[0].Name);
    }
}
