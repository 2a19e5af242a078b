using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>A quota decision for one workspace: what it gets, and why it got less than it asked.</summary>
public sealed record QuotaGrant(IReadOnlyDictionary<string, ResourceQuantity> Granted, IReadOnlyList<string> Shortfalls, bool OverWorkspaceLimit)
{
    /// <summary>Quantities refused as out of bounds (negative, huge or unreadable): granted nothing, counted as nothing.</summary>
    public IReadOnlyList<string> Invalid { get; init; } = [];

    public bool Exceeded => Shortfalls.Count > 0 || OverWorkspaceLimit || Invalid.Count > 0;
}

/// <summary>
/// A tenant's quota shared among its workspaces: the decision admission and the Workspace reconciler
/// both make, so they cannot disagree.
/// </summary>
public static class Quota
{
    public static string Canonical(ResourceQuantity q) => new ResourceQuantity(q.CanonicalizeString()).CanonicalizeString();

    /// <summary>
    /// The tenant's quota is an aggregate. Workspaces are served in order; each gets what it asks
    /// for, or what remains of the tenant's quota after the earlier ones' grants, whichever is less.
    /// A workspace past maxWorkspaces in that order is over the limit.
    /// </summary>
    public static QuotaGrant AllocateQuota(Workspace ws, Tenant tenant, IEnumerable<Workspace> tenantWorkspaces)
    {
        var all = tenantWorkspaces.Where(w => w.Spec.Tenant == tenant.Metadata.Name && w.Metadata.Name != ws.Metadata.Name).Append(ws);
        return AllocateAll(tenant, all)[ws.Metadata.Name];
    }

    /// <summary>Every workspace's grant in one pass, O(n log n).</summary>
    public static Dictionary<string, QuotaGrant> AllocateAll(Tenant tenant, IEnumerable<Workspace> tenantWorkspaces)
    {
        // Admitted workspaces keep their place, in admission order (sub-second, unlike creation
        // timestamps); newcomers queue behind them in creation order, the name breaking ties.
        var ordered = tenantWorkspaces.Where(w => w.Spec.Tenant == tenant.Metadata.Name)
            .OrderBy(w => w.Status?.AdmittedAt ?? "~", StringComparer.Ordinal)
            .ThenBy(w => w.Metadata.CreationTimestamp ?? DateTime.MaxValue).ThenBy(w => w.Metadata.Name, StringComparer.Ordinal).ToList();
        var used = new Dictionary<string, decimal>();
        var result = new Dictionary<string, QuotaGrant>();
        for (var position = 0; position < ordered.Count; position++)
        {
            var ws = ordered[position];
            var granted = new Dictionary<string, ResourceQuantity>();
            var shortfalls = new List<string>();
            var invalid = new List<string>();
            foreach (var (field, limit, ask) in Resources(tenant.Spec.Quota, ws.Spec.Quota))
            {
                if (ask is null) continue;
                // A quantity out of bounds (stored while the webhook was absent) is refused: granted
                // zero and counted as zero, so it can neither overflow the sums nor eat others' share.
                if (!SpecRules.TryQuantity(field, ask, out var asked))
                {
                    granted[field] = new ResourceQuantity("0");
                    invalid.Add(SpecRules.Quantity($"spec.quota.{field}", field, ask) + "; granted 0");
                    continue;
                }

                if (limit is null)
                {
                    granted[field] = new ResourceQuantity(Canonical(ask));
                    continue;
                }

                if (!SpecRules.TryQuantity(field, limit, out var total))
                {
                    granted[field] = new ResourceQuantity("0");
                    invalid.Add($"tenant {tenant.Metadata.Name}'s spec.quota.{field} \"{SpecRules.Shown(limit)}\" is out of bounds; granted 0");
                    continue;
                }

                var before = used.GetValueOrDefault(field);
                var remaining = Math.Max(0, total - before);
                var give = Math.Min(asked, remaining);
                used[field] = SpecRules.Add(before, give);
                granted[field] = new ResourceQuantity(new ResourceQuantity(give, 0, ask.Format).CanonicalizeString());
                if (asked > remaining)
                {
                    shortfalls.Add($"spec.quota.{field}: requested {Canonical(ask)} but tenant {tenant.Metadata.Name} has {Canonical(limit)} " +
                                   $"of which {Canonical(new ResourceQuantity(before, 0, ask.Format))} is granted to earlier workspaces; granted {granted[field].CanonicalizeString()}");
                }
            }

            var over = tenant.Spec.Quota?.MaxWorkspaces is { } max && position >= max;
            result[ws.Metadata.Name] = new QuotaGrant(granted, shortfalls, over) { Invalid = invalid };
        }

        return result;
    }

    /// <summary>
    /// Whether the tenant has room for every one of its workspaces' full asks at once (and for their
    /// number). Then the order of admission decides nothing: every grant is the full ask.
    /// </summary>
    public static bool FitsEveryone(Tenant tenant, IEnumerable<Workspace> tenantWorkspaces)
    {
        var q = tenant.Spec.Quota;
        if (q is null) return true;
        var count = 0;
        decimal cpu = 0, memory = 0, storage = 0;
        foreach (var ws in tenantWorkspaces)
        {
            if (ws.Spec.Tenant != tenant.Metadata.Name) continue;
            count++;
            // An out-of-bounds ask is decided by AllocateAll, which refuses it with a message.
            if (!Sum("cpu", ws.Spec.Quota?.Cpu, ref cpu) || !Sum("memory", ws.Spec.Quota?.Memory, ref memory) || !Sum("storage", ws.Spec.Quota?.Storage, ref storage)) return false;
        }

        return (q.MaxWorkspaces is not { } max || count <= max)
            && Within("cpu", q.Cpu, cpu) && Within("memory", q.Memory, memory) && Within("storage", q.Storage, storage);

        static bool Sum(string resource, ResourceQuantity? ask, ref decimal total)
        {
            if (ask is null) return true;
            if (!SpecRules.TryQuantity(resource, ask, out var value)) return false;
            total = SpecRules.Add(total, value);
            return true;
        }

        static bool Within(string resource, ResourceQuantity? limit, decimal total) =>
            limit is null || (SpecRules.TryQuantity(resource, limit, out var value) && total <= value);
    }

    /// <summary>A workspace's grant when its tenant fits everyone: every ask in full, as <see cref="AllocateAll"/> decides then.</summary>
    public static QuotaGrant FullGrant(Workspace ws, Tenant tenant)
    {
        var granted = new Dictionary<string, ResourceQuantity>();
        var invalid = new List<string>();
        foreach (var (field, _, ask) in Resources(tenant.Spec.Quota, ws.Spec.Quota))
        {
            if (ask is null) continue;
            if (SpecRules.TryQuantity(field, ask, out _))
            {
                granted[field] = new ResourceQuantity(Canonical(ask));
            }
            else
            {
                granted[field] = new ResourceQuantity("0");
                invalid.Add(SpecRules.Quantity($"spec.quota.{field}", field, ask) + "; granted 0");
            }
        }

        return new QuotaGrant(granted, [], false) { Invalid = invalid };
    }

    static IEnumerable<(string Field, ResourceQuantity? Limit, ResourceQuantity? Ask)> Resources(TenantQuota? t, WorkspaceQuota? w) =>
    [
        ("cpu", t?.Cpu, w?.Cpu),
        ("memory", t?.Memory, w?.Memory),
        ("storage", t?.Storage, w?.Storage),
    ];
}
