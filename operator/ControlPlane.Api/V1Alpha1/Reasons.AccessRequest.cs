namespace ControlPlane.Api.V1Alpha1;

/// <summary>An AccessRequest's condition types.</summary>
public static class AccessRequestConditions
{
    /// <summary>True while the grant is in force (phase Active, its RoleBinding present).</summary>
    public const string Ready = "Ready";

    /// <summary>Whether the request is approved.</summary>
    public const string Approved = "Approved";

    /// <summary>kstatus: True while the request will not progress without a change.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why an AccessRequest's conditions are as they are, and the reasons of its Events.</summary>
public static class AccessRequestReasons
{
    public const string Active = "Active";
    public const string Granting = "Granting";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Approved = "Approved";
    public const string Rejected = "Rejected";
    public const string Expired = "Expired";
    public const string Revoked = "Revoked";
    /// <summary>An active grant ended early because its tenant's access policy no longer allows it (maxRole or maxDuration lowered, policy or workspace gone).</summary>
    public const string PolicyWithdrawn = "PolicyWithdrawn";
    public const string PolicyViolation = "PolicyViolation";
    public const string NotInAWorkspace = "NotInAWorkspace";
    public const string NotAPerson = "NotAPerson";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
}
