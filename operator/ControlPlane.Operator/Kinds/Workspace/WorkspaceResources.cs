using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>A quota decision for one workspace: what it gets, and why it got less than it asked.</summary>
public sealed record QuotaGrant(IReadOnlyDictionary<string, ResourceQuantity> Granted, IReadOnlyList<string> Shortfalls, bool OverWorkspaceLimit)
{
    /// <summary>Quantities refused as out of bounds (negative, huge or unreadable): granted nothing, counted as nothing.</summary>
    public IReadOnlyList<string> Invalid { get; init; } = [];

    public bool Exceeded => Shortfalls.Count > 0 || OverWorkspaceLimit || Invalid.Count > 0;
}

/// <summary>
/// Pure functions from a Workspace (and its Tenant) to the objects it owns. The reconciler applies
/// them; tests can call them directly.
/// </summary>
public static class WorkspaceResources
{
    public const string ManagedBy = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "controlplane";
    public const string ManagedSelector = ManagedBy + "=" + ManagedByValue;
    public const string WorkspaceLabel = "controlplane.io/workspace";
    public const string TenantLabel = "controlplane.io/tenant";
    public const string RegionLabel = "controlplane.io/region";
    public const string EnvironmentLabel = "controlplane.io/environment";
    public const string RotateAnnotation = "controlplane.io/rotate";
    public const string PasswordHashAnnotation = "controlplane.io/password-sha256";
    public const string QuotaName = "controlplane-quota";
    public const string LimitRangeName = "controlplane-limits";
    public const string NetworkPolicyName = "controlplane-default-deny";
    public const string ConfigMapName = "controlplane-workspace";

    public static string SecretName(Workspace ws) => ws.Metadata.Name + "-db";

    static Dictionary<string, string> Labels(Workspace ws) => new() { [ManagedBy] = ManagedByValue, [WorkspaceLabel] = ws.Metadata.Name };

    static V1ObjectMeta Meta(Workspace ws, string name, bool namespaced = true) => new()
    {
        Name = name,
        NamespaceProperty = namespaced ? ws.Metadata.Name : null,
        Labels = Labels(ws),
        OwnerReferences = [ChildApplier.OwnerReference(ws)],
    };

    /// <summary>The namespace; its environment label is the one the operator applies (<paramref name="environment"/>, else <see cref="WorkspaceEnvironments.Effective"/>).</summary>
    public static V1Namespace Namespace(Workspace ws, string tenant, string region, string? environment = null)
    {
        var meta = Meta(ws, ws.Metadata.Name, namespaced: false);
        meta.Labels[TenantLabel] = tenant;
        meta.Labels[RegionLabel] = region;
        meta.Labels[EnvironmentLabel] = environment ?? WorkspaceEnvironments.Effective(ws);
        return new V1Namespace { ApiVersion = "v1", Kind = "Namespace", Metadata = meta };
    }

    public static string EffectiveRegion(Workspace ws, Tenant tenant) => string.IsNullOrEmpty(ws.Spec.Region) ? tenant.Spec.Region : ws.Spec.Region;

    public static string EffectiveDataMode(Workspace ws, Tenant tenant) => ws.Spec.DataMode ?? tenant.Spec.DataMode;

    public static V1ConfigMap ConfigMap(Workspace ws, Tenant tenant, string? environment = null) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = Meta(ws, ConfigMapName),
        Data = new Dictionary<string, string>
        {
            ["tenant"] = tenant.Metadata.Name,
            ["region"] = EffectiveRegion(ws, tenant),
            ["dataMode"] = EffectiveDataMode(ws, tenant),
            ["environment"] = environment ?? WorkspaceEnvironments.Effective(ws),
        },
    };

    static string ShortHash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..10];

    public static Rbacv1Subject Subject(string kind, string name)
    {
        if (kind == "ServiceAccount")
        {
            var parts = name.Split('/', 2);
            return new Rbacv1Subject { Kind = "ServiceAccount", NamespaceProperty = parts.Length == 2 ? parts[0] : null, Name = parts[^1] };
        }

        return new Rbacv1Subject { Kind = kind, Name = name, ApiGroup = "rbac.authorization.k8s.io" };
    }

    /// <summary>One RoleBinding per member (but the <paramref name="refused"/> ones), and the tenant's owners as WorkspaceAdmin.</summary>
    public static List<V1RoleBinding> RoleBindings(Workspace ws, Tenant tenant, IReadOnlyCollection<RefusedMember>? refused = null)
    {
        var bindings = new Dictionary<string, V1RoleBinding>();
        void Add(string prefix, string kind, string name, string role)
        {
            var bindingName = $"controlplane-{prefix}-{WorkspaceRoles.Kebab(role)}-{ShortHash(kind + "/" + name)}";
            var meta = Meta(ws, bindingName);
            meta.Labels["controlplane.io/binding"] = prefix;
            bindings[bindingName] = new V1RoleBinding
            {
                ApiVersion = "rbac.authorization.k8s.io/v1",
                Kind = "RoleBinding",
                Metadata = meta,
                RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = WorkspaceRoles.ClusterRoleName(role) },
                Subjects = [Subject(kind, name)],
            };
        }

        // An owner stored past admission as a "system:" identity (everyone, every ServiceAccount) or a confusable name is never bound.
        foreach (var owner in (tenant.Spec.Owners ?? []).Where(o => WorkspaceMembers.NotBindable("spec.owners", o.Kind, o.Name) is null)) Add("owner", owner.Kind, owner.Name, "WorkspaceAdmin");
        var members = ws.Spec.Members ?? [];
        for (var i = 0; i < members.Count; i++)
        {
            if (refused?.Any(r => r.Index == i) == true) continue;
            Add("member", members[i].Kind, members[i].Name, members[i].Role);
        }

        return bindings.Values.OrderBy(b => b.Metadata.Name, StringComparer.Ordinal).ToList();
    }

    public static string Canonical(ResourceQuantity q) => new ResourceQuantity(q.CanonicalizeString()).CanonicalizeString();

    public const string TenantIndex = "tenant";

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

    public static string AdmissionTime(DateTimeOffset now) => now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", System.Globalization.CultureInfo.InvariantCulture);

    static IEnumerable<(string Field, ResourceQuantity? Limit, ResourceQuantity? Ask)> Resources(TenantQuota? t, WorkspaceQuota? w) =>
    [
        ("cpu", t?.Cpu, w?.Cpu),
        ("memory", t?.Memory, w?.Memory),
        ("storage", t?.Storage, w?.Storage),
    ];

    public static V1ResourceQuota? ResourceQuota(Workspace ws, QuotaGrant grant)
    {
        var hard = new Dictionary<string, ResourceQuantity>();
        if (grant.Granted.TryGetValue("cpu", out var cpu))
        {
            hard["requests.cpu"] = cpu;
            hard["limits.cpu"] = cpu;
        }

        if (grant.Granted.TryGetValue("memory", out var memory))
        {
            hard["requests.memory"] = memory;
            hard["limits.memory"] = memory;
        }

        if (grant.Granted.TryGetValue("storage", out var storage)) hard["requests.storage"] = storage;
        if (ws.Spec.Quota?.Pods is { } pods) hard["pods"] = new ResourceQuantity(pods.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (hard.Count == 0) return null;
        return new V1ResourceQuota { ApiVersion = "v1", Kind = "ResourceQuota", Metadata = Meta(ws, QuotaName), Spec = new V1ResourceQuotaSpec { Hard = hard } };
    }

    /// <summary>Container defaults, so pods without requests still fit a requests quota.</summary>
    public static V1LimitRange LimitRange(Workspace ws) => new()
    {
        ApiVersion = "v1",
        Kind = "LimitRange",
        Metadata = Meta(ws, LimitRangeName),
        Spec = new V1LimitRangeSpec
        {
            Limits =
            [
                new V1LimitRangeItem
                {
                    Type = "Container",
                    DefaultProperty = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m"), ["memory"] = new("512Mi") },
                    DefaultRequest = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("128Mi") },
                },
            ],
        },
    };

    /// <summary>
    /// Default deny, ingress and egress, except DNS to kube-dns in kube-system and egress to the tenant's
    /// approved egress CIDRs (spec.network.approvedEgressCIDRs; admission refuses one that does not parse,
    /// and one that still does not is left out here rather than opening anything).
    /// </summary>
    public static V1NetworkPolicy DefaultDeny(Workspace ws, IEnumerable<string>? approvedEgress = null)
    {
        var policy = DefaultDenyBaseline(ws);
        var cidrs = (approvedEgress ?? []).Where(c => System.Net.IPNetwork.TryParse(c, out _)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (cidrs.Count > 0)
        {
            policy.Spec.Egress.Add(new V1NetworkPolicyEgressRule { To = cidrs.Select(c => new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = c } }).ToList() });
        }

        return policy;
    }

    static V1NetworkPolicy DefaultDenyBaseline(Workspace ws) => new()
    {
        ApiVersion = "networking.k8s.io/v1",
        Kind = "NetworkPolicy",
        Metadata = Meta(ws, NetworkPolicyName),
        Spec = new V1NetworkPolicySpec
        {
            PodSelector = new V1LabelSelector(),
            PolicyTypes = ["Ingress", "Egress"],
            Egress =
            [
                new V1NetworkPolicyEgressRule
                {
                    To =
                    [
                        new V1NetworkPolicyPeer
                        {
                            NamespaceSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = "kube-system" } },
                            PodSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["k8s-app"] = "kube-dns" } },
                        },
                    ],
                    Ports =
                    [
                        new V1NetworkPolicyPort { Protocol = "UDP", Port = 53 },
                        new V1NetworkPolicyPort { Protocol = "TCP", Port = 53 },
                    ],
                },
            ],
        },
    };

    public static V1Secret DatabaseSecret(Workspace ws, string host, int port, string database, string username, string password)
    {
        var meta = Meta(ws, SecretName(ws));
        meta.Annotations = new Dictionary<string, string> { [PasswordHashAnnotation] = PasswordHash(password) };
        var uri = $"postgresql://{Uri.EscapeDataString(username)}:{Uri.EscapeDataString(password)}@{host}:{port}/{database}";
        return new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Metadata = meta,
            Type = "Opaque",
            Data = new Dictionary<string, byte[]>
            {
                ["host"] = Encoding.UTF8.GetBytes(host),
                ["port"] = Encoding.UTF8.GetBytes(port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ["database"] = Encoding.UTF8.GetBytes(database),
                ["username"] = Encoding.UTF8.GetBytes(username),
                ["password"] = Encoding.UTF8.GetBytes(password),
                ["uri"] = Encoding.UTF8.GetBytes(uri),
            },
        };
    }

    /// <summary>Lets the reconciler notice a hand-edited password without holding the real one elsewhere.</summary>
    public static string PasswordHash(string password) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("controlplane:" + password)));
}
