namespace ControlPlane.Api.V1Alpha1;

// Condition types and reasons, per kind: the closed sets the operator writes (status.conditions[].type
// and .reason, and the reasons of the Events it records about the object). Strings, not enums, because
// metav1.Condition's reason is a string and a reason may also come from elsewhere (ReconcileError, a
// copied reason); constants so that what a reconciler writes and what another compares are one name.
// The values are part of the API: tests, alerts and users match on them, so they never change.

/// <summary>A Rollout's condition types.</summary>
public static class RolloutConditions
{
    public const string Ready = "Ready";
    public const string Progressing = "Progressing";
    public const string Paused = "Paused";
}

/// <summary>Why a Rollout's conditions are as they are, and the reasons of its Events.</summary>
public static class RolloutReasons
{
    public const string Pending = "Pending";
    public const string NotPaused = "NotPaused";
    public const string Paused = "Paused";
    public const string Resumed = "Resumed";
    public const string Progressing = "Progressing";
    public const string RingStarted = "RingStarted";
    public const string RingProgressing = "RingProgressing";
    public const string RingRolledOut = "RingRolledOut";
    public const string RingPromoted = "RingPromoted";
    public const string Succeeded = "Succeeded";
    public const string WaitingForRollout = "WaitingForRollout";
    public const string TenantSuspended = "TenantSuspended";
    public const string MetricsUnavailable = "MetricsUnavailable";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Rejected = "Rejected";
    public const string RingEmpty = "RingEmpty";
    public const string DeploymentNotFound = "DeploymentNotFound";
    public const string ContainerNotFound = "ContainerNotFound";
    public const string RequesterForbidden = "RequesterForbidden";
    public const string InvalidSpec = "InvalidSpec";
    public const string NotInAWorkspace = "NotInAWorkspace";
    public const string GateBreached = "GateBreached";
    public const string Aborted = "Aborted";
    public const string RolledBack = "RolledBack";
    public const string RollbackIncomplete = "RollbackIncomplete";
    public const string PatchFailed = "PatchFailed";
}

/// <summary>An Exposure's condition types.</summary>
public static class ExposureConditions
{
    public const string Approved = "Approved";
    public const string Published = "Published";
    public const string Ready = "Ready";
}

/// <summary>Why an Exposure's conditions are as they are, and the reasons of its Events and audit entries.</summary>
public static class ExposureReasons
{
    public const string IngressConflict = "IngressConflict";
    public const string Published = "Published";
    public const string Conflict = "Conflict";
    public const string PublishedSpecMismatch = "PublishedSpecMismatch";
    public const string IngressRepaired = "IngressRepaired";
    public const string Unpublished = "Unpublished";
    public const string Draft = "Draft";
    public const string Deleted = "Deleted";
    public const string WorkspaceNotFound = "WorkspaceNotFound";
    public const string Rejected = "Rejected";
    public const string Approved = "Approved";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string NotPublished = "NotPublished";
    public const string TenantSuspended = "TenantSuspended";
    public const string BackendNotFound = "BackendNotFound";
    public const string InvalidName = "InvalidName";
    public const string HostNotDelegated = "HostNotDelegated";
    public const string InvalidPath = "InvalidPath";
    public const string BackendRefused = "BackendRefused";
}
