using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Workspaces: who may write them (self-service), a namespace that is neither reserved nor existing,
/// members and extensions the tenant may use, scope labels inside the tenant's, the tenant's region and
/// quota, an environment that is never lowered quietly, and no deletion of prod without the guard lifted.
/// The mutating pass fills in region and dataMode from the tenant.
/// </summary>
public sealed partial class WorkspaceAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    public async Task MutateAsync(AdmissionRequest r, AdmissionPatch patch, CancellationToken ct)
    {
        if (r.Operation != "CREATE") return;
        var spec = r.Object!["spec"] as JsonObject;
        var tenant = spec?["tenant"]?.GetValue<string>() is { } t ? await caches.TenantAsync(t, ct).ConfigureAwait(false) : null;
        if (spec is null || tenant is null) return;
        if (!spec.ContainsKey("region")) patch.Operations.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/region", ["value"] = tenant.Spec.Region });
        if (!spec.ContainsKey("dataMode")) patch.Operations.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/dataMode", ["value"] = tenant.Spec.DataMode });
    }

    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
    [
        .. await SelfServiceAsync(r, ct).ConfigureAwait(false), .. WorkspaceNamespace(r), .. await ServiceAccountMembersAsync(r, ct).ConfigureAwait(false),
        .. WorkspaceExtensions(r), .. WorkspaceScopeLabels(r), .. await ValidateWorkspaceAsync(r, ct).ConfigureAwait(false),
    ];

    async Task<List<string>> ValidateWorkspaceAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation == "DELETE")
        {
            // The recorded environment too: a spec lowered past the webhook (while it was down) still guards.
            var env = WorkspaceEnvironments.Strictest(r.OldObject?["spec"]?["environment"]?.GetValue<string>(), r.OldObject?["status"]?["environment"]?.GetValue<string>());
            return env == WorkspaceEnvironments.Prod && !DeletionAllowedByAnnotation(r.OldObject)
                ? [$"workspace {r.Name} has spec.environment: prod and cannot be deleted without the annotation {ApiGroup.AllowDeleteAnnotation}: \"true\""]
                : [];
        }

        if (r.Operation == "UPDATE")
        {
            var problems = Immutable(r.OldObject, r.Object, "tenant");
            problems.AddRange(EnvironmentLowered(r));
            // region: immutable once set (the mutating webhook sets it from the tenant at creation).
            if (r.OldObject?["spec"]?["region"] is not null) problems.AddRange(Immutable(r.OldObject, r.Object, "region"));
            problems.AddRange(WorkspaceRules(r));
            return problems;
        }

        if (r.Operation != "CREATE" || r.Object is null) return [];
        var rules = WorkspaceRules(r);
        var ws = As<Workspace>(r.Object);
        var tenant = await caches.TenantAsync(ws.Spec.Tenant, ct).ConfigureAwait(false);
        if (tenant is null) return [.. rules, $"spec.tenant: tenant \"{ws.Spec.Tenant}\" does not exist"];
        var result = rules;
        if (tenant.Metadata.DeletionTimestamp is not null) result.Add($"spec.tenant: tenant {tenant.Metadata.Name} is being deleted and gets no new workspace");
        var region = Placement.WorkspaceRegion(ws, tenant);
        if (!Placement.IsTenantRegion(region, tenant)) result.Add($"spec.region: \"{region}\" must equal tenant {tenant.Metadata.Name}'s region \"{tenant.Spec.Region}\"");
        if (tenant.Spec.Suspended) result.Add($"spec.tenant: tenant {tenant.Metadata.Name} is suspended and gets no new workspace");
        var siblings = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).ToList();
        var grant = Quota.AllocateQuota(ws, tenant, siblings);
        // A count, not the grant order: a newcomer created in the same second as a workspace not yet
        // admitted would otherwise pass by sorting first by name.
        var others = siblings.Count(w => w.Metadata.Name != ws.Metadata.Name);
        if (grant.OverWorkspaceLimit || others >= tenant.Spec.Quota?.MaxWorkspaces) result.Add($"spec.tenant: tenant {tenant.Metadata.Name} allows {tenant.Spec.Quota!.MaxWorkspaces} workspace(s) (spec.quota.maxWorkspaces) and has them all");
        result.AddRange(grant.Shortfalls.Select(s => s + " (does not fit what remains of the tenant's quota)"));
        return result;
    }

    /// <summary>
    /// Names, members, quantities and provider keys (<see cref="SpecRules"/>). On update only when
    /// the spec changed, so metadata-only writes (finalizers, annotations) always pass, even for an
    /// object stored before these rules; the name only on create (it cannot change).
    /// </summary>
    static List<string> WorkspaceRules(AdmissionRequest r)
    {
        if (r.Object is null || (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"]))) return [];
        var ws = As<Workspace>(r.Object);
        if (string.IsNullOrEmpty(ws.Metadata.Name)) ws.Metadata.Name = r.Name;
        var problems = SpecRules.Workspace(ws, RawQuota(r.Object));
        if (r.Operation != "CREATE" || string.IsNullOrEmpty(ws.Metadata.Name)) problems.RemoveAll(p => p.StartsWith("metadata.name:", StringComparison.Ordinal));
        return problems;
    }

    /// <summary>A workspace's name is its namespace's: never a reserved one, never one that already exists.</summary>
    List<string> WorkspaceNamespace(AdmissionRequest r)
    {
        if (r.Operation != "CREATE") return [];
        var name = r.Name ?? r.Object?["metadata"]?["name"]?.GetValue<string>() ?? "";
        var tenant = r.Object?["spec"]?["tenant"] is JsonValue t && t.TryGetValue<string>(out var named) ? named : "";
        if (WorkspaceNames.Problem(name, tenant, settings.Options, isNew: true, caches.Tenants.List().Select(t => t.Metadata.Name)) is { } problem) return [problem];
        // A new Workspace cannot own an existing namespace: that one was made by someone else, or for an earlier workspace still being deleted.
        return caches.Namespaces.Get(name) is { } ns
            ? [$"metadata.name: namespace \"{name}\" already exists{(ns.Metadata.DeletionTimestamp is null ? "" : " (still terminating)")} and was not created for this workspace; it is never adopted"]
            : [];
    }

    /// <summary>
    /// A ServiceAccount member must live in a workspace of the same tenant (<see cref="WorkspaceMembers"/>).
    /// Judged for the members this write adds: removing one always passes, and a member stored before the
    /// rule does not block other edits (the reconciler leaves it unbound and says so).
    /// </summary>
    async Task<List<string>> ServiceAccountMembersAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var ws = As<Workspace>(r.Object);
        if (string.IsNullOrEmpty(ws.Metadata.Name)) ws.Metadata.Name = r.Name ?? "";
        var before = r.OldObject is null ? [] : As<Workspace>(r.OldObject).Spec.Members ?? [];
        var members = ws.Spec.Members ?? [];
        var problems = new List<string>();
        for (var i = 0; i < members.Count; i++)
        {
            var m = members[i];
            if (KubernetesIdentities.NamespaceOf(m) is not { } ns || before.Any(b => b.Kind == m.Kind && b.Name == m.Name && b.Role == m.Role)) continue;
            var holder = ns == ws.Metadata.Name ? ws : await caches.WorkspaceAsync(ns, ct).ConfigureAwait(false);
            if (WorkspaceMembers.ForeignServiceAccount(i, m, ws, _ => holder) is { } problem) problems.Add(problem);
        }

        return problems;
    }

    /// <summary>Extensions go on a server shared by the region's tenants: only those its allowlist names.</summary>
    List<string> WorkspaceExtensions(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var ws = As<Workspace>(r.Object);
        if (ws.Spec.Database is not { Enabled: true } database) return [];
        var region = Placement.WorkspaceRegion(ws, caches.Tenants.Get(ws.Spec.Tenant));
        return Placement.Region(settings.Options, region).DisallowedExtensions(database.Extensions)
            .Select(x => $"spec.database.extensions[{x.Index}]: \"{x.Name}\" is not in region {region}'s allowlist (ControlPlane:Regions:{region}:AllowedExtensions)")
            .ToList();
    }

    /// <summary>A workspace's scope labels (acquisition boundary, business unit, site class) stay inside its tenant's scopes.</summary>
    List<string> WorkspaceScopeLabels(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var ws = As<Workspace>(r.Object);
        var tenant = caches.Tenants.Get(ws.Spec.Tenant);
        return tenant is null ? [] : DeploymentIntentResources.WorkspaceScopeProblems(ws.Metadata.Labels, tenant);
    }

    /// <summary>
    /// A workspace's environment is a classification its requesters must not control: raising it is
    /// always allowed, lowering it (prod to test or dev, test to dev) only once a platform administrator
    /// has lifted the workspace's deletion guard (the annotation owners cannot set), the same approved
    /// path that deleting a prod workspace takes. Otherwise prod-to-dev-then-delete, or fewer approvals,
    /// would be one patch away.
    /// </summary>
    static List<string> EnvironmentLowered(AdmissionRequest r)
    {
        if (r.Operation != "UPDATE" || r.Object is null || r.OldObject is null) return [];
        var before = r.OldObject["spec"]?["environment"]?.GetValue<string>();
        var after = r.Object["spec"]?["environment"]?.GetValue<string>();
        if (!WorkspaceEnvironments.Lowers(before, after) || DeletionAllowedByAnnotation(r.Object)) return [];
        return [$"spec.environment: may not be lowered from {WorkspaceEnvironments.Strictest(before)} to {WorkspaceEnvironments.Strictest(after)} " +
                $"(raising is allowed); a platform administrator lowers it only after lifting the deletion guard ({ApiGroup.AllowDeleteAnnotation}: \"true\")"];
    }
}
