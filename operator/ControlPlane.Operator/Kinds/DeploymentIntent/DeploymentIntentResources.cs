using System.Security.Cryptography;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// What approving an intent takes, from every workspace it will touch rather than from anything the
/// intent says: <see cref="Environment"/> is the strictest among its own workspace and all ring
/// targets and sets <see cref="Required"/>; a ring reaching a prod workspace (<see cref="ProdRings"/>)
/// never starts without that approval, whatever the risk or decision; and an approver counts only
/// when they are an Approver (or WorkspaceAdmin) of every prod target (<see cref="ProdTargets"/>).
/// </summary>
public sealed record IntentApprovalRule(string Environment, int Required, IReadOnlyList<string> ProdTargets, IReadOnlySet<string> ProdRings)
{
    /// <summary>Why a ring waits though the intent's own decision would let it go.</summary>
    public string? Hold(string ring, bool approved, string approvalMessage) => approved || !ProdRings.Contains(ring) ? null
        : $"ring {ring} reaches prod workspace(s) {string.Join(", ", ProdTargets)}: it needs {Required} approvals from distinct Approvers of those workspaces, never the author, whatever the risk: {approvalMessage}";
}

/// <summary>What the ring sequencer asks for next.</summary>
public enum RingAction { None, Start, Complete, Fail, Wait }

/// <summary>The sequencer's answer for the current ring: what to do, why, and when to look again.</summary>
public sealed record RingStep(RingAction Action, string? Ring, string Reason, string Message, TimeSpan? RecheckIn = null);

/// <summary>
/// Pure functions of a DeploymentIntent: the scope rules (shared with admission), which workspaces a
/// ring is, the decision (Deny / RequireApproval / Allow), the one-change-per-application rule, the
/// evidence hash, and the ring sequencer (schedule windows, minimum soak, CAB before ring two).
/// </summary>
public static class DeploymentIntentResources
{
    // Workspace labels carrying its scope attributes (validated against the tenant's scopes at admission).
    public const string ApplicationIndex = "application";

    /// <summary>A target scope outside the tenant's scopes, each problem naming the field.</summary>
    public static List<string> ScopeProblems(DeploymentIntentSpec spec, Tenant tenant)
    {
        var problems = new List<string>();
        var scope = spec.TargetScope;
        var match = tenant.Spec.Scopes?.FirstOrDefault(s => s.AcquisitionBoundary == scope.AcquisitionBoundary);
        if (match is null)
        {
            problems.Add($"spec.targetScope.acquisitionBoundary: \"{scope.AcquisitionBoundary}\" is not one of tenant {tenant.Metadata.Name}'s scopes");
            return problems;
        }

        if (scope.BusinessUnit is { } bu && !(match.BusinessUnits ?? []).Contains(bu))
        {
            problems.Add($"spec.targetScope.businessUnit: \"{bu}\" is outside scope {match.AcquisitionBoundary} ({string.Join(", ", match.BusinessUnits ?? [])})");
        }

        if (scope.SiteClass is { } sc && !(match.SiteClasses ?? []).Contains(sc))
        {
            problems.Add($"spec.targetScope.siteClass: \"{sc}\" is outside scope {match.AcquisitionBoundary} ({string.Join(", ", match.SiteClasses ?? [])})");
        }

        return problems;
    }

    /// <summary>A workspace's scope labels outside its tenant's scopes (admission of Workspaces), naming the label.</summary>
    public static List<string> WorkspaceScopeProblems(IDictionary<string, string>? labels, Tenant tenant)
    {
        if (labels is null) return [];
        var problems = new List<string>();
        labels.TryGetValue(ApiGroup.AcquisitionBoundaryLabel, out var boundary);
        var inScope = boundary is null ? null : tenant.Spec.Scopes?.FirstOrDefault(s => s.AcquisitionBoundary == boundary);
        if (boundary is not null && inScope is null)
        {
            problems.Add($"metadata.labels[{ApiGroup.AcquisitionBoundaryLabel}]: \"{boundary}\" is not one of tenant {tenant.Metadata.Name}'s scopes");
        }

        if (labels.TryGetValue(ApiGroup.BusinessUnitLabel, out var bu) && (inScope is null || !(inScope.BusinessUnits ?? []).Contains(bu)))
        {
            problems.Add($"metadata.labels[{ApiGroup.BusinessUnitLabel}]: \"{bu}\" is outside the workspace's acquisition boundary in tenant {tenant.Metadata.Name}'s scopes");
        }

        if (labels.TryGetValue(ApiGroup.SiteClassLabel, out var sc) && (inScope is null || !(inScope.SiteClasses ?? []).Contains(sc)))
        {
            problems.Add($"metadata.labels[{ApiGroup.SiteClassLabel}]: \"{sc}\" is outside the workspace's acquisition boundary in tenant {tenant.Metadata.Name}'s scopes");
        }

        return problems;
    }

    static string? Label(Workspace w, string key) => w.Metadata.Labels?.TryGetValue(key, out var v) == true ? v : null;

    /// <summary>
    /// The workspaces of a ring: the tenant's workspaces labelled with the ring and the target's
    /// acquisition boundary (and business unit and site class when the target names them). Never
    /// another tenant's: the caller passes only the intent's own tenant's workspaces.
    /// </summary>
    public static IReadOnlyList<string> RingWorkspaces(TargetScope scope, string ring, IEnumerable<Workspace> tenantWorkspaces) =>
        tenantWorkspaces
            .Where(w => w.Metadata.DeletionTimestamp is null && Label(w, ApiGroup.RingLabel) == ring && Label(w, ApiGroup.AcquisitionBoundaryLabel) == scope.AcquisitionBoundary)
            .Where(w => scope.BusinessUnit is null || Label(w, ApiGroup.BusinessUnitLabel) == scope.BusinessUnit)
            .Where(w => scope.SiteClass is null || Label(w, ApiGroup.SiteClassLabel) == scope.SiteClass)
            .Select(w => w.Metadata.Name)
            .Order(StringComparer.Ordinal)
            .ToList();

    public static IReadOnlyList<string> Rings(DeploymentIntentSpec spec) => spec.TargetScope.Rings ?? [];

    /// <summary>
    /// Whether an intent is approved by its targets' rule: the count <see cref="IntentApprovalRule.Required"/>,
    /// an approver counting only when they also hold an approver role in every prod target. The intent
    /// reconciler and the Approval reconciler (its TargetApproved condition) both ask this.
    /// </summary>
    public static ApprovalState ApprovalOf(DeploymentIntent intent, IntentApprovalRule rule, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<k8s.Models.V1RoleBinding>> bindingsIn) =>
        ApprovalPolicy.Evaluate(intent, rule.Required, approvals,
            a => holdsApproverRole(a) && rule.ProdTargets.All(t => ApprovalPolicy.IsApprover(a.Spec.Approver, ApprovalPolicy.GroupsOf(a), bindingsIn(t))), bindingsIn);

    /// <summary>
    /// The longest intent name: its Rollouts carry it as the value of <see cref="ApiGroup.IntentLabel"/> (a label
    /// value: at most 63), and are named <c>&lt;name&gt;-&lt;ring&gt;[-rollback|-redeploy]</c> (a DNS subdomain: at most 253).
    /// </summary>
    public const int MaxNameLength = 63;

    /// <summary>The suffixes a ring's Rollouts get besides the ring's own (the longest decides).</summary>
    static readonly string?[] RolloutPurposes = [null, "rollback", "redeploy"];

    /// <summary>
    /// Names the reconciler derives from the intent's name and rings that the API server would refuse,
    /// each naming the field: refused at admission, and denied at reconcile if one got past it, instead
    /// of being admitted and then failing forever.
    /// </summary>
    public static List<string> NameProblems(string? name, IReadOnlyList<string>? rings)
    {
        var problems = new List<string>();
        if (name is { Length: > MaxNameLength })
        {
            problems.Add($"metadata.name: {name.Length} characters, at most {MaxNameLength}: the intent's name is the value of the label {ApiGroup.IntentLabel} on the Rollouts it creates (a label value has at most 63)");
        }

        rings ??= [];
        for (var i = 0; i < rings.Count; i++)
        {
            if (!SpecRules.IsDnsLabel(rings[i]))
            {
                problems.Add($"spec.targetScope.rings[{i}]: \"{rings[i]}\" is not a DNS label (at most 63 lowercase letters, digits and '-'): a ring names and labels the Rollout that deploys it");
                continue;
            }

            if (!string.IsNullOrEmpty(name) && RolloutPurposes.Select(p => KubernetesExecutionPlane.RolloutName(name, rings[i], p)).FirstOrDefault(n => !SpecRules.IsDnsSubdomain(n)) is { } child)
            {
                problems.Add($"metadata.name: with ring {rings[i]} (spec.targetScope.rings[{i}]) it makes the Rollout name {child[..Math.Min(child.Length, 80)]}..., {child.Length} characters, not a DNS subdomain (at most 253)");
            }
        }

        return problems;
    }

    /// <summary>Every ring's workspaces, resolved once per pass: the approval rule and the publish both use these.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> RingTargets(TargetScope scope, IEnumerable<Workspace> tenantWorkspaces)
    {
        var workspaces = tenantWorkspaces.ToList();
        return (scope.Rings ?? []).Distinct().ToDictionary(r => r, r => RingWorkspaces(scope, r, workspaces));
    }

    /// <summary>
    /// The approval an intent needs, from its targets' environments as the operator applies them
    /// (<see cref="WorkspaceEnvironments.Effective"/>): self-declared risk, privilegedTooling or the
    /// intent's own workspace never lower it. A target no longer known counts as prod.
    /// </summary>
    public static IntentApprovalRule ApprovalRule(Workspace own, IReadOnlyDictionary<string, IReadOnlyList<string>> ringTargets, Func<string, Workspace?> workspaceByName)
    {
        string EnvironmentOf(string name) => workspaceByName(name) is { } w ? WorkspaceEnvironments.Effective(w) : WorkspaceEnvironments.Prod;
        var targets = ringTargets.Values.SelectMany(w => w).Distinct().ToList();
        var prodTargets = targets.Where(t => EnvironmentOf(t) == WorkspaceEnvironments.Prod).Order(StringComparer.Ordinal).ToList();
        var prodRings = ringTargets.Where(kv => kv.Value.Any(prodTargets.Contains)).Select(kv => kv.Key).ToHashSet();
        var environment = WorkspaceEnvironments.Strictest(targets.Select(EnvironmentOf).Prepend(WorkspaceEnvironments.Effective(own)));
        return new(environment, ApprovalPolicy.RequiredApprovals(environment), prodTargets, prodRings);
    }

    /// <summary>
    /// Rings that select none of the tenant's workspaces, each naming spec.targetScope.rings[i]: the
    /// same rule at admission and at reconcile, so a ring only another tenant's workspaces carry (its
    /// label, its boundary) is refused up front instead of admitted and denied later.
    /// </summary>
    public static List<string> RingProblems(TargetScope scope, string tenant, IEnumerable<Workspace> tenantWorkspaces)
    {
        var workspaces = tenantWorkspaces.ToList();
        var rings = scope.Rings ?? [];
        var problems = new List<string>();
        for (var i = 0; i < rings.Count; i++)
        {
            if (RingWorkspaces(scope, rings[i], workspaces).Count > 0) continue;
            var narrowed = (scope.BusinessUnit is { } bu ? $", {ApiGroup.BusinessUnitLabel}={bu}" : "") + (scope.SiteClass is { } sc ? $", {ApiGroup.SiteClassLabel}={sc}" : "");
            problems.Add($"spec.targetScope.rings[{i}]: ring \"{rings[i]}\" has no workspace of tenant {tenant} labelled {ApiGroup.RingLabel}={rings[i]} and " +
                         $"{ApiGroup.AcquisitionBoundaryLabel}={scope.AcquisitionBoundary}{narrowed}: a ring is only ever the tenant's own workspaces");
        }

        return problems;
    }

    /// <summary>Whether the intent's decision asks for CAB approval: RequireApproval, or RequireException whose risk also asks for it.</summary>
    public static bool NeedsCab(DeploymentIntentStatus? status) =>
        status?.Decision == "RequireApproval" || (status?.Decision == "RequireException" && status.CabRequired == true);

    /// <summary>SHA-256 (hex) of an evidence pack's bytes: what `sha256sum` prints.</summary>
    public static string Sha256Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The rings an intent is currently running (its rings InProgress).</summary>
    public static IEnumerable<string> ActiveRings(DeploymentIntent i) =>
        i.Status?.Rings?.Where(r => r.Phase == IntentRingPhase.InProgress).Select(r => r.Name) ?? [];

    /// <summary>
    /// Another change of the same application already in progress in a ring this one targets: one
    /// active change per application and ring (the one in progress goes on; this one waits).
    /// </summary>
    public static (DeploymentIntent Other, string Ring)? ConflictingChange(DeploymentIntent intent, IEnumerable<DeploymentIntent> sameApplication)
    {
        var mine = Rings(intent.Spec).ToHashSet();
        foreach (var other in sameApplication.OrderBy(o => o.Metadata.CreationTimestamp).ThenBy(o => o.Metadata.Name, StringComparer.Ordinal))
        {
            if (other.Metadata.Uid == intent.Metadata.Uid || other.Spec.Application != intent.Spec.Application) continue;
            if (ActiveRings(other).FirstOrDefault(mine.Contains) is { } ring) return (other, ring);
        }

        return null;
    }

    static TimeSpan MinimumSoak(DeploymentIntentSpec spec, string ring) =>
        TimeSpan.FromHours(spec.Schedule?.TryGetValue(ring, out var s) == true ? s.DurationHours ?? 0 : 0);

    /// <summary>
    /// How the http plane rolls a ring back under previous-version (the connector's rollback installs
    /// a named version): to the version the newest other Completed intent of the same application and
    /// tenant left in that ring; when none ever completed it, the ring had nothing before this intent,
    /// so its assignment is removed (uninstall).
    /// </summary>
    public static (string Action, string? Version) PreviousVersionRollback(DeploymentIntent intent, string ring, IEnumerable<DeploymentIntent> sameApplicationOfTenant)
    {
        var previous = sameApplicationOfTenant
            .Where(o => o.Metadata.Uid != intent.Metadata.Uid && o.Spec.Application == intent.Spec.Application && o.Status?.Phase == IntentPhase.Completed)
            .Select(o => (o.Spec.Version, Completed: o.Status!.Rings?.FirstOrDefault(r => r.Name == ring && r.Phase == IntentRingPhase.Completed)?.CompletedAt))
            .Where(o => o.Completed is not null)
            .OrderByDescending(o => o.Completed)
            .Select(o => o.Version)
            .FirstOrDefault();
        return previous is null ? (PlaneRemediation.Uninstall, null) : (PlaneRemediation.Rollback, previous);
    }

    /// <summary>
    /// The promotion gates against what the plane reports of a ring: more incidents than
    /// maxIncidents (at any time), or, once the plane says succeeded, a success rate under
    /// successRateThreshold (also during the soak). A plane that reports no rate is held to its own
    /// success (the kubernetes plane's ring is gated by Deployment health and incidents).
    /// </summary>
    public static string? GateBreach(PromotionGates? gates, string ring, PlaneStatus state)
    {
        var maxIncidents = gates?.MaxIncidents ?? 0;
        if (state.Incidents > maxIncidents)
        {
            return $"ring {ring}: {state.Incidents} incident(s) reported by the plane, more than spec.promotionGates.maxIncidents ({maxIncidents})";
        }

        if (state.State == "succeeded" && gates?.SuccessRateThreshold is { } threshold && state.SuccessRate is { } rate && rate < threshold)
        {
            return $"ring {ring}: success rate {rate.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} reported by the plane is under spec.promotionGates.successRateThreshold ({threshold.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)})";
        }

        return null;
    }

    /// <summary>
    /// What to do next, ring by ring, in targetScope.rings order. A ring starts no earlier than its
    /// schedule window (schedule[ring].start), and a ring past the first only once CAB has approved
    /// when approval is required (<paramref name="mayPassFirstRing"/>); a ring completes when the
    /// plane reports it succeeded and it has run at least its durationHours, and fails when a promotion gate is breached.
    /// <paramref name="ringHold"/> says why a ring may not start whatever its position (its targets' environment).
    /// </summary>
    public static RingStep NextStep(DeploymentIntentSpec spec, IReadOnlyList<IntentRingStatus> rings, IReadOnlyDictionary<string, PlaneStatus> plane,
        bool mayPassFirstRing, string? approvalWait, DateTime now, Func<string, string?>? ringHold = null)
    {
        var order = Rings(spec);
        for (var i = 0; i < order.Count; i++)
        {
            var name = order[i];
            var rs = rings.FirstOrDefault(r => r.Name == name);
            if (rs?.Phase == IntentRingPhase.Completed) continue;
            if (rs?.Phase == IntentRingPhase.InProgress)
            {
                if (!plane.TryGetValue(name, out var state)) return new(RingAction.Wait, name, IntentReasons.RingInProgress, $"ring {name} in progress");
                if (state.State is "failed" or "rolled_back") return new(RingAction.Fail, name, IntentReasons.RingFailed, $"ring {name} failed on the plane: {state.Message ?? state.State}");
                if (GateBreach(spec.PromotionGates, name, state) is { } breach) return new(RingAction.Fail, name, IntentReasons.PromotionGateBreached, breach);
                if (state.State != "succeeded") return new(RingAction.Wait, name, IntentReasons.RingInProgress, $"ring {name} in progress ({state.State}{(state.Message is null ? "" : ": " + state.Message)})");
                // The longer of the schedule's soak and the one CAB's approvals set when the ring started (recorded with it).
                var approvedSoak = CabConditions.RecordedSoakOf(rs);
                var soakEnds = (rs.StartedAt ?? now) + (approvedSoak > MinimumSoak(spec, name) ? approvedSoak : MinimumSoak(spec, name));
                if (now < soakEnds)
                {
                    var source = approvedSoak > MinimumSoak(spec, name) ? $"status.rings[{name}].minSoak {rs.MinSoak}, from the CAB approval's conditions" : $"schedule.{name}.durationHours";
                    return new(RingAction.Wait, name, IntentReasons.MinimumSoak, $"ring {name} succeeded; its minimum soak ({source}) ends {soakEnds:u}", soakEnds - now);
                }

                return new(RingAction.Complete, name, IntentReasons.RingCompleted, $"ring {name} completed");
            }

            if (rs?.Phase is IntentRingPhase.Failed or IntentRingPhase.RolledBack) return new(RingAction.None, name, IntentReasons.RingFailed, $"ring {name} is {rs.Phase}");
            if (i > 0 && !mayPassFirstRing) return new(RingAction.Wait, name, IntentReasons.AwaitingApproval, approvalWait ?? $"ring {name} waits for CAB approval");
            // Any ring, the first too, that the target environment gates (a prod workspace: two approvers).
            if (ringHold?.Invoke(name) is { } hold) return new(RingAction.Wait, name, IntentReasons.AwaitingApproval, hold);
            if (spec.Schedule?.TryGetValue(name, out var window) == true && window.Start is { } start && now < start.ToUniversalTime())
            {
                return new(RingAction.Wait, name, IntentReasons.ScheduleWindow, $"ring {name} starts at {start.ToUniversalTime():u} (spec.schedule.{name}.start)", start.ToUniversalTime() - now);
            }

            return new(RingAction.Start, name, IntentReasons.RingStarting, $"ring {name} starts");
        }

        return new(RingAction.None, null, IntentReasons.AllRingsCompleted, "every ring completed");
    }
}
