namespace ControlPlane.Api.V1Alpha1;

/// <summary>An Application's condition types.</summary>
public static class ApplicationConditions
{
    /// <summary>Whether spec.allowedScope is the approved scope in effect, or why not (awaiting CAB, rejected, invalid).</summary>
    public const string ScopeApproved = "ScopeApproved";
    public const string Ready = "Ready";

    /// <summary>kstatus: True (reason = the terminal reason) while the object will not progress without a change; absent otherwise.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why an Application's conditions are as they are, and the reasons of its Events and audit events.</summary>
public static class ApplicationReasons
{
    public const string ScopeActive = "ScopeActive";
    public const string ScopeApproved = "ScopeApproved";
    public const string ScopeNarrowed = "ScopeNarrowed";
    public const string AwaitingApproval = "AwaitingApproval";
    public const string Rejected = "Rejected";
    public const string ScopeOutsideTenant = "ScopeOutsideTenant";
    public const string NotInAWorkspace = "NotInAWorkspace";
    public const string VersionConflict = "VersionConflict";
}
