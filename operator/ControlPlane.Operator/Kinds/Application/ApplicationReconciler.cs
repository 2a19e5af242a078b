using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The caches the Application reconciler reads instead of the API server.</summary>
public sealed record ApplicationCaches(
    Informer<Application> Applications,
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    Informer<Approval> Approvals,
    Informer<V1RoleBinding> RoleBindings);

/// <summary>
/// Governs an Application's scope: facts (its workspace, tenant, the tenant's workspaces, its approvals)
/// -> <see cref="ApplicationPlan.Decide"/> -> a thin apply: each new scope version appended to the system of
/// record with its audit event (before the status that reports it), then one status write, only when it
/// changed. A version that took effect is never taken back by anything but a new version.
/// </summary>
public sealed class ApplicationReconciler(
    ApplicationCaches caches,
    SystemDatabase database,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger<ApplicationReconciler> logger) : IReconciler<Application>
{
    public static readonly ResourceType Type = ResourceType.For<Application>(namespaced: true);
    const string Actor = "controlplane-operator";

    public Task<ReconcileResult> ReconcileAsync(Application app, CancellationToken ct) => ReconcileErrors.RunAsync(app, PassAsync, ErrorReport, ct);

    ErrorReport<Application> ErrorReport => new(writer, Type, ApplicationConditions.Ready, a => a.Status?.Conditions, (a, conditions) => CopyStatus(a, conditions), events, time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException),
    };

    static ApplicationStatus CopyStatus(Application a, List<V1Condition> conditions)
    {
        var s = a.Status is null ? new ApplicationStatus() : k8s.KubernetesJson.Deserialize<ApplicationStatus>(k8s.KubernetesJson.Serialize(a.Status));
        s.ObservedGeneration = a.Metadata.Generation;
        s.Conditions = conditions;
        return s;
    }

    /// <summary>The facts of one pass, from caches only.</summary>
    public ApplicationFacts FactsOf(Application app)
    {
        var own = caches.Workspaces.Get(app.Metadata.NamespaceProperty);
        var tenant = own is null ? null : caches.Tenants.Get(own.Spec.Tenant);
        var workspaces = tenant is null ? [] : caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).ToList();
        return new ApplicationFacts(app, tenant, own, workspaces,
            rule => ApplicationPlan.ApprovalOf(app, rule, caches.Approvals.InNamespace(app.Metadata.NamespaceProperty),
                a => ApprovalPolicy.HoldsApproverRole(a, caches.RoleBindings.InNamespace), caches.RoleBindings.InNamespace));
    }

    async Task<ReconcileResult> PassAsync(Application app, CancellationToken ct)
    {
        if (app.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done; // its recorded versions stay (append-only)
        var now = time.GetUtcNow().UtcDateTime;
        var facts = FactsOf(app);
        var decision = ApplicationPlan.Decide(facts);
        var conditions = new ConditionSet(app.Status?.Conditions, app.Metadata.Generation, now);
        var approvedAt = app.Status?.ApprovedAt;
        try
        {
            foreach (var version in decision.NewVersions)
            {
                var outcome = await RecordAsync(app, facts.Tenant!, version, now, ct).ConfigureAwait(false);
                if (outcome == ScopeRecordOutcome.Conflict) return await ResumeFromRecordAsync(app, version, conditions, ct).ConfigureAwait(false);
                approvedAt = now;
                if (outcome == ScopeRecordOutcome.Recorded)
                {
                    await events.NormalAsync(app, version.Reason, $"scope v{version.Version} in effect ({ApplicationPlan.DescribeDiff(version.Diff)})" +
                        (version.Approvers.Count > 0 ? $", approved by {string.Join(", ", version.Approvers)}" : ": a narrowing needs no approval"), ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Nothing took effect: the status keeps the version in effect, says why, and the pass is retried.
            var failure = PostgresFailure.Of(e, "The system of record");
            conditions.Set(ApplicationConditions.Ready, false, failure.Reason, failure.Message);
            var kept = CopyStatus(app, conditions.ToList());
            await WriteAsync(app, kept, failure.Reason, failure.Message, warning: true, ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }

        conditions.Set(ApplicationConditions.ScopeApproved, decision.ScopeApproved.Status, decision.ScopeApproved.Reason, decision.ScopeApproved.Message)
            .Set(ApplicationConditions.Ready, decision.Ready.Status, decision.Ready.Reason, decision.Ready.Message);
        var status = new ApplicationStatus
        {
            ObservedGeneration = app.Metadata.Generation,
            Phase = decision.Phase,
            ScopeVersion = decision.ScopeVersion,
            ApprovedScope = decision.ApprovedScope,
            ApprovedAt = decision.ScopeVersion is null ? null : approvedAt,
            ApprovedBy = decision.ScopeVersion is null ? null : decision.ApprovedBy?.ToList() ?? [],
            PendingScope = decision.Pending,
            Conditions = conditions.ToList(),
        };
        await WriteAsync(app, status, decision.Ready.Reason, decision.Ready.Message, decision.Warning, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    Task<ScopeRecordOutcome> RecordAsync(Application app, Tenant tenant, ScopeVersion v, DateTime now, CancellationToken ct)
    {
        var key = $"{app.Metadata.NamespaceProperty}/{app.Metadata.Name}";
        var record = new ScopeVersionRecord(app.Metadata.Uid ?? "", app.Metadata.NamespaceProperty, app.Metadata.Name, tenant.Metadata.Name, v.Version,
            app.Metadata.Generation ?? 0, v.Scope, v.Diff, v.BlastRadius, v.Approvers, v.Reason, now);
        var audit = new AuditEntry(ApprovalPolicy.AuthorsOf(app).LastOrDefault() ?? Actor,
            v.Reason == ApplicationReasons.ScopeNarrowed ? "application.scope-narrowed" : "application.scope-approved", Application.KubeKind, key, tenant.Metadata.Name,
            new JsonObject
            {
                ["reason"] = v.Reason,
                ["generation"] = app.Metadata.Generation,
                ["version"] = v.Version,
                ["scopeHash"] = ApplicationStore.ScopeHash(v.Scope),
                ["diff"] = JsonNode.Parse(k8s.KubernetesJson.Serialize(v.Diff)),
                ["blastRadius"] = JsonNode.Parse(k8s.KubernetesJson.Serialize(v.BlastRadius)),
                ["approvers"] = new JsonArray(v.Approvers.Select(a => (JsonNode)JsonValue.Create(a)).ToArray()),
            });
        return database.RecordScopeVersionAsync(record, audit, ct);
    }

    /// <summary>
    /// The system of record holds another scope under the version this pass meant to add (the status it reads
    /// lags a version recorded before): the status starts again from the newest recorded version, and the pass is retried.
    /// </summary>
    async Task<ReconcileResult> ResumeFromRecordAsync(Application app, ScopeVersion meant, ConditionSet conditions, CancellationToken ct)
    {
        var latest = await database.LatestScopeVersionAsync(app.Metadata.Uid ?? "", ct).ConfigureAwait(false);
        var message = $"scope v{meant.Version} is already recorded with another scope; the status resumes from the newest recorded version v{latest?.Version}";
        conditions.Set(ApplicationConditions.Ready, false, ApplicationReasons.VersionConflict, message);
        var status = CopyStatus(app, conditions.ToList());
        if (latest is { } l)
        {
            status.ScopeVersion = l.Version;
            status.ApprovedScope = l.Scope;
            status.ApprovedBy = [.. l.Approvers];
            status.ApprovedAt = l.ApprovedAt;
        }

        await WriteAsync(app, status, ApplicationReasons.VersionConflict, message, warning: true, ct).ConfigureAwait(false);
        return ReconcileResult.Retry(message);
    }

    /// <summary>Writes the status when it changed; a Warning Event only when the Ready reason or message is new.</summary>
    async Task WriteAsync(Application app, ApplicationStatus status, string reason, string message, bool warning, CancellationToken ct)
    {
        var previous = app.Status?.Conditions?.FirstOrDefault(c => c.Type == ApplicationConditions.Ready);
        await writer.UpdateStatusAsync(Type, app, status, ct).ConfigureAwait(false);
        if (warning && (previous?.Reason != reason || previous.Message != message)) await events.WarningAsync(app, reason, message, ct).ConfigureAwait(false);
    }

    /// <summary>How the Application kind plugs into the runtime: what it caches and watches.</summary>
    public static void Setup(TermBuilder b, SystemDatabase database)
    {
        var applications = b.Informer<Application>(Type);
        var caches = new ApplicationCaches(applications, WorkspaceReconciler.WorkspacesOf(b), b.Informer<Tenant>(TenantReconciler.Type),
            b.Informer<Approval>(ApprovalReconciler.Type), WorkspaceReconciler.RoleBindingsOf(b));
        var writes = new OwnWrites();
        var reconciler = new ApplicationReconciler(caches, database, StalledStatus.Writer(b, writes), b.Events, b.Time, b.Loggers.CreateLogger<ApplicationReconciler>());
        IEnumerable<string> InTenant(string tenant) =>
            caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant).SelectMany(w => applications.InNamespace(w.Metadata.Name)).Select(KeyOf);
        b.Controller("application", applications, reconciler)
            .SkipsEchoesOf(writes)
            // A new, changed or withdrawn approval of an Application (its status, written by the approval kind, changes nothing here).
            .WatchesEvents(caches.Approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == Application.KubeKind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            // Who may approve changed.
            .Watches(caches.RoleBindings, rb => applications.InNamespace(rb.Metadata.NamespaceProperty).Select(KeyOf))
            // A workspace's labels or environment move the blast radius and the count: every Application of its tenant decides again.
            .WatchesEvents(caches.Workspaces, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                                                   && SameLabels(e.Old, e.Object) && e.Old?.Status?.Environment == e.Object.Status?.Environment
                ? []
                : InTenant(e.Object.Spec.Tenant))
            // The tenant's scopes bound every Application's scope.
            .WatchesEvents(caches.Tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : InTenant(e.Object.Metadata.Name));
    }

    static bool SameLabels(Workspace? a, Workspace b) =>
        a is not null && (a.Metadata.Labels ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key).SequenceEqual((b.Metadata.Labels ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key));

    static string KeyOf(Application a) => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}";
}
