using System.Collections.Concurrent;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The tenant-wide quota decision, memoised per tenant. Every workspace's grant depends on all its
/// siblings, so deciding it afresh on each reconcile costs O(n log n) per workspace and O(n² log n)
/// per resync of a tenant; the ledger decides a tenant once and reuses that until the tenant or one
/// of its workspaces changes (the informer's bucket stamp says when). While the tenant has room for
/// every full ask (the usual case, and every step of a converge that fits), the decision is only
/// that, an O(n) sum with no ordering and no quantity arithmetic per workspace.
/// </summary>
public sealed class QuotaLedger(Informer<Workspace> workspaces)
{
    // Grants is null when everyone fits: each grant is then the workspace's full ask.
    sealed record Entry(string? TenantVersion, long WorkspacesVersion, IReadOnlyDictionary<string, QuotaGrant>? Grants);

    // One entry per tenant seen; a tenant cannot go while it has workspaces, so what stays is small.
    readonly ConcurrentDictionary<string, Entry> byTenant = new();
    long decisions;

    /// <summary>How many times a tenant's grants were decided afresh.</summary>
    public long Decisions => Interlocked.Read(ref decisions);

    public QuotaGrant GrantFor(Workspace ws, Tenant tenant)
    {
        var name = tenant.Metadata.Name;
        var cached = workspaces.Get(ws.Metadata.Name);
        if (cached is null || cached.Metadata.ResourceVersion != ws.Metadata.ResourceVersion)
        {
            // The caller holds a copy the cache does not (yet) have (say, the one its finalizer patch
            // returned): decide on that copy.
            var withCopy = workspaces.ByIndex(WorkspaceResources.TenantIndex, name).Where(w => w.Metadata.Name != ws.Metadata.Name).Append(ws).ToList();
            return Quota.FitsEveryone(tenant, withCopy)
                ? Quota.FullGrant(ws, tenant)
                : Quota.AllocateQuota(ws, tenant, withCopy);
        }

        // The stamp is read before the list, so a change in between leaves a stale stamp, never a stale hit.
        var stamp = workspaces.IndexVersion(WorkspaceResources.TenantIndex, name);
        if (byTenant.TryGetValue(name, out var entry) && entry.TenantVersion == tenant.Metadata.ResourceVersion && entry.WorkspacesVersion == stamp)
        {
            if (entry.Grants is null) return Quota.FullGrant(ws, tenant);
            if (entry.Grants.TryGetValue(ws.Metadata.Name, out var hit)) return hit;
        }

        Interlocked.Increment(ref decisions);
        var siblings = workspaces.ByIndex(WorkspaceResources.TenantIndex, name);
        if (Quota.FitsEveryone(tenant, siblings))
        {
            byTenant[name] = new Entry(tenant.Metadata.ResourceVersion, stamp, null);
            return Quota.FullGrant(ws, tenant);
        }

        var grants = Quota.AllocateAll(tenant, siblings);
        byTenant[name] = new Entry(tenant.Metadata.ResourceVersion, stamp, grants);
        return grants.TryGetValue(ws.Metadata.Name, out var grant)
            ? grant
            : Quota.AllocateQuota(ws, tenant, workspaces.ByIndex(WorkspaceResources.TenantIndex, name)); // removed meanwhile
    }
}
