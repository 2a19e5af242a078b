using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator;

/// <summary>What a kind's admission may use: built once per process, in every replica.</summary>
public sealed record AdmissionDependencies(AdmissionCaches Caches, AdmissionSettings Settings);

/// <summary>One kind the operator serves: its group and kind (from its type), and its admission.</summary>
public sealed record KindRegistration(string Group, string Kind, Type ObjectType, Func<AdmissionDependencies, IAdmissionHandler> Admission)
{
    /// <summary>The kind of <typeparamref name="T"/> as its [KubernetesEntity] names it.</summary>
    public static KindRegistration Of<T>(Func<AdmissionDependencies, IAdmissionHandler> admission) where T : IKubernetesObject
    {
        var e = (KubernetesEntityAttribute?)Attribute.GetCustomAttribute(typeof(T), typeof(KubernetesEntityAttribute))
            ?? throw new InvalidOperationException($"{typeof(T).Name} lacks [KubernetesEntity]");
        return new(e.Group ?? "", e.Kind, typeof(T), admission);
    }
}

/// <summary>
/// Every kind in one list: the controlplane.io kinds and the built-in kinds the operator governs in
/// workspace namespaces. Admission dispatch reads it (a new kind is one line here, not a switch).
/// </summary>
public static class KindRegistry
{
    public static readonly IReadOnlyList<KindRegistration> Kinds =
    [
        KindRegistration.Of<Workspace>(d => new WorkspaceAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Approval>(d => new ApprovalAdmission(d.Caches)),
        KindRegistration.Of<Tenant>(d => new TenantAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Exposure>(d => new ExposureAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Rollout>(d => new RolloutAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<WorkspaceNetworkPolicy>(d => new WorkspaceNetworkPolicyAdmission(d.Caches)),
        KindRegistration.Of<DeploymentIntent>(d => new DeploymentIntentAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Backup>(d => new BackupAdmission(d.Caches)),
        KindRegistration.Of<BackupPlan>(d => new BackupPlanAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Restore>(d => new RestoreAdmission(d.Caches)),
        // Built-in kinds only the operator writes in workspace namespaces (the governed webhook).
        KindRegistration.Of<V1Ingress>(d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughExposure)),
        KindRegistration.Of<V1NetworkPolicy>(d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughNetworkPolicy)),
        KindRegistration.Of<V1ResourceQuota>(d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughQuota)),
        KindRegistration.Of<V1LimitRange>(d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughQuota)),
    ];

    /// <summary>
    /// The admission handlers of each kind, in order: on controlplane.io kinds the stamps every one of
    /// them gets (<see cref="StampsAdmission"/>) first, then the kind's own.
    /// </summary>
    public static IReadOnlyDictionary<(string Group, string Kind), IReadOnlyList<IAdmissionHandler>> AdmissionRoutes(AdmissionDependencies dependencies)
    {
        var stamps = new StampsAdmission(dependencies.Caches, dependencies.Settings);
        return Kinds.ToDictionary(k => (k.Group, k.Kind), k => k.Group == ApiGroup.Group
            ? (IReadOnlyList<IAdmissionHandler>)[stamps, k.Admission(dependencies)]
            : [k.Admission(dependencies)]);
    }
}
