using System.Globalization;
using System.Text.RegularExpressions;
using k8s.Models;

namespace ControlPlane.Operator.Api.V1Alpha1;

/// <summary>
/// Pure rules on names, members, quantities and provider keys, shared by the admission webhook
/// (which refuses) and the reconcilers (which refuse again, since the webhook can be absent or
/// bypassed). Each problem is one message naming the field and the rule broken.
/// </summary>
public static partial class SpecRules
{
    public const int MaxDnsLabel = 63;
    public const int MaxDnsSubdomain = 253;

    /// <summary>User and Group names: RBAC sets no bound, ours keeps RoleBindings and audit rows small.</summary>
    public const int MaxSubjectName = 256;

    /// <summary>A million cores: far above any cluster, far below what decimal arithmetic can overflow.</summary>
    public const decimal MaxCpu = 1_000_000m;

    /// <summary>2^63-1 bytes (just under 8Ei), the largest quantity Kubernetes represents exactly.</summary>
    public const decimal MaxBytes = long.MaxValue;

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabelRegex();

    public static bool IsDnsLabel(string? s) => !string.IsNullOrEmpty(s) && s.Length <= MaxDnsLabel && DnsLabelRegex().IsMatch(s);

    public static bool IsDnsSubdomain(string? s) =>
        !string.IsNullOrEmpty(s) && s.Length <= MaxDnsSubdomain && s.Split('.').All(part => part.Length > 0 && DnsLabelRegex().IsMatch(part));

    /// <summary>A Workspace's name is its namespace's name (and its database's), so it must be a DNS label; so must a Tenant's (a label value everywhere).</summary>
    public static string? ObjectName(string? name) => IsDnsLabel(name)
        ? null
        : $"metadata.name: \"{Shown(name)}\" must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most {MaxDnsLabel} characters; it has {name?.Length ?? 0})";

    /// <summary>A User or Group name: non-empty, no control characters, at most <see cref="MaxSubjectName"/> characters.</summary>
    public static string? SubjectName(string field, string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return $"{field}: must not be empty";
        if (name.Length > MaxSubjectName) return $"{field}: is {name.Length} characters long; at most {MaxSubjectName} are allowed";
        if (name.Any(char.IsControl)) return $"{field}: \"{Shown(name)}\" contains control characters";
        return null;
    }

    /// <summary>A member's name: a subject name, or for a ServiceAccount "namespace/name" (a DNS label and a DNS subdomain).</summary>
    public static string? MemberName(int i, WorkspaceMember member)
    {
        var field = $"spec.members[{i}].name";
        if (member.Kind != "ServiceAccount") return SubjectName(field, member.Name);
        var parts = (member.Name ?? "").Split('/');
        if (parts.Length != 2)
        {
            return $"{field}: \"{Shown(member.Name)}\" must be \"namespace/name\" for a ServiceAccount";
        }

        if (!IsDnsLabel(parts[0]))
        {
            return $"{field}: namespace \"{Shown(parts[0])}\" of ServiceAccount \"{Shown(member.Name)}\" must be a DNS-1123 label (lowercase letters, digits and '-', at most {MaxDnsLabel} characters)";
        }

        return IsDnsSubdomain(parts[1])
            ? null
            : $"{field}: name \"{Shown(parts[1])}\" of ServiceAccount \"{Shown(member.Name)}\" must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most {MaxDnsSubdomain} characters)";
    }

    public static IEnumerable<string> Members(IReadOnlyList<WorkspaceMember>? members)
    {
        var seen = new Dictionary<(string, string, string), int>();
        for (var i = 0; i < (members?.Count ?? 0); i++)
        {
            var m = members![i];
            if (MemberName(i, m) is { } bad) yield return bad;
            if (seen.TryGetValue((m.Kind, m.Name, m.Role), out var first))
            {
                yield return $"spec.members[{i}]: duplicates spec.members[{first}] ({m.Kind} \"{Shown(m.Name)}\" as {m.Role}); list each member and role once";
            }
            else
            {
                seen[(m.Kind, m.Name, m.Role)] = i;
            }
        }
    }

    public static IEnumerable<string> Owners(IReadOnlyList<Subject>? owners)
    {
        for (var i = 0; i < (owners?.Count ?? 0); i++)
        {
            if (SubjectName($"spec.owners[{i}].name", owners![i].Name) is { } bad) yield return bad;
        }
    }

    /// <summary>Indexes of provider keys whose provider appears earlier in the list, with the first index.</summary>
    public static IReadOnlyList<(int Index, int First)> DuplicateProviders(IReadOnlyList<ProviderKey>? keys)
    {
        var result = new List<(int, int)>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < (keys?.Count ?? 0); i++)
        {
            if (seen.TryGetValue(keys![i].Provider, out var first)) result.Add((i, first));
            else seen[keys[i].Provider] = i;
        }

        return result;
    }

    public static IEnumerable<string> ProviderKeys(IReadOnlyList<ProviderKey>? keys) =>
        DuplicateProviders(keys).Select(d =>
            $"spec.providerKeys[{d.Index}].provider: \"{keys![d.Index].Provider}\" is already listed at spec.providerKeys[{d.First}]; each provider may appear once");

    /// <summary>The largest value a resource may ask for (cpu in cores, memory and storage in bytes).</summary>
    public static decimal Bound(string resource) => resource == "cpu" ? MaxCpu : MaxBytes;

    static string BoundText(string resource) => resource == "cpu"
        ? $"{MaxCpu.ToString(CultureInfo.InvariantCulture)} cores"
        : $"{MaxBytes.ToString(CultureInfo.InvariantCulture)} bytes (2^63-1, just under 8Ei)";

    /// <summary>
    /// The quantity's value when it is non-negative and within its bound; false otherwise. Never
    /// throws: a value decimal cannot hold (1e30) is out of bounds, not an OverflowException.
    /// </summary>
    public static bool TryQuantity(string resource, ResourceQuantity? q, out decimal value)
    {
        value = 0;
        if (q is null) return false;
        try
        {
            value = q.ToDecimal();
        }
        catch (ArithmeticException)
        {
            return false;
        }

        return value >= 0 && value <= Bound(resource);
    }

    [GeneratedRegex("^([+-]?[0-9]*\\.?[0-9]*)([KMGTPE])i$")]
    private static partial Regex BinarySuffixRegex();

    /// <summary>
    /// The value of a quantity as the user wrote it. ResourceQuantity silently caps a binary-suffixed
    /// value at 2^63-1 ("100Ei" reads as just under 8Ei), so those are computed here, exactly.
    /// </summary>
    public static bool TryRawQuantity(string resource, string raw, out decimal value)
    {
        value = 0;
        var match = BinarySuffixRegex().Match(raw.Trim());
        if (!match.Success)
        {
            try
            {
                return TryQuantity(resource, new ResourceQuantity(raw), out value);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or ArithmeticException)
            {
                return false;
            }
        }

        if (!decimal.TryParse(match.Groups[1].Value, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n)) return false;
        try
        {
            for (var power = "KMGTPE".IndexOf(match.Groups[2].Value[0], StringComparison.Ordinal); power >= 0; power--) n *= 1024m;
        }
        catch (OverflowException)
        {
            return false;
        }

        value = n;
        return value >= 0 && value <= Bound(resource);
    }

    /// <summary>A problem with a quantity field, or null when it is absent or within bounds; judged on the raw text when given.</summary>
    public static string? Quantity(string field, string resource, ResourceQuantity? q, string? raw = null)
    {
        if (q is null && raw is null) return null;
        if (raw is not null ? TryRawQuantity(resource, raw, out _) : TryQuantity(resource, q, out _)) return null;
        return $"{field}: \"{Shown(raw) ?? Shown(q!)}\" is out of bounds: a {resource} quantity must be at least 0 and at most {BoundText(resource)}";
    }

    public static IEnumerable<string> WorkspaceQuota(WorkspaceQuota? q, Func<string, string?>? raw = null) => new[]
    {
        Quantity("spec.quota.cpu", "cpu", q?.Cpu, raw?.Invoke("cpu")),
        Quantity("spec.quota.memory", "memory", q?.Memory, raw?.Invoke("memory")),
        Quantity("spec.quota.storage", "storage", q?.Storage, raw?.Invoke("storage")),
    }.OfType<string>();

    public static IEnumerable<string> TenantQuota(TenantQuota? q, Func<string, string?>? raw = null) => new[]
    {
        Quantity("spec.quota.cpu", "cpu", q?.Cpu, raw?.Invoke("cpu")),
        Quantity("spec.quota.memory", "memory", q?.Memory, raw?.Invoke("memory")),
        Quantity("spec.quota.storage", "storage", q?.Storage, raw?.Invoke("storage")),
    }.OfType<string>();

    /// <summary>Everything about a Workspace's spec and name that can be judged without its tenant.</summary>
    public static List<string> Workspace(Workspace ws, Func<string, string?>? rawQuota = null)
    {
        var problems = new List<string>();
        if (ObjectName(ws.Metadata.Name) is { } name) problems.Add(name);
        problems.AddRange(Members(ws.Spec.Members));
        problems.AddRange(WorkspaceQuota(ws.Spec.Quota, rawQuota));
        problems.AddRange(ProviderKeys(ws.Spec.ProviderKeys));
        return problems;
    }

    public static List<string> Tenant(Tenant tenant, Func<string, string?>? rawQuota = null)
    {
        var problems = new List<string>();
        if (ObjectName(tenant.Metadata.Name) is { } name) problems.Add(name);
        problems.AddRange(Owners(tenant.Spec.Owners));
        problems.AddRange(TenantQuota(tenant.Spec.Quota, rawQuota));
        problems.AddRange(Cidrs(tenant.Spec.Network?.AllowedIngressCIDRs, "spec.network.allowedIngressCIDRs"));
        problems.AddRange(Cidrs(tenant.Spec.Network?.ApprovedEgressCIDRs, "spec.network.approvedEgressCIDRs"));
        return problems;
    }

    /// <summary>Every entry an IP range: the allowlists bound WorkspaceNetworkPolicies, and approved egress opens each workspace's policy.</summary>
    static IEnumerable<string> Cidrs(List<string>? cidrs, string field) =>
        (cidrs ?? []).Select((c, i) => System.Net.IPNetwork.TryParse(c, out _) ? null : $"{field}[{i}]: \"{Shown(c)}\" is not a CIDR (e.g. 198.51.100.0/24)")
            .OfType<string>();

    /// <summary>A quantity for a message; canonicalising an unbounded one can itself overflow.</summary>
    public static string Shown(ResourceQuantity q)
    {
        try
        {
            return q.CanonicalizeString();
        }
        catch (ArithmeticException)
        {
            return "(a number too large to print)";
        }
    }

    /// <summary>A user-supplied string for a message: control characters escaped, long ones cut.</summary>
    static string? Shown(string? s)
    {
        if (s is null) return null;
        var cut = s.Length > 80 ? s[..80] + "..." : s;
        return string.Concat(cut.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }

    /// <summary>Saturating addition: a sum of quantities never throws; past the bound it stays at decimal.MaxValue.</summary>
    public static decimal Add(decimal a, decimal b) => b > 0 && a > decimal.MaxValue - b ? decimal.MaxValue : a + b;
}
