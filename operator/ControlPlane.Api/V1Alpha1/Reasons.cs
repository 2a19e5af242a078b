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

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
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
    public const string PromotedEarly = "PromotedEarly";
    public const string PromotionRefused = "PromotionRefused";
    public const string Succeeded = "Succeeded";
    public const string WaitingForRollout = "WaitingForRollout";
    public const string TenantSuspended = "TenantSuspended";
    public const string MetricsUnavailable = "MetricsUnavailable";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Approved = "Approved";
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

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
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

/// <summary>A Restore's condition types.</summary>
public static class RestoreConditions
{
    public const string Approved = "Approved";
    public const string Ready = "Ready";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a Restore's conditions are as they are, and the reasons of its Events.</summary>
public static class RestoreReasons
{
    public const string Approved = "Approved";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Rejected = "Rejected";
    public const string Requested = "Requested";
    public const string Queued = "Queued";
    public const string Waiting = "Waiting";
    public const string WaitingForBackup = "WaitingForBackup";
    public const string Running = "Running";
    public const string SessionVerified = "SessionVerified";
    public const string Swapped = "Swapped";
    public const string Completed = "Completed";
    public const string RestoreCompleted = "RestoreCompleted";
    public const string SmokeCheckFailed = "SmokeCheckFailed";
    public const string RestoreFailed = "RestoreFailed";
    public const string DatabaseError = "DatabaseError";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
    public const string StorageFailed = "StorageFailed";
    public const string ChecksumMismatch = "ChecksumMismatch";
    public const string Interrupted = "Interrupted";
    public const string PlanNotFound = "PlanNotFound";
    public const string InvalidTarget = "InvalidTarget";
    public const string InvalidSource = "InvalidSource";
    public const string DatabaseNotOwned = "DatabaseNotOwned";
    public const string DatabaseNameReserved = "DatabaseNameReserved";
    public const string BackupNotFound = "BackupNotFound";
    public const string BackupNotOfPlan = "BackupNotOfPlan";
    public const string BackupNotOfWorkspace = "BackupNotOfWorkspace";
    public const string BackupFailed = "BackupFailed";
    public const string NoBackup = "NoBackup";
    public const string OutsideRecoverabilityWindow = "OutsideRecoverabilityWindow";
}

/// <summary>A DeploymentIntent's condition types.</summary>
public static class IntentConditions
{
    public const string ScopeValid = "ScopeValid";
    public const string Approved = "Approved";
    public const string Progressing = "Progressing";
    public const string InSync = "InSync";
    public const string Ready = "Ready";

    /// <summary>True once the evidence pack is checked and copied, write-once, into the region's evidence storage; until then no ring starts.</summary>
    public const string EvidenceStored = "EvidenceStored";
    /// <summary>Whether approved, unexpired Exceptions cover every serious finding (High/Critical vulnerabilities, unsigned packages, scope violations).</summary>
    public const string ExceptionsCovered = "ExceptionsCovered";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a DeploymentIntent's conditions are as they are, and the reasons of its Events and event-store entries.</summary>
public static class IntentReasons
{
    public const string RiskAssessed = "RiskAssessed";
    public const string ScopeValidated = "ScopeValidated";
    public const string ScopeValid = "ScopeValid";
    public const string ScopeInvalid = "ScopeInvalid";
    public const string Allowed = "Allowed";
    public const string RequiresApproval = "RequiresApproval";
    public const string NotRequired = "NotRequired";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Approved = "Approved";
    public const string Rejected = "Rejected";
    public const string Denied = "Denied";
    public const string PolicyViolation = "PolicyViolation";
    public const string Vulnerable = "Vulnerable";
    public const string EvidenceMissing = "EvidenceMissing";
    public const string NoArtifactDigest = "NoArtifactDigest";
    public const string InvalidRiskModel = "InvalidRiskModel";
    public const string ScheduleWindow = "ScheduleWindow";
    public const string MinimumSoak = "MinimumSoak";
    public const string ConflictingChange = "ConflictingChange";
    public const string TenantSuspended = "TenantSuspended";
    public const string NotInAWorkspace = "NotInAWorkspace";
    public const string RequesterForbidden = "RequesterForbidden";
    public const string RingStarting = "RingStarting";
    public const string RingStarted = "RingStarted";
    public const string RingInProgress = "RingInProgress";
    public const string RingCompleted = "RingCompleted";
    public const string RingFailed = "RingFailed";
    public const string AllRingsCompleted = "AllRingsCompleted";
    public const string PromotionGateBreached = "PromotionGateBreached";
    public const string PlaneUnavailable = "PlaneUnavailable";
    public const string PlaneRefused = "PlaneRefused";
    public const string DriftDetected = "DriftDetected";
    public const string DriftRemediated = "DriftRemediated";
    public const string Completed = "Completed";
    public const string Failed = "Failed";
    public const string RolledBack = "RolledBack";

    // Application and publisher scope (issue 23): the intent waits for its Application, or is outside a scope.
    public const string ApplicationNotFound = "ApplicationNotFound";
    public const string ApplicationNotApproved = "ApplicationNotApproved";
    public const string OutsideApplicationScope = "OutsideApplicationScope";
    public const string OutsidePublisherScope = "OutsidePublisherScope";

    // Evidence and scan reports (issue 23).
    public const string EvidenceStored = "EvidenceStored";
    public const string EvidenceInvalid = "EvidenceInvalid";
    public const string EvidenceStorageUnavailable = "EvidenceStorageUnavailable";
    public const string ScanReportMissing = "ScanReportMissing";
    public const string ScanReportInvalid = "ScanReportInvalid";

    // CAB conditions, routing and rollback strategies (issue 23).
    public const string RollbackNotValidated = "RollbackNotValidated";
    public const string RollbackStrategyUnsupported = "RollbackStrategyUnsupported";

    // RequireException: serious findings wait for approved, unexpired Exceptions of the same namespace and digest.
    public const string RequiresException = "RequiresException";
    public const string AwaitingException = "AwaitingException";
    public const string ExceptionsCovered = "ExceptionsCovered";
    public const string NoSeriousFindings = "NoSeriousFindings";
    public const string ExceptionGranted = "ExceptionGranted";
    public const string ExceptionExpired = "ExceptionExpired";
}

/// <summary>A WorkspaceNetworkPolicy's condition types.</summary>
public static class NetworkPolicyConditions
{
    public const string Ready = "Ready";

    /// <summary>True while some peers or rules of the spec are not rendered (outside the tenant's bounds).</summary>
    public const string Degraded = "Degraded";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a WorkspaceNetworkPolicy's conditions are as they are, and the reasons of its Events.</summary>
public static class NetworkPolicyReasons
{
    public const string Rendered = "Rendered";
    public const string AllRulesRendered = "AllRulesRendered";
    public const string RulesDropped = "RulesDropped";
    public const string RulesRestored = "RulesRestored";
    public const string PolicyConflict = "PolicyConflict";
    public const string Updated = "Updated";
    public const string DriftRepaired = "DriftRepaired";
    public const string PolicyRemoved = "PolicyRemoved";
    public const string InvalidName = "InvalidName";
    public const string InvalidSelector = "InvalidSelector";
    public const string WorkspaceNotFound = "WorkspaceNotFound";
    public const string TenantNotFound = "TenantNotFound";
}

/// <summary>An Approval's condition types.</summary>
public static class ApprovalConditions
{
    /// <summary>Whether this approval counts (Counts, Rejects) or why not.</summary>
    public const string Ready = "Ready";

    /// <summary>Whether the target, at its current generation, has the approvals it needs.</summary>
    public const string TargetApproved = "TargetApproved";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why an Approval counts or not (ApprovalPolicy.Judge), and whether its target is approved.</summary>
public static class ApprovalReasons
{
    public const string Counts = "Counts";
    public const string Rejects = "Rejects";
    public const string TargetNotFound = "TargetNotFound";
    public const string NoApprover = "NoApprover";
    public const string NotAPerson = "NotAPerson";
    public const string TargetReplaced = "TargetReplaced";
    public const string SelfApproval = "SelfApproval";
    public const string StaleGeneration = "StaleGeneration";
    public const string NotAnApprover = "NotAnApprover";
    public const string Approved = "Approved";
    public const string Rejected = "Rejected";
    public const string AwaitingApproval = "AwaitingApproval";

    // CAB routing and expiry (issue 23).
    public const string NotAssigned = "NotAssigned";
    public const string Expired = "Expired";
    public const string BeyondMaxRing = "BeyondMaxRing";
}

/// <summary>A Workspace's condition types: one per child, and Ready over them all.</summary>
public static class WorkspaceConditions
{
    public const string NamespaceReady = "NamespaceReady";
    public const string AccessReady = "AccessReady";
    public const string QuotaReady = "QuotaReady";
    public const string NetworkReady = "NetworkReady";
    public const string DatabaseReady = "DatabaseReady";
    public const string ProviderKeysReady = "ProviderKeysReady";
    public const string Ready = "Ready";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a Workspace's conditions are as they are, and the reasons of its Events.</summary>
public static class WorkspaceReasons
{
    public const string Ready = "Ready";
    public const string NotReady = "NotReady";
    public const string Created = "Created";
    public const string Bound = "Bound";
    public const string Granted = "Granted";
    public const string DefaultDeny = "DefaultDeny";
    public const string Valid = "Valid";
    public const string Disabled = "Disabled";
    public const string Terminating = "Terminating";
    public const string Deleting = "Deleting";
    public const string DeletionWaiting = "DeletionWaiting";
    public const string DeletionGuarded = "DeletionGuarded";
    public const string DatabaseCreated = "DatabaseCreated";
    public const string DatabaseDeleted = "DatabaseDeleted";
    public const string DatabaseRetained = "DatabaseRetained";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
    public const string DatabaseConflict = "DatabaseConflict";
    public const string RetainedDatabaseExists = "RetainedDatabaseExists";
    public const string CredentialsTampered = "CredentialsTampered";
    public const string SessionNotVerified = "SessionNotVerified";
    public const string PasswordRotated = "PasswordRotated";
    public const string ExtensionsCreated = "ExtensionsCreated";
    public const string ExtensionNotAllowed = "ExtensionNotAllowed";
    public const string InvalidProviderKey = "InvalidProviderKey";
    public const string ProviderKeyStored = "ProviderKeyStored";
    public const string ProviderKeyRotated = "ProviderKeyRotated";
    public const string ImmutableFieldChanged = "ImmutableFieldChanged";
    public const string UnsafeRegionRole = "UnsafeRegionRole";
    public const string RegionMismatch = "RegionMismatch";
    public const string InvalidRegion = "InvalidRegion";
    public const string TenantTerminating = "TenantTerminating";
    public const string TenantSuspended = "TenantSuspended";
    public const string TenantNotFound = "TenantNotFound";
    public const string ReservedName = "ReservedName";
    public const string NameNotAllowed = "NameNotAllowed";
    public const string InvalidName = "InvalidName";
    public const string InvalidQuantity = "InvalidQuantity";
    public const string QuotaExceeded = "QuotaExceeded";
    public const string MaxWorkspacesExceeded = "MaxWorkspacesExceeded";
    public const string NamespaceConflict = "NamespaceConflict";
    public const string MemberRemoved = "MemberRemoved";
    public const string MemberRefused = "MemberRefused";
    public const string BindingFailed = "BindingFailed";
    public const string ProvisioningFailed = "ProvisioningFailed";
    public const string DriftRepaired = "DriftRepaired";
}

/// <summary>A Tenant's condition types.</summary>
public static class TenantConditions
{
    public const string Ready = "Ready";
    public const string RecordSynced = "RecordSynced";
    public const string QuotaReady = "QuotaReady";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a Tenant's conditions are as they are, and the reasons of its Events.</summary>
public static class TenantReasons
{
    public const string Ready = "Ready";
    public const string Suspended = "Suspended";
    public const string Valid = "Valid";
    public const string Synced = "Synced";
    public const string InvalidName = "InvalidName";
    public const string InvalidRegion = "InvalidRegion";
    public const string InvalidQuantity = "InvalidQuantity";
    public const string DeletionBlocked = "DeletionBlocked";
    public const string RecordCreated = "RecordCreated";
    public const string RecordUpdated = "RecordUpdated";
    public const string RecordDeleted = "RecordDeleted";
    public const string RecordSyncFailed = "RecordSyncFailed";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
    public const string SelfServiceAccess = "SelfServiceAccess";
}

/// <summary>A Backup's condition types.</summary>
public static class BackupConditions
{
    public const string Ready = "Ready";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a Backup's conditions are as they are, and the reasons of its Events.</summary>
public static class BackupReasons
{
    public const string Running = "Running";
    public const string Completed = "Completed";
    public const string BackupCompleted = "BackupCompleted";
    public const string Waiting = "Waiting";
    public const string Queued = "Queued";
    public const string Interrupted = "Interrupted";
    public const string PlanNotFound = "PlanNotFound";
    public const string NotAWorkspace = "NotAWorkspace";
    public const string NoBackupStorage = "NoBackupStorage";
    public const string TenantStorageNotAllowed = "TenantStorageNotAllowed";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
    public const string DatabaseNotRecorded = "DatabaseNotRecorded";
    public const string DatabaseNotOwned = "DatabaseNotOwned";
    public const string CredentialsNotFound = "CredentialsNotFound";
    public const string CredentialsInvalid = "CredentialsInvalid";
    public const string CredentialsTampered = "CredentialsTampered";
    public const string SessionNotVerified = "SessionNotVerified";
    public const string DumpFailed = "DumpFailed";
    public const string StorageFailed = "StorageFailed";
    public const string VerificationFailed = "VerificationFailed";
}

/// <summary>A BackupPlan's condition types.</summary>
public static class BackupPlanConditions
{
    public const string LastBackupSucceeded = "LastBackupSucceeded";
    public const string BackupOverdue = "BackupOverdue";
    public const string Ready = "Ready";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a BackupPlan's conditions are as they are, and the reasons of its Events.</summary>
public static class BackupPlanReasons
{
    public const string Scheduled = "Scheduled";
    public const string Suspended = "Suspended";
    public const string OnSchedule = "OnSchedule";
    public const string Overdue = "Overdue";
    public const string NoBackupYet = "NoBackupYet";
    public const string Completed = "Completed";
    public const string Failed = "Failed";
    public const string WorkspaceNotReady = "WorkspaceNotReady";
    public const string TenantStorageNotAllowed = "TenantStorageNotAllowed";
    public const string InvalidSchedule = "InvalidSchedule";
    public const string InvalidName = "InvalidName";
    public const string BackupPruned = "BackupPruned";
}
