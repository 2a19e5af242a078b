using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;

namespace ControlPlane.Operator.Admission;

/// <summary>What admission knows of the operator's configuration and identity.</summary>
public sealed record AdmissionSettings(ControlPlaneOptions Options, IReadOnlySet<string> OperatorUsernames)
{
    /// <summary>Requesters that may write what a governed kind owns: the operator itself, the cluster's own controllers, and cluster admins.</summary>
    public bool MayWriteGoverned(AdmissionUserInfo user) =>
        OperatorUsernames.Contains(user.Username)
        || user.Groups?.Contains("system:masters") == true
        || user.Username == "system:kube-controller-manager"
        || user.Username.StartsWith("system:serviceaccount:kube-system:", StringComparison.Ordinal);
}

/// <summary>
/// Tenant isolation at admission: no workspace over a namespace it did not create or a reserved
/// one, no unconfigured region, no raw Ingress/NetworkPolicy/quota edits in workspace namespaces,
/// and no reference that leaves the tenant (or, for databases, the workspace).
/// </summary>
public sealed partial class AdmissionHandler
{
    List<string> TenantRegion(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var region = r.Object["spec"]?["region"]?.GetValue<string>() ?? "";
        return Placement.UnservedTenantRegion(settings.Options, region) is { } problem ? [problem] : [];
    }

    /// <summary>A new tenant's prefix holds no other tenant's workspace (<see cref="WorkspaceNames.PrefixTakenBy"/>).</summary>
    List<string> TenantPrefix(AdmissionRequest r) =>
        r.Operation == "CREATE" && WorkspaceNames.PrefixTakenBy(r.Name ?? r.Object?["metadata"]?["name"]?.GetValue<string>() ?? "", settings.Options,
            caches.Workspaces.List().Select(w => (w.Metadata.Name, w.Spec.Tenant))) is { } taken ? [taken] : [];

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

    /// <summary>
    /// In a workspace namespace only the operator writes Ingresses, NetworkPolicies, ResourceQuotas and
    /// LimitRanges: publication goes through Exposure, network rules through WorkspaceNetworkPolicy, so a
    /// RoleBinding added by hand cannot reopen them. The webhook is only called for workspace namespaces.
    /// </summary>
    List<string> GovernedKind(AdmissionRequest r)
    {
        if (settings.MayWriteGoverned(r.UserInfo)) return [];
        var how = r.Kind.Kind switch
        {
            "Ingress" => "publish through an Exposure",
            "NetworkPolicy" => "declare a WorkspaceNetworkPolicy",
            _ => "ask for it in the Workspace's spec.quota",
        };
        return [$"{r.Kind.Kind} objects in workspace namespace {r.Namespace} are managed by the operator only ({r.UserInfo.Username} may not {r.Operation.ToLowerInvariant()} them): {how}"];
    }

    Workspace? WorkspaceOfNamespace(string? ns) => ns is null ? null : caches.Workspaces.Get(ns);

    /// <summary>True when <paramref name="name"/> is a workspace of <paramref name="tenant"/>; another tenant's and a missing one look alike.</summary>
    bool InTenant(string name, string tenant) => caches.Workspaces.Get(name)?.Spec.Tenant == tenant;

    List<string> RingsInTenant(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var own = WorkspaceOfNamespace(r.Namespace);
        if (own is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var rollout = As<Rollout>(r.Object);
        var problems = new List<string>();
        for (var i = 0; i < rollout.Spec.Rings.Count; i++)
        {
            var ring = rollout.Spec.Rings[i];
            for (var j = 0; j < (ring.Workspaces?.Count ?? 0); j++)
            {
                if (!InTenant(ring.Workspaces![j], own.Spec.Tenant))
                {
                    problems.Add($"spec.rings[{i}].workspaces[{j}]: \"{ring.Workspaces[j]}\" is not a workspace of tenant {own.Spec.Tenant}");
                }
            }

            // Selectors are evaluated over the tenant's own workspaces only; one naming another tenant is a mistake or an attempt.
            if (ring.Selector?.MatchLabels?.TryGetValue(WorkspaceResources.TenantLabel, out var t) == true && t != own.Spec.Tenant)
            {
                problems.Add($"spec.rings[{i}].selector.matchLabels.{WorkspaceResources.TenantLabel}: \"{t}\" is not this rollout's tenant {own.Spec.Tenant}");
            }

            foreach (var e in ring.Selector?.MatchExpressions ?? [])
            {
                if (e.Key == WorkspaceResources.TenantLabel && e.Operator == "In" && (e.Values ?? []).Any(v => v != own.Spec.Tenant))
                {
                    problems.Add($"spec.rings[{i}].selector.matchExpressions: {WorkspaceResources.TenantLabel} may only name tenant {own.Spec.Tenant}");
                }
            }
        }

        return problems;
    }

    /// <summary>The workspace's own database, as the operator recorded it in the workspace's status.</summary>
    string? OwnDatabase(string? ns) => WorkspaceOfNamespace(ns)?.Status?.Database?.Name;

    List<string> BackupDatabaseOfWorkspace(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        if (WorkspaceOfNamespace(r.Namespace) is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var database = As<BackupPlan>(r.Object).Spec.Database;
        if (database is null) return [];
        var own = OwnDatabase(r.Namespace);
        return database == own ? [] : [$"spec.database: \"{database}\" is not this workspace's database ({own ?? "none provisioned yet"}); leave it empty to back up the workspace's own"];
    }

    List<string> InWorkspace(AdmissionRequest r) =>
        r.Operation is "CREATE" or "UPDATE" && WorkspaceOfNamespace(r.Namespace) is null ? [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"] : [];

    List<string> RestoreDatabaseOfWorkspace(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        if (WorkspaceOfNamespace(r.Namespace) is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var into = As<Restore>(r.Object).Spec.Into.Database;
        if (into is null) return [];
        var own = OwnDatabase(r.Namespace);
        if (own is not null && into.StartsWith(own + "_", StringComparison.Ordinal) && into.Length <= 63)
        {
            // Inside the prefix, but the name of another workspace's database (issue 22: a restore squatting it).
            return RestoreResources.WorkspaceNameRefusal(into, caches.Workspaces.List()) is { } taken ? [taken.Message] : [];
        }

        return [$"spec.into.database: \"{into}\" must be inside this workspace's database prefix \"{own ?? "(none provisioned yet)"}_\" (at most 63 characters)"];
    }
}
