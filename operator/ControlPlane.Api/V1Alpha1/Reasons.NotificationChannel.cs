namespace ControlPlane.Api.V1Alpha1;

/// <summary>A NotificationChannel's condition types.</summary>
public static class NotificationChannelConditions
{
    /// <summary>True while the channel delivers (spec valid, Secrets present, not auto-disabled, the system of record reachable).</summary>
    public const string Ready = "Ready";

    /// <summary>True once spec.maxConsecutiveFailures attempts in a row failed: nothing is sent until the spec changes.</summary>
    public const string WebhookAutoDisabled = "WebhookAutoDisabled";

    /// <summary>kstatus: True while the channel will not progress without a change.</summary>
    public const string Stalled = "Stalled";
}

/// <summary>Why a NotificationChannel's conditions are as they are, and the reasons of its Events.</summary>
public static class NotificationChannelReasons
{
    public const string Delivering = "Delivering";
    public const string InvalidSpec = "InvalidSpec";
    public const string SecretMissing = "SecretMissing";
    public const string NotAllowed = "NotAllowed";
    public const string AutoDisabled = "AutoDisabled";
    public const string Enabled = "Enabled";
    public const string TestQueued = "TestQueued";
    public const string DatabaseUnavailable = "DatabaseUnavailable";
}
