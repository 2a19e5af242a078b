using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Real Deployments for the tests (run by kube-controller-manager, their pods reported by the <see cref="NodeStandIn"/>).</summary>
public static class Deployments
{
    public static readonly ResourceType Type = new("apps", "v1", "deployments", "Deployment", true);
    public static readonly ResourceType Pods = new("", "v1", "pods", "Pod", true);

    public static Task<V1Deployment> CreateAsync(KubeApi api, string ns, string name, string image, int replicas = 2, string container = "app") =>
        api.CreateAsync(Type, ns, new V1Deployment
        {
            ApiVersion = "apps/v1", Kind = "Deployment",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
            Spec = new V1DeploymentSpec
            {
                Replicas = replicas,
                Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = name } },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                    Spec = new V1PodSpec
                    {
                        Containers =
                        [
                            new V1Container
                            {
                                Name = container, Image = image,
                                Resources = new V1ResourceRequirements
                                {
                                    Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("10m"), ["memory"] = new("16Mi") },
                                    Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("64Mi") },
                                },
                            },
                        ],
                    },
                },
            },
        }, CancellationToken.None);

    public static Task<V1Deployment> GetAsync(KubeApi api, string ns, string name) => api.GetAsync<V1Deployment>(Type, ns, name, CancellationToken.None);

    public static string ImageOf(V1Deployment d, string container = "app") => d.Spec.Template.Spec.Containers.Single(c => c.Name == container).Image;

    /// <summary>Rolled out: the controller saw the latest spec, and every replica is updated and available.</summary>
    public static bool IsRolledOut(V1Deployment d) =>
        d.Status?.ObservedGeneration >= d.Metadata.Generation
        && (d.Status.UpdatedReplicas ?? 0) == (d.Spec.Replicas ?? 1)
        && (d.Status.AvailableReplicas ?? 0) == (d.Spec.Replicas ?? 1)
        && (d.Status.Replicas ?? 0) == (d.Spec.Replicas ?? 1);

    public static async Task<V1Deployment> WaitAsync(KubeApi api, string ns, string name, Func<V1Deployment, bool> condition, string what, TimeSpan? timeout = null)
    {
        V1Deployment? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await api.TryGetAsync<V1Deployment>(Type, ns, name, CancellationToken.None);
                return last is not null && condition(last);
            }, timeout ?? TimeSpan.FromSeconds(60), $"deployment {ns}/{name}: {what}");
        }
        catch (TimeoutException e)
        {
            var s = last?.Status;
            throw new TimeoutException($"{e.Message} (generation {last?.Metadata.Generation}, observed {s?.ObservedGeneration}, replicas {s?.Replicas}, updated {s?.UpdatedReplicas}, available {s?.AvailableReplicas}, ready {s?.ReadyReplicas})");
        }

        return last!;
    }

    public static async Task<IReadOnlyList<V1Pod>> PodsAsync(KubeApi api, string ns, string app) =>
        (await api.ListAsync<V1Pod>(Pods, ns, $"app={app}", 500, null, CancellationToken.None)).Items;
}
