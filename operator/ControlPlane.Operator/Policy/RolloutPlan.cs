using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// The Rollout state machine, a pure function of the Rollout and the facts. Rings go in order:
/// Pending → (AwaitingApproval) → Progressing (images patched, waiting for the rollout within
/// progressDeadline) → Soaking (gates hold for the ring's soak, counted from status.rings[].rolledOutAt,
/// so a restarted operator resumes where it was) → Succeeded, then the next ring. A breached gate
/// rolls every touched namespace back (autoRollback) or fails the Rollout.
/// </summary>
public static class RolloutPlan
{
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromMinutes(30);

    /// <summary>Finished Rollouts do nothing more (a new version is a new Rollout).</summary>
    public static bool IsFinished(RolloutStatus? s) => s?.Phase is RolloutPhase.Succeeded or RolloutPhase.RolledBack || (s?.Phase == RolloutPhase.Failed && s.Rollback is not null);

    /// <summary>Holds its Deployment: started or waiting to, and not finished (a Failed spec holds nothing).</summary>
    public static bool IsActive(RolloutStatus? s) => !IsFinished(s) && s?.Phase != RolloutPhase.Failed;

    /// <summary>The index of the first ring not yet Succeeded (Count when all are).</summary>
    public static int CurrentRing(RolloutSpec spec, RolloutStatus? status)
    {
        for (var i = 0; i < spec.Rings.Count; i++)
        {
            if (status?.Rings?.FirstOrDefault(r => r.Name == spec.Rings[i].Name)?.Phase != RingPhase.Succeeded) return i;
        }

        return spec.Rings.Count;
    }

    /// <summary>Rings Succeeded out of the rings in spec: "1/3".</summary>
    public static string Progress(RolloutSpec spec, RolloutStatus? status) =>
        $"{spec.Rings.Count(r => status?.Rings?.FirstOrDefault(x => x.Name == r.Name)?.Phase == RingPhase.Succeeded)}/{spec.Rings.Count}";

    public static TimeSpan Deadline(RolloutSpec spec) =>
        Durations.TryParse(spec.Gates?.ProgressDeadline, out var d) && d > TimeSpan.Zero ? d : DefaultDeadline;

    public static TimeSpan Soak(Ring ring) => Durations.TryParse(ring.Soak, out var d) ? d : TimeSpan.Zero;

    /// <summary>spec.promote names this ring and it is rolling out or soaking: its approval is read (the reconciler) and, once the ring soaks, its soak may end early.</summary>
    public static bool PromoteAsked(RolloutSpec spec, Ring ring, RingStatus? rs) =>
        spec.Promote == ring.Name && rs?.Phase is RingPhase.Progressing or RingPhase.Soaking;

    public static RolloutDecision Decide(Rollout rollout, RolloutFacts facts) => new Pass(rollout, facts).Run();

    /// <summary>One pass over a copy of the status.</summary>
    sealed class Pass(Rollout rollout, RolloutFacts facts)
    {
        readonly RolloutSpec spec = rollout.Spec;
        readonly RolloutStatus status = Copy(rollout.Status, rollout.Spec);
        readonly List<ImagePatch> patches = [];
        readonly List<RolloutNotice> notices = [];
        bool rollback;
        TimeSpan? requeue;
        Verdict progressing = new(false, RolloutReasons.Pending, "not started");
        Verdict paused = new(false, RolloutReasons.NotPaused, "not paused");
        string readyReason = RolloutReasons.Pending;
        string readyMessage = "not started";

        IReadOnlyList<ContainerImage> Target => spec.Target.Containers ?? [];

        public RolloutDecision Run()
        {
            status.ObservedGeneration = rollout.Metadata.Generation;
            var before = rollout.Status?.Phase;
            Step();
            // In the same status write as the rings it counts (the no-op pass still writes nothing).
            status.Progress = RolloutPlan.Progress(spec, status);
            // Pausing and resuming by spec.paused are audited (the reason says which generation did it).
            var wasUserPaused = rollout.Status?.Conditions?.Any(c => c.Type == RolloutConditions.Paused && c.Status == "True" && c.Reason == RolloutReasons.Paused) == true;
            if (paused is { Status: true, Reason: RolloutReasons.Paused } && !wasUserPaused)
            {
                notices.Add(new(RolloutReasons.Paused, "Rollout paused (spec.paused): no next step is taken until it is false", AuditAction: "rollout.paused", AuditReason: "paused"));
            }
            else if (wasUserPaused && !spec.Paused && !IsFinished(status))
            {
                notices.Add(new(RolloutReasons.Resumed, "Rollout resumed (spec.paused is false)", AuditAction: "rollout.resumed", AuditReason: "resumed"));
            }

            if (status.Phase == RolloutPhase.Succeeded && before != RolloutPhase.Succeeded) notices.Add(new(RolloutReasons.Succeeded, $"Every ring rolled out and soaked: {RolloutResources.Describe(Target)}", AuditAction: "rollout.completed", AuditReason: "succeeded"));
            var ready = new Verdict(status.Phase == RolloutPhase.Succeeded, readyReason, readyMessage);
            return new RolloutDecision(status, patches, rollback, notices, progressing, paused, ready, requeue);
        }

        void Step()
        {
            if (IsFinished(rollout.Status))
            {
                Finished();
                return;
            }

            if (facts.Invalid.Count > 0)
            {
                Fail(RolloutReasons.InvalidSpec, string.Join("; ", facts.Invalid));
                return;
            }

            if (facts.Tenant is null)
            {
                Fail(RolloutReasons.NotInAWorkspace, $"metadata.namespace: \"{rollout.Metadata.NamespaceProperty}\" is not a workspace: a Rollout lives in a workspace of the tenant whose workspaces it targets");
                return;
            }

            if (spec.Abort)
            {
                Rollback("abort", "spec.abort", "true", "false", facts.Now);
                return;
            }

            if (facts.TenantSuspended)
            {
                Pause(RolloutReasons.TenantSuspended, $"tenant {facts.Tenant} is suspended: its rollouts take no step");
                return;
            }

            // Promotion may start the next ring in the same pass; each ring is visited once.
            for (var i = CurrentRing(spec, status); i < spec.Rings.Count; i = CurrentRing(spec, status))
            {
                if (!StepRing(i)) return;
            }

            status.Phase = RolloutPhase.Succeeded;
            status.CurrentRing = null;
            progressing = new(false, RolloutReasons.Succeeded, "every ring rolled out and soaked");
            readyReason = RolloutReasons.Succeeded;
            readyMessage = $"{RolloutResources.Describe(Target)} rolled out to {status.Rings!.Sum(r => r.Workspaces?.Count ?? 0)} namespace(s) in {spec.Rings.Count} ring(s)";
        }

        /// <summary>Advances ring i; true when it was promoted and the next ring may be looked at.</summary>
        bool StepRing(int i)
        {
            var ring = spec.Rings[i];
            var rs = status.Rings![i];
            status.CurrentRing = ring.Name;
            var view = facts.Rings[i];
            if (rs.Phase is null or RingPhase.Pending or RingPhase.AwaitingApproval)
            {
                StartRing(i, ring, rs, view);
                return false;
            }

            var namespaces = rs.Workspaces ?? [];
            var views = namespaces.Select(ns => facts.Deployments.TryGetValue(ns, out var v) ? v : DeploymentView.Missing(ns)).ToList();
            var deadline = rs.StartedAt!.Value + Deadline(spec);
            var pastDeadline = facts.Now >= deadline;
            var incidents = views.Sum(v => v.Restarts) + (pastDeadline || rs.Phase == RingPhase.Soaking ? views.Sum(v => v.NotReady) : 0);
            rs.Incidents = incidents;
            var max = spec.Gates?.MaxIncidents ?? 0;
            if (incidents > max)
            {
                var at = views.Select(v => v.LastRestartAt).Where(t => t is not null).DefaultIfEmpty(null).Max() ?? (pastDeadline ? deadline : facts.Now);
                Rollback("incidents", ring.Name, incidents.ToString(System.Globalization.CultureInfo.InvariantCulture), max.ToString(System.Globalization.CultureInfo.InvariantCulture), at);
                return false;
            }

            if (spec.Gates?.SuccessRate is { } gate && facts.Metric is { } reading)
            {
                if (reading.Value is { } value)
                {
                    rs.SuccessRate = Math.Clamp(Math.Round(value, 4), 0, 1);
                    if (value < gate.Threshold)
                    {
                        Rollback("successRate", ring.Name, RolloutResources.Format(value), RolloutResources.Format(gate.Threshold), facts.Now);
                        return false;
                    }
                }
                else if (reading.Unavailable is not null || rs.Phase == RingPhase.Soaking)
                {
                    // Unknown is not a breach: hold (no promotion) and say why; the gate is asked again on the interval.
                    Pause(RolloutReasons.MetricsUnavailable, $"spec.gates.successRate: {reading.Unavailable ?? "the query returned no sample (no traffic in the ring?)"}; the ring holds until it answers");
                    return false;
                }
            }

            if (rs.Phase == RingPhase.Progressing)
            {
                // A patch that failed (or an image changed by hand meanwhile) is issued again while the ring rolls out.
                foreach (var v in views.Where(v => v.Exists && !v.OnTarget)) patches.Add(new ImagePatch(v.Namespace, Target));
                if (views.All(v => v.RolledOut))
                {
                    rs.Phase = RingPhase.Soaking;
                    rs.RolledOutAt = facts.Now;
                    notices.Add(new(RolloutReasons.RingRolledOut, $"ring {ring.Name}: {string.Join(", ", namespaces)} rolled out; soaking for {ring.Soak}"));
                }
                else if (pastDeadline)
                {
                    var late = views.Where(v => !v.RolledOut).Select(v => $"{v.Namespace} ({v.Summary})");
                    Rollback("progressDeadline", ring.Name, string.Join(", ", late), spec.Gates?.ProgressDeadline ?? "30m", deadline);
                    return false;
                }
                else
                {
                    Progress(ring, $"ring {ring.Name}: waiting for {string.Join(", ", views.Where(v => !v.RolledOut).Select(v => $"{v.Namespace} ({v.Summary})"))}");
                    if (spec.Paused) Pause(RolloutReasons.Paused, $"spec.paused is true: ring {ring.Name} finishes rolling out (gates watched), the next step waits");
                    RequeueIn(deadline - facts.Now);
                    return false;
                }
            }

            var soakEnds = rs.RolledOutAt!.Value + Soak(ring);
            var early = false;
            if (facts.Now < soakEnds && PromoteAsked(spec, ring, rs) && !spec.Paused)
            {
                // Gates failing never reach here (a breach rolled back above; an unreadable gate held):
                // what is left to ask is the approval of the generation that asked for it.
                if (facts.Approval is { Approved: true } approval)
                {
                    early = true;
                    notices.Add(new(RolloutReasons.PromotedEarly, $"ring {ring.Name}: soak ended early by spec.promote ({(soakEnds - facts.Now).TotalMinutes:0} min left of {ring.Soak}), gates holding, {approval.Message}",
                        AuditAction: "rollout.promoted", AuditReason: ring.Name));
                }
                else
                {
                    var why = facts.Approval?.Message ?? "no approval";
                    Progress(ring, $"ring {ring.Name}: spec.promote waits for approval of generation {rollout.Metadata.Generation} (an Approval with target kind Rollout, name {rollout.Metadata.Name}): {why}; soaking until {soakEnds:u} meanwhile");
                    progressing = progressing with { Reason = RolloutReasons.PromotionRefused };
                    if (facts.Approval?.Rejected != true && ApprovalAskPlans.PromoteAskIsNew(rollout))
                    {
                        notices.Add(new(RolloutReasons.PromotionRefused, progressing.Message, AuditAction: ApprovalAskPlans.RolloutAction, AuditReason: ApprovalAskPlans.PromoteReason(ring.Name),
                            AuditDetails: ApprovalAskPlans.RolloutDetails(rollout, ring.Name, "promote", facts.Approval)));
                    }

                    RequeueIn(soakEnds - facts.Now);
                    return false;
                }
            }

            if (facts.Now < soakEnds && !early)
            {
                Progress(ring, $"ring {ring.Name}: soaking until {soakEnds:u}, gates holding ({incidents} incident(s){(rs.SuccessRate is { } r ? $", success rate {RolloutResources.Format(r)}" : "")})");
                if (spec.Paused) Pause(RolloutReasons.Paused, "spec.paused is true: the next ring waits (gates are still watched)");
                RequeueIn(soakEnds - facts.Now);
                return false;
            }

            if (spec.Paused)
            {
                Pause(RolloutReasons.Paused, $"spec.paused is true: ring {ring.Name} soaked; the next ring waits");
                return false;
            }

            rs.Phase = RingPhase.Succeeded;
            rs.CompletedAt = facts.Now;
            notices.Add(new(RolloutReasons.RingPromoted, $"ring {ring.Name} succeeded ({string.Join(", ", namespaces)}): rolled out and soaked for {ring.Soak} with gates holding",
                AuditAction: "rollout.ring-promoted", AuditReason: ring.Name));
            return true;
        }

        /// <summary>Starts a ring when nothing holds it (nothing more happens in this pass either way).</summary>
        void StartRing(int i, Ring ring, RingStatus rs, RingView view)
        {
            // A ring leaving AwaitingApproval because it was approved is an approval decision (audited once per generation and ring).
            var wasAwaiting = rs.Phase == RingPhase.AwaitingApproval;
            if (spec.Paused)
            {
                Pause(RolloutReasons.Paused, $"spec.paused is true: ring {ring.Name} does not start");
                return;
            }

            if (facts.WaitingFor is { } other)
            {
                status.Phase = RolloutPhase.Pending;
                progressing = new(false, RolloutReasons.WaitingForRollout, $"Rollout {other} is active on Deployment {spec.Target.Deployment} in a ring namespace: one at a time; this one starts when it finishes");
                (readyReason, readyMessage) = (RolloutReasons.WaitingForRollout, progressing.Message);
                return;
            }

            if (RolloutResources.NeedsApproval(rollout, ring, view) && facts.Approval is not { Approved: true })
            {
                rs.Phase = RingPhase.AwaitingApproval;
                var why = facts.Approval?.Message ?? "no approval";
                var prod = ring.RequiresApproval ? "" : " (it reaches a prod workspace: approval is required whatever requiresApproval says)";
                Pause(facts.Approval?.Rejected == true ? RolloutReasons.Rejected : RolloutReasons.AwaitingApproval,
                    $"ring {ring.Name} requires approval of generation {rollout.Metadata.Generation}{prod} (an Approval with target kind Rollout, name {rollout.Metadata.Name}): {why}");
                // The ring starts waiting (first look, or an edit made a new generation to approve): asked once, so approval.requested reaches the approvers.
                if (facts.Approval?.Rejected == true)
                {
                    var before = rollout.Status?.Conditions?.FirstOrDefault(c => c.Type == RolloutConditions.Paused);
                    if (before?.Reason != RolloutReasons.Rejected || before.ObservedGeneration != rollout.Metadata.Generation)
                    {
                        notices.Add(new(RolloutReasons.Rejected, paused.Message, Warning: true, AuditAction: "rollout.rejected", AuditReason: ring.Name,
                            AuditDetails: new System.Text.Json.Nodes.JsonObject { ["ring"] = ring.Name, ["rejectedBy"] = Json(facts.Approval.RejectedBy) }));
                    }
                }
                else if (ApprovalAskPlans.RingAskIsNew(rollout, ring.Name))
                {
                    notices.Add(new(RolloutReasons.AwaitingApproval, paused.Message, AuditAction: ApprovalAskPlans.RolloutAction, AuditReason: ring.Name,
                        AuditDetails: ApprovalAskPlans.RolloutDetails(rollout, ring.Name, "start", facts.Approval)));
                }

                return;
            }

            if (view.Namespaces.Count == 0)
            {
                Pause(RolloutReasons.RingEmpty, $"spec.rings[{i}]: ring {ring.Name} matches no workspace of tenant {facts.Tenant}{Refusals(view)}; it holds until one matches");
                return;
            }

            var views = view.Namespaces.Select(ns => facts.Deployments.TryGetValue(ns, out var v) ? v : DeploymentView.Missing(ns)).ToList();
            if (views.Where(v => !v.Exists).Select(v => v.Namespace).ToList() is { Count: > 0 } missing)
            {
                Pause(RolloutReasons.DeploymentNotFound, $"spec.target.deployment: Deployment {spec.Target.Deployment} does not exist in {string.Join(", ", missing)} (ring {ring.Name}); the operator never creates it");
                return;
            }

            // No confused deputy: the operator patches only where every requester could patch by hand.
            if (facts.Access is not { } access || !access.Covers(view.Namespaces))
            {
                // Reached by a promotion in this pass: the rights in this ring are asked on the next one.
                Progress(ring, $"ring {ring.Name}: checking that the Rollout's requesters may patch Deployment {spec.Target.Deployment} in {string.Join(", ", view.Namespaces)}");
                RequeueIn(TimeSpan.Zero);
                return;
            }

            if (access.DeniedIn(view.Namespaces) is { Count: > 0 } deniedHere)
            {
                var denied = string.Join("; ", deniedHere);
                var message = $"spec.rings[{i}]: ring {ring.Name} does not start: {denied}";
                var before = rollout.Status?.Conditions?.FirstOrDefault(c => c.Type == RolloutConditions.Ready);
                if (before?.Reason != RolloutReasons.RequesterForbidden || before.Message != message)
                {
                    notices.Add(new(RolloutReasons.RequesterForbidden, message, Warning: true, AuditAction: "rollout.requester-forbidden", AuditReason: ring.Name));
                }

                rs.Phase = RingPhase.Pending;
                Approved(ring, wasAwaiting);
                Pause(RolloutReasons.RequesterForbidden, message);
                return;
            }

            foreach (var v in views)
            {
                if (RolloutResources.MissingContainers(v, Target) is { Count: > 0 } absent)
                {
                    Fail(RolloutReasons.ContainerNotFound, $"spec.target.containers: Deployment {v.Namespace}/{spec.Target.Deployment} has no container {string.Join(", ", absent)}");
                    return;
                }
            }

            status.Previous ??= [];
            foreach (var v in views)
            {
                // Recorded once, before the first patch: a second look would record our own image.
                if (status.Previous.All(p => p.Namespace != v.Namespace)) status.Previous.Add(RolloutResources.Previous(v, Target));
                if (!v.OnTarget) patches.Add(new ImagePatch(v.Namespace, Target));
            }

            Approved(ring, wasAwaiting);
            rs.Phase = RingPhase.Progressing;
            rs.StartedAt = facts.Now;
            rs.Workspaces = view.Namespaces.ToList();
            rs.Incidents = 0;
            notices.Add(new(RolloutReasons.RingStarted, $"ring {ring.Name}: setting {RolloutResources.Describe(Target)} on Deployment {spec.Target.Deployment} in {string.Join(", ", view.Namespaces)}{Refusals(view)}"));
            Progress(ring, $"ring {ring.Name}: images patched in {string.Join(", ", view.Namespaces)}; waiting for the rollout");
            RequeueIn(Deadline(spec));
            return;
        }

        /// <summary>The ring waited for approval and goes on now: the decision, with who approved.</summary>
        void Approved(Ring ring, bool wasAwaiting)
        {
            if (!wasAwaiting || facts.Approval is not { Approved: true } approval) return;
            notices.Add(new(RolloutReasons.Approved, $"ring {ring.Name}: generation {rollout.Metadata.Generation} {approval.Message}", AuditAction: "rollout.approved", AuditReason: ring.Name,
                AuditDetails: new System.Text.Json.Nodes.JsonObject { ["ring"] = ring.Name, ["approvers"] = Json(approval.Approvers) }));
        }

        static System.Text.Json.Nodes.JsonArray Json(IEnumerable<string> names) => new([.. names.Select(n => (System.Text.Json.Nodes.JsonNode)System.Text.Json.Nodes.JsonValue.Create(n))]);

        static string Refusals(RingView view) => view.Refused.Count == 0 ? "" : $" (refused: {string.Join(", ", view.Refused)})";

        void Progress(Ring ring, string message)
        {
            status.Phase = RolloutPhase.Progressing;
            progressing = new(true, RolloutReasons.RingProgressing, message);
            (readyReason, readyMessage) = (RolloutReasons.Progressing, $"ring {ring.Name} of {spec.Rings.Count} in progress");
        }

        void Pause(string reason, string message)
        {
            status.Phase = RolloutPhase.Paused;
            paused = new(true, reason, message);
            progressing = new(false, reason, message);
            (readyReason, readyMessage) = (reason, message);
            if (reason == RolloutReasons.MetricsUnavailable) RequeueIn(TimeSpan.FromSeconds(10));
        }

        void Fail(string reason, string message)
        {
            status.Phase = RolloutPhase.Failed;
            progressing = new(false, reason, message);
            (readyReason, readyMessage) = (reason, message);
        }

        void RequeueIn(TimeSpan delay)
        {
            if (delay < TimeSpan.Zero) delay = TimeSpan.Zero;
            requeue = requeue is { } r && r < delay ? r : delay;
        }

        /// <summary>Breach (or abort): every touched namespace back to its recorded images, or Failed without autoRollback.</summary>
        void Rollback(string gate, string ring, string value, string limit, DateTime observableAt)
        {
            var touched = status.Previous ?? [];
            var current = status.Rings?.FirstOrDefault(r => r.Phase is RingPhase.Progressing or RingPhase.Soaking);
            var record = new RollbackRecord
            {
                Gate = gate, Ring = gate == "abort" ? current?.Name : ring, Value = value, Limit = limit,
                BreachObservableAt = observableAt,
                Namespaces = touched.Select(p => p.Namespace).ToList(),
            };
            status.Rollback = record;
            var what = gate == "abort" ? "spec.abort is true" : $"gate {gate} breached in ring {ring}: {value} (limit {limit})";
            if (gate != "abort" && !spec.AutoRollback)
            {
                if (current is not null) current.Phase = RingPhase.Failed;
                Fail(RolloutReasons.GateBreached, $"{what}; autoRollback is false: nothing rolled back");
                notices.Add(new(RolloutReasons.GateBreached, $"{what}; autoRollback is false: nothing rolled back", Warning: true, AuditAction: "rollout.failed", AuditReason: gate));
                return;
            }

            if (current is not null) current.Phase = RingPhase.RolledBack;
            foreach (var p in touched) patches.Add(new ImagePatch(p.Namespace, p.Containers));
            rollback = true;
            status.Phase = RolloutPhase.RolledBack;
            status.RolledBackAt = facts.Now;
            record.IssuedAt = facts.Now;
            record.SecondsToIssue = Math.Max(0, Math.Round((facts.Now - observableAt).TotalSeconds, 3));
            var restored = touched.Count == 0 ? "nothing had been changed" : $"restored {string.Join("; ", touched.Select(p => $"{p.Namespace}: {RolloutResources.Describe(p.Containers)}"))}";
            progressing = new(false, gate == "abort" ? RolloutReasons.Aborted : RolloutReasons.RolledBack, $"{what}; {restored}");
            (readyReason, readyMessage) = (progressing.Reason, progressing.Message);
            if (gate == "abort") notices.Add(new(RolloutReasons.Aborted, "spec.abort is true: stopping and rolling back", Warning: true, AuditAction: "rollout.aborted", AuditReason: "abort"));
            notices.Add(new(RolloutReasons.RolledBack, $"{what}; {restored}", Warning: true, AuditAction: "rollout.rolled-back", AuditReason: gate));
        }

        void Finished()
        {
            var phase = status.Phase!.Value; // finished: never null
            // A rollback not fully issued (a patch failed) is issued again for what still differs; a
            // finished Rollout otherwise touches nothing.
            if (phase == RolloutPhase.RolledBack && status.Rollback is { IssuedAt: null })
            {
                foreach (var p in status.Previous ?? [])
                {
                    if (facts.Deployments.TryGetValue(p.Namespace, out var v) && v.Exists
                        && !p.Containers.All(c => v.Images.Any(i => i.Name == c.Name && i.Image == c.Image)))
                    {
                        patches.Add(new ImagePatch(p.Namespace, p.Containers));
                    }
                }

                rollback = true;
            }

            var ready = rollout.Status?.Conditions?.FirstOrDefault(c => c.Type == RolloutConditions.Ready);
            var prog = rollout.Status?.Conditions?.FirstOrDefault(c => c.Type == RolloutConditions.Progressing);
            readyReason = ready?.Reason ?? phase.ToString();
            readyMessage = ready?.Message ?? phase.ToString();
            progressing = new(false, prog?.Reason ?? phase.ToString(), prog?.Message ?? phase.ToString());
        }
    }

    /// <summary>A deep copy of the status with one ring entry per spec ring, in spec order.</summary>
    static RolloutStatus Copy(RolloutStatus? s, RolloutSpec spec)
    {
        var copy = s is null ? new RolloutStatus() : k8s.KubernetesJson.Deserialize<RolloutStatus>(k8s.KubernetesJson.Serialize(s));
        var rings = spec.Rings.Select(r => copy.Rings?.FirstOrDefault(x => x.Name == r.Name) ?? new RingStatus { Name = r.Name, Phase = RingPhase.Pending }).ToList();
        copy.Rings = rings;
        return copy;
    }
}
