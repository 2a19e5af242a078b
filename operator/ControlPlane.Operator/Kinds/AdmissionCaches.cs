using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// What admission decisions read: caches kept by informers in every replica (not only the leader),
/// so the decision path never calls Postgres. It reads the API server only where a cache could
/// mislead: a miss (an object applied together with what it names), and an Approval's target, which
/// is always read live. Shared by every kind's admission (<see cref="IAdmissionHandler"/>); the
/// webhook server sees only its informers.
/// </summary>
public sealed class AdmissionCaches
{
    readonly KubeApi api;
    readonly OperatorMetrics metrics;
    readonly ILoggerFactory loggers;
    readonly InformerOptions options = new() { Strings = new StringPool(internOwn: IInternStrings.Of) };

    public AdmissionCaches(KubeApi api, OperatorMetrics metrics, ILoggerFactory loggers)
    {
        this.api = api;
        this.metrics = metrics;
        this.loggers = loggers;
        Access = new AccessReviewer(api);
        Tenants = Inform<Tenant>(false);
        Workspaces = Inform<Workspace>(false).AddIndex(WorkspaceResources.TenantIndex, w => w.Spec.Tenant);
        // Metadata only: admission asks whether a namespace exists and who controls it, never more.
        Namespaces = new Informer<PartialObjectMetadata>(api, ResourceType.Namespaces, metrics, loggers.CreateLogger("admission-informer.namespaces"),
            options with { MetadataOnly = true, IndexByNamespace = false });
        All.Add(Namespaces);
        // Every kind an Approval can name, typed, by the name it names it with (read live: no informer).
        foreach (var kind in ApprovableKinds.All) targets[kind.Kind] = kind.Accept(new TargetReaders(api));
        Exposures = Inform<Exposure>(true);
        // A second break-glass while one is active in the workspace is refused at once.
        BreakGlasses = Inform<BreakGlass>(true);
        // The same RoleBindings the approval reconciler reads (the operator's own), so both judge approvers alike.
        RoleBindings = Inform<V1RoleBinding>(true, WorkspaceReconciler.RoleBindings, options with { LabelSelector = WorkspaceResources.ManagedSelector });
    }

    /// <summary>SubjectAccessReviews: what a requester may do in a namespace, as the API server answers it.</summary>
    public AccessReviewer Access { get; }

    public List<IInformer> All { get; } = [];
    public Informer<Tenant> Tenants { get; }
    public Informer<Workspace> Workspaces { get; }
    public Informer<PartialObjectMetadata> Namespaces { get; }
    public Informer<Exposure> Exposures { get; }
    public Informer<BreakGlass> BreakGlasses { get; }
    public Informer<V1RoleBinding> RoleBindings { get; }

    public bool Synced => All.All(i => i.HasSynced);

    /// <summary>
    /// A tenant by name: the cache, or on a miss one live read, since an object applied together with
    /// its tenant (one kubectl apply, one Argo CD sync) can reach us before the tenant's watch event.
    /// </summary>
    public async Task<Tenant?> TenantAsync(string name, CancellationToken ct) =>
        Tenants.Get(name) ?? await api.TryGetAsync<Tenant>(Tenants.Type, null, name, ct).ConfigureAwait(false);

    /// <summary>A workspace by name: the cache, or on a miss one live read (see <see cref="TenantAsync"/>).</summary>
    public async Task<Workspace?> WorkspaceAsync(string name, CancellationToken ct) =>
        Workspaces.Get(name) ?? await api.TryGetAsync<Workspace>(Workspaces.Type, null, name, ct).ConfigureAwait(false);

    /// <summary>
    /// A tenant's workspaces: the cache, or live (every page) when <paramref name="live"/>, for a refusal
    /// that a workspace applied together with the object (not yet in the cache) might lift.
    /// </summary>
    public async Task<IReadOnlyList<Workspace>> WorkspacesOfTenantAsync(string tenant, bool live, CancellationToken ct)
    {
        if (!live) return Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant).ToList();
        var all = new List<Workspace>();
        string? next = null;
        do
        {
            var page = await api.ListAsync<Workspace>(Workspaces.Type, null, null, 500, next, ct).ConfigureAwait(false);
            all.AddRange(page.Items.Where(w => w.Spec.Tenant == tenant));
            next = page.Continue;
        }
        while (!string.IsNullOrEmpty(next));
        return all;
    }

    /// <summary>A Service by one live read (no cache: only an Exposure's admission asks, to refuse a backend that exists and may never be one).</summary>
    public Task<V1Service?> ServiceAsync(string ns, string name, CancellationToken ct) => api.TryGetAsync<V1Service>(ExposureResources.Services, ns, name, ct);

    /// <summary>
    /// An approvable object as the API server has it now. An Approval is judged on this, never on the cache:
    /// an edit made a moment before (which makes its editor an author of the new generation) can reach the
    /// cache after the Approval does, and the stale copy would let the editor approve their own change.
    /// </summary>
    public async Task<IKubernetesObject<V1ObjectMeta>?> LiveTargetAsync(string ns, string kind, string name, CancellationToken ct) =>
        targets.TryGetValue(kind, out var read) ? await read(ns, name, ct).ConfigureAwait(false) : null;

    /// <summary>
    /// <see cref="ApprovalPolicy.IsApprover"/> over the RoleBinding cache; a "no" is checked once
    /// against a live list, since a member added a moment ago can reach us before the binding's watch event.
    /// </summary>
    public async Task<bool> IsApproverAsync(string ns, string user, IReadOnlyCollection<string> groups, CancellationToken ct)
    {
        if (ApprovalPolicy.IsApprover(user, groups, RoleBindings.InNamespace(ns))) return true;
        var live = await api.ListAsync<V1RoleBinding>(RoleBindings.Type, ns, WorkspaceResources.ManagedSelector, 500, null, ct).ConfigureAwait(false);
        return ApprovalPolicy.IsApprover(user, groups, live.Items);
    }

    /// <summary><see cref="ApprovalPolicy.HoldsRole"/> as <see cref="IsApproverAsync"/> asks it: the cache, and a "no" checked once live.</summary>
    public async Task<bool> HoldsRoleAsync(string ns, string user, IReadOnlyCollection<string> groups, IReadOnlyList<string> roles, CancellationToken ct)
    {
        if (ApprovalPolicy.HoldsRole(user, groups, RoleBindings.InNamespace(ns), roles)) return true;
        var live = await api.ListAsync<V1RoleBinding>(RoleBindings.Type, ns, WorkspaceResources.ManagedSelector, 500, null, ct).ConfigureAwait(false);
        return ApprovalPolicy.HoldsRole(user, groups, live.Items, roles);
    }

    /// <summary><see cref="ExceptionApprovals.IsSecurityReviewer"/> as <see cref="IsApproverAsync"/> asks it: the cache, and a "no" checked once live.</summary>
    public async Task<bool> IsSecurityReviewerAsync(string ns, string user, IReadOnlyCollection<string> groups, CancellationToken ct)
    {
        if (ExceptionApprovals.IsSecurityReviewer(user, groups, RoleBindings.InNamespace(ns))) return true;
        var live = await api.ListAsync<V1RoleBinding>(RoleBindings.Type, ns, WorkspaceResources.ManagedSelector, 500, null, ct).ConfigureAwait(false);
        return ExceptionApprovals.IsSecurityReviewer(user, groups, live.Items);
    }

    /// <summary>
    /// The DeploymentIntents of a namespace as the API server has them now (an Exception's approval is refused to
    /// their authors; an intent created a moment before must count). Only an Approval of an Exception asks.
    /// </summary>
    public async Task<IReadOnlyList<DeploymentIntent>> IntentsAsync(string ns, CancellationToken ct)
    {
        var all = new List<DeploymentIntent>();
        string? next = null;
        do
        {
            var page = await api.ListAsync<DeploymentIntent>(ResourceType.For<DeploymentIntent>(true), ns, null, 500, next, ct).ConfigureAwait(false);
            all.AddRange(page.Items);
            next = page.Continue;
        }
        while (!string.IsNullOrEmpty(next));
        return all;
    }

    /// <summary>
    /// Whether the requester may update Tenants cluster-wide (a SubjectAccessReview): a platform
    /// administrator, for whom Workspace writes are not narrowed to one tenant. Tenant owners cannot.
    /// </summary>
    public async Task<bool> IsPlatformAdminAsync(AdmissionUserInfo user, CancellationToken ct)
    {
        var review = new JsonObject
        {
            ["apiVersion"] = "authorization.k8s.io/v1",
            ["kind"] = "SubjectAccessReview",
            ["spec"] = new JsonObject
            {
                ["user"] = user.Username,
                ["uid"] = user.Uid,
                ["groups"] = new JsonArray((user.Groups ?? []).Select(g => (JsonNode)JsonValue.Create(g)).ToArray()),
                ["extra"] = user.Extra is null ? null : JsonNode.Parse(KubernetesJson.Serialize(user.Extra)),
                ["resourceAttributes"] = new JsonObject { ["group"] = ApiGroup.Group, ["resource"] = "tenants", ["verb"] = "update" },
            },
        };
        var answer = await api.SendAsync(HttpMethod.Post, "/apis/authorization.k8s.io/v1/subjectaccessreviews", review.ToJsonString(), "application/json", ct).ConfigureAwait(false);
        return JsonNode.Parse(answer)?["status"]?["allowed"]?.GetValue<bool>() == true;
    }

    readonly Dictionary<string, TargetReader> targets = new(StringComparer.Ordinal);

    /// <summary>Reads an approvable kind's object (namespace, name) from the API server.</summary>
    delegate Task<IKubernetesObject<V1ObjectMeta>?> TargetReader(string ns, string name, CancellationToken ct);

    /// <summary>Makes an approvable kind's typed live reader.</summary>
    sealed class TargetReaders(KubeApi api) : IApprovableKindVisitor<TargetReader>
    {
        public TargetReader Visit<T>(IApprovableKind kind) where T : class, IKubernetesObject<V1ObjectMeta>
        {
            var type = ResourceType.For<T>(namespaced: true);
            return async (ns, name, ct) => await api.TryGetAsync<T>(type, ns, name, ct).ConfigureAwait(false);
        }
    }

    Informer<T> Inform<T>(bool namespaced, ResourceType? explicitType = null, InformerOptions? o = null) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var type = explicitType ?? ResourceType.For<T>(namespaced);
        // One informer a resource, whoever asks for it.
        if (All.OfType<Informer<T>>().FirstOrDefault(i => i.Type == type) is { } made) return made;
        var informer = new Informer<T>(api, type, metrics, loggers.CreateLogger("admission-informer." + type.Plural), o ?? options);
        All.Add(informer);
        return informer;
    }

    /// <summary>The tenant of the workspace whose namespace this is, from the caches; null when it is not a workspace's.</summary>
    public Tenant? TenantOfNamespace(string? ns) =>
        ns is null ? null : Workspaces.Get(ns) is { } ws ? Tenants.Get(ws.Spec.Tenant) : null;

    /// <summary>The workspace whose namespace this is, from the cache.</summary>
    public Workspace? WorkspaceOfNamespace(string? ns) => ns is null ? null : Workspaces.Get(ns);

    /// <summary>True when <paramref name="name"/> is a workspace of <paramref name="tenant"/>; another tenant's and a missing one look alike.</summary>
    public bool InTenant(string name, string tenant) => Workspaces.Get(name)?.Spec.Tenant == tenant;

    /// <summary>The workspace's own database, as the operator recorded it in the workspace's status.</summary>
    public string? OwnDatabase(string? ns) => WorkspaceOfNamespace(ns)?.Status?.Database?.Name;
}
