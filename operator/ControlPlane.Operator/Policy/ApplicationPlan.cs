using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>What approving an Application's scope version takes: the count from the strictest environment, and the prod workspaces newly reached.</summary>
public sealed record ApplicationApprovalRule(string Environment, int Required, IReadOnlyList<string> ProdTargets);

/// <summary>A condition of the Application as the decision wants it.</summary>
public sealed record ScopeVerdict(bool Status, string Reason, string Message);

/// <summary>A scope version to record (append-only) before the status that reports it.</summary>
public sealed record ScopeVersion(int Version, ApplicationScope Scope, ScopeDiff Diff, BlastRadius BlastRadius, IReadOnlyList<string> Approvers, string Reason);

/// <summary>
/// The facts an Application's pass decides on: the object, its tenant and own workspace (null when not a
/// workspace namespace), the tenant's workspaces, and how its approvals add up under a rule (a pure
/// function of the caches the reconciler passes in).
/// </summary>
public sealed record ApplicationFacts(Application Application, Tenant? Tenant, Workspace? Own, IReadOnlyList<Workspace> TenantWorkspaces,
    Func<ApplicationApprovalRule, ApprovalState> Approvals);

/// <summary>
/// What one pass decides: the versions to record (oldest first; a narrowing then an approved widening can
/// both happen in one pass), the status to write, the Ready/ScopeApproved verdicts and whether it is a warning.
/// </summary>
public sealed record ApplicationDecision(ApplicationPhase Phase, IReadOnlyList<ScopeVersion> NewVersions, int? ScopeVersion, ApplicationScope? ApprovedScope,
    IReadOnlyList<string>? ApprovedBy, PendingScope? Pending, ScopeVerdict ScopeApproved, ScopeVerdict Ready, bool Warning);

/// <summary>Whether an intent may use its Application now, must wait for it, or is definitely outside it.</summary>
public enum GateVerdict { Allow, Wait, Deny }

/// <summary>The application gate's answer: the verdict, the reason and message, and the scope version checked against.</summary>
public sealed record ApplicationGate(GateVerdict Verdict, string Reason, string Message, int? Version);

/// <summary>
/// Pure rules of an Application's scope: normalisation, subset and intersection per dimension, the diff and
/// blast radius of a new version, the version rules (the first and every widening need CAB; a narrowing
/// takes effect at once; a mixed change narrows at once and waits for CAB for the rest), the approval rule,
/// and the gate a DeploymentIntent passes (target within the approved scope, each dimension named).
/// </summary>
public static class ApplicationPlan
{
    static List<string> Norm(IEnumerable<string>? values) => (values ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>Every dimension sorted and de-duplicated: two scopes are equal when their values are.</summary>
    public static ApplicationScope Normalize(ApplicationScope s) => new()
    {
        AcquisitionBoundaries = Norm(s.AcquisitionBoundaries), BusinessUnits = Norm(s.BusinessUnits), SiteClasses = Norm(s.SiteClasses), Rings = Norm(s.Rings),
    };

    static IEnumerable<(string Name, List<string> A, List<string> B)> Dimensions(ApplicationScope a, ApplicationScope b) =>
    [
        ("acquisitionBoundaries", a.AcquisitionBoundaries, b.AcquisitionBoundaries), ("businessUnits", a.BusinessUnits, b.BusinessUnits),
        ("siteClasses", a.SiteClasses, b.SiteClasses), ("rings", a.Rings, b.Rings),
    ];

    public static bool Same(ApplicationScope a, ApplicationScope b) => Dimensions(Normalize(a), Normalize(b)).All(d => d.A.SequenceEqual(d.B));

    /// <summary><paramref name="a"/> ⊆ <paramref name="b"/>: every value of every dimension of a is in b.</summary>
    public static bool IsSubset(ApplicationScope a, ApplicationScope b) => Dimensions(a, b).All(d => d.A.All(d.B.Contains));

    public static ApplicationScope Intersect(ApplicationScope a, ApplicationScope b) => new()
    {
        AcquisitionBoundaries = Norm(a.AcquisitionBoundaries.Intersect(b.AcquisitionBoundaries)), BusinessUnits = Norm(a.BusinessUnits.Intersect(b.BusinessUnits)),
        SiteClasses = Norm(a.SiteClasses.Intersect(b.SiteClasses)), Rings = Norm(a.Rings.Intersect(b.Rings)),
    };

    static DimensionDiff? DiffOf(List<string> from, List<string> to)
    {
        var added = Norm(to.Except(from));
        var removed = Norm(from.Except(to));
        return added.Count + removed.Count == 0 ? null : new DimensionDiff { Added = added.Count > 0 ? added : null, Removed = removed.Count > 0 ? removed : null };
    }

    /// <summary>Per dimension, what <paramref name="requested"/> adds to and removes from <paramref name="approved"/> (nothing approved: everything is added).</summary>
    public static ScopeDiff Diff(ApplicationScope? approved, ApplicationScope requested)
    {
        var from = approved ?? new ApplicationScope();
        return new ScopeDiff
        {
            AcquisitionBoundaries = DiffOf(from.AcquisitionBoundaries, requested.AcquisitionBoundaries),
            BusinessUnits = DiffOf(from.BusinessUnits, requested.BusinessUnits),
            SiteClasses = DiffOf(from.SiteClasses, requested.SiteClasses),
            Rings = DiffOf(from.Rings, requested.Rings),
        };
    }

    static string? Label(Workspace w, string key) => w.Metadata.Labels?.TryGetValue(key, out var v) == true ? v : null;

    /// <summary>A workspace is in a scope when its four scope labels (boundary, business unit, site class, ring) are all in it: what an intent can reach.</summary>
    public static bool InScope(Workspace w, ApplicationScope? scope) =>
        scope is not null && w.Metadata.DeletionTimestamp is null
        && Label(w, ApiGroup.AcquisitionBoundaryLabel) is { } b && scope.AcquisitionBoundaries.Contains(b)
        && Label(w, ApiGroup.BusinessUnitLabel) is { } bu && scope.BusinessUnits.Contains(bu)
        && Label(w, ApiGroup.SiteClassLabel) is { } sc && scope.SiteClasses.Contains(sc)
        && Label(w, ApiGroup.RingLabel) is { } r && scope.Rings.Contains(r);

    /// <summary>The tenant's workspaces (and their rings) inside <paramref name="requested"/> and outside <paramref name="approved"/>, with their strictest environment.</summary>
    public static BlastRadius BlastRadiusOf(ApplicationScope? approved, ApplicationScope requested, IEnumerable<Workspace> tenantWorkspaces)
    {
        var reached = tenantWorkspaces.Where(w => InScope(w, requested) && !InScope(w, approved)).OrderBy(w => w.Metadata.Name, StringComparer.Ordinal).ToList();
        return new BlastRadius
        {
            Workspaces = reached.Select(w => w.Metadata.Name).ToList(),
            Rings = Norm(reached.Select(w => Label(w, ApiGroup.RingLabel)!)),
            Environment = reached.Count == 0 ? null : WorkspaceEnvironments.Strictest(reached.Select(WorkspaceEnvironments.Effective)),
        };
    }

    /// <summary>
    /// Two distinct approvers when the application's own workspace or any workspace of the requested scope is
    /// prod (the strictest decides), one otherwise; an approver counts only when also an Approver of every prod
    /// workspace newly reached.
    /// </summary>
    public static ApplicationApprovalRule ApprovalRule(Workspace own, ApplicationScope? approved, ApplicationScope requested, IReadOnlyList<Workspace> tenantWorkspaces)
    {
        var inScope = tenantWorkspaces.Where(w => InScope(w, requested)).ToList();
        var environment = WorkspaceEnvironments.Strictest(inScope.Select(WorkspaceEnvironments.Effective).Prepend(WorkspaceEnvironments.Effective(own)));
        var prodTargets = inScope.Where(w => !InScope(w, approved) && WorkspaceEnvironments.Effective(w) == WorkspaceEnvironments.Prod)
            .Select(w => w.Metadata.Name).Order(StringComparer.Ordinal).ToList();
        return new(environment, ApprovalPolicy.RequiredApprovals(environment), prodTargets);
    }

    /// <summary>The rule for the scope the Application asks for now (what the Approval reconciler's TargetApproved and the Application reconciler both use).</summary>
    public static ApplicationApprovalRule RuleFor(Application app, Workspace own, IReadOnlyList<Workspace> tenantWorkspaces)
    {
        var approved = app.Status?.ApprovedScope;
        var requested = Normalize(app.Spec.AllowedScope);
        return ApprovalRule(own, approved is null ? null : Intersect(approved, requested), requested, tenantWorkspaces);
    }

    /// <summary>How the Application's approvals add up under <paramref name="rule"/>: as <see cref="ApprovalPolicy.Evaluate(IKubernetesObject{V1ObjectMeta}, int, IEnumerable{Approval}, Func{Approval, bool}, Func{string, IEnumerable{V1RoleBinding}}?)"/>, an approver also holding an approver role in every prod target.</summary>
    public static ApprovalState ApprovalOf(Application app, ApplicationApprovalRule rule, IEnumerable<Approval> approvals, Func<Approval, bool> holdsApproverRole,
        Func<string, IEnumerable<V1RoleBinding>> bindingsIn) =>
        ApprovalPolicy.Evaluate(app, rule.Required, approvals,
            a => holdsApproverRole(a) && rule.ProdTargets.All(t => ApprovalPolicy.IsApprover(a.Spec.Approver, ApprovalPolicy.GroupsOf(a), bindingsIn(t))), bindingsIn);

    /// <summary>The one decision of an Application's pass (see the class summary for the version rules).</summary>
    public static ApplicationDecision Decide(ApplicationFacts facts)
    {
        var app = facts.Application;
        var status = app.Status;
        var version = status?.ScopeVersion ?? 0;
        var approved = status?.ApprovedScope is { } a ? Normalize(a) : null;
        var approvedBy = status?.ApprovedBy;
        ApplicationDecision Keep(ApplicationPhase phase, PendingScope? pending, ScopeVerdict scopeApproved, ScopeVerdict ready, bool warning, IReadOnlyList<ScopeVersion>? versions = null) =>
            new(phase, versions ?? [], version == 0 ? null : version, approved, approvedBy, pending, scopeApproved, ready, warning);

        if (facts.Own is null || facts.Tenant is null)
        {
            var message = $"metadata.namespace: \"{app.Metadata.NamespaceProperty}\" is not the namespace of a workspace: an Application belongs to a workspace";
            var v = new ScopeVerdict(false, ApplicationReasons.NotInAWorkspace, message);
            return Keep(ApplicationPhase.Failed, null, v, v, warning: true);
        }

        var inEffect = approved is null ? "no scope is approved yet" : $"scope v{version} stays in effect";
        var problems = SpecRules.ApplicationScope(app.Spec.AllowedScope, facts.Tenant);
        if (problems.Count > 0)
        {
            var message = $"{string.Join("; ", problems)}; {inEffect}";
            var v = new ScopeVerdict(false, ApplicationReasons.ScopeOutsideTenant, message);
            return Keep(ApplicationPhase.Failed, null, v, v, warning: true);
        }

        var requested = Normalize(app.Spec.AllowedScope);
        if (approved is not null && Same(requested, approved))
        {
            var message = $"scope v{version} is in effect: {Describe(approved)}";
            return Keep(ApplicationPhase.Active, null, new(true, ApplicationReasons.ScopeActive, message), new(true, ApplicationReasons.ScopeActive, message), false);
        }

        var versions = new List<ScopeVersion>();
        // Narrowing is safe: what the requested scope drops stops at once (its own version, needing no approval).
        if (approved is not null)
        {
            var narrowed = Intersect(approved, requested);
            if (!Same(narrowed, approved))
            {
                versions.Add(new ScopeVersion(version + 1, narrowed, Diff(approved, narrowed), new BlastRadius { Workspaces = [], Rings = [] }, [], ApplicationReasons.ScopeNarrowed));
                version++;
                approved = narrowed;
                approvedBy = [];
                inEffect = $"scope v{version} stays in effect";
            }

            if (Same(requested, approved))
            {
                var message = $"scope v{version} is in effect (narrowed, no approval needed): {Describe(approved)}";
                return Keep(ApplicationPhase.Active, null, new(true, ApplicationReasons.ScopeActive, message), new(true, ApplicationReasons.ScopeActive, message), false, versions);
            }
        }

        // The first version and every widening: CAB approval of this generation.
        var rule = ApprovalRule(facts.Own, approved, requested, facts.TenantWorkspaces);
        var state = facts.Approvals(rule);
        var pending = new PendingScope
        {
            Version = version + 1, Scope = requested, Diff = Diff(approved, requested), BlastRadius = BlastRadiusOf(approved, requested, facts.TenantWorkspaces),
            RequiredApprovals = rule.Required, Approvals = state.Approvers.Count > 0 ? [.. state.Approvers] : null,
        };
        if (state.Rejected)
        {
            var message = $"scope v{pending.Version} ({DescribeDiff(pending.Diff)}) was {state.Message}; {inEffect}";
            var v = new ScopeVerdict(false, ApplicationReasons.Rejected, message);
            return Keep(ApplicationPhase.Rejected, pending, v, v, false, versions);
        }

        if (state.Approved)
        {
            versions.Add(new ScopeVersion(pending.Version, requested, pending.Diff, pending.BlastRadius, state.Approvers, ApplicationReasons.ScopeApproved));
            var message = $"scope v{pending.Version} is in effect, {state.Message}: {Describe(requested)}";
            return new(ApplicationPhase.Active, versions, pending.Version, requested, [.. state.Approvers], null,
                new(true, ApplicationReasons.ScopeActive, message), new(true, ApplicationReasons.ScopeActive, message), false);
        }

        var waiting = $"scope v{pending.Version} ({DescribeDiff(pending.Diff)}; newly reached: {Reached(pending.BlastRadius)}) needs CAB approval: {state.Message}, from Approvers{(rule.ProdTargets.Count > 0 ? $" of {string.Join(", ", rule.ProdTargets)}" : "")}, never its author; {inEffect}";
        var wait = new ScopeVerdict(false, ApplicationReasons.AwaitingApproval, waiting);
        return Keep(ApplicationPhase.AwaitingApproval, pending, wait, wait, false, versions);
    }

    public static string Describe(ApplicationScope s) =>
        $"acquisitionBoundaries [{string.Join(", ", s.AcquisitionBoundaries)}], businessUnits [{string.Join(", ", s.BusinessUnits)}], siteClasses [{string.Join(", ", s.SiteClasses)}], rings [{string.Join(", ", s.Rings)}]";

    public static string DescribeDiff(ScopeDiff d)
    {
        var parts = new[] { ("acquisitionBoundaries", d.AcquisitionBoundaries), ("businessUnits", d.BusinessUnits), ("siteClasses", d.SiteClasses), ("rings", d.Rings) }
            .Where(x => x.Item2 is not null)
            .Select(x => $"{x.Item1}{(x.Item2!.Added is { } added ? " +" + string.Join(" +", added) : "")}{(x.Item2.Removed is { } removed ? " -" + string.Join(" -", removed) : "")}");
        var text = string.Join(", ", parts);
        return text.Length == 0 ? "no change" : text;
    }

    static string Reached(BlastRadius b) => b.Workspaces is { Count: > 0 } w ? $"{string.Join(", ", w)} (rings {string.Join(", ", b.Rings ?? [])}, {b.Environment})" : "no workspace";

    /// <summary>
    /// A target outside <paramref name="scope"/>, each problem naming the dimension and the value that is
    /// outside; an undeclared business unit or site class is never inside (every dimension is declared).
    /// </summary>
    public static List<string> TargetProblems(TargetScope target, string what, ApplicationScope scope)
    {
        var problems = new List<string>();
        void Check(string field, string? value, List<string> allowed, string dimension)
        {
            if (string.IsNullOrEmpty(value)) problems.Add($"spec.targetScope.{field}: not declared; {what} is scoped by {dimension} ({string.Join(", ", allowed)}): every dimension is declared");
            else if (!allowed.Contains(value)) problems.Add($"spec.targetScope.{field}: \"{value}\" is outside {what} ({string.Join(", ", allowed)})");
        }

        Check("acquisitionBoundary", target.AcquisitionBoundary, scope.AcquisitionBoundaries, "acquisition boundary");
        Check("businessUnit", target.BusinessUnit, scope.BusinessUnits, "business unit");
        Check("siteClass", target.SiteClass, scope.SiteClasses, "site class");
        var rings = target.Rings ?? [];
        for (var i = 0; i < rings.Count; i++)
        {
            if (!scope.Rings.Contains(rings[i])) problems.Add($"spec.targetScope.rings[{i}]: \"{rings[i]}\" is outside {what} ({string.Join(", ", scope.Rings)})");
        }

        return problems;
    }

    /// <summary>
    /// The application gate of an intent: no Application (yet) or none approved yet: wait (GitOps applies both
    /// together); target within the approved scope: allow; outside it but within the scope awaiting CAB: wait;
    /// outside both: deny, naming the dimension and the value.
    /// </summary>
    public static ApplicationGate Gate(DeploymentIntentSpec spec, string ns, Application? app)
    {
        if (app is null)
        {
            return new(GateVerdict.Wait, IntentReasons.ApplicationNotFound,
                $"spec.application: Application {ns}/{spec.Application} does not exist (yet): the intent waits for it and for CAB to approve its scope", null);
        }

        var requested = Normalize(app.Spec.AllowedScope);
        var outsideRequested = TargetProblems(spec.TargetScope, $"application {app.Metadata.Name}'s requested scope", requested);
        if (app.Status?.ApprovedScope is not { } approved || app.Status.ScopeVersion is not { } version)
        {
            return outsideRequested.Count > 0
                ? new(GateVerdict.Deny, IntentReasons.OutsideApplicationScope, string.Join("; ", outsideRequested), null)
                : new(GateVerdict.Wait, IntentReasons.ApplicationNotApproved,
                    $"spec.application: Application {app.Metadata.Name} has no approved scope yet (phase {app.Status?.Phase?.ToString() ?? "none"}): the intent waits for CAB to approve it", null);
        }

        var problems = TargetProblems(spec.TargetScope, $"application {app.Metadata.Name}'s approved scope v{version}", Normalize(approved));
        if (problems.Count == 0) return new(GateVerdict.Allow, IntentReasons.ScopeValid, $"within application {app.Metadata.Name}'s approved scope v{version}", version);
        if (outsideRequested.Count == 0 && app.Status.PendingScope is { } pending)
        {
            return new(GateVerdict.Wait, IntentReasons.ApplicationNotApproved,
                $"{string.Join("; ", problems)}; the wider scope v{pending.Version} awaits CAB approval: the intent waits for it", version);
        }

        return new(GateVerdict.Deny, IntentReasons.OutsideApplicationScope, string.Join("; ", problems), version);
    }
}
