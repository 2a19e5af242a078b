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
        var cab = DeploymentIntentResources.NeedsCab(status);
        var approvalRequired = cab || rule.ProdRings.Count > 0;
        // Approvals count ring by ring (routing, expiry, maxRing): the one asked here is the next ring's.
        var cabFor = CabGate(pass, tenant, rule, approvalRequired);
        var approval = cabFor(IntentCab.NextRing(intent.Spec, status.Rings) ?? DeploymentIntentResources.Rings(intent.Spec).LastOrDefault() ?? "").State;
        var unvalidated = cab && intent.Spec.RollbackPlan?.Validated != true;
        if (approvalRequired && approval.Rejected)
        {
            pass.Conditions.Set(IntentConditions.Approved, false, IntentReasons.Rejected, approval.Message);
            pass.Move(IntentPhase.Denied, IntentReasons.Rejected, $"CAB {approval.Message}", new JsonObject { ["rejectedBy"] = Names(approval.RejectedBy) });
            pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.Denied, approval.Message).Set(IntentConditions.Ready, false, IntentReasons.Rejected, $"CAB {approval.Message}");
            return null;
        }

        // Evidence is mandatory for every intent: checked and stored before the first ring (never skipped).
        var evidence = await EvidenceAsync(pass, ws, tenant, ct).ConfigureAwait(false);
        if (evidence is { Deny: true })
        {
            status.Decision = "Deny";
            pass.Move(IntentPhase.Denied, evidence.Reason, evidence.Message, new JsonObject { ["decision"] = "Deny" });
            pass.Conditions.Set(IntentConditions.Ready, false, evidence.Reason, evidence.Message).Set(IntentConditions.Progressing, false, IntentReasons.Denied, evidence.Message);
            return null;
        }

        // CAB's approval counts once the pack it reviewed is there; storage being down holds the rings below instead.
        string? evidenceProblem = cab && !unvalidated && approval.Approved && evidence?.Reason == IntentReasons.EvidenceMissing ? evidence.Message : null;
        if (!approvalRequired) pass.Conditions.Set(IntentConditions.Approved, true, IntentReasons.NotRequired, $"decision {status.Decision}: no CAB approval needed");
        else if (unvalidated) pass.Conditions.Set(IntentConditions.Approved, false, IntentReasons.RollbackNotValidated, RollbackNotValidated);
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

        RecordSoaks(pass, cabFor);
        for (var guard = 0; guard < 64; guard++)
        {
            // Each ring is held by its own approvals (a ring started in this pass changes which ring is next).
            var step = DeploymentIntentResources.NextStep(intent.Spec, status.Rings ?? [], planeStates, true, null, pass.Now,
                ring => RingHold(intent, rule, cab, unvalidated, evidenceProblem, cabFor(ring)));
            status.CurrentRing = step.Ring;
            switch (step.Action)
            {
                case RingAction.Start when conflict is { } c && !overridden && c.Ring == step.Ring:
                    var message = $"DeploymentIntent {c.Other.Metadata.NamespaceProperty}/{c.Other.Metadata.Name} is changing {intent.Spec.Application} in ring {c.Ring}: one change per application and ring; this one waits (an approval with spec.override lets it through)";
                    pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.ConflictingChange, message).Set(IntentConditions.Ready, false, IntentReasons.ConflictingChange, message);
                    return PollInterval;
                case RingAction.Start when pass.ExceptionHold is { } exceptionHold:
                    HoldForExceptions(pass, step.Ring!, exceptionHold.Reason, exceptionHold.Message);
                    return null;
                case RingAction.Start when evidence is { } held:
                    pass.Conditions.Set(IntentConditions.Progressing, false, held.Reason, $"ring {step.Ring} does not start: {held.Message}")
                        .Set(IntentConditions.Ready, false, held.Reason, $"ring {step.Ring} does not start: {held.Message}");
                    return PollInterval;
                case RingAction.Start when tenant.Spec.Suspended:
                    var suspended = $"tenant {tenant.Metadata.Name} is suspended: ring {step.Ring} does not start";
                    pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.TenantSuspended, suspended).Set(IntentConditions.Ready, false, IntentReasons.TenantSuspended, suspended);
                    return null;
                case RingAction.Start when ScopeHold(intent, tenant, step.Ring!, out _) is { } scopeHold:
                    pass.Conditions.Set(IntentConditions.Progressing, false, scopeHold.Reason, scopeHold.Message).Set(IntentConditions.Ready, false, scopeHold.Reason, scopeHold.Message);
                    return null;
                case RingAction.Start:
                {
                    ScopeHold(intent, tenant, step.Ring!, out var scopeVersion);
                    status.ApplicationScopeVersion = scopeVersion;
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
                    var approvedBy = RecordApprovals(ring, intent, rule, cab, cabFor(step.Ring!));
                    planeStates[step.Ring!] = state;
                    if (PlaneType(intent) == "kubernetes") status.RolloutRef = KubernetesExecutionPlane.RolloutName(intent.Metadata.Name, step.Ring!);
                    if (status.Phase != IntentPhase.InProgress) pass.Move(IntentPhase.InProgress, IntentReasons.RingStarted, $"ring {step.Ring} started", RingDetails(step.Ring!, workspaces), step.Ring);
                    var started = RingDetails(step.Ring!, workspaces);
                    started["application"] = intent.Spec.Application;
                    started["applicationScopeVersion"] = scopeVersion;
                    pass.Record("ring", step.Ring, IntentReasons.RingStarted, $"ring {step.Ring} published to the {PlaneType(intent)} plane: {string.Join(", ", workspaces)}",
                        WithApprovals(started, approvedBy, ring.MinSoak), $"ring/{step.Ring}/started");
                    continue;
                }

                case RingAction.Complete:
                {
                    var ring = pass.Ring(step.Ring!);
                    ring.Phase = IntentRingPhase.Completed;
                    ring.CompletedAt = pass.Now;
                    if (ring.StartedAt is { } started) metrics.RingCompleted(ring.Name, started, pass.Now);
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
            var (action, version, strategy) = RollbackOf(intent, plan, ring.Name, sameApplication);
            await RemediateCountedAsync(pass, plane, Deployment(pass, ring.Name, ring.Workspaces ?? []), action, version, strategy, ct).ConfigureAwait(false);
            ring.Phase = IntentRingPhase.RolledBack;
            var how = action == PlaneRemediation.Uninstall ? "nothing ran there before this intent: its assignment removed" : plan.Strategy + (version is null ? "" : " " + version);
            pass.Record("remediation", ring.Name, IntentReasons.RolledBack, $"ring {ring.Name} rolled back ({how})",
                RingDetails(ring.Name, ring.Workspaces ?? []), $"ring/{ring.Name}/rolledback", warning: true);
        }

        metrics.RolledBack(intent);
        pass.Move(IntentPhase.RolledBack, IntentReasons.RolledBack, $"{step.Message}; every ring touched rolled back ({plan.Strategy})");
        pass.Conditions.Set(IntentConditions.Progressing, false, IntentReasons.RolledBack, step.Message).Set(IntentConditions.Ready, false, IntentReasons.RolledBack, step.Message);
    }
}
