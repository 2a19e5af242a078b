using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Pure functions from cached objects to what the Rollout reconciler decides on: ring membership
/// (the Rollout's own tenant only), the state of the target Deployment and its new pods, the image
/// patch, and the successRate query. Nothing here talks to the API server or Prometheus.
/// </summary>
public static partial class RolloutResources
{
    public const string DeploymentIndex = "target-deployment";

    /// <summary>
    /// A ring's namespaces: named workspaces that belong to <paramref name="tenant"/>, and workspaces of
    /// that tenant whose labels match the selector. A named workspace of another tenant (or none) is
    /// refused, never rolled out to: the webhook refuses it too, this holds when it was bypassed.
    /// </summary>
    public static RingView Resolve(Ring ring, string tenant, Func<string, Workspace?> workspaceByName, IEnumerable<Workspace> tenantWorkspaces)
    {
        var namespaces = new SortedSet<string>(StringComparer.Ordinal);
        var refused = new List<string>();
        var prod = false;
        foreach (var name in ring.Workspaces ?? [])
        {
            var ws = workspaceByName(name);
            if (ws is null) refused.Add($"{name} (no such workspace)");
            else if (ws.Spec.Tenant != tenant) refused.Add($"{name} (not a workspace of tenant {tenant})");
            else if (ws.Metadata.DeletionTimestamp is null && namespaces.Add(NamespaceOf(ws))) prod |= WorkspaceEnvironments.Effective(ws) == WorkspaceEnvironments.Prod;
        }

        if (ring.Selector is { } selector)
        {
            foreach (var ws in tenantWorkspaces)
            {
                // The tenant index already restricts to the tenant; checked again, since it is the security boundary.
                if (ws.Spec.Tenant == tenant && ws.Metadata.DeletionTimestamp is null && Matches(selector, ws.Metadata.Labels) && namespaces.Add(NamespaceOf(ws))) prod |= WorkspaceEnvironments.Effective(ws) == WorkspaceEnvironments.Prod;
            }
        }

        return new RingView(namespaces.ToList(), refused, prod);
    }

    /// <summary>
    /// A ring waits for approval when its spec asks, and always when it reaches a prod workspace: the
    /// strictest environment among the targets decides; requiresApproval can only raise it. A Rollout
    /// the operator made for a DeploymentIntent (on-behalf-of) is gated by the intent's own approvals instead,
    /// but only while nobody besides its creator (the operator) changed its spec: a member who edits its rings
    /// (adds a prod workspace) is an author the intent's approvals never reviewed.
    /// </summary>
    public static bool NeedsApproval(Rollout rollout, Ring ring, RingView view) =>
        ring.RequiresApproval || (view.ReachesProd && !GatedByIntent(rollout));

    /// <summary>Made by the operator for a DeploymentIntent (on-behalf-of) and edited by no one else since: the intent's approvals cover it.</summary>
    public static bool GatedByIntent(Rollout rollout) =>
        rollout.Metadata.Annotations?.ContainsKey(ApiGroup.OnBehalfOfAnnotation) == true
        && ApprovalPolicy.WritersOf(rollout).All(a => a == ApprovalPolicy.AuthorOf(rollout));

    /// <summary>The prod workspaces (namespaces) the Rollout's rings reach: an approver must be an Approver in each of them too.</summary>
    public static IReadOnlyList<string> ProdTargets(Rollout rollout, Func<string, Workspace?> workspaceByName, Func<string, IEnumerable<Workspace>> workspacesOfTenant)
    {
        if (workspaceByName(rollout.Metadata.NamespaceProperty)?.Spec.Tenant is not { } tenant) return [];
        return rollout.Spec.Rings.SelectMany(r => Resolve(r, tenant, workspaceByName, workspacesOfTenant(tenant)).Namespaces)
            .Distinct(StringComparer.Ordinal).Where(n => workspaceByName(n) is { } w && WorkspaceEnvironments.Effective(w) == WorkspaceEnvironments.Prod).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// An approval of a Rollout counts only from an Approver (or WorkspaceAdmin) of its own workspace
    /// and of every prod workspace its rings reach: a dev teammate cannot approve a change to prod.
    /// </summary>
    public static bool HoldsApproverRoleForRollout(Approval a, IReadOnlyList<string> prodTargets, Func<string, IEnumerable<V1RoleBinding>> bindingsIn) =>
        new[] { a.Metadata.NamespaceProperty }.Concat(prodTargets).Distinct(StringComparer.Ordinal)
            .All(ns => ApprovalPolicy.IsApprover(a.Spec.Approver, ApprovalPolicy.GroupsOf(a), bindingsIn(ns)));

    public static string NamespaceOf(Workspace ws) => ws.Status?.Namespace ?? ws.Metadata.Name;

    /// <summary>
    /// The environment whose approval rule a Rollout follows: prod (two approvers) when it lives in a
    /// prod workspace or any ring reaches one; else its own workspace's. The
    /// Rollout and Approval reconcilers both ask this, so they count alike.
    /// </summary>
    public static string ApprovalEnvironment(Rollout rollout, Func<string, Workspace?> workspaceByName, Func<string, IEnumerable<Workspace>> workspacesOfTenant)
    {
        var own = workspaceByName(rollout.Metadata.NamespaceProperty);
        if (own is null) return "dev";
        if (WorkspaceEnvironments.Effective(own) == "prod") return "prod";
        var tenant = own.Spec.Tenant;
        // Any ring reaching prod needs approval (NeedsApproval), so the whole Rollout follows prod's rule.
        foreach (var ring in rollout.Spec.Rings)
        {
            if (Resolve(ring, tenant, workspaceByName, workspacesOfTenant(tenant)).ReachesProd) return "prod";
        }

        return WorkspaceEnvironments.Effective(own);
    }

    /// <summary>metav1.LabelSelector semantics; an empty selector matches everything (of the tenant).</summary>
    public static bool Matches(LabelSelector selector, IDictionary<string, string>? labels)
    {
        labels ??= new Dictionary<string, string>();
        foreach (var (k, v) in selector.MatchLabels ?? [])
        {
            if (!labels.TryGetValue(k, out var have) || have != v) return false;
        }

        foreach (var e in selector.MatchExpressions ?? [])
        {
            var has = labels.TryGetValue(e.Key, out var value);
            var ok = e.Operator switch
            {
                "In" => has && (e.Values ?? []).Contains(value!),
                "NotIn" => !has || !(e.Values ?? []).Contains(value!),
                "Exists" => has,
                "DoesNotExist" => !has,
                _ => false,
            };
            if (!ok) return false;
        }

        return true;
    }

    /// <summary>The target Deployment in a namespace and the health of its pods that run the target images.</summary>
    public static DeploymentView View(string ns, V1Deployment? d, IReadOnlyList<ContainerImage> target, IEnumerable<V1Pod> podsInNamespace)
    {
        if (d is null) return DeploymentView.Missing(ns);
        var containers = d.Spec.Template.Spec.Containers ?? [];
        var images = containers.Select(c => new ContainerImage { Name = c.Name, Image = c.Image }).ToList();
        var onTarget = OnImages(containers.Select(c => (c.Name, c.Image)), target);
        var want = d.Spec.Replicas ?? 1;
        var s = d.Status;
        var rolledOut = onTarget && s?.ObservedGeneration >= d.Metadata.Generation
                        && (s.UpdatedReplicas ?? 0) >= want && (s.AvailableReplicas ?? 0) >= want && (s.Replicas ?? 0) == want;
        int restarts = 0, notReady = 0;
        DateTime? lastRestart = null;
        foreach (var pod in podsInNamespace)
        {
            if (!OwnedBy(pod, d.Metadata.Name) || pod.Metadata.DeletionTimestamp is not null) continue;
            if (!OnImages(pod.Spec.Containers.Select(c => (c.Name, c.Image)), target)) continue;
            foreach (var cs in pod.Status?.ContainerStatuses ?? [])
            {
                restarts += cs.RestartCount;
                if (cs.RestartCount > 0 && cs.LastState?.Terminated?.FinishedAt is { } at && (lastRestart is null || at > lastRestart)) lastRestart = at;
            }

            if (pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") != true) notReady++;
        }

        var summary = $"{s?.UpdatedReplicas ?? 0}/{want} updated, {s?.AvailableReplicas ?? 0}/{want} available";
        return new DeploymentView(ns, true, onTarget, rolledOut, images, restarts, notReady, lastRestart, summary);
    }

    /// <summary>Every target container is present with the target image.</summary>
    static bool OnImages(IEnumerable<(string Name, string Image)> containers, IReadOnlyList<ContainerImage> target)
    {
        var have = containers.ToDictionary(c => c.Name, c => c.Image, StringComparer.Ordinal);
        return target.All(t => have.TryGetValue(t.Name, out var image) && image == t.Image);
    }

    /// <summary>A pod of this Deployment: owned by one of its ReplicaSets (named deployment-hash, the hash also the pod's label).</summary>
    static bool OwnedBy(V1Pod pod, string deployment)
    {
        var hash = pod.Metadata.Labels?.TryGetValue("pod-template-hash", out var h) == true ? h : null;
        return hash is not null && pod.Metadata.OwnerReferences?.Any(o => o.Kind == "ReplicaSet" && o.Name == $"{deployment}-{hash}") == true;
    }

    /// <summary>The target's containers missing from a Deployment (a typo would otherwise add a container).</summary>
    public static IReadOnlyList<string> MissingContainers(DeploymentView view, IReadOnlyList<ContainerImage> target) =>
        target.Where(t => view.Images.All(i => i.Name != t.Name)).Select(t => t.Name).ToList();

    /// <summary>
    /// A strategic merge patch that sets only these containers' images (merged by container name),
    /// guarded by the Deployment's UID so it never lands on a replacement of the object we read.
    /// </summary>
    public static string ImagePatch(IEnumerable<ContainerImage> containers, string? uid)
    {
        var list = new JsonArray();
        foreach (var c in containers) list.Add(new JsonObject { ["name"] = c.Name, ["image"] = c.Image });
        var patch = new JsonObject { ["spec"] = new JsonObject { ["template"] = new JsonObject { ["spec"] = new JsonObject { ["containers"] = list } } } };
        if (uid is not null) patch["metadata"] = new JsonObject { ["uid"] = uid };
        return patch.ToJsonString();
    }

    /// <summary>The previous images of the target containers, as recorded for rollback.</summary>
    public static PreviousImages Previous(DeploymentView view, IReadOnlyList<ContainerImage> target) => new()
    {
        Namespace = view.Namespace,
        Containers = view.Images.Where(i => target.Any(t => t.Name == i.Name)).Select(i => new ContainerImage { Name = i.Name, Image = i.Image }).ToList(),
    };

    [GeneratedRegex(@"\{\{\s*namespaces\s*\}\}")]
    private static partial Regex NamespacesPlaceholder();

    /// <summary>
    /// The query with {{namespaces}} replaced by the ring's namespaces as an anchored-by-PromQL regex alternation;
    /// null for a ring without namespaces, since <c>namespace=~""</c> matches every series that has no namespace label.
    /// </summary>
    public static string? Query(string template, IReadOnlyCollection<string> namespaces) =>
        namespaces.Count == 0 ? null
            : NamespacesPlaceholder().Replace(template, string.Join('|', namespaces.Select(Regex.Escape)).Replace("\\", "\\\\", StringComparison.Ordinal));

    /// <summary>
    /// The scalar of a Prometheus /api/v1/query answer (a one-element vector or a scalar); null when
    /// the answer holds no sample (no traffic) or is not a number.
    /// </summary>
    public static double? ParsePrometheus(string json)
    {
        var root = JsonNode.Parse(json);
        if (root?["status"]?.GetValue<string>() != "success") throw new FormatException($"Prometheus answered status {root?["status"]?.ToJsonString() ?? "(none)"}: {root?["error"]?.ToJsonString()}");
        var data = root["data"];
        JsonNode? value = data?["resultType"]?.GetValue<string>() switch
        {
            "vector" => data["result"] is JsonArray { Count: > 0 } result ? result[0]?["value"] : null,
            "scalar" => data["result"],
            _ => null,
        };
        if (value is not JsonArray { Count: 2 } pair) return null;
        var text = pair[1]?.GetValue<string>();
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : null;
    }

    public static string Format(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);

    public static string Describe(IEnumerable<ContainerImage> containers) => string.Join(", ", containers.Select(c => $"{c.Name}={c.Image}"));

    public static string Json(object o) => JsonSerializer.Serialize(o);
}
