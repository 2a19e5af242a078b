using System.Collections.Concurrent;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>The caches the Workspace reconciler reads instead of the API server.</summary>
public sealed record WorkspaceCaches(
    Informer<Workspace> Workspaces,
    Informer<Tenant> Tenants,
    Informer<V1Namespace> Namespaces,
    Informer<V1RoleBinding> RoleBindings,
    Informer<V1ResourceQuota> Quotas,
    Informer<V1LimitRange> LimitRanges,
    Informer<V1NetworkPolicy> NetworkPolicies,
    Informer<V1ConfigMap> ConfigMaps,
    Informer<V1Secret> Secrets,
    Informer<PartialObjectMetadata> AllSecretsMetadata);

/// <summary>
/// Converges a Workspace: its namespace, member RBAC, quota and limits, default-deny network policy,
/// settings ConfigMap, a database with its credentials Secret on its region's server, and its
/// provider keys; records it in the system of record. Region and tenant are pinned; a suspended or
/// full tenant gets no new workspace. Every write happens only when the cached state differs.
/// </summary>
public sealed partial class WorkspaceReconciler(
    WorkspaceCaches caches,
    KubeApi api,
    SystemDatabase database,
    RegionDatabases regions,
    KeyVault? vault,
    ObjectWriter writer,
    ChildApplier applier,
    EventRecorder events,
    ControlPlaneOptions options,
    TimeProvider time,
    ILogger<WorkspaceReconciler> logger) : IReconciler<Workspace>
{
    public static readonly ResourceType Type = ResourceType.For<Workspace>(namespaced: false);
    public static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);
    public static readonly ResourceType Quotas = new("", "v1", "resourcequotas", "ResourceQuota", true);
    public static readonly ResourceType LimitRanges = new("", "v1", "limitranges", "LimitRange", true);
    public static readonly ResourceType NetworkPolicies = new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true);
    public static readonly ResourceType ConfigMaps = new("", "v1", "configmaps", "ConfigMap", true);
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "Secret", true);
    const string Actor = "controlplane-operator";

    // Provider-key Secrets already processed, by resourceVersion: an unchanged Secret is not read again.
    readonly ConcurrentDictionary<string, string> processedKeySecrets = new();

    readonly QuotaLedger quotaLedger = new(caches.Workspaces);

    // ---- watch mappings -------------------------------------------------------------------------

    public static IEnumerable<string> OwnerOf(k8s.IKubernetesObject<V1ObjectMeta> obj) =>
        obj.Metadata.Labels?.TryGetValue(ApiGroup.WorkspaceLabel, out var ws) == true ? [ws] : [];

    public IEnumerable<string> WorkspacesOfTenant(Tenant tenant) =>
        caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).Select(w => w.Metadata.Name);

    /// <summary>
    /// Siblings share the tenant's aggregate quota, so some changes of one re-decide others: a quota
    /// change or a deletion frees or takes room from everyone; an admission can only take room from
    /// those not yet admitted (and moves the admitted one ahead of them), and only when the tenant
    /// cannot fit everyone. A newcomer queues behind the admitted ones and changes nothing for them.
    /// </summary>
    public IEnumerable<string> SiblingsAffectedBy(InformerEvent<Workspace> e)
    {
        var tenant = caches.Tenants.Get(e.Object.Spec.Tenant);
        var q = tenant?.Spec.Quota;
        if (q is null || (q.Cpu is null && q.Memory is null && q.Storage is null && q.MaxWorkspaces is null)) return [];
        if (e.Type == InformerEventType.Added) return [];
        var siblings = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Spec.Tenant).Where(w => w.Metadata.Name != e.Object.Metadata.Name);
        var freedOrTaken = e.Type == InformerEventType.Deleted
            || !SameQuota(e.Old?.Spec.Quota, e.Object.Spec.Quota)
            || e.Old?.Metadata.DeletionTimestamp != e.Object.Metadata.DeletionTimestamp;
        if (freedOrTaken) return siblings.Select(w => w.Metadata.Name);
        if (e.Old?.Status?.AdmittedAt == e.Object.Status?.AdmittedAt) return [];
        // While the tenant has room for everyone's full ask, an admission changes no one's grant
        // (a converge of a tenant's workspaces would otherwise re-decide each newcomer per admission).
        var all = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, e.Object.Spec.Tenant);
        if (Quota.FitsEveryone(tenant!, all)) return [];
        // The admitted one moves ahead of those still waiting, so its own grant is decided again too.
        return siblings.Where(w => w.Status?.AdmittedAt is null).Select(w => w.Metadata.Name).Append(e.Object.Metadata.Name);
    }

    /// <summary>Whether two quota asks are the same; either may be absent (a workspace without spec.quota).</summary>
    public static bool SameQuota(WorkspaceQuota? a, WorkspaceQuota? b) =>
        ReferenceEquals(a, b) || (a is not null && b is not null && k8s.KubernetesJson.Serialize(a) == k8s.KubernetesJson.Serialize(b));

    public IEnumerable<string> WorkspaceReferencingSecret(PartialObjectMetadata secret)
    {
        var ws = caches.Workspaces.Get(secret.Metadata.NamespaceProperty ?? "");
        // Also its credentials Secret stripped of our labels and owner (CredentialsTampered): its deletion or repair is seen.
        return ws is not null && (ws.Spec.ProviderKeys?.Any(k => k.SecretRef.Name == secret.Metadata.Name) == true
                                  || (secret.Metadata.Name == WorkspaceResources.SecretName(ws) && secret.Metadata.OwnerReferences?.Any(o => o.Uid == ws.Metadata.Uid) != true))
            ? [ws.Metadata.Name] : [];
    }

    // ---- reconcile ------------------------------------------------------------------------------

    public Task<ReconcileResult> ReconcileAsync(Workspace ws, CancellationToken ct) => ReconcileErrors.RunAsync(ws, ReconcilePassAsync, ErrorReport, ct);

    ErrorReport<Workspace> ErrorReport => new(writer, Type, WorkspaceConditions.Ready, w => w.Status?.Conditions, (w, conditions) => new WorkspaceStatus
    {
        ObservedGeneration = w.Metadata.Generation,
        Phase = w.Metadata.DeletionTimestamp is not null ? WorkspacePhase.Terminating : w.Status?.Phase ?? WorkspacePhase.Creating,
        Namespace = w.Status?.Namespace,
        Database = w.Status?.Database,
        ProviderKeys = w.Status?.ProviderKeys,
        AdmittedAt = w.Status?.AdmittedAt,
        Environment = w.Status?.Environment,
        Conditions = conditions,
    }, events, time, logger);

    async Task<ReconcileResult> ReconcilePassAsync(Workspace ws, CancellationToken ct)
    {
        if (ws.Metadata.DeletionTimestamp is not null) return await FinalizeAsync(ws, ct).ConfigureAwait(false);

        // The name is the namespace's and the database's: one that is not a DNS label is refused
        // before anything is written (no finalizer, no row), so deleting it never depends on us.
        if (SpecRules.ObjectName(ws.Metadata.Name) is { } badName)
        {
            var refusedStatus = new WorkspaceStatus { ObservedGeneration = ws.Metadata.Generation };
            var refusedConditions = new ConditionSet(ws.Status?.Conditions, ws.Metadata.Generation, time.GetUtcNow().UtcDateTime);
            return await RefuseAsync(ws, null, refusedStatus, refusedConditions, new Refusal(WorkspaceReasons.InvalidName, badName, Security: false), ct).ConfigureAwait(false);
        }

        // The finalizer is written while the row is read and the namespace applied: neither depends on it,
        // and what it guards (the row, the database) is written only after it is in place. Without this the
        // finalizer's PATCH was one more round trip before anything else on every new workspace. The
        // namespace is controlled by the workspace (owner reference), so a deletion before the finalizer
        // lands still removes it; every status write below uses the object the finalizer write returned.
        var finalizing = writer.AddFinalizerAsync(Type, ws, ApiGroup.Finalizer, ct);
        try
        {
            var log = new Changes();

            var now = time.GetUtcNow().UtcDateTime;
            var conditions = new ConditionSet(ws.Status?.Conditions, ws.Metadata.Generation, now);
            var status = new WorkspaceStatus
            {
                ObservedGeneration = ws.Metadata.Generation,
                Namespace = ws.Status?.Namespace,
                Database = ws.Status?.Database,
                ProviderKeys = ws.Status?.ProviderKeys,
                AdmittedAt = ws.Status?.AdmittedAt,
                Environment = ws.Status?.Environment,
            };

            var (record, readError) = await ReadRecordAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
            if (readError is not null)
            {
                ws = await finalizing.ConfigureAwait(false);
                return await DatabaseDownAsync(ws, status, conditions, readError, ct).ConfigureAwait(false);
            }

            var tenant = caches.Tenants.Get(ws.Spec.Tenant);
            // One quota decision per pass: the gate (maxWorkspaces) and the ResourceQuota both use it.
            var grant = tenant is null ? null : quotaLedger.GrantFor(ws, tenant);
            var gate = Gate(ws, tenant, record, grant);
            if (gate is { } refused)
            {
                ws = await finalizing.ConfigureAwait(false);
                return await RefuseAsync(ws, tenant, status, conditions, refused, ct).ConfigureAwait(false);
            }

            ArgumentNullException.ThrowIfNull(grant); // the gate refuses a missing tenant
            var region = Placement.WorkspaceRegion(ws, tenant);
            // The environment every rule applies: a lowered spec is not followed unless the guard was lifted.
            var environment = WorkspaceEnvironments.ToRecord(ws.Spec.Environment, record?.DeletedAt is null ? record?.Environment ?? ws.Status?.Environment : ws.Status?.Environment, DeletionGuardLifted(ws));
            status.Environment = environment;

            // The namespace first: one that exists and was not created for this workspace is never adopted.
            try
            {
                await ApplyAsync(log, ws, ResourceType.Namespaces, WorkspaceResources.Namespace(ws, tenant!.Metadata.Name, region, environment),
                    caches.Namespaces.Get(ws.Metadata.Name), [], ct).ConfigureAwait(false);
            }
            catch (ForeignObjectException e) when (e.Kind == ResourceType.Namespaces.Kind)
            {
                ws = await finalizing.ConfigureAwait(false);
                return await RefuseAsync(ws, tenant, status, conditions,
                    new Refusal(WorkspaceReasons.NamespaceConflict, $"metadata.name: {e.Message}; choose another workspace name", Security: true, WorkspaceConditions.NamespaceReady), ct).ConfigureAwait(false);
            }

            ws = await finalizing.ConfigureAwait(false);
            return await ConvergeAsync(ws, log, conditions, status, record, tenant!, grant, region, environment, ct).ConfigureAwait(false);
        }
        finally
        {
            // Never left unobserved when the pass ends early (a failed read or namespace write).
            await ((Task)finalizing).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>The rest of a pass once the finalizer is in place and the namespace is applied: the row, the children, the database, the keys, the status.</summary>
    async Task<ReconcileResult> ConvergeAsync(Workspace ws, Changes log, ConditionSet conditions, WorkspaceStatus status, WorkspaceRecord? record, Tenant tenant,
        QuotaGrant grant, string region, string environment, CancellationToken ct)
    {
        status.AdmittedAt ??= WorkspaceResources.AdmissionTime(time.GetUtcNow());

        // The row records intent before anything is made outside Kubernetes (the workspace's database).
        // A new workspace without a database makes nothing there, so its row is written once, at the end
        // of the pass, in the state the pass reached: one audited write instead of "creating" then "ready".
        var recordAtEnd = ws.Spec.Database?.Enabled == false && (record is null || record.DeletedAt is not null);
        if (!recordAtEnd)
        {
            try
            {
                record = await SyncRecordAsync(ws, tenant!, region, environment, record, "creating", ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return await DatabaseDownAsync(ws, status, conditions, e, ct).ConfigureAwait(false);
            }
        }

        // Namespace and settings.
        await ApplyAsync(log, ws, ConfigMaps, WorkspaceResources.ConfigMap(ws, tenant, environment), caches.ConfigMaps.Get($"{ws.Metadata.Name}/{WorkspaceResources.ConfigMapName}"), ["data"], ct).ConfigureAwait(false);
        status.Namespace = ws.Metadata.Name;
        // A stable reason: a condition that differs between the creating pass and the next one is a wasted status write.
        conditions.Set(WorkspaceConditions.NamespaceReady, true, WorkspaceReasons.Ready, $"Namespace {ws.Metadata.Name} is labelled for tenant {tenant.Metadata.Name} in region {region}.");

        // Members.
        var bindingFailures = await ApplyBindingsAsync(log, ws, tenant, ct).ConfigureAwait(false);
        var accessOk = bindingFailures.Count == 0;
        if (accessOk)
        {
            conditions.Set(WorkspaceConditions.AccessReady, true, WorkspaceReasons.Bound,
                $"{ws.Spec.Members?.Count ?? 0} member(s) and {tenant.Spec.Owners?.Count ?? 0} tenant owner(s) bound.");
        }
        else
        {
            var message = string.Join("; ", bindingFailures.Select(f => f.Message));
            var previous = ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.AccessReady);
            var reason = bindingFailures.All(f => f.Refused) ? WorkspaceReasons.MemberRefused : WorkspaceReasons.BindingFailed;
            conditions.Set(WorkspaceConditions.AccessReady, false, reason, message);
            if (previous?.Message != message || previous.ObservedGeneration != ws.Metadata.Generation)
            {
                await events.WarningAsync(ws, reason, message, ct).ConfigureAwait(false);
            }
        }

        // Quota.
        await ApplyQuotaAsync(log, ws, grant, ct).ConfigureAwait(false);
        if (grant.Exceeded)
        {
            var message = string.Join("; ", grant.Invalid.Concat(grant.Shortfalls));
            var reason = grant.Invalid.Count > 0 ? WorkspaceReasons.InvalidQuantity : WorkspaceReasons.QuotaExceeded;
            conditions.Set(WorkspaceConditions.QuotaReady, false, reason, message);
            if (ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.QuotaReady)?.Message != message)
            {
                await events.WarningAsync(ws, reason, message, ct).ConfigureAwait(false);
            }
        }
        else
        {
            conditions.Set(WorkspaceConditions.QuotaReady, true, WorkspaceReasons.Granted,
                grant.Granted.Count == 0 ? "No quota requested." : string.Join(", ", grant.Granted.Select(g => $"{g.Key}={g.Value.CanonicalizeString()}")));
        }

        // Network baseline.
        var approvedEgress = tenant!.Spec.Network?.ApprovedEgressCIDRs ?? [];
        await ApplyAsync(log, ws, NetworkPolicies, WorkspaceResources.DefaultDeny(ws, approvedEgress), caches.NetworkPolicies.Get($"{ws.Metadata.Name}/{WorkspaceResources.NetworkPolicyName}"), ["spec"], ct)
            .ConfigureAwait(false);
        conditions.Set(WorkspaceConditions.NetworkReady, true, WorkspaceReasons.DefaultDeny, approvedEgress.Count == 0
            ? "Ingress and egress are denied by default; DNS to kube-system is allowed."
            : $"Ingress and egress are denied by default; DNS to kube-system and the tenant's approved egress ({string.Join(", ", approvedEgress)}) are allowed.");

        // Database.
        var databaseOutcome = await ReconcileDatabaseAsync(log, ws, region, status, conditions, ct).ConfigureAwait(false);
        var databaseOk = databaseOutcome == DatabaseOutcome.Ready;

        // Provider keys.
        var keysOk = await ReconcileProviderKeysAsync(ws, tenant, status, conditions, ct).ConfigureAwait(false);

        var allReady = databaseOk && keysOk && accessOk && !grant.Exceeded;
        if (recordAtEnd || (allReady && record!.ProvisioningState != "ready"))
        {
            try
            {
                await SyncRecordAsync(ws, tenant, region, environment, record, allReady ? "ready" : "creating", ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return await DatabaseDownAsync(ws, status, conditions, e, ct).ConfigureAwait(false);
            }
        }

        status.Phase = allReady ? WorkspacePhase.Ready : keysOk && accessOk ? WorkspacePhase.Creating : WorkspacePhase.Failed;
        var notReady = conditions.ToList().Where(c => c.Type != WorkspaceConditions.Ready && c.Status != ConditionStatus.True).Select(c => $"{c.Type}: {c.Message}").ToList();
        conditions.Set(WorkspaceConditions.Ready, allReady, allReady ? WorkspaceReasons.Ready : WorkspaceReasons.NotReady, allReady ? "Workspace is ready." : string.Join("; ", notReady));
        status.Conditions = conditions.ToList();
        var becameReady = allReady && ws.Status?.Phase != WorkspacePhase.Ready;
        await ReportChangesAsync(log, ws, becameReady, ct).ConfigureAwait(false);
        await writer.UpdateStatusAsync(Type, ws, status, ct).ConfigureAwait(false);
        // Unreachable is retried on a backoff; a refusal (conflict, retained, extension, provisioning error) waits for
        // the spec to change (or the periodic resync), instead of keeping the controller busy forever.
        if (databaseOutcome == DatabaseOutcome.Unavailable) return ReconcileResult.Retry("workspace database server unreachable");
        if (databaseOutcome == DatabaseOutcome.Refused) return ReconcileResult.Terminal("workspace database refused: see DatabaseReady");
        // A binding the API server refused as invalid waits for a spec change; any other failure is retried.
        return bindingFailures.All(f => f.Permanent) ? ReconcileResult.Done : ReconcileResult.Retry("member bindings not applied");
    }

    /// <summary>The workspace's row, or why Postgres could not be read (reported once the finalizer is in place).</summary>
    async Task<(WorkspaceRecord? Record, Exception? Error)> ReadRecordAsync(string name, CancellationToken ct)
    {
        try
        {
            return (await database.GetWorkspaceAsync(name, ct).ConfigureAwait(false), null);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return (null, e);
        }
    }

    static string CreatedBy(Workspace ws) =>
        ws.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var who) == true ? who : Actor;

    /// <summary>What one reconcile created or repaired, reported as one Event each at its end.</summary>
    sealed class Changes
    {
        public List<string> Created { get; } = [];
        public List<string> Repaired { get; } = [];
    }

    async Task<ApplyOutcome> ApplyAsync<T>(Changes log, Workspace ws, ResourceType type, T desired, T? cached, IReadOnlyList<string> owned, CancellationToken ct,
        IReadOnlyCollection<string>? removeAnnotations = null)
        where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        var outcome = await applier.ApplyAsync(type, desired, cached, owned, ct, removeAnnotations).ConfigureAwait(false);
        var what = $"{type.Kind} {desired.Metadata.Name}";
        if (outcome == ApplyOutcome.Updated) log.Repaired.Add(what + " (changed by hand, restored)");
        else if (outcome == ApplyOutcome.Created && ws.Status?.Phase == WorkspacePhase.Ready) log.Repaired.Add(what + " (missing, recreated)");
        else if (outcome == ApplyOutcome.Created) log.Created.Add(what);
        return outcome;
    }

    /// <summary>One Event for what this pass created (folded into the Ready Event when it also made the workspace ready), one for what it repaired.</summary>
    async Task ReportChangesAsync(Changes log, Workspace ws, bool becameReady, CancellationToken ct)
    {
        var created = log.Created.Count > 0 ? "created " + string.Join(", ", log.Created) : null;
        if (becameReady) await events.NormalAsync(ws, WorkspaceReasons.Ready, "Workspace is ready" + (created is null ? "" : "; " + created), ct).ConfigureAwait(false);
        else if (created is not null) await events.NormalAsync(ws, WorkspaceReasons.Created, "Created " + string.Join(", ", log.Created), ct).ConfigureAwait(false);
        if (log.Repaired.Count > 0) await events.NormalAsync(ws, WorkspaceReasons.DriftRepaired, "Restored " + string.Join(", ", log.Repaired), ct).ConfigureAwait(false);
    }

    /// <summary>A binding that could not be applied: who, and the API server's reason. Permanent when the server refused it as invalid.</summary>
    sealed record BindingFailure(string Message, bool Permanent, bool Refused = false);

    /// <summary>Whether <paramref name="holder"/> holds its namespace: the namespace (our label, cached) is controlled by its UID.</summary>
    bool HoldsNamespace(Workspace holder) =>
        caches.Namespaces.Get(holder.Metadata.Name)?.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == holder.Metadata.Uid) == true;

    /// <summary>
    /// A workspace added, deleted or changing hands (tenant, or its namespace now held) re-decides the
    /// workspaces with a ServiceAccount member in its namespace: a binding there is only the tenant's
    /// while that namespace is one of its workspaces.
    /// </summary>
    public IEnumerable<string> MembersInNamespaceOf(InformerEvent<Workspace> e)
    {
        var changedHands = e.Type != InformerEventType.Modified
            || e.Old?.Spec.Tenant != e.Object.Spec.Tenant
            || e.Old?.Status?.Namespace != e.Object.Status?.Namespace
            || (e.Old?.Metadata.DeletionTimestamp is null) != (e.Object.Metadata.DeletionTimestamp is null);
        if (!changedHands) return [];
        var ns = e.Object.Metadata.Name;
        // Only the workspaces with a ServiceAccount member (an index): a scan of every workspace per added
        // one was quadratic, 5,000 workspaces listed at a restart cost seconds of CPU before the cache synced.
        return caches.Workspaces.ByIndex(WorkspaceResources.ServiceAccountMemberIndex, "yes")
            .Where(w => w.Metadata.Name != ns && (w.Spec.Members ?? []).Any(m => KubernetesIdentities.NamespaceOf(m) == ns))
            .Select(w => w.Metadata.Name).ToList();
    }

    /// <summary>
    /// Removals first, then each binding on its own: a member that cannot be bound (an invalid name
    /// stored while the webhook was absent) never stops the others, and never keeps a removed
    /// member's access. Failures are returned for AccessReady, not thrown.
    /// </summary>
    async Task<List<BindingFailure>> ApplyBindingsAsync(Changes log, Workspace ws, Tenant tenant, CancellationToken ct)
    {
        // A ServiceAccount member outside the tenant's workspaces is never bound (and its binding goes).
        var refused = WorkspaceMembers.Refused(ws, caches.Workspaces.Get, HoldsNamespace);
        var failures = refused.Select(r => new BindingFailure(r.Message, Permanent: !r.Pending, Refused: true)).ToList();
        var desired = WorkspaceResources.RoleBindings(ws, tenant, refused);
        var wanted = desired.Select(b => b.Metadata.Name).ToHashSet();
        foreach (var stale in caches.RoleBindings.InNamespace(ws.Metadata.Name)
                     .Where(b => OwnerOf(b).Contains(ws.Metadata.Name) && !wanted.Contains(b.Metadata.Name)).ToList())
        {
            try
            {
                await api.DeleteAsync(RoleBindings, ws.Metadata.Name, stale.Metadata.Name, ct).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (!e.IsConflict)
            {
                failures.Add(new BindingFailure($"RoleBinding {stale.Metadata.Name} of a removed member could not be deleted: {e.StatusMessage}", Permanent: false));
                continue;
            }

            await events.NormalAsync(ws, WorkspaceReasons.MemberRemoved, $"RoleBinding {stale.Metadata.Name} removed: its member is no longer in the spec", ct).ConfigureAwait(false);
        }

        foreach (var binding in desired)
        {
            try
            {
                await ApplyAsync(log, ws, RoleBindings, binding, caches.RoleBindings.Get($"{ws.Metadata.Name}/{binding.Metadata.Name}"), ["roleRef", "subjects"], ct).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (!e.IsConflict)
            {
                var subject = binding.Subjects.Single();
                var who = $"{subject.Kind} {(string.IsNullOrEmpty(subject.NamespaceProperty) ? "" : subject.NamespaceProperty + "/")}{subject.Name}";
                failures.Add(new BindingFailure($"{who} ({binding.RoleRef.Name}) could not be bound: {e.StatusMessage}",
                    Permanent: e.StatusCode is System.Net.HttpStatusCode.UnprocessableEntity or System.Net.HttpStatusCode.BadRequest));
            }
        }

        return failures;
    }

    async Task ApplyQuotaAsync(Changes log, Workspace ws, QuotaGrant grant, CancellationToken ct)
    {
        var key = $"{ws.Metadata.Name}/{WorkspaceResources.QuotaName}";
        if (WorkspaceResources.ResourceQuota(ws, grant) is { } quota)
        {
            await ApplyAsync(log, ws, Quotas, quota, caches.Quotas.Get(key), ["spec"], ct).ConfigureAwait(false);
        }
        else if (caches.Quotas.Get(key) is not null)
        {
            await api.DeleteAsync(Quotas, ws.Metadata.Name, WorkspaceResources.QuotaName, ct).ConfigureAwait(false);
        }

        await ApplyAsync(log, ws, LimitRanges, WorkspaceResources.LimitRange(ws), caches.LimitRanges.Get($"{ws.Metadata.Name}/{WorkspaceResources.LimitRangeName}"), ["spec"], ct).ConfigureAwait(false);
    }

}
