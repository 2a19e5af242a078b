using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Controllers;
using ControlPlane.Operator.Runtime;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Operator.Webhooks;

/// <summary>
/// What admission decisions read: caches kept by informers in every replica (not only the leader),
/// so the decision path never calls Postgres and never GETs.
/// </summary>
public sealed class AdmissionCaches
{
    public AdmissionCaches(KubeApi api, OperatorMetrics metrics, ILoggerFactory loggers)
    {
        Informer<T> Inform<T>(bool namespaced) where T : class, IKubernetesObject<V1ObjectMeta>
        {
            var type = ResourceType.For<T>(namespaced);
            var informer = new Informer<T>(api, type, metrics, loggers.CreateLogger("admission-informer." + type.Plural));
            All.Add(informer);
            return informer;
        }

        Tenants = Inform<Tenant>(false);
        Workspaces = Inform<Workspace>(false).AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant);
        Exposures = Inform<Exposure>(true);
        DeploymentIntents = Inform<DeploymentIntent>(true);
        Restores = Inform<Restore>(true);
    }

    public List<IInformer> All { get; } = [];
    public Informer<Tenant> Tenants { get; }
    public Informer<Workspace> Workspaces { get; }
    public Informer<Exposure> Exposures { get; }
    public Informer<DeploymentIntent> DeploymentIntents { get; }
    public Informer<Restore> Restores { get; }

    public bool Synced => All.All(i => i.HasSynced);

    /// <summary>The approvable object an Approval names, from the cache.</summary>
    public IKubernetesObject<V1ObjectMeta>? Target(string ns, string kind, string name) => kind switch
    {
        "Exposure" => Exposures.Get($"{ns}/{name}"),
        "DeploymentIntent" => DeploymentIntents.Get($"{ns}/{name}"),
        "Restore" => Restores.Get($"{ns}/{name}"),
        _ => null,
    };
}
