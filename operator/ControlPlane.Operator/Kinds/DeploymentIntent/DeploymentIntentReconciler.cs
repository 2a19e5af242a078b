using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The caches the DeploymentIntent reconciler reads instead of the API server.</summary>
public sealed record IntentCaches(
    Informer<DeploymentIntent> Intents,
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    Informer<Approval> Approvals,
    Informer<V1RoleBinding> RoleBindings,
    Informer<V1ConfigMap> RiskModels,
    Informer<Application> Applications,
    Informer<SecurityException> Exceptions);

/// <summary>
/// Governs a DeploymentIntent: scores its risk, checks its scope, decides (Allow / RequireApproval /
/// Deny), then runs its rings in order on the execution plane, never touching the targets itself:
/// a ring past the first waits for CAB approval when required, a ring never starts before its
/// window, one change per application and ring at a time. Every phase change goes through
/// <see cref="IntentStateMachine"/> and into the event store; drift is checked on an interval.
/// </summary>
public sealed partial class DeploymentIntentReconciler(
    IntentCaches caches,
    KubeApi api,
    SystemDatabase database,
    IExecutionPlaneFactory planes,
    ObjectWriter writer,
    EventRecorder events,
    IntentMetrics metrics,
    ControlPlaneOptions options,
    TimeProvider time,
    ILogger<DeploymentIntentReconciler> logger) : IReconciler<DeploymentIntent>
{
    public static readonly ResourceType Type = ResourceType.For<DeploymentIntent>(namespaced: true);
    const string Actor = "controlplane-operator";

    /// <summary>While a ring runs, the plane is asked again this often (the kubernetes plane's Rollout events come sooner).</summary>
    TimeSpan PollInterval => options.DeploymentIntent.PollInterval;

    public Task<ReconcileResult> ReconcileAsync(DeploymentIntent intent, CancellationToken ct) => ReconcileErrors.RunAsync(intent, ReconcilePassAsync, ErrorReport, ct);

    // Database and plane failures are the pass's own conditions (DatabaseUnavailable, PlaneUnavailable, ...), not a ReconcileError.
    ErrorReport<DeploymentIntent> ErrorReport => new(writer, Type, IntentConditions.Ready, i => i.Status?.Conditions, (i, conditions) => CopyStatus(i, conditions), events, time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException or PlaneError),
    };

    static DeploymentIntentStatus CopyStatus(DeploymentIntent i, List<V1Condition> conditions)
    {
        var s = Clone(i.Status) ?? new DeploymentIntentStatus { Phase = IntentPhase.Pending, CorrelationId = i.Metadata.Uid };
        s.ObservedGeneration = i.Metadata.Generation;
        s.Conditions = conditions;
        return s;
    }

    static DeploymentIntentStatus? Clone(DeploymentIntentStatus? s) =>
        s is null ? null : k8s.KubernetesJson.Deserialize<DeploymentIntentStatus>(k8s.KubernetesJson.Serialize(s));

    async Task<ReconcileResult> ReconcilePassAsync(DeploymentIntent intent, CancellationToken ct)
    {
        if (intent.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done; // owned Rollouts go with it (ownerReferences)
        var ns = intent.Metadata.NamespaceProperty;
        var now = time.GetUtcNow().UtcDateTime;
        var pass = new IntentPass(intent, Clone(intent.Status) ?? new DeploymentIntentStatus(), now);
        pass.Status.CorrelationId ??= intent.Metadata.Uid; // stable, unique: the idempotency key everywhere
        pass.Status.Phase ??= IntentPhase.Pending;
        var ws = caches.Workspaces.Get(ns);
        var tenant = ws is null ? null : caches.Tenants.Get(ws.Spec.Tenant);
        if (ws is null || tenant is null)
        {
            pass.Conditions.Set(IntentConditions.Ready, false, IntentReasons.NotInAWorkspace, $"metadata.namespace: \"{ns}\" is not the namespace of a workspace: a DeploymentIntent is a change of a tenant's workspace");
            return await FinishAsync(pass, null, ct).ConfigureAwait(false);
        }

        pass.Tenant = tenant.Metadata.Name;
        try
        {
            if (!await AssessAsync(pass, ws, tenant, ct).ConfigureAwait(false)) return await FinishAsync(pass, pass.Recheck, ct).ConfigureAwait(false);
            if (IntentStateMachine.IsFinal(pass.Status.Phase.Value)) return await FinishAsync(pass, null, ct).ConfigureAwait(false);
            // A completed change only has its drift checked: no ring runs, nothing else is asked of its plane.
            var recheck = pass.Status.Phase == IntentPhase.Completed ? null : await RunRingsAsync(pass, ws, tenant, ct).ConfigureAwait(false);
            if (pass.Status.Phase != IntentPhase.AwaitingApproval) pass.Status.AssignedApprovers = null; // listed only while CAB is awaited
            var driftRecheck = await CheckDriftAsync(pass, ct).ConfigureAwait(false);
            return await FinishAsync(pass, Min(Min(recheck, driftRecheck), pass.ExceptionRecheck), ct).ConfigureAwait(false);
        }
        catch (PlaneError e)
        {
            return await PlaneFailedAsync(pass, e, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var failure = PostgresFailure.Of(e, "The system of record");
            pass.Conditions.Set(IntentConditions.Ready, false, failure.Reason, failure.Message);
            pass.Events.Clear(); // nothing was recorded: the next pass records it
            pass.Status = CopyStatus(intent, pass.Conditions.ToList());
            await WriteStatusAsync(pass, ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }
    }

    static TimeSpan? Min(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : a < b ? a : b;

    /// <summary>
    /// Steps 1-3 of the pipeline: risk (scored once per generation, with the model version kept),
    /// scope, decision. Returns false when the intent must not go on (denied, or not yet decidable).
    /// </summary>
    async Task<bool> AssessAsync(IntentPass pass, Workspace ws, Tenant tenant, CancellationToken ct)
    {
        var intent = pass.Intent;
        var spec = intent.Spec;
        var status = pass.Status;
        if (status.Phase == IntentPhase.Denied) return false;
        var scored = status.RiskModelVersion is not null && status.RiskScore is not null;
        bool? scoredNow = null;
        if (!scored)
        {
            var (model, problem) = await ActiveModelAsync(ct).ConfigureAwait(false);
            if (model is null)
            {
                pass.Conditions.Set(IntentConditions.Ready, false, IntentReasons.InvalidRiskModel, problem!);
                return false;
            }

            var risk = model.Assess(spec.Risk, spec.PrivilegedTooling);
            scoredNow = risk.RequiresApproval;
            status.RiskScore = risk.Score;
            status.RiskModelVersion = risk.ModelVersion;
            status.RiskFactors = risk.Factors.Select(f => new RiskFactorContribution { Name = f.Name, NormalizedValue = f.Value, Weight = f.Weight, Contribution = f.Contribution }).ToList();
            pass.Move(IntentPhase.RiskAssessed, IntentReasons.RiskAssessed, $"risk {risk.Score:0.0} with model {risk.ModelVersion}", new JsonObject
            {
                ["score"] = risk.Score,
                ["model"] = risk.ModelVersion,
                ["factors"] = new JsonArray(risk.Factors.Select(f => (JsonNode)new JsonObject { ["name"] = f.Name, ["value"] = f.Value, ["weight"] = f.Weight, ["contribution"] = f.Contribution }).ToArray()),
            });
        }

        var assessment = new RiskAssessment(status.RiskScore!.Value, status.RiskModelVersion!, [],
            scoredNow ?? (status.Decision == "RequireApproval" || status.CabRequired == true || spec.PrivilegedTooling || (status.Decision is null && status.RiskScore > RiskModel.V1.ApprovalThreshold)));
        var scopeProblems = ScopeProblems(intent, tenant);
        // Issue 23: target within every author's publisher scope and within the Application's approved scope.
        var baseProblems = scopeProblems.Count;
        var publisherProblems = PublisherProblems(intent, tenant);
        var gate = GateOf(intent);
        scopeProblems.AddRange(publisherProblems);
        if (gate.Verdict == GateVerdict.Deny) scopeProblems.Add(gate.Message);
        pass.Conditions.Set(IntentConditions.ScopeValid, scopeProblems.Count == 0, scopeProblems.Count == 0 ? IntentReasons.ScopeValid : IntentReasons.ScopeInvalid,
            scopeProblems.Count == 0 ? $"within tenant {tenant.Metadata.Name}'s scopes; rings: {RingsText(intent, tenant)}" : string.Join("; ", scopeProblems));
        if (!await ScanReportAsync(pass, ct).ConfigureAwait(false)) return false; // denied, or waiting for the report
        var findings = await FindingsAsync(pass, ct).ConfigureAwait(false);
        var decision = IntentDecisions.Decide(spec, tenant, scopeProblems, assessment, findings);
        if (decision.Reason == IntentReasons.ScopeInvalid && baseProblems == 0)
        {
            decision = decision with { Reason = publisherProblems.Count > 0 ? IntentReasons.OutsidePublisherScope : IntentReasons.OutsideApplicationScope };
        }

        if (decision.Decision != "Deny" && gate.Verdict == GateVerdict.Wait && status.Phase is IntentPhase.Pending or IntentPhase.RiskAssessed)
        {
            // GitOps applies an intent with its Application: it waits for it (and its CAB) undecided; only a definite violation is denied.
            pass.Conditions.Set(IntentConditions.ScopeValid, false, gate.Reason, gate.Message).Set(IntentConditions.Ready, false, gate.Reason, gate.Message);
            return false;
        }

        decision = await WithRollbackStrategyAsync(pass, decision, scopeProblems, ct).ConfigureAwait(false);
        // A decision already taken stands (the spec does not change after assessment); a suspended tenant stops new rings below.
        if (status.Decision is null || status.Phase is IntentPhase.Pending or IntentPhase.RiskAssessed)
        {
            status.Decision = decision.Decision;
            // RequireException keeps whether CAB approval is needed on top (the risk is scored once).
            status.CabRequired = decision.Decision == "RequireException" ? decision.CabRequired : null;
        }

        if (decision.Decision == "Deny" && status.Phase is IntentPhase.Pending or IntentPhase.RiskAssessed or IntentPhase.ScopeValidated)
        {
            status.Decision = "Deny";
            pass.Move(IntentPhase.Denied, decision.Reason, decision.Message, new JsonObject { ["decision"] = "Deny" });
            pass.Conditions.Set(IntentConditions.Ready, false, decision.Reason, decision.Message)
                .Set(IntentConditions.Progressing, false, IntentReasons.Denied, decision.Message);
            return false;
        }

        if (status.Phase is IntentPhase.Pending or IntentPhase.RiskAssessed)
        {
            pass.Move(IntentPhase.ScopeValidated, IntentReasons.ScopeValidated, $"{decision.Decision}: {decision.Message}",
                new JsonObject { ["decision"] = decision.Decision, ["application"] = spec.Application, ["applicationScopeVersion"] = gate.Version });
        }

        // Serious findings wait for Exceptions, whatever the decision said when they were fewer.
        GateOnExceptions(pass, tenant, findings);

        return true;
    }

    List<string> ScopeProblems(DeploymentIntent intent, Tenant tenant)
    {
        var problems = DeploymentIntentResources.NameProblems(intent.Metadata.Name, intent.Spec.TargetScope.Rings);
        problems.AddRange(DeploymentIntentResources.ScopeProblems(intent.Spec, tenant));
        problems.AddRange(DeploymentIntentResources.RingProblems(intent.Spec.TargetScope, tenant.Metadata.Name,
            caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name)));

        if (DeploymentIntentResources.Rings(intent.Spec).Count == 0) problems.Add("spec.targetScope.rings: at least one ring is needed");
        if (planes.Problem(intent) is { } plane) problems.Add(plane);
        return problems;
    }

    string RingsText(DeploymentIntent intent, Tenant tenant)
    {
        var workspaces = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name);
        return string.Join("; ", DeploymentIntentResources.Rings(intent.Spec)
            .Select(r => $"{r}: {string.Join(", ", DeploymentIntentResources.RingWorkspaces(intent.Spec.TargetScope, r, workspaces))}"));
    }

    /// <summary>The model new intents are scored with: the admin's ConfigMap in the operator's namespace, else v1.0.</summary>
    async Task<(RiskModel? Model, string? Problem)> ActiveModelAsync(CancellationToken ct)
    {
        var cm = caches.RiskModels.Get($"{options.OperatorNamespace}/{RiskModel.ConfigMapName}");
        if (cm is null) return (RiskModel.V1, null);
        var (model, problem) = RiskModel.FromConfigMap(cm);
        if (model is null) return (null, problem);
        if (model.Version == RiskModel.V1.Version && !model.SameAs(RiskModel.V1))
        {
            return (null, $"ConfigMap {options.OperatorNamespace}/{RiskModel.ConfigMapName}: version {model.Version} is the built-in model's; give other weights a new version");
        }

        var weights = new JsonObject(model.Weights.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        return await database.RecordRiskModelAsync(model.Version, weights, model.ApprovalThreshold, ct).ConfigureAwait(false)
            ? (model, null)
            : (null, $"ConfigMap {options.OperatorNamespace}/{RiskModel.ConfigMapName}: version {model.Version} was recorded with other weights or threshold; a version is never reused: give it a new one");
    }
}
