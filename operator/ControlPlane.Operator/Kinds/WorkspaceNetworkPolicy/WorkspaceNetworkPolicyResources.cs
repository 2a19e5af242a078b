using System.Net;
using System.Text.RegularExpressions;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// What a WorkspaceNetworkPolicy may reach, as its tenant allows it: the tenant's name, its CIDR
/// allowlists, and which workspace names are the tenant's own (another tenant's and a missing one look alike).
/// </summary>
public sealed record TenantNetworkBounds(string Tenant, IReadOnlyList<string> IngressCidrs, IReadOnlyList<string> EgressCidrs, Func<string, bool> IsWorkspaceOfTenant)
{
    public static TenantNetworkBounds Of(Tenant tenant, Func<string, bool> isWorkspaceOfTenant) =>
        new(tenant.Metadata.Name, tenant.Spec.Network?.AllowedIngressCIDRs ?? [], tenant.Spec.Network?.ApprovedEgressCIDRs ?? [], isWorkspaceOfTenant);
}

/// <summary>The NetworkPolicies a WorkspaceNetworkPolicy renders to, and each peer or rule left out (a message naming its field).</summary>
public sealed record NetworkPolicyPlan(IReadOnlyList<V1NetworkPolicy> Policies, IReadOnlyList<string> Dropped);

/// <summary>
/// Pure functions from a WorkspaceNetworkPolicy and its tenant's bounds to the NetworkPolicies it
/// owns. The same peer check serves admission (refuse) and the reconciler (drop): a tenant's
/// allowlist can shrink, and a peer workspace can change hands, after the policy was admitted.
/// </summary>
public static partial class WorkspaceNetworkPolicyResources
{
    public const string IngressSuffix = "-ingress";
    public const string EgressSuffix = "-egress";

    /// <summary>NetworkPolicy names are DNS subdomains (253): the longest suffix must still fit, so a name is never cut and hashed.</summary>
    public const int MaxNameLength = 253 - 8;

    public static string IngressName(string policy) => policy + IngressSuffix;

    public static string EgressName(string policy) => policy + EgressSuffix;

    /// <summary>Every name a policy can render to; the reconciler removes those it no longer wants.</summary>
    public static IReadOnlyList<string> PolicyNames(string policy) => [IngressName(policy), EgressName(policy)];

    public static string? NameProblem(string? name) => name is { Length: > MaxNameLength }
        ? $"metadata.name: at most {MaxNameLength} characters (its NetworkPolicies are named <name>{IngressSuffix} and <name>{EgressSuffix})"
        : null;

    // Label syntax as the API server checks it (a qualified name's last part, and a value).
    [GeneratedRegex("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")]
    private static partial Regex LabelNameRegex();

    /// <summary>Why a label key is not a qualified name (optional DNS-subdomain prefix, '/', a name of at most 63), or null.</summary>
    static string? LabelKeyProblem(string? key)
    {
        var parts = (key ?? "").Split('/');
        var name = parts[^1];
        if (parts.Length > 2 || (parts.Length == 2 && !SpecRules.IsDnsSubdomain(parts[0])) || name.Length > 63 || !LabelNameRegex().IsMatch(name))
        {
            return "is not a label key (an optional DNS-subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)";
        }

        return null;
    }

    static string? LabelValueProblem(string? value) =>
        string.IsNullOrEmpty(value) || (value.Length <= 63 && LabelNameRegex().IsMatch(value))
            ? null
            : "is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)";

    /// <summary>Everything about a label selector the API server would refuse in a NetworkPolicy, each naming its field.</summary>
    public static IEnumerable<string> SelectorProblems(LabelSelector? selector, string field)
    {
        if (selector is null) yield break;
        foreach (var (key, value) in selector.MatchLabels ?? [])
        {
            if (LabelKeyProblem(key) is { } k) yield return $"{field}.matchLabels: key \"{Shown(key)}\" {k}";
            if (LabelValueProblem(value) is { } v) yield return $"{field}.matchLabels[{Shown(key)}]: \"{Shown(value)}\" {v}";
        }

        for (var i = 0; i < (selector.MatchExpressions?.Count ?? 0); i++)
        {
            var e = selector.MatchExpressions![i];
            var at = $"{field}.matchExpressions[{i}]";
            if (LabelKeyProblem(e.Key) is { } k) yield return $"{at}.key: \"{Shown(e.Key)}\" {k}";
            var values = e.Values ?? [];
            if (e.Operator is "In" or "NotIn" && values.Count == 0) yield return $"{at}.values: operator {e.Operator} needs at least one value";
            if (e.Operator is "Exists" or "DoesNotExist" && values.Count > 0) yield return $"{at}.values: operator {e.Operator} takes no values";
            for (var j = 0; j < values.Count; j++)
            {
                if (LabelValueProblem(values[j]) is { } v) yield return $"{at}.values[{j}]: \"{Shown(values[j])}\" {v}";
            }
        }
    }

    /// <summary>Every selector of the spec the API server would refuse: admission refuses them, the reconciler renders nothing while any is there.</summary>
    public static List<string> MalformedSelectors(WorkspaceNetworkPolicySpec spec)
    {
        var problems = SelectorProblems(spec.PodSelector, "spec.podSelector").ToList();
        for (var i = 0; i < (spec.Ingress?.Count ?? 0); i++)
        {
            for (var j = 0; j < (spec.Ingress![i].From?.Count ?? 0); j++) problems.AddRange(SelectorProblems(spec.Ingress[i].From![j].PodSelector, $"spec.ingress[{i}].from[{j}].podSelector"));
        }

        for (var i = 0; i < (spec.Egress?.Count ?? 0); i++)
        {
            for (var j = 0; j < (spec.Egress![i].To?.Count ?? 0); j++) problems.AddRange(SelectorProblems(spec.Egress[i].To![j].PodSelector, $"spec.egress[{i}].to[{j}].podSelector"));
        }

        return problems;
    }

    static string Shown(string? s) =>
        string.Concat(((s ?? "").Length > 80 ? s![..80] + "..." : s ?? "").Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    /// <summary>True when <paramref name="cidr"/> lies inside one of the allowed networks (same address family, prefix at least as long).</summary>
    public static bool CidrWithin(string cidr, IEnumerable<string> allowed)
    {
        if (!IPNetwork.TryParse(cidr, out var inner)) return false;
        foreach (var a in allowed)
        {
            if (IPNetwork.TryParse(a, out var outer) && outer.PrefixLength <= inner.PrefixLength && outer.Contains(inner.BaseAddress)) return true;
        }

        return false;
    }

    /// <summary>Why one peer cannot be rendered, or null. <paramref name="field"/> is its path, e.g. spec.ingress[0].from[1].</summary>
    public static string? PeerProblem(Peer peer, string field, TenantNetworkBounds bounds, bool ingress)
    {
        var set = new[] { peer.Workspace is null ? null : "workspace", peer.Cidr is null ? null : "cidr", peer.PodSelector is null ? null : "podSelector" }.OfType<string>().ToList();
        if (set.Count == 0) return $"{field}: names no workspace, cidr or podSelector";
        if (peer.Cidr is not null && set.Count > 1) return $"{field}: sets {string.Join(" and ", set)}; a cidr stands alone (a workspace may be combined with a podSelector)";
        if (peer.Workspace is { } ws && !bounds.IsWorkspaceOfTenant(ws)) return $"{field}.workspace: \"{ws}\" is not a workspace of tenant {bounds.Tenant}";
        if (peer.Cidr is { } cidr)
        {
            if (!IPNetwork.TryParse(cidr, out _)) return $"{field}.cidr: \"{cidr}\" is not a CIDR (e.g. 203.0.113.0/24)";
            var (allowed, name) = ingress ? (bounds.IngressCidrs, "allowedIngressCIDRs") : (bounds.EgressCidrs, "approvedEgressCIDRs");
            if (!CidrWithin(cidr, allowed)) return $"{field}.cidr: {cidr} is outside tenant {bounds.Tenant}'s spec.network.{name} [{string.Join(", ", allowed)}]";
        }

        return null;
    }

    /// <summary>Every peer or rule of the spec outside its tenant's bounds: admission refuses them all.</summary>
    public static List<string> OutOfBounds(WorkspaceNetworkPolicySpec spec, TenantNetworkBounds bounds)
    {
        var problems = new List<string>();
        for (var i = 0; i < (spec.Ingress?.Count ?? 0); i++) Peers(spec.Ingress![i].From, $"spec.ingress[{i}].from", bounds, ingress: true, problems);
        for (var i = 0; i < (spec.Egress?.Count ?? 0); i++) Peers(spec.Egress![i].To, $"spec.egress[{i}].to", bounds, ingress: false, problems);
        return problems;
    }

    /// <summary>The peers of one rule that are within bounds; each other one is added to <paramref name="dropped"/>.</summary>
    static List<V1NetworkPolicyPeer> Peers(List<Peer>? peers, string field, TenantNetworkBounds bounds, bool ingress, List<string> dropped)
    {
        // In a NetworkPolicy an empty peer list means every source or destination, other tenants included.
        if (peers is not { Count: > 0 })
        {
            dropped.Add($"{field}: names no peer; a rule without peers would allow every {(ingress ? "source" : "destination")} (name workspaces, CIDRs or pod selectors)");
            return [];
        }

        var rendered = new List<V1NetworkPolicyPeer>();
        for (var j = 0; j < peers.Count; j++)
        {
            if (PeerProblem(peers[j], $"{field}[{j}]", bounds, ingress) is { } problem)
            {
                dropped.Add(problem);
                continue;
            }

            rendered.Add(Render(peers[j], bounds.Tenant));
        }

        return rendered;
    }

    static V1NetworkPolicyPeer Render(Peer peer, string tenant) => peer switch
    {
        { Cidr: { } cidr } => new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = cidr } },
        // Both labels are the operator's, set on namespaces it created: a namespace of another tenant never matches.
        { Workspace: { } ws } => new V1NetworkPolicyPeer
        {
            NamespaceSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [ApiGroup.WorkspaceLabel] = ws, [ApiGroup.TenantLabel] = tenant } },
            PodSelector = Selector(peer.PodSelector),
        },
        // A pod selector alone selects pods of the policy's own namespace.
        _ => new V1NetworkPolicyPeer { PodSelector = Selector(peer.PodSelector) ?? new V1LabelSelector() },
    };

    static V1LabelSelector? Selector(LabelSelector? s) => s is null ? null : new V1LabelSelector
    {
        MatchLabels = s.MatchLabels is { Count: > 0 } labels ? new Dictionary<string, string>(labels) : null,
        MatchExpressions = s.MatchExpressions is { Count: > 0 } expressions
            ? expressions.Select(e => new V1LabelSelectorRequirement { Key = e.Key, OperatorProperty = e.Operator, Values = e.Values?.ToList() }).ToList()
            : null,
    };

    static List<V1NetworkPolicyPort>? Ports(List<NetworkPort>? ports) =>
        ports is { Count: > 0 } ? ports.Select(p => new V1NetworkPolicyPort { Protocol = p.Protocol, Port = p.Port }).ToList() : null;

    /// <summary>
    /// The policies to own: <c>&lt;name&gt;-ingress</c> and <c>&lt;name&gt;-egress</c>, each only when at least
    /// one of its rules keeps a peer. A peer outside the bounds is left out; a rule left without peers
    /// is left out whole (never rendered with an empty list, which would allow everything).
    /// </summary>
    public static NetworkPolicyPlan Desired(WorkspaceNetworkPolicy policy, TenantNetworkBounds bounds)
    {
        var dropped = new List<string>();
        var ingress = new List<V1NetworkPolicyIngressRule>();
        for (var i = 0; i < (policy.Spec.Ingress?.Count ?? 0); i++)
        {
            var rule = policy.Spec.Ingress![i];
            var peers = Peers(rule.From, $"spec.ingress[{i}].from", bounds, ingress: true, dropped);
            if (peers.Count > 0) ingress.Add(new V1NetworkPolicyIngressRule { FromProperty = peers, Ports = Ports(rule.Ports) });
            else if (rule.From is { Count: > 0 }) dropped.Add($"spec.ingress[{i}]: not rendered: none of its peers is allowed");
        }

        var egress = new List<V1NetworkPolicyEgressRule>();
        for (var i = 0; i < (policy.Spec.Egress?.Count ?? 0); i++)
        {
            var rule = policy.Spec.Egress![i];
            var peers = Peers(rule.To, $"spec.egress[{i}].to", bounds, ingress: false, dropped);
            if (peers.Count > 0) egress.Add(new V1NetworkPolicyEgressRule { To = peers, Ports = Ports(rule.Ports) });
            else if (rule.To is { Count: > 0 }) dropped.Add($"spec.egress[{i}]: not rendered: none of its peers is allowed");
        }

        var policies = new List<V1NetworkPolicy>();
        if (ingress.Count > 0) policies.Add(Policy(policy, IngressName(policy.Metadata.Name), new V1NetworkPolicySpec { PolicyTypes = ["Ingress"], Ingress = ingress }));
        if (egress.Count > 0) policies.Add(Policy(policy, EgressName(policy.Metadata.Name), new V1NetworkPolicySpec { PolicyTypes = ["Egress"], Egress = egress }));
        return new NetworkPolicyPlan(policies, dropped);
    }

    static V1NetworkPolicy Policy(WorkspaceNetworkPolicy owner, string name, V1NetworkPolicySpec spec)
    {
        spec.PodSelector = Selector(owner.Spec.PodSelector) ?? new V1LabelSelector();
        return new V1NetworkPolicy
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "NetworkPolicy",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = owner.Metadata.NamespaceProperty,
                Labels = new Dictionary<string, string> { [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue },
                OwnerReferences = [ChildApplier.OwnerReference(owner)],
            },
            Spec = spec,
        };
    }
}
