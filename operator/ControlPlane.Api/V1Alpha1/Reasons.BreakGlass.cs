namespace ControlPlane.Api.V1Alpha1;

/// <summary>A BreakGlass's condition types.</summary>
public static class BreakGlassConditions
{
    /// <summary>True while the emergency grant is in force (phase Active, its RoleBinding present).</summary>
    public const string Ready = "Ready";

    /// <summary>True once an Approval of the BreakGlass (the after-the-fact review) counts.</summary>
    public const string Reviewed = "Reviewed";

    /// <summary>True while a granted BreakGlass is past status.reviewDeadline without a review.</summary>
    public const string ReviewOverdue = "ReviewOverdue";

    /// <summary>kstatus: True while the BreakGlass will not progress without a change.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a BreakGlass's conditions are as they are, and the reasons of its Events.</summary>
public static class BreakGlassReasons
{
    public const string BreakGlassInvoked = "BreakGlassInvoked";
    public const string Active = "Active";
    public const string Granting = "Granting";
    public const string Expired = "Expired";
    public const string Ended = "Ended";
    public const string PolicyWithdrawn = "PolicyWithdrawn";
    public const string BreakGlassDisabled = "BreakGlassDisabled";
    public const string NotAnInvoker = "NotAnInvoker";
    public const string PolicyViolation = "PolicyViolation";
    public const string AlreadyActive = "AlreadyActive";
    public const string NotInAWorkspace = "NotInAWorkspace";
    public const string NotAPerson = "NotAPerson";
    public const string AwaitingReview = "AwaitingReview";
    public const string Reviewed = "Reviewed";
    public const string ReviewedLate = "ReviewedLate";
    public const string ReviewOverdue = "ReviewOverdue";
    public const string WithinWindow = "WithinWindow";
    public const string NotGranted = "NotGranted";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
}
