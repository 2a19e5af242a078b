using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The RoleBinding that carries a time-bound grant (an AccessRequest's, a BreakGlass's), a pure function of its owner and
/// recorded status: bound to one User with a workspace ClusterRole, owned by the object (the garbage collector takes it
/// with the object), labelled managed-by so the operator's RoleBinding cache sees it, deliberately without the workspace
/// label (the Workspace reconciler owns only its members' bindings), annotated with its recorded expiry.
/// </summary>
public static class GrantBindings
{
    public const string ExpiresAtAnnotation = "controlplane.io/expires-at";

    public static V1RoleBinding Binding(IKubernetesObject<V1ObjectMeta> owner, string name, string ownerLabel, string role, string? user, DateTime? expiresAt) => new()
    {
        ApiVersion = "rbac.authorization.k8s.io/v1",
        Kind = "RoleBinding",
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = owner.Metadata.NamespaceProperty,
            Labels = new Dictionary<string, string>
            {
                [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue,
                [ownerLabel] = owner.Metadata.Name,
            },
            Annotations = new Dictionary<string, string>
            {
                [ExpiresAtAnnotation] = expiresAt?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "",
            },
            OwnerReferences = [ChildApplier.OwnerReference(owner)],
        },
        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
        Subjects = [new Rbacv1Subject { Kind = "User", Name = user ?? "", ApiGroup = "rbac.authorization.k8s.io" }],
    };

    /// <summary>The object of <paramref name="kind"/> a RoleBinding carries the grant of (its controlling owner), as a queue key; none for other bindings.</summary>
    public static IEnumerable<string> OwnerOf(V1RoleBinding rb, string kind) =>
        rb.Metadata.OwnerReferences?.Where(o => o.Controller == true && o.Kind == kind && o.ApiVersion == ApiGroup.ApiVersion)
            .Select(o => $"{rb.Metadata.NamespaceProperty}/{o.Name}") ?? [];

    /// <summary>Whether the binding's recorded expiry (its annotation, whole seconds) is at or before <paramref name="now"/>.</summary>
    public static bool ExpiredAt(V1RoleBinding rb, DateTime now) =>
        rb.Metadata.Annotations?.TryGetValue(ExpiresAtAnnotation, out var at) == true
        && DateTime.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var expiresAt)
        && expiresAt <= now;

    /// <summary>Whether an existing binding is this object's (same owner uid): the operator never adopts or deletes another's.</summary>
    public static bool IsOurs(V1RoleBinding rb, IKubernetesObject<V1ObjectMeta> owner) =>
        rb.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Kind == owner.Kind && o.Uid == owner.Metadata.Uid) == true;
}

/// <summary>One pass's decision about a grant, in the terms the apply needs.</summary>
public sealed record GrantStep<TStatus>(
    TStatus Status,
    BindingAction Binding,
    IReadOnlyList<ConditionVerdict> Conditions,
    IReadOnlyList<Notice> Notices,
    IReadOnlyList<AccessAudit> Audits,
    TimeSpan? RecheckIn,
    string Phase) where TStatus : StatusBase;

/// <summary>What a time-bound grant's reconciler (AccessRequest, BreakGlass) reads and writes with, made once per term.</summary>
public sealed record GrantContext(
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    Informer<Approval> Approvals,
    Informer<V1RoleBinding> RoleBindings,
    KubeApi Api,
    ChildApplier Applier,
    SystemDatabase Database,
    ObjectWriter Writer,
    EventRecorder Events,
    TimeProvider Time,
    OwnWrites Writes)
{
    public static GrantContext Of(TermBuilder b, SystemDatabase database)
    {
        var writes = new OwnWrites();
        return new(WorkspaceReconciler.WorkspacesOf(b), b.Informer<Tenant>(TenantReconciler.Type), b.Informer<Approval>(ApprovalReconciler.Type),
            WorkspaceReconciler.RoleBindingsOf(b), b.Api, new ChildApplier(b.Api, writes), database, StalledStatus.Writer(b, writes), b.Events, b.Time, writes);
    }

    /// <summary>The tenant of the workspace whose namespace this is, from the caches; null when it is not a workspace's.</summary>
    public Tenant? TenantOf(string ns) => Workspaces.Get(ns) is { } ws ? Tenants.Get(ws.Spec.Tenant) : null;
}

/// <summary>
/// The thin apply of a time-bound grant (AccessRequest, BreakGlass), the same for both: an ending grant's binding deleted
/// first (also while Postgres is down: less access is always safe; only its record waits, Ready=False/DatabaseUnavailable
/// and a retry), an expiry's record (audit row, status, Event) in a second pass RecordDelay later (its binding's deletion wakes nobody)
/// (a burst deletes every binding before bookkeeping holds a worker); then audit rows (a grant's end once) before the
/// status that reports them (a failed write leaves the phase as it was and the next pass audits it); a starting grant's
/// times recorded in status before its binding is made, so its expiry is known before it exists; a binding of that name
/// owned by someone else never adopted nor deleted; Events; the finalizer released last.
/// </summary>
/// <param name="inForceUntil">The recorded expiry of a grant in force (its recorded phase Active), else null.</param>
/// <param name="expiredBindingDeleted">Told (expiresAt, deletedAt) once per expired grant when its binding is deleted.</param>
/// <param name="transitions">The kind's audit actions that record a change of its state (<see cref="AuditDetails.LatestTransitionIsAsync"/>).</param>
public sealed class GrantApply<T, TStatus>(
    ResourceType type,
    string grantingReason,
    Func<T, TStatus?> statusOf,
    Func<TStatus> fresh,
    Func<T, TStatus, V1RoleBinding> bindingOf,
    GrantContext g,
    ILogger logger,
    Func<TStatus, DateTime?> inForceUntil,
    Action<DateTime, DateTime>? expiredBindingDeleted = null,
    IReadOnlyList<string>? transitions = null)
    where T : class, IKubernetesObject<V1ObjectMeta>
    where TStatus : StatusBase
{
    readonly KubeApi api = g.Api;
    readonly ChildApplier applier = g.Applier;
    readonly SystemDatabase database = g.Database;
    readonly ObjectWriter writer = g.Writer;
    readonly EventRecorder events = g.Events;

    /// <summary>Postgres failures are the pass's own condition (DatabaseUnavailable), not a ReconcileError.</summary>
    public ErrorReport<T> ErrorReport => new(writer, type, Ready, ConditionsOf, CopyStatus, events, g.Time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException),
    };

    List<V1Condition>? ConditionsOf(T obj) => statusOf(obj)?.Conditions;

    /// <summary>The recorded status as it is (a copy) with other conditions: what a pass that cannot decide writes.</summary>
    TStatus CopyStatus(T obj, List<V1Condition> conditions)
    {
        var copy = statusOf(obj) is { } recorded ? KubernetesJson.Deserialize<TStatus>(KubernetesJson.Serialize(recorded)) : fresh();
        copy.ObservedGeneration = obj.Metadata.Generation;
        copy.Conditions = conditions;
        return copy;
    }

    /// <summary>A pass under <see cref="ReconcileErrors"/> (<see cref="PassAsync"/>).</summary>
    public Task<ReconcileResult> ReconcileAsync(T obj, Func<T, CancellationToken, Task<ReconcileResult>> govern, CancellationToken ct) =>
        ReconcileErrors.RunAsync(obj, (x, c) => PassAsync(x, govern, c), ErrorReport, ct);

    const string Actor = "controlplane-operator";

    /// <summary>How long after an expired grant's binding is deleted its record (audit row, status, Event) is written.</summary>
    public static readonly TimeSpan RecordDelay = TimeSpan.FromSeconds(1);
    const string Ready = "Ready";

    /// <summary>
    /// What a grant's controller watches besides the object: a new, changed or withdrawn Approval of it (an Approval's status
    /// changes nothing here); its own binding deleted or changed by someone else (an active grant puts it back, an ended one
    /// removes it again); its workspace; its tenant's spec (the access policy bounds and may withdraw it).
    /// </summary>
    public static void Watch(TermBuilder b, string name, Informer<T> all, IReconciler<T> reconciler, GrantContext g)
    {
        var (approvals, roleBindings, ws, tenants) = (g.Approvals, g.RoleBindings, g.Workspaces, g.Tenants);
        var kind = ApiKinds.KindOf(typeof(T));
        IEnumerable<string> InNamespace(string ns) => all.InNamespace(ns).Select(x => $"{ns}/{x.Metadata.Name}");
        b.Controller(name, all, reconciler)
            .SkipsEchoesOf(g.Writes)
            .WatchesEvents(approvals, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : e.Object.Spec.Target.Kind == kind ? [$"{e.Object.Metadata.NamespaceProperty}/{e.Object.Spec.Target.Name}"] : [])
            // The deletion of a binding past its recorded expiry is the grant's own expiry pass (which queues its record
            // itself, after RecordDelay): waking the owner at once would put every record of a burst ahead of the deletes
            // still due. Any other change to a grant's binding wakes its owner (an active grant puts it back).
            .WatchesEvents(roleBindings, e => e.Type == InformerEventType.Deleted && GrantBindings.ExpiredAt(e.Object, g.Time.GetUtcNow().UtcDateTime)
                ? []
                : GrantBindings.OwnerOf(e.Object, kind), skipOwnEchoes: true)
            .Watches(ws, w => InNamespace(w.Metadata.Name))
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : ws.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name).SelectMany(w => InNamespace(w.Metadata.Name)));
    }

    /// <summary>A pass; a stale cached copy of an object whose finalizer an earlier pass removed is gone: nothing to end.</summary>
    public static async Task<ReconcileResult> PassAsync(T obj, Func<T, CancellationToken, Task<ReconcileResult>> govern, CancellationToken ct)
    {
        try
        {
            return await govern(obj, ct).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound && obj.Metadata.DeletionTimestamp is not null)
        {
            return ReconcileResult.Done;
        }
    }

    /// <summary>Adds the finalizer unless the object is going (false: gone already, nothing to do).</summary>
    public async Task<(bool Go, T Obj)> BeginAsync(T obj, CancellationToken ct)
    {
        var deleting = obj.Metadata.DeletionTimestamp is not null;
        if (deleting && !ObjectWriter.HasFinalizer(obj, ApiGroup.Finalizer)) return (false, obj);
        return (true, deleting ? obj : await writer.AddFinalizerAsync(type, obj, ApiGroup.Finalizer, ct).ConfigureAwait(false));
    }

    /// <summary>The binding named <paramref name="name"/> from the cache, and whether it is the object's own (null when it is someone else's).</summary>
    public (V1RoleBinding? Cached, bool Ours, bool Foreign) Binding(T obj, string name)
    {
        var cached = g.RoleBindings.Get($"{obj.Metadata.NamespaceProperty}/{name}");
        var foreign = cached is not null && !GrantBindings.IsOurs(cached, obj);
        return (cached, cached is not null && !foreign, foreign);
    }

    /// <param name="cached">The binding of that name in the cache; <paramref name="foreign"/>: it is someone else's.</param>
    public async Task<ReconcileResult> ApplyAsync(T obj, string? tenant, string bindingName, GrantStep<TStatus> step, DateTime now, V1RoleBinding? cached, bool foreign, CancellationToken ct)
    {
        var ns = obj.Metadata.NamespaceProperty;
        var deleting = obj.Metadata.DeletionTimestamp is not null;
        // An ending grant's binding goes first, before its record and its status: less access is always safe, the
        // expiry's lag is not the audit chain's (appends are serialised), and a pass that cannot reach the API server
        // records nothing (the next pass ends the grant and audits it).
        if (step.Binding == BindingAction.Delete && await DeleteBindingAsync(obj, bindingName, cached?.Metadata.Uid, ct).ConfigureAwait(false)
            && step.Phase == "Expired" && statusOf(obj) is { } recorded && inForceUntil(recorded) is { } expiresAt)
        {
            expiredBindingDeleted?.Invoke(expiresAt, g.Time.GetUtcNow().UtcDateTime);
            // The record follows in a second pass RecordDelay later, so the deletes of a burst of grants falling due
            // together go first. (A binding already gone, the cache behind, is recorded in this pass.)
            if (!deleting) return ReconcileResult.RequeueAfter(RecordDelay);
        }

        // Audit rows are not idempotent: a pass that read a stale cached copy (woken by the binding it just deleted before
        // its own status write reached the cache) would record the same change twice. Read live only when there is
        // something to record; a newer object is decided again once the cache has it.
        if (step.Audits.Count > 0 && await api.TryGetAsync<T>(type, ns, obj.Metadata.Name, ct).ConfigureAwait(false) is { } live
            && live.Metadata.ResourceVersion != obj.Metadata.ResourceVersion)
        {
            return ReconcileResult.RequeueAfter(TimeSpan.FromMilliseconds(200));
        }

        var conditions = new ConditionSet(ConditionsOf(obj), obj.Metadata.Generation, now);
        try
        {
            foreach (var audit in step.Audits)
            {
                var entry = new AuditEntry(Actor, audit.Action, obj.Kind, $"{ns}/{obj.Metadata.Name}", tenant, audit.Details, audit.Severity);
                // A grant ends once: a pass repeated after its row committed but its status did not (API server gone) appends nothing.
                if (IsGrantEnd(audit.Action) && audit.Details["expiresAt"]?.GetValue<string>() is { } grantExpiry)
                {
                    await database.AppendGrantEndOnceAsync(entry, grantExpiry, ct).ConfigureAwait(false);
                }
                else if (!await RecordedAsync(obj, entry, ct).ConfigureAwait(false))
                {
                    await database.AppendAuditAsync(entry, ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // The grant already ended (its binding is gone); only its record waits for Postgres.
            var failure = PostgresFailure.Of(e, "The system of record");
            conditions.Set(Ready, false, failure.Reason, $"{failure.Message}; the change to {step.Phase} is recorded once it is reachable");
            await writer.UpdateStatusAsync(type, obj, CopyStatus(obj, conditions.ToList()), ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }

        var status = step.Status;
        status.Conditions = conditions.Apply(step.Conditions).ToList();
        if (foreign)
        {
            status.Conditions = conditions.Set(Ready, false, grantingReason,
                $"RoleBinding {bindingName} exists and is not this {obj.Kind}'s; it is never adopted: delete it or use another name").ToList();
        }

        obj = await writer.UpdateStatusAsync(type, obj, status, ct).ConfigureAwait(false);
        if (step.Binding == BindingAction.Ensure && !foreign)
        {
            await applier.ApplyAsync(WorkspaceReconciler.RoleBindings, bindingOf(obj, status), cached, ["roleRef", "subjects"], ct).ConfigureAwait(false);
        }

        await events.SendAsync(obj, step.Notices, ct).ConfigureAwait(false);
        if (deleting)
        {
            await writer.RemoveFinalizerAsync(type, obj, ApiGroup.Finalizer, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (foreign) return ReconcileResult.Retry("RoleBinding name taken by another owner");
        // Expiry (and a BreakGlass's review deadline) is a recorded time: look again at it.
        return step.RecheckIn is { } r ? ReconcileResult.RequeueAfter(r) : ReconcileResult.Done;
    }

    /// <summary>Details a pass fills in from its own clock (a grant's times, a review's lateness): a pass repeated later differs in them.</summary>
    static readonly string[] PassTimes = ["grantedAt", "expiresAt", "reviewDeadline", "late"];

    /// <summary>
    /// Whether this change is on record already (the newest of the kind's transitions, with the same details but the pass's
    /// own times): the status write after its row was lost (a conflict the live read above did not foresee, a crash), and the
    /// pass repeated from the old status is not audited twice.
    /// </summary>
    async Task<bool> RecordedAsync(T obj, AuditEntry entry, CancellationToken ct)
    {
        if (transitions is null) return false;
        var details = (JsonObject)entry.Details.DeepClone();
        foreach (var key in PassTimes) details.Remove(key);
        return await database.LatestTransitionIsAsync(entry.Kind, entry.ObjectName, transitions, entry.Action, details, ct, obj.Metadata.CreationTimestamp)
            .ConfigureAwait(false);
    }

    /// <summary>The audit actions that end a grant: recorded once per grant (keyed on its recorded expiresAt).</summary>
    static bool IsGrantEnd(string action) => action.EndsWith(".expired", StringComparison.Ordinal) || action.EndsWith(".revoked", StringComparison.Ordinal)
        || action.EndsWith(".ended", StringComparison.Ordinal);

    /// <summary>Deletes the grant's binding; false when it was already gone.</summary>
    async Task<bool> DeleteBindingAsync(T obj, string name, string? uid, CancellationToken ct)
    {
        try
        {
            await api.DeleteAsync(WorkspaceReconciler.RoleBindings, obj.Metadata.NamespaceProperty, name, ct, uid).ConfigureAwait(false);
            logger.LogInformation("{Kind} {Namespace}/{Name}: RoleBinding deleted", obj.Kind, obj.Metadata.NamespaceProperty, obj.Metadata.Name);
            return true;
        }
        catch (KubeApiException e) when (e.IsNotFound)
        {
            return false;
        }
    }
}
