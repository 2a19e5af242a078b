using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator;

/// <summary>What a kind's controller setup may use: built once by <see cref="OperatorRuntime"/>, shared by every term.</summary>
public sealed record ControllerDependencies(
    ControlPlaneOptions Options,
    SystemDatabase Database,
    RegionDatabases RegionDatabases,
    KeyVault? Vault,
    HttpMessageHandler PlaneHandler,
    IntentMetrics IntentMetrics,
    BackupMetrics BackupMetrics,
    BackgroundJobs BackupJobs,
    PgTools PgTools,
    BackupTargetsFactory BackupTargetsOf,
    NotificationMetrics NotificationMetrics);

/// <summary>What a kind's admission may use: built once per process, in every replica.</summary>
public sealed record AdmissionDependencies(AdmissionCaches Caches, AdmissionSettings Settings);

/// <summary>
/// One kind the operator serves: its group and kind (from its type's [KubernetesEntity]), its
/// controller setup (what it caches, indexes and watches; none for a kind only admission governs)
/// and its admission.
/// </summary>
public sealed record KindRegistration(
    string Group,
    string Kind,
    Type ObjectType,
    Action<TermBuilder, ControllerDependencies>? Controller,
    Func<AdmissionDependencies, IAdmissionHandler> Admission)
{
    public static KindRegistration Of<T>(Action<TermBuilder, ControllerDependencies>? controller, Func<AdmissionDependencies, IAdmissionHandler> admission) where T : IKubernetesObject
    {
        var e = (KubernetesEntityAttribute?)Attribute.GetCustomAttribute(typeof(T), typeof(KubernetesEntityAttribute))
            ?? throw new InvalidOperationException($"{typeof(T).Name} lacks [KubernetesEntity]");
        return new(e.Group ?? "", e.Kind, typeof(T), controller, admission);
    }
}

/// <summary>
/// Every kind in one list, as controller-runtime's SetupWithManager and webhook registration: the
/// controlplane.io kinds and the built-in kinds the operator governs in workspace namespaces. The
/// manager's controllers (<see cref="OperatorRuntime"/>) and admission dispatch both read it, so a new
/// kind is one entry here. Controllers are added in this order.
/// </summary>
public static class KindRegistry
{
    public static readonly IReadOnlyList<KindRegistration> Kinds =
    [
        KindRegistration.Of<Workspace>((b, d) => WorkspaceReconciler.Setup(b, d.Database, d.RegionDatabases, d.Vault, d.Options), d => new WorkspaceAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Approval>((b, _) => ApprovalReconciler.Setup(b), d => new ApprovalAdmission(d.Caches)),
        KindRegistration.Of<Tenant>((b, d) => TenantReconciler.Setup(b, d.Database, d.Options), d => new TenantAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Exposure>((b, d) => ExposureReconciler.Setup(b, d.Database, d.Options), d => new ExposureAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Rollout>((b, d) => RolloutReconciler.Setup(b, d.Database, d.Options), d => new RolloutAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<WorkspaceNetworkPolicy>((b, d) => WorkspaceNetworkPolicyReconciler.Setup(b, d.Database), d => new WorkspaceNetworkPolicyAdmission(d.Caches)),
        KindRegistration.Of<DeploymentIntent>((b, d) => DeploymentIntentReconciler.Setup(b, d.Database, d.PlaneHandler, d.IntentMetrics, d.Options), d => new DeploymentIntentAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Backup>((b, d) => BackupReconciler.Setup(b, d.Database, d.BackupTargetsOf, d.BackupJobs, d.PgTools), d => new BackupAdmission(d.Caches)),
        KindRegistration.Of<BackupPlan>((b, d) => BackupPlanReconciler.Setup(b, d.Database, d.BackupTargetsOf, d.BackupMetrics), d => new BackupPlanAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<Restore>((b, d) => RestoreReconciler.Setup(b, d.Database, d.RegionDatabases, d.BackupTargetsOf, d.BackupJobs, d.PgTools), d => new RestoreAdmission(d.Caches)),
        KindRegistration.Of<Application>((b, d) => ApplicationReconciler.Setup(b, d.Database), d => new ApplicationAdmission(d.Caches)),
        KindRegistration.Of<SecurityException>((b, d) => ExceptionReconciler.Setup(b, d.Database), d => new ExceptionAdmission(d.Caches, TimeProvider.System)),
        KindRegistration.Of<AccessRequest>((b, d) => AccessRequestReconciler.Setup(b, d.Database), d => new AccessRequestAdmission(d.Caches, d.Settings)),
        KindRegistration.Of<BreakGlass>((b, d) => BreakGlassReconciler.Setup(b, d.Database, d.Options.BreakGlassReviewWindow), d => new BreakGlassAdmission(d.Caches, TimeProvider.System, d.Settings)),
        KindRegistration.Of<NotificationChannel>((b, d) => NotificationChannelReconciler.Setup(b, d.Database, d.Options, d.NotificationMetrics), d => new NotificationChannelAdmission(d.Caches, d.Settings)),
        // Built-in kinds only the operator writes in workspace namespaces (the governed webhook); no controller of their own.
        KindRegistration.Of<V1Ingress>(null, d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughExposure)),
        KindRegistration.Of<V1NetworkPolicy>(null, d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughNetworkPolicy)),
        KindRegistration.Of<V1ResourceQuota>(null, d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughQuota)),
        KindRegistration.Of<V1LimitRange>(null, d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughQuota)),
        KindRegistration.Of<V1RoleBinding>(null, d => new GovernedAdmission(d.Settings, GovernedAdmission.ThroughMembers)),
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
