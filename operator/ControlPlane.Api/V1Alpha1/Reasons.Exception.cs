namespace ControlPlane.Api.V1Alpha1;

/// <summary>An Exception's condition types.</summary>
public static class ExceptionConditions
{
    /// <summary>True while the Exception counts (phase Active).</summary>
    public const string Ready = "Ready";

    /// <summary>Whether a SecurityReviewer of the workspace approved the current generation.</summary>
    public const string Approved = "Approved";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why an Exception's conditions are as they are, and the reasons of its Events.</summary>
public static class ExceptionReasons
{
    public const string Active = "Active";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Approved = "Approved";
    public const string Rejected = "Rejected";
    public const string Expired = "Expired";
    public const string PolicyViolation = "PolicyViolation";
    public const string NotInAWorkspace = "NotInAWorkspace";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
}
