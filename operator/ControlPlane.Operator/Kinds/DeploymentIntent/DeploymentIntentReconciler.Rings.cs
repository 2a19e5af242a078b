using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>Steps 4-5: approvals, the one-change rule, and the rings run on the plane one after another.</summary>
public sealed partial class DeploymentIntentReconciler
{
    /// <summary>Runs the rings; returns when to look again (null: the watches will say).</summary>
    async Task<TimeSpan?> RunRingsAsync(IntentPass pass, Workspace ws, Tenant tenant, CancellationToken ct)
    {
        var intent = pass.Intent;
        var status = pass.Status;
        // The plane is asked for only when a ring needs it (a waiting intent calls nowhere).
        IExecutionPlane? resolved = null;
        async Task<IExecutionPlane> PlaneAsync() => resolved ??= await planes.ForAsync(intent, ct).ConfigureAwait(false);
        var tenantWorkspaces = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name);
        // Every ring's workspaces as of this pass: what gates a ring is what it will be published to.
        var ringTargets = DeploymentIntentResources.RingTargets(intent.Spec.TargetScope, tenantWorkspaces);
        var rule = DeploymentIntentResources.ApprovalRule(ws, ringTargets, caches.Workspaces.Get);

        // CAB: an approval of this generation (two distinct approvers when any target is prod, never the
        // author, any reject wins), from Approvers of every prod target, not only of the intent's workspace.
        var cab = status.Decision == "RequireApproval" || (status.Decision == "RequireException" && status.CabRequired == true);
        var approvalRequired = cab || rule.ProdRings.Count > 0;
        var approval = DeploymentIntentResources.ApprovalOf(intent, rule, caches.Approvals.InNamespace(intent.Metadata.NamespaceProperty), HoldsApproverRole, caches.RoleBindings.InNamespace);
        if (approvalRequired && approval.Rejected)
        {
            pass.Conditions.Set(IntentConditions.Approved, false, IntentReasons.Rejected, approval.Message);
            pass.Move(IntentPhase.Denied, IntentReasons.Rejected, $"CAB {approval.Message}", new JsonObject { ["rejectedBy"] = Names(approval.RejectedBy) });
            pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.Denied, approval.Message).Set(IntentConditions.Ready, false, IntentReasons.Rejected, $"CAB {approval.Message}");
            return null;
        }

        string? evidenceProblem = null;
        if (cab && approval.Approved) evidenceProblem = await EvidenceProblemAsync(intent, ct).ConfigureAwait(false);
        var mayPass = !cab || (approval.Approved && evidenceProblem is null);
        var prodApproved = approval.Approved && evidenceProblem is null;
        if (!approvalRequired) pass.Conditions.Set(IntentConditions.Approved, true, IntentReasons.NotRequired, $"decision {status.Decision}: no CAB approval needed");
        else if (!approval.Approved) pass.Conditions.Set(IntentConditions.Approved, false, IntentReasons.AwaitingApproval, approval.Message);
        else if (evidenceProblem is not null) pass.Conditions.Set(IntentConditions.Approved, false, IntentReasons.EvidenceMissing, evidenceProblem);
        else
        {
            pass.Conditions.Set(IntentConditions.Approved, true, IntentReasons.Approved, approval.Message);
            if (status.ApprovedAt is null)
            {
                status.ApprovedAt = pass.Now;
                metrics.ObserveApproval(intent, pass.Now);
                pass.Record("approval", null, IntentReasons.Approved, $"CAB {approval.Message}", new JsonObject { ["approvers"] = Names(approval.Approvers) }, "approved");
            }
        }

        // One active change per application and ring: an overriding approval (spec.override) lets it through.
        var conflict = DeploymentIntentResources.ConflictingChange(intent, caches.Intents.ByIndex(DeploymentIntentResources.ApplicationIndex, intent.Spec.Application)
            .Where(o => caches.Workspaces.Get(o.Metadata.NamespaceProperty)?.Spec.Tenant == tenant.Metadata.Name));
        var overridden = conflict is not null && approval.Approved && caches.Approvals.InNamespace(intent.Metadata.NamespaceProperty)
            .Any(a => a.Spec.Override && a.Spec.Decision == "approve" && a.Spec.Target.Kind == DeploymentIntent.KubeKind && a.Spec.Target.Name == intent.Metadata.Name
                      && ApprovalPolicy.Judge(a, intent, HoldsApproverRole, caches.RoleBindings.InNamespace).Counts);

        // What the plane says of the rings in progress.
        var planeStates = new Dictionary<string, PlaneStatus>();
        foreach (var ring in status.Rings?.Where(r => r.Phase == IntentRingPhase.InProgress) ?? [])
        {
            var state = await (await PlaneAsync().ConfigureAwait(false)).QueryStatusAsync(Deployment(pass, ring.Name, ring.Workspaces ?? []), ct).ConfigureAwait(false);
            planeStates[ring.Name] = state;
            ring.SuccessRate = state.SuccessRate;
            ring.Incidents = state.Incidents;
            if (state.SuccessRate is { } rate) metrics.RingSuccessRate(intent, ring.Name, rate);
        }

        string? approvalWait = !approval.Approved ? $"CAB approval: {approval.Message}" : evidenceProblem;
        for (var guard = 0; guard < 64; guard++)
        {
            var step = DeploymentIntentResources.NextStep(intent.Spec, status.Rings ?? [], planeStates, mayPass, approvalWait, pass.Now,
                ring => rule.Hold(ring, prodApproved, approvalWait ?? approval.Message));
            status.CurrentRing = step.Ring;
            switch (step.Action)
            {
                case RingAction.Start when conflict is { } c && !overridden && c.Ring == step.Ring:
                    var message = $"DeploymentIntent {c.Other.Metadata.NamespaceProperty}/{c.Other.Metadata.Name} is changing {intent.Spec.Application} in ring {c.Ring}: one change per application and ring; this one waits (an approval with spec.override lets it through)";
                    pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.ConflictingChange, message).Set(IntentConditions.Ready, false, IntentReasons.ConflictingChange, message);
                    return PollInterval;
                case RingAction.Start when pass.ExceptionHold is { } held:
                    HoldForExceptions(pass, step.Ring!, held.Reason, held.Message);
                    return null;
                case RingAction.Start when tenant.Spec.Suspended:
                    var suspended = $"tenant {tenant.Metadata.Name} is suspended: ring {step.Ring} does not start";
                    pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.TenantSuspended, suspended).Set(IntentConditions.Ready, false, IntentReasons.TenantSuspended, suspended);
                    return null;
                case RingAction.Start:
                {
                    var workspaces = ringTargets.TryGetValue(step.Ring!, out var targets) ? targets : [];
                    // The http plane deploys on the intent's word: only where its authors could patch by hand (the kubernetes plane's Rollouts check this themselves).
                    if (PlaneType(intent) == "http" && await RequesterDeniedAsync(intent, workspaces, ct).ConfigureAwait(false) is { } denied)
                    {
                        var held = $"ring {step.Ring} does not start: {denied}";
                        pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.RequesterForbidden, held).Set(IntentConditions.Ready, false, IntentReasons.RequesterForbidden, held);
                        return PollInterval;
                    }

                    var state = await (await PlaneAsync().ConfigureAwait(false)).PublishAsync(Deployment(pass, step.Ring!, workspaces), ct).ConfigureAwait(false);
                    var ring = pass.Ring(step.Ring!);
                    ring.Phase = IntentRingPhase.InProgress;
                    ring.StartedAt = pass.Now;
                    ring.Workspaces = [.. workspaces];
                    ring.Message = state.Message;
                    planeStates[step.Ring!] = state;
                    if (PlaneType(intent) == "kubernetes") status.RolloutRef = KubernetesExecutionPlane.RolloutName(intent.Metadata.Name, step.Ring!);
                    if (status.Phase != IntentPhase.InProgress) pass.Move(IntentPhase.InProgress, IntentReasons.RingStarted, $"ring {step.Ring} started", RingDetails(step.Ring!, workspaces), step.Ring);
                    pass.Record("ring", step.Ring, IntentReasons.RingStarted, $"ring {step.Ring} published to the {PlaneType(intent)} plane: {string.Join(", ", workspaces)}",
                        RingDetails(step.Ring!, workspaces), $"ring/{step.Ring}/started");
                    continue;
                }

                case RingAction.Complete:
                {
                    var ring = pass.Ring(step.Ring!);
                    ring.Phase = IntentRingPhase.Completed;
                    ring.CompletedAt = pass.Now;
                    pass.Record("ring", step.Ring, IntentReasons.RingCompleted, $"ring {step.Ring} completed", RingDetails(step.Ring!, ring.Workspaces ?? []), $"ring/{step.Ring}/completed");
                    continue;
                }

                case RingAction.Fail:
                    await RollBackAsync(pass, await PlaneAsync().ConfigureAwait(false), step, ct).ConfigureAwait(false);
                    return null;
                case RingAction.Wait:
                    if (step.Reason == IntentReasons.AwaitingApproval && (status.Phase == IntentPhase.ScopeValidated
                                                              || (status.Phase == IntentPhase.InProgress && !(status.Rings ?? []).Any(r => r.Phase == IntentRingPhase.InProgress))))
                    {
                        pass.Move(IntentPhase.AwaitingApproval, IntentReasons.AwaitingApproval, step.Message, null, step.Ring);
                    }

                    var progressing = status.Phase == IntentPhase.InProgress;
                    pass.Conditions.Set(IntentConditions.Progressing, progressing, step.Reason, step.Message).Set(IntentConditions.Ready, false, step.Reason, step.Message);
                    // Approvals arrive as events; an evidence pack (a ConfigMap or URL, not watched) is looked for again.
                    return step.Reason == IntentReasons.AwaitingApproval && !approval.Approved ? null : step.RecheckIn is { } r && r < PollInterval ? r : PollInterval;
                default:
                    if (step.Reason == IntentReasons.AllRingsCompleted && status.Phase is IntentPhase.InProgress or IntentPhase.AwaitingApproval)
                    {
                        pass.Move(IntentPhase.Completed, IntentReasons.Completed, $"every ring completed: {string.Join(", ", DeploymentIntentResources.Rings(intent.Spec))}");
                    }

                    pass.Conditions.Set(IntentConditions.Progressing, false, step.Reason, step.Message);
                    return null;
            }
        }

        return PollInterval;
    }

    static JsonArray Names(IEnumerable<string> names) => new(names.Select(n => (JsonNode)JsonValue.Create(n)).ToArray());

    static JsonObject RingDetails(string ring, IEnumerable<string> workspaces) => new() { ["ring"] = ring, ["workspaces"] = Names(workspaces) };

    static string PlaneType(DeploymentIntent intent) => intent.Spec.ExecutionPlane?.Type ?? "kubernetes";

    bool HoldsApproverRole(Approval approval) =>
        ApprovalPolicy.HoldsApproverRole(approval, caches.RoleBindings.InNamespace);

    static PlaneDeployment Deployment(IntentPass pass, string ring, IReadOnlyList<string> workspaces)
    {
        var i = pass.Intent;
        return new PlaneDeployment(pass.Status.CorrelationId ?? i.Metadata.Uid ?? "", pass.Tenant, i.Metadata.NamespaceProperty, i.Metadata.Name, i.Spec.Application,
            i.Spec.Version, i.Spec.Artifact.Image, i.Spec.Artifact.Sha256 ?? "", ring, workspaces);
    }

    /// <summary>
    /// A ring failed: with a rollback plan, every ring touched is rolled back through the plane
    /// (previous version, or the plan's version) and the intent is RolledBack; without one it is Failed.
    /// </summary>
    async Task RollBackAsync(IntentPass pass, IExecutionPlane plane, RingStep step, CancellationToken ct)
    {
        var intent = pass.Intent;
        var failed = pass.Ring(step.Ring!);
        failed.Phase = IntentRingPhase.Failed;
        failed.Message = step.Message;
        pass.Record("ring", step.Ring, IntentReasons.RingFailed, step.Message, RingDetails(step.Ring!, failed.Workspaces ?? []), $"ring/{step.Ring}/failed", warning: true);
        var plan = intent.Spec.RollbackPlan ?? new RollbackPlan();
        if (plan.Strategy == "none")
        {
            pass.Move(IntentPhase.Failed, IntentReasons.RingFailed, $"{step.Message}; spec.rollbackPlan.strategy is none: nothing is rolled back");
            pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.Failed, step.Message).Set(IntentConditions.Ready, false, IntentReasons.Failed, step.Message);
            return;
        }

        var tenant = caches.Workspaces.Get(intent.Metadata.NamespaceProperty)?.Spec.Tenant;
        var sameApplication = caches.Intents.ByIndex(DeploymentIntentResources.ApplicationIndex, intent.Spec.Application)
            .Where(o => caches.Workspaces.Get(o.Metadata.NamespaceProperty)?.Spec.Tenant == tenant).ToList();
        foreach (var ring in pass.Status.Rings!.Where(r => r.Phase is IntentRingPhase.InProgress or IntentRingPhase.Completed or IntentRingPhase.Failed))
        {
            // The kubernetes plane's Rollout recorded the images it replaced; the http plane is told the version.
            var (action, version) = plan.Strategy == "specific-version" ? (PlaneRemediation.Rollback, plan.RollbackVersion)
                : PlaneType(intent) == "http" ? DeploymentIntentResources.PreviousVersionRollback(intent, ring.Name, sameApplication)
                : (PlaneRemediation.Rollback, null);
            await plane.RemediateAsync(Deployment(pass, ring.Name, ring.Workspaces ?? []), action, version, ct).ConfigureAwait(false);
            ring.Phase = IntentRingPhase.RolledBack;
            var how = action == PlaneRemediation.Uninstall ? "nothing ran there before this intent: its assignment removed" : plan.Strategy + (version is null ? "" : " " + version);
            pass.Record("remediation", ring.Name, IntentReasons.RolledBack, $"ring {ring.Name} rolled back ({how})",
                RingDetails(ring.Name, ring.Workspaces ?? []), $"ring/{ring.Name}/rolledback", warning: true);
        }

        metrics.RolledBack(intent);
        pass.Move(IntentPhase.RolledBack, IntentReasons.RolledBack, $"{step.Message}; every ring touched rolled back ({plan.Strategy})");
        pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.RolledBack, step.Message).Set(IntentConditions.Ready, false, IntentReasons.RolledBack, step.Message);
    }

    /// <summary>The evidence pack exists and has the declared SHA-256; else what is wrong, naming the field.</summary>
    async Task<string?> EvidenceProblemAsync(DeploymentIntent intent, CancellationToken ct)
    {
        if (intent.Spec.EvidencePackRef is not { } pack) return "spec.evidencePackRef: CAB approval needs an evidence pack (a ConfigMap or URL with its sha256)";
        byte[]? bytes;
        string where;
        if (pack.ConfigMap is { } name)
        {
            where = $"ConfigMap {intent.Metadata.NamespaceProperty}/{name}";
            var cm = await api.TryGetAsync<k8s.Models.V1ConfigMap>(WorkspaceReconciler.ConfigMaps, intent.Metadata.NamespaceProperty, name, ct).ConfigureAwait(false);
            if (cm is null) return $"spec.evidencePackRef.configMap: {where} does not exist";
            if (cm.Data?.TryGetValue(pack.Key, out var text) != true) return $"spec.evidencePackRef.key: {where} has no key {pack.Key}";
            bytes = System.Text.Encoding.UTF8.GetBytes(text!);
        }
        else if (pack.Url is { } url)
        {
            where = url;
            var allowed = options.DeploymentIntent.EvidenceUrlPrefixes;
            if (!allowed.Any(p => url.StartsWith(p, StringComparison.Ordinal)))
            {
                return $"spec.evidencePackRef.url: {url} is not under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes ({(allowed.Count == 0 ? "none configured" : string.Join(", ", allowed))})";
            }

            bytes = await planes.FetchEvidenceAsync(url, ct).ConfigureAwait(false);
            if (bytes is null) return $"spec.evidencePackRef.url: {url} could not be read";
        }
        else
        {
            return "spec.evidencePackRef: name a configMap or a url";
        }

        var actual = DeploymentIntentResources.Sha256Hex(bytes);
        return actual == pack.Sha256 ? null : $"spec.evidencePackRef.sha256: {where} has SHA-256 {actual}, not {pack.Sha256}";
    }
}
