using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Policy;

/// <summary>Why one Approval does or does not count.</summary>
public sealed record ApprovalVerdict(bool Counts, string Reason, string Message);

/// <summary>Whether a target is approved for its current generation.</summary>
public sealed record ApprovalState(bool Approved, bool Rejected, int Required, IReadOnlyList<string> Approvers, IReadOnlyList<string> RejectedBy, string Message);

/// <summary>
/// The one answer to "is this target approved for its current generation", shared by every
/// reconciler that gates on approvals and by the admission webhook. An approval counts when it
/// names the target's UID and current generation, its approver is not an author of that generation
/// (its creator or anyone who changed its spec), and its approver holds the Approver or WorkspaceAdmin role. Any
/// counting reject wins. Outside prod one approver suffices; in prod it takes two distinct approvers
/// (the two-person rule). A kind with its own count passes it in (a Restore: none for a new database outside prod).
/// </summary>
public static class ApprovalPolicy
{
    /// <summary>The workspace roles whose holders may approve; tenant owners are bound as WorkspaceAdmin.</summary>
    public static readonly IReadOnlyList<string> ApproverRoles = [WorkspaceRoles.ClusterRoleName("Approver"), WorkspaceRoles.ClusterRoleName("WorkspaceAdmin")];

    public static string? AuthorOf(IKubernetesObject<V1ObjectMeta> target) => Annotation(target, ApiGroup.CreatedByAnnotation);

    /// <summary>Who wrote the generation under review: its creator and whoever last changed its spec.</summary>
    public static IReadOnlyList<string> AuthorsOf(IKubernetesObject<V1ObjectMeta> target) =>
        new[] { Annotation(target, ApiGroup.CreatedByAnnotation), Annotation(target, ApiGroup.LastSpecEditorAnnotation) }
            .OfType<string>().Where(a => a.Length > 0).Distinct().ToList();

    /// <summary>
    /// Everyone who wrote any part of the spec under review: its creator and every spec editor so far, not only the last;
    /// on a Rollout the operator made for a DeploymentIntent, also the intent's authors it acts for (on-behalf-of, an
    /// operator-only stamp): they wrote the change it deploys, so approving it would be self-approval.
    /// </summary>
    public static IReadOnlyList<string> EveryAuthorOf(IKubernetesObject<V1ObjectMeta> target) =>
        WritersOf(target)
            .Concat(Annotation(target, ApiGroup.OnBehalfOfAnnotation) is { } onBehalfOf ? Requesters.ParseOnBehalfOf(onBehalfOf)?.Select(r => r.User) ?? [] : [])
            .Distinct().ToList();

    /// <summary>Who wrote the object itself, as the webhook stamped it: its creator and every spec editor.</summary>
    public static IReadOnlyList<string> WritersOf(IKubernetesObject<V1ObjectMeta> target) =>
        AuthorsOf(target).Concat(ParseUsers(Annotation(target, ApiGroup.SpecEditorsAnnotation))).Distinct().ToList();

    /// <summary>The spec-editors annotation's value with <paramref name="user"/> added (once).</summary>
    public static string WithSpecEditor(string? current, string user) =>
        JsonSerializer.Serialize(ParseUsers(current).Append(user).Distinct().ToArray());

    static IReadOnlyList<string> ParseUsers(string? text)
    {
        if (string.IsNullOrEmpty(text)) return [];
        try
        {
            return (JsonSerializer.Deserialize<string[]>(text) ?? []).Where(u => !string.IsNullOrEmpty(u)).ToList();
        }
        catch (JsonException)
        {
            return [];
        }
    }

    static string? Annotation(IKubernetesObject<V1ObjectMeta> o, string key) =>
        o.Metadata.Annotations?.TryGetValue(key, out var value) == true ? value : null;

    /// <summary>The approver-groups annotation's value for these groups.</summary>
    public static string FormatGroups(IEnumerable<string>? groups) => JsonSerializer.Serialize((groups ?? []).ToArray());

    /// <summary>The groups recorded at admission; nothing when absent or malformed (a group is never guessed).</summary>
    public static IReadOnlyList<string> GroupsOf(Approval approval)
    {
        if (approval.Metadata.Annotations?.TryGetValue(ApiGroup.ApproverGroupsAnnotation, out var text) != true || string.IsNullOrEmpty(text)) return [];
        // Approvals admitted before the JSON form recorded a comma-separated list (also webhook-stamped).
        if (!text.StartsWith('[')) return text.Split(',', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            return JsonSerializer.Deserialize<string[]>(text) ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    /// <summary>
    /// "Is this user an approver here": a RoleBinding in the namespace to the Approver or WorkspaceAdmin
    /// role names the user or one of the groups. The webhook asks it with the request's groups and its
    /// RoleBinding informer, the reconciler with the groups recorded at admission and its own cache.
    /// </summary>
    public static bool IsApprover(string? user, IReadOnlyCollection<string> groups, IEnumerable<V1RoleBinding> bindingsInNamespace) =>
        HoldsRole(user, groups, bindingsInNamespace, ApproverRoles);

    /// <summary>As <see cref="IsApprover"/>, for other roles (an Exception's SecurityReviewer): people only, bound in the namespace to one of <paramref name="roles"/>.</summary>
    public static bool HoldsRole(string? user, IReadOnlyCollection<string> groups, IEnumerable<V1RoleBinding> bindingsInNamespace, IReadOnlyList<string> roles)
    {
        // Approvers are people: a ServiceAccount never is one, and a "system:" group (everyone, every ServiceAccount) never makes one.
        if (string.IsNullOrEmpty(user) || NotAPerson(user, groups) is not null) return false;
        return bindingsInNamespace.Any(b => b.RoleRef.Kind == "ClusterRole" && roles.Contains(b.RoleRef.Name)
                                            && (b.Subjects ?? []).Any(s => (s.Kind == "User" && s.Name == user)
                                                                           || (s.Kind == "Group" && !s.Name.StartsWith("system:", StringComparison.Ordinal) && groups.Contains(s.Name))));
    }

    /// <summary>Workspace roles whose holders can get a ServiceAccount's token in that namespace (Secrets, or a Pod run as it and read back).</summary>
    public static readonly IReadOnlyList<string> TokenMintingRoles =
        [WorkspaceRoles.ClusterRoleName("WorkspaceAdmin"), WorkspaceRoles.ClusterRoleName("Operator"), WorkspaceRoles.ClusterRoleName("IntegrationAdmin")];

    /// <summary>
    /// Why <paramref name="user"/> could have acted as an author of <paramref name="target"/>, or null: an
    /// author that is a ServiceAccount is whoever can mint its token, so a holder of a token-minting role in
    /// its namespace (<paramref name="bindingsIn"/>: the operator's RoleBindings there) is an author too.
    /// </summary>
    public static string? ControlsAnAuthor(string user, IReadOnlyCollection<string> groups, IKubernetesObject<V1ObjectMeta> target, Func<string, IEnumerable<V1RoleBinding>> bindingsIn)
    {
        foreach (var author in EveryAuthorOf(target).Where(a => a.StartsWith(KubernetesIdentities.ServiceAccountPrefix, StringComparison.Ordinal)))
        {
            var ns = author[KubernetesIdentities.ServiceAccountPrefix.Length..].Split(':')[0];
            if (MintingRoleIn(ns, user, groups, bindingsIn, []) is { } how)
            {
                return $"{user} holds {how} and can act as {author}, an author of {target.Kind} {target.Metadata.Name}; approving it would be self-approval (two-person rule)";
            }
        }

        return null;
    }

    /// <summary>
    /// How <paramref name="user"/> can mint tokens in <paramref name="ns"/>, or null: a token-minting role there, directly,
    /// or through a ServiceAccount bound to one there whose own tokens the user can mint (a chain of namespaces).
    /// </summary>
    static string? MintingRoleIn(string ns, string user, IReadOnlyCollection<string> groups, Func<string, IEnumerable<V1RoleBinding>> bindingsIn, HashSet<string> seen)
    {
        if (!seen.Add(ns)) return null;
        var minting = bindingsIn(ns).Where(b => b.RoleRef.Kind == "ClusterRole" && TokenMintingRoles.Contains(b.RoleRef.Name)).ToList();
        if (minting.FirstOrDefault(b => (b.Subjects ?? []).Any(s => (s.Kind == "User" && s.Name == user) || (s.Kind == "Group" && groups.Contains(s.Name)))) is { } direct)
        {
            return $"{direct.RoleRef.Name} in namespace {ns}";
        }

        foreach (var b in minting)
        {
            foreach (var sa in (b.Subjects ?? []).Where(s => s.Kind == "ServiceAccount"))
            {
                var saNamespace = string.IsNullOrEmpty(sa.NamespaceProperty) ? ns : sa.NamespaceProperty;
                if (MintingRoleIn(saNamespace, user, groups, bindingsIn, seen) is { } how) return $"{how}, whose ServiceAccount {saNamespace}/{sa.Name} holds {b.RoleRef.Name} in namespace {ns}";
            }
        }

        return null;
    }

    /// <summary>
    /// Why <paramref name="user"/> is not a person who can approve, or null. A ServiceAccount (by username
    /// or by the system:serviceaccounts groups) is a token whoever holds its namespace can mint: the
    /// author, often. It never counts toward the two-person rule, however it is bound.
    /// </summary>
    public static string? NotAPerson(string? user, IEnumerable<string>? groups) =>
        KubernetesIdentities.IsServiceAccount(user, groups)
            ? $"{user} is a ServiceAccount (system:serviceaccount:* or in group {KubernetesIdentities.ServiceAccountsGroup}); approvals are given by people, and a token its author can mint never counts (two-person rule)"
            : null;

    /// <summary>
    /// <see cref="IsApprover"/> for an admitted Approval, over the RoleBindings of a namespace (a cache's, passed in:
    /// Policy reads no cache itself): the groups are the ones recorded at admission. Every reconciler that gates on approvals asks this one.
    /// </summary>
    public static bool HoldsApproverRole(Approval approval, Func<string, IEnumerable<V1RoleBinding>> bindingsIn) =>
        IsApprover(approval.Spec.Approver, GroupsOf(approval), bindingsIn(approval.Metadata.NamespaceProperty));

    /// <param name="bindingsIn">The operator's RoleBindings by namespace: when given, an approver who can act as a ServiceAccount author (<see cref="ControlsAnAuthor"/>) is an author.</param>
    public static ApprovalVerdict Judge(Approval approval, IKubernetesObject<V1ObjectMeta>? target, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<V1RoleBinding>>? bindingsIn = null)
    {
        var t = approval.Spec.Target;
        if (target is null) return new(false, ApprovalReasons.TargetNotFound, $"{t.Kind} {t.Name} does not exist");
        if (string.IsNullOrEmpty(approval.Spec.Approver)) return new(false, ApprovalReasons.NoApprover, "spec.approver is empty: the approval did not pass the admission webhook");
        if (NotAPerson(approval.Spec.Approver, GroupsOf(approval)) is { } machine) return new(false, ApprovalReasons.NotAPerson, machine);
        if (approval.Spec.TargetUID != target.Metadata.Uid)
        {
            return new(false, ApprovalReasons.TargetReplaced, $"approves {t.Kind} {t.Name} with UID {approval.Spec.TargetUID ?? "(none)"}, but the one there now has UID {target.Metadata.Uid}: it was deleted and recreated after approval");
        }

        if (EveryAuthorOf(target).Contains(approval.Spec.Approver))
        {
            return new(false, ApprovalReasons.SelfApproval, $"{approval.Spec.Approver} authored {t.Kind} {t.Name} (created it or changed its spec); self-approval does not count");
        }

        if (bindingsIn is not null && ControlsAnAuthor(approval.Spec.Approver, GroupsOf(approval), target, bindingsIn) is { } controls)
        {
            return new(false, ApprovalReasons.SelfApproval, controls);
        }

        var carried = false;
        if (approval.Spec.TargetGeneration != target.Metadata.Generation)
        {
            if (!OnlyControlFieldsChangedSince(approval, target))
            {
                return new(false, ApprovalReasons.StaleGeneration, $"approves generation {approval.Spec.TargetGeneration} but {t.Kind} {t.Name} is at generation {target.Metadata.Generation}: it changed after approval");
            }

            carried = true;
        }

        if (!holdsApproverRole(approval)) return new(false, ApprovalReasons.NotAnApprover, $"{approval.Spec.Approver} holds neither the Approver nor the WorkspaceAdmin role here");
        return new(true, approval.Spec.Decision == "reject" ? ApprovalReasons.Rejects : ApprovalReasons.Counts, $"{approval.Spec.Decision}s generation {approval.Spec.TargetGeneration} of {t.Kind} {t.Name}"
            + (carried ? $"; only spec.{string.Join("/", ControlFields(target.Kind))} changed since (now generation {target.Metadata.Generation})" : ""));
    }

    /// <summary>The kind's control fields (<see cref="IApprovableKind.ControlFields"/>); none for a kind no Approval names.</summary>
    public static IReadOnlyList<string> ControlFields(string? kind) => ApprovableKinds.Of(kind)?.ControlFields ?? [];

    /// <summary>The part of a spec an approval covers (<see cref="IApprovableKind.ContentOf"/>); all of it for a kind no Approval names.</summary>
    public static JsonNode? ApprovalRelevantSpec(string? kind, JsonNode? spec) =>
        ApprovableKinds.Of(kind) is { } approvable ? approvable.ContentOf(spec) : spec?.DeepClone();

    /// <summary>SHA-256 (hex) of the canonical JSON (keys sorted) of the target's approval-relevant spec.</summary>
    public static string ContentHash(IKubernetesObject<V1ObjectMeta> target)
    {
        var spec = JsonNode.Parse(KubernetesJson.Serialize(target))?["spec"];
        var canonical = Canonical(ApprovalRelevantSpec(target.Kind, spec))?.ToJsonString() ?? "null";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    static JsonNode? Canonical(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, Canonical(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Canonical).ToArray()),
        _ => node?.DeepClone(),
    };

    /// <summary>
    /// An approval of an older generation of a kind with control fields, whose webhook-stamped content
    /// hash is the target's current one: only control fields changed since. Missing hash: not carried.
    /// </summary>
    static bool OnlyControlFieldsChangedSince(Approval approval, IKubernetesObject<V1ObjectMeta> target) =>
        ControlFields(target.Kind).Count > 0
        && approval.Spec.TargetGeneration < target.Metadata.Generation
        && Annotation(approval, ApiGroup.TargetContentHashAnnotation) is { Length: > 0 } stamped
        && stamped == ContentHash(target);

    public static int RequiredApprovals(string environment) => environment == "prod" ? 2 : 1;

    public static ApprovalState Evaluate(IKubernetesObject<V1ObjectMeta> target, string environment, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<V1RoleBinding>>? bindingsIn = null) =>
        Evaluate(target, ApprovableKinds.Of(target)?.RequiredApprovals(target, environment) ?? RequiredApprovals(environment), approvals, holdsApproverRole, bindingsIn);

    /// <summary>
    /// As above, for a kind whose own rules say how many approvers it needs (a Restore: <see cref="ApprovableKinds.RestoreApprovals"/>).
    /// Zero needed is approved unless a counting approval rejects it: any reject wins.
    /// </summary>
    public static ApprovalState Evaluate(IKubernetesObject<V1ObjectMeta> target, int required, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<V1RoleBinding>>? bindingsIn = null)
    {
        var counting = approvals
            .Where(a => a.Spec.Target.Kind == target.Kind && a.Spec.Target.Name == target.Metadata.Name && a.Metadata.NamespaceProperty == target.Metadata.NamespaceProperty)
            .Where(a => Judge(a, target, holdsApproverRole, bindingsIn).Counts)
            .ToList();
        var rejectedBy = counting.Where(a => a.Spec.Decision == "reject").Select(a => a.Spec.Approver!).Distinct().Order().ToList();
        var approvers = counting.Where(a => a.Spec.Decision == "approve").Select(a => a.Spec.Approver!).Distinct().Order().ToList();
        if (rejectedBy.Count > 0) return new(false, true, required, approvers, rejectedBy, $"rejected by {string.Join(", ", rejectedBy)}");
        var approved = approvers.Count >= required;
        return new(approved, false, required, approvers, rejectedBy,
            required == 0 ? "no approval needed" : approved ? $"approved by {string.Join(", ", approvers)}" : $"{approvers.Count} of {required} approval(s) for generation {target.Metadata.Generation}");
    }
}
