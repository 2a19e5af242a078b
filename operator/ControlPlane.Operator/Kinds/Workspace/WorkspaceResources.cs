using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Pure functions from a Workspace (and its Tenant) to the objects it owns. The reconciler applies
/// them; tests can call them directly.
/// </summary>
public static class WorkspaceResources
{
    public const string ManagedSelector = ApiGroup.ManagedByLabel + "=" + ApiGroup.ManagedByValue;
    public const string QuotaName = "controlplane-quota";
    public const string LimitRangeName = "controlplane-limits";
    public const string NetworkPolicyName = "controlplane-default-deny";
    public const string ConfigMapName = "controlplane-workspace";

    public static string SecretName(Workspace ws) => ws.Metadata.Name + "-db";

    static Dictionary<string, string> Labels(Workspace ws) => new() { [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue, [ApiGroup.WorkspaceLabel] = ws.Metadata.Name };

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
        meta.Labels[ApiGroup.TenantLabel] = tenant;
        meta.Labels[ApiGroup.RegionLabel] = region;
        meta.Labels[ApiGroup.EnvironmentLabel] = environment ?? WorkspaceEnvironments.Effective(ws);
        return new V1Namespace { ApiVersion = "v1", Kind = "Namespace", Metadata = meta };
    }

    public static string EffectiveDataMode(Workspace ws, Tenant tenant) => ws.Spec.DataMode ?? tenant.Spec.DataMode;

    public static V1ConfigMap ConfigMap(Workspace ws, Tenant tenant, string? environment = null) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = Meta(ws, ConfigMapName),
        Data = new Dictionary<string, string>
        {
            ["tenant"] = tenant.Metadata.Name,
            ["region"] = Placement.WorkspaceRegion(ws, tenant),
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

    public const string TenantIndex = "tenant";

    /// <summary>Workspaces with a ServiceAccount member (value "yes"): the few a namespace changing hands concerns.</summary>
    public const string ServiceAccountMemberIndex = "serviceaccount-member";

    public static string AdmissionTime(DateTimeOffset now) => now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", System.Globalization.CultureInfo.InvariantCulture);

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
        meta.Annotations = new Dictionary<string, string> { [ApiGroup.PasswordHashAnnotation] = PasswordHash(password) };
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
