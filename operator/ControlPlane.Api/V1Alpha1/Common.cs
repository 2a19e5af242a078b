using System.Text.Json.Serialization;
using k8s.Models;
using k8s;

namespace ControlPlane.Api.V1Alpha1;

public static class ApiGroup
{
    public const string Group = "controlplane.io";
    public const string Version = "v1alpha1";
    public const string ApiVersion = Group + "/" + Version;
    public const string Finalizer = "controlplane.io/finalizer";
    public const string CreatedByAnnotation = "controlplane.io/created-by";

    /// <summary>Set by a platform administrator on a Workspace: its deletion may drop its database.</summary>
    public const string AllowDeleteAnnotation = "controlplane.io/allow-delete";

    /// <summary>Who last changed the spec of an approvable object (Exposure, DeploymentIntent, Restore): an author of that generation.</summary>
    public const string LastSpecEditorAnnotation = "controlplane.io/last-spec-editor";

    /// <summary>On an Approval: the approver's groups at admission (a JSON array), for judging group-bound Approvers from RoleBindings.</summary>
    public const string ApproverGroupsAnnotation = "controlplane.io/approver-groups";

    /// <summary>
    /// On an Approval: the SHA-256 of its target's approval-relevant spec at admission (ApprovalPolicy.ContentHash),
    /// so a Rollout approved at an older generation still counts when only spec.paused/abort changed since.
    /// </summary>
    public const string TargetContentHashAnnotation = "controlplane.io/target-content-hash";

    /// <summary>
    /// Everyone who ever changed the spec of an approvable object (a JSON array, oldest first): each is an
    /// author of what is under review, not only the last editor (an earlier edit is still in it).
    /// </summary>
    public const string SpecEditorsAnnotation = "controlplane.io/spec-editors";

    /// <summary>
    /// On an approvable object: the groups of its creator and of every spec editor at admission (a JSON
    /// object, user to groups), so the operator can ask a SubjectAccessReview for each of them as the API server would.
    /// </summary>
    public const string AuthorGroupsAnnotation = "controlplane.io/author-groups";

    /// <summary>
    /// On a Rollout the operator creates for a DeploymentIntent: the intent's authors with their groups
    /// (a JSON array of {user, groups}), whose rights the Rollout acts with. Only the operator may set it.
    /// </summary>
    public const string OnBehalfOfAnnotation = "controlplane.io/on-behalf-of";

    /// <summary>
    /// On a BreakGlass: which entry of the tenant's spec.accessPolicy.breakGlass.invokers let its creator invoke it
    /// ("user:&lt;name&gt;" or "group:&lt;group&gt;"), stamped by the admission webhook, which alone sees the caller's
    /// groups. A supplied value is replaced on create and restored on update.
    /// </summary>
    public const string BreakGlassInvokerMatchAnnotation = "controlplane.io/breakglass-invoker-match";

    /// <summary>Annotations only the admission webhook writes: a requester can neither set nor change them.</summary>
    public static readonly IReadOnlyList<string> StampedAnnotations = [CreatedByAnnotation, LastSpecEditorAnnotation, SpecEditorsAnnotation, ApproverGroupsAnnotation, TargetContentHashAnnotation, AuthorGroupsAnnotation, BreakGlassInvokerMatchAnnotation];

    // Labels and annotations the operator writes on what it owns (one home: every layer reads them here).
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "controlplane";
    public const string WorkspaceLabel = "controlplane.io/workspace";
    public const string TenantLabel = "controlplane.io/tenant";
    public const string RegionLabel = "controlplane.io/region";
    public const string EnvironmentLabel = "controlplane.io/environment";
    /// <summary>On a NotificationChannel: a nonce; each new value sends one signed test event (recorded, never re-sent for the same nonce).</summary>
    public const string TestDeliveryAnnotation = "controlplane.io/test-delivery";
    public const string RotateAnnotation = "controlplane.io/rotate";
    public const string PasswordHashAnnotation = "controlplane.io/password-sha256";
    public const string ExposureLabel = "controlplane.io/exposure";
    public const string PublishedGenerationAnnotation = "controlplane.io/published-generation";
    public const string MonthlyQuotaAnnotation = "controlplane.io/monthly-quota";
    public const string CorrelationAnnotation = "controlplane.io/correlation-id";
    public const string IntentRingLabel = "controlplane.io/intent-ring";
    public const string AcquisitionBoundaryLabel = "controlplane.io/acquisition-boundary";
    public const string BusinessUnitLabel = "controlplane.io/business-unit";
    public const string SiteClassLabel = "controlplane.io/site-class";
    public const string RingLabel = "controlplane.io/ring";
    public const string IntentLabel = "controlplane.io/deployment-intent";

    /// <summary>The label naming the tenant a self-service ClusterRoleBinding belongs to.</summary>
    public const string SelfServiceLabel = "controlplane.io/self-service";
    public const string BackupPlanLabel = "controlplane.io/backup-plan";
    public const string ScheduledLabel = "controlplane.io/scheduled";
}

/// <summary>Duration as users write it: 30s, 10m, 1h, 7d, or combinations such as 1h30m.</summary>
public static class Patterns
{
    public const string Duration = "^([0-9]+(ms|s|m|h|d))+$";
    public const string DnsLabel = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    public const string Cidr = @"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$|^[0-9a-fA-F:]+/[0-9]{1,3}$";
    public const string Cron = @"^(\S+\s+){4}\S+$";
    public const string Sha256 = "^[a-f0-9]{64}$";
}

/// <summary>Every ControlPlane status: observedGeneration and metav1.Condition-shaped conditions.</summary>
public abstract class StatusBase
{
    /// <summary>The metadata.generation the operator last acted on; when it lags the object's generation the status describes an older spec.</summary>
    public long? ObservedGeneration { get; set; }

    [Description("Standard metav1.Condition list; every kind has Ready.")]
    public List<V1Condition>? Conditions { get; set; }
}

/// <summary>
/// A kind that shares its own short strings (beyond metadata) when cached: the operator passes the
/// cache's pool (the runtime knows no kind, the API knows no runtime).
/// </summary>
public interface IInternStrings
{
    void InternStrings(Func<string?, string?> intern);

    /// <summary>The hook the runtime's caches call for every object.</summary>
    static void Of(object obj, Func<string?, string?> intern)
    {
        if (obj is IInternStrings own) own.InternStrings(intern);
    }
}

/// <summary>Any kind's status conditions, read without knowing its status type (metrics, generic checks).</summary>
public interface IHasStatusConditions
{
    IReadOnlyList<V1Condition>? StatusConditions { get; }
}

/// <summary>Base of every custom resource: apiVersion, kind, metadata, spec and status.</summary>
public abstract class CustomResource<TSpec, TStatus> : IKubernetesObject<V1ObjectMeta>, IInternStrings, IHasStatusConditions
    where TSpec : new()
    where TStatus : StatusBase, new()
{
    IReadOnlyList<V1Condition>? IHasStatusConditions.StatusConditions => Status?.Conditions;

    /// <summary>Cached copies share their condition strings (types, statuses, reasons) through the term's pool.</summary>
    public virtual void InternStrings(Func<string?, string?> intern)
    {
        foreach (var c in Status?.Conditions ?? [])
        {
            c.Type = intern(c.Type)!;
            c.Status = intern(c.Status)!;
            c.Reason = intern(c.Reason);
        }
    }

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = ApiGroup.ApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public TSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public TStatus? Status { get; set; }
}

public sealed class Subject
{
    /// <summary>Whether name is a user or a group, as the API server authenticates them.</summary>
    [Required, Enum("User", "Group")]
    public string Kind { get; set; } = "User";

    /// <summary>The user name (e.g. alice@acme.io) or group name, exactly as the API server's authentication reports it.</summary>
    [Required, Length(1)]
    public string Name { get; set; } = "";
}

public sealed class LocalObjectReference
{
    /// <summary>Name of the object in the same namespace.</summary>
    [Required, Length(1)]
    public string Name { get; set; } = "";
}

public sealed class SecretKeyReference
{
    /// <summary>Name of the Secret, in the same namespace (the workspace's).</summary>
    [Required, Length(1)]
    public string Name { get; set; } = "";

    /// <summary>The key inside the Secret's data whose value is used.</summary>
    [Required, Length(1)]
    public string Key { get; set; } = "";
}

/// <summary>A label selector (metav1.LabelSelector).</summary>
public sealed class LabelSelector
{
    /// <summary>Labels that must all be present with exactly these values.</summary>
    public Dictionary<string, string>? MatchLabels { get; set; }

    /// <summary>Requirements that must all hold (ANDed with matchLabels).</summary>
    public List<LabelSelectorRequirement>? MatchExpressions { get; set; }
}

public sealed class LabelSelectorRequirement
{
    /// <summary>The label key the requirement applies to.</summary>
    [Required]
    public string Key { get; set; } = "";

    /// <summary>How the label's value relates to values: In, NotIn, Exists or DoesNotExist.</summary>
    [Required, Enum("In", "NotIn", "Exists", "DoesNotExist")]
    public string Operator { get; set; } = "In";

    /// <summary>The values for In and NotIn (non-empty); empty for Exists and DoesNotExist.</summary>
    public List<string>? Values { get; set; }
}
