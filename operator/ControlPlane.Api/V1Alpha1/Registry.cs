namespace ControlPlane.Api.V1Alpha1;

/// <summary>Every kind of the API, in the order the CRDs are written.</summary>
public static class ApiKinds
{
    public static readonly IReadOnlyList<Type> All =
    [
        typeof(Tenant), typeof(Workspace), typeof(WorkspaceNetworkPolicy), typeof(Exposure), typeof(Approval),
        typeof(Rollout), typeof(DeploymentIntent), typeof(BackupPlan), typeof(Backup), typeof(Restore),
        typeof(Application),
        typeof(SecurityException),
        typeof(AccessRequest),
        typeof(BreakGlass),
        typeof(NotificationChannel),
    ];

    /// <summary>The kind as the API names it ([KubernetesEntity]), which is not always the C# name (SecurityException is kind Exception).</summary>
    public static string KindOf(Type type) =>
        ((k8s.Models.KubernetesEntityAttribute?)Attribute.GetCustomAttribute(type, typeof(k8s.Models.KubernetesEntityAttribute)))?.Kind
        ?? throw new InvalidOperationException($"{type.Name} lacks [KubernetesEntity]");
}
