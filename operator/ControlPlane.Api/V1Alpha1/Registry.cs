namespace ControlPlane.Api.V1Alpha1;

/// <summary>Every kind of the API, in the order the CRDs are written.</summary>
public static class ApiKinds
{
    public static readonly IReadOnlyList<Type> All =
    [
        typeof(Tenant), typeof(Workspace), typeof(WorkspaceNetworkPolicy), typeof(Exposure), typeof(Approval),
        typeof(Rollout), typeof(DeploymentIntent), typeof(BackupPlan), typeof(Backup), typeof(Restore),
        typeof(SecurityException),
    ];
}
