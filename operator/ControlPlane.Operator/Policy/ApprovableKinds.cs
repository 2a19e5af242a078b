using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// A kind an Approval can name. What it says of itself is all that approvals need: what counts as its
/// content (its spec but its <see cref="ControlFields"/>), who its authors are, how many approvals it
/// needs, and its CRD type (so a reader builds its cache and reads it typed, through <see cref="Accept{TResult}"/>).
/// Admission (stamps, the target an Approval names), the Approval reconciler and <see cref="ApprovalPolicy"/>
/// read it from <see cref="ApprovableKinds"/>, the one list.
/// </summary>
public interface IApprovableKind
{
    /// <summary>The kind as an Approval's spec.target.kind names it.</summary>
    string Kind { get; }

    /// <summary>The CRD type (namespaced); its [KubernetesEntity] gives the resource.</summary>
    Type ObjectType { get; }

    /// <summary>
    /// Spec fields that are control actions, not content under review (a Rollout's paused and abort, as in
    /// Argo Rollouts). Changing them neither invalidates an approval nor makes the requester an author.
    /// </summary>
    IReadOnlyList<string> ControlFields { get; }

    /// <summary>The part of a spec an approval covers: all of it but <see cref="ControlFields"/>.</summary>
    JsonNode? ContentOf(JsonNode? spec);

    /// <summary>SHA-256 (hex) of the canonical JSON of its content (<see cref="ApprovalPolicy.ContentHash"/>).</summary>
    string ContentHash(IKubernetesObject<V1ObjectMeta> target);

    /// <summary>Who wrote the generation under review: its creator and its last spec editor (<see cref="ApprovalPolicy.AuthorsOf"/>).</summary>
    IReadOnlyList<string> AuthorsOf(IKubernetesObject<V1ObjectMeta> target);

    /// <summary>Everyone who wrote any part of the content under review (<see cref="ApprovalPolicy.EveryAuthorOf"/>).</summary>
    IReadOnlyList<string> EveryAuthorOf(IKubernetesObject<V1ObjectMeta> target);

    /// <summary>How many distinct approvers it needs in this (effective, strictest) environment.</summary>
    int RequiredApprovals(IKubernetesObject<V1ObjectMeta> target, string environment);

    /// <summary>Calls the visitor with the CRD type as a type argument: typed caches and reads without reflection.</summary>
    TResult Accept<TResult>(IApprovableKindVisitor<TResult> visitor);
}

/// <summary>What a caller does with an approvable kind's CRD type (make its informer, read it).</summary>
public interface IApprovableKindVisitor<out TResult>
{
    TResult Visit<T>(IApprovableKind kind) where T : class, IKubernetesObject<V1ObjectMeta>;
}

/// <summary>An approvable kind of CRD type <typeparamref name="T"/>.</summary>
public sealed class ApprovableKind<T>(IReadOnlyList<string> controlFields, Func<T, string, int> requiredApprovals) : IApprovableKind
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    public string Kind { get; } = ((KubernetesEntityAttribute?)Attribute.GetCustomAttribute(typeof(T), typeof(KubernetesEntityAttribute)))?.Kind
        ?? throw new InvalidOperationException($"{typeof(T).Name} lacks [KubernetesEntity]");

    public Type ObjectType => typeof(T);

    public IReadOnlyList<string> ControlFields => controlFields;

    public JsonNode? ContentOf(JsonNode? spec)
    {
        var copy = spec?.DeepClone();
        if (copy is JsonObject o) foreach (var field in ControlFields) o.Remove(field);
        return copy;
    }

    public string ContentHash(IKubernetesObject<V1ObjectMeta> target) => ApprovalPolicy.ContentHash(target);

    // Every approvable kind is stamped alike at admission (created-by, spec editors, on-behalf-of), so its authors are read alike.
    public IReadOnlyList<string> AuthorsOf(IKubernetesObject<V1ObjectMeta> target) => ApprovalPolicy.AuthorsOf(target);

    public IReadOnlyList<string> EveryAuthorOf(IKubernetesObject<V1ObjectMeta> target) => ApprovalPolicy.EveryAuthorOf(target);

    public int RequiredApprovals(IKubernetesObject<V1ObjectMeta> target, string environment) => requiredApprovals((T)target, environment);

    public TResult Accept<TResult>(IApprovableKindVisitor<TResult> visitor) => visitor.Visit<T>(this);
}

/// <summary>The approvable kinds: the one list admission, the Approval reconciler and <see cref="ApprovalPolicy"/> read.</summary>
public static class ApprovableKinds
{
    /// <summary>Outside prod one approver, in prod two (the two-person rule).</summary>
    public static readonly ApprovableKind<Exposure> Exposure = new([], (_, environment) => ApprovalPolicy.RequiredApprovals(environment));

    /// <summary>The environment is the strictest of its targets' (its reconciler's approval rule), then as any kind.</summary>
    public static readonly ApprovableKind<DeploymentIntent> DeploymentIntent = new([], (_, environment) => ApprovalPolicy.RequiredApprovals(environment));

    /// <summary>In prod two approvers for any restore; elsewhere one for in place and none for a new database.</summary>
    public static readonly ApprovableKind<Restore> Restore = new([], (restore, environment) => RestoreApprovals(environment, restore.Spec.Into.InPlace == true));

    /// <summary>paused and abort are control actions; promote is not (it shortens a soak, so its setter is an author and its approvers see it); the environment is the strictest its rings reach (<see cref="RolloutResources.ApprovalEnvironment"/>).</summary>
    public static readonly ApprovableKind<Rollout> Rollout = new(["paused", "abort"], (_, environment) => ApprovalPolicy.RequiredApprovals(environment));

    /// <summary>
    /// Only spec.allowedScope is under review: owner, class and supportTier are descriptive (no decision reads
    /// them), so changing them needs no new scope version, keeps the approvals given and makes nobody an author
    /// of the scope. The count comes from the strictest environment the scope reaches (<see cref="ApplicationPlan.ApprovalRule"/>).
    /// </summary>
    public static readonly ApprovableKind<Application> Application = new(["owner", "class", "supportTier"], (_, environment) => ApprovalPolicy.RequiredApprovals(environment));

        /// <summary>One SecurityReviewer of the workspace, in every environment (who counts: <see cref="ExceptionApprovals"/>).</summary>
    public static readonly ApprovableKind<SecurityException> Exception = new([], (_, _) => 1);

    /// <summary>Outside prod one Approver or WorkspaceAdmin, in prod two distinct; revoke is a control action (ending a grant needs no review, makes nobody an author).</summary>
    public static readonly ApprovableKind<AccessRequest> AccessRequest = new(["revoke"], (_, environment) => ApprovalPolicy.RequiredApprovals(environment));

    /// <summary>The after-the-fact review of an emergency grant: one reviewer in every environment (who counts: <see cref="BreakGlassReview"/>); end is a control action.</summary>
    public static readonly ApprovableKind<BreakGlass> BreakGlass = new(["end"], (_, _) => 1);

    public static readonly IReadOnlyList<IApprovableKind> All = [Exposure, DeploymentIntent, Restore, Rollout, Application, Exception, AccessRequest, BreakGlass];

    /// <summary>The approvable kind an Approval (or an admission request) names, or null when it names none.</summary>
    public static IApprovableKind? Of(string? kind) => All.FirstOrDefault(k => k.Kind == kind);

    /// <summary>The approvable kind of an object, by its type, or null.</summary>
    public static IApprovableKind? Of(IKubernetesObject<V1ObjectMeta> target) => All.FirstOrDefault(k => k.ObjectType.IsInstanceOfType(target));

    /// <summary>A Restore's count: in prod two approvers; elsewhere one in place and none for a new database.</summary>
    public static int RestoreApprovals(string environment, bool inPlace) => environment == "prod" ? 2 : inPlace ? 1 : 0;
}
