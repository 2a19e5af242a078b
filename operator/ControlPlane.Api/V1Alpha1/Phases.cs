using System.Collections.Frozen;
using System.Text.Json.Serialization;
using System.Text.Json;

namespace ControlPlane.Api.V1Alpha1;

// The phases of every kind that has one. Each member's name is exactly the string the API stores
// (status.phase), so ToString() is the wire form; PhaseConverter writes and reads that name, and the
// CRD generator turns the members after Unknown into the schema's enum (in declaration order).
// Every phase property names the converter too: KubernetesJson's options carry a JsonStringEnumConverter,
// which wins over a converter on the enum type (and throws on an unknown name); one on the property wins.
//
// Unknown (0) is never written by this operator: it stands for a string this build does not know,
// one a newer operator wrote (its CRD allows more values). Reading it must not break the informer,
// so it maps to Unknown instead of throwing; the reconcilers treat it as they treated an unmatched
// string. It is not in the CRD's enum, so the API server refuses a status write that would replace
// the newer phase with "Unknown" (422): this build never overwrites a phase it does not understand.

/// <summary>A Tenant's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<TenantPhase>))]
public enum TenantPhase { Unknown, Pending, Ready, Suspended, Failed, Terminating }

/// <summary>A Workspace's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<WorkspacePhase>))]
public enum WorkspacePhase { Unknown, Creating, Ready, Failed, Terminating }

/// <summary>An Exposure's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<ExposurePhase>))]
public enum ExposurePhase { Unknown, Draft, PendingApproval, Published, Rejected }

/// <summary>A Rollout's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<RolloutPhase>))]
public enum RolloutPhase { Unknown, Pending, Progressing, Paused, Succeeded, RolledBack, Failed }

/// <summary>A Rollout ring's phase (status.rings[].phase).</summary>
[JsonConverter(typeof(PhaseConverter<RingPhase>))]
public enum RingPhase { Unknown, Pending, AwaitingApproval, Progressing, Soaking, Succeeded, Failed, RolledBack }

/// <summary>A DeploymentIntent's phase (status.phase): the states of the governed state machine.</summary>
[JsonConverter(typeof(PhaseConverter<IntentPhase>))]
public enum IntentPhase { Unknown, Pending, RiskAssessed, ScopeValidated, AwaitingApproval, InProgress, Completed, Failed, RolledBack, Denied }

/// <summary>A DeploymentIntent ring's phase (status.rings[].phase).</summary>
[JsonConverter(typeof(PhaseConverter<IntentRingPhase>))]
public enum IntentRingPhase { Unknown, Pending, InProgress, Completed, Failed, RolledBack }

/// <summary>An Application's phase (status.phase): the state of its requested scope version.</summary>
[JsonConverter(typeof(PhaseConverter<ApplicationPhase>))]
public enum ApplicationPhase { Unknown, AwaitingApproval, Active, Rejected, Failed }

/// <summary>An Exception's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<ExceptionPhase>))]
public enum ExceptionPhase { Unknown, Pending, Active, Expired, Rejected }

/// <summary>An AccessRequest's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<AccessRequestPhase>))]
public enum AccessRequestPhase { Unknown, Pending, Active, Expired, Revoked, Rejected }

/// <summary>A BreakGlass's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<BreakGlassPhase>))]
public enum BreakGlassPhase { Unknown, Active, Expired, Ended, Refused }

/// <summary>A Backup's phase (status.phase; also a BackupPlan's status.lastBackup.phase).</summary>
[JsonConverter(typeof(PhaseConverter<BackupPhase>))]
public enum BackupPhase { Unknown, Pending, Running, Completed, Failed }

/// <summary>A Restore's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<RestorePhase>))]
public enum RestorePhase { Unknown, Pending, AwaitingApproval, Running, Completed, Failed }

/// <summary>
/// A phase as the API stores it: the member's name, exactly (ordinal). Anything else read from the
/// cluster (a newer phase, a number, an object) becomes Unknown rather than failing the whole list or watch.
/// </summary>
public sealed class PhaseConverter<T> : JsonConverter<T> where T : struct, Enum
{
    // Exact names only: Enum.TryParse would also accept "3", "ready" (ignoreCase) or "Ready,Failed".
    static readonly FrozenDictionary<string, T> ByName = Enum.GetValues<T>().ToFrozenDictionary(v => v.ToString(), StringComparer.Ordinal);

    public static T Parse(string? text) => text is not null && ByName.TryGetValue(text, out var value) ? value : default;

    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String) return Parse(reader.GetString());
        reader.Skip(); // a number, object or array: not a phase this build knows
        return default;
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}

/// <summary>The Unknown member is 0 in every phase enum, so default(T) means "a phase this build does not know".</summary>
public static class Phases
{
    /// <summary>The API's phase values, in schema order: every member but Unknown.</summary>
    public static IReadOnlyList<string> Values(Type phase) =>
        Enum.GetName(phase, 0) == "Unknown"
            ? Enum.GetNames(phase).Where(n => n != "Unknown").ToList()
            : throw new NotSupportedException($"{phase.Name}: a phase enum starts with Unknown = 0, the stand-in for a value this build does not know");
}

/// <summary>A NotificationChannel's phase (status.phase).</summary>
[JsonConverter(typeof(PhaseConverter<NotificationChannelPhase>))]
public enum NotificationChannelPhase { Unknown, Pending, Active, AutoDisabled, Invalid }
