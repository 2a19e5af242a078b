using System.Globalization;
using System.Text.RegularExpressions;
using k8s.Models;

namespace ControlPlane.Api.V1Alpha1;

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

    /// <summary>
    /// A User or Group name: non-empty, at most <see cref="MaxSubjectName"/> characters, and one a person
    /// can read as written (<see cref="UnreadableName"/>): a name that looks like another is another identity.
    /// </summary>
    public static string? SubjectName(string field, string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return $"{field}: must not be empty";
        if (name.Length > MaxSubjectName) return $"{field}: is {name.Length} characters long; at most {MaxSubjectName} are allowed";
        if (name.Any(char.IsControl)) return $"{field}: \"{Shown(name)}\" contains control characters";
        return UnreadableName(name) is { } why ? $"{field}: \"{Shown(name)}\" {why}" : null;
    }

    /// <summary>
    /// Why a subject name could be mistaken for another, or null. Refused (never normalised, so what is
    /// bound is what the API server authenticates): invisible and bidi-control characters (Unicode format,
    /// separators, non-ASCII spaces), leading or trailing spaces, compatibility forms (not NFKC: fullwidth
    /// letters, ligatures) and letters of two confusable scripts in one name (a Cyrillic 'а' in "аlice").
    /// A name written wholly in one script passes.
    /// </summary>
    public static string? UnreadableName(string name)
    {
        foreach (var c in name)
        {
            var category = char.GetUnicodeCategory(c);
            if (category is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                || (category == UnicodeCategory.SpaceSeparator && c != ' '))
            {
                return $"contains the invisible character U+{(int)c:X4}; names must read as they are";
            }
        }

        if (name[0] == ' ' || name[^1] == ' ') return "starts or ends with a space";
        // Checked by block: the operator runs with invariant globalization, where string.Normalize is not available.
        if (name.FirstOrDefault(IsCompatibilityForm) is var form and not '\0')
        {
            return $"contains U+{(int)form:X4}, a compatibility form of another character (fullwidth, ligature, super- or subscript, letterlike, enclosed or mathematical); write the plain character (NFKC)";
        }

        var scripts = name.Where(char.IsLetter).Select(ConfusableScript).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        return scripts.Count > 1 ? $"mixes letters of the {string.Join(" and ", scripts)} scripts, which look alike; write it in one script" : null;
    }

    /// <summary>Characters NFKC would replace by another that looks the same: whole blocks of compatibility forms, and astral ones (mathematical letters).</summary>
    static bool IsCompatibilityForm(char c) =>
        c is (>= '\uFF00' and <= '\uFFEF') or (>= '\uFB00' and <= '\uFB4F') or (>= '\u2070' and <= '\u209F') or (>= '\u2100' and <= '\u214F')
            or (>= '\u2460' and <= '\u24FF') or (>= '\u1D00' and <= '\u1DBF') or (>= '\u3200' and <= '\u33FF')
        || char.IsSurrogate(c);

    /// <summary>The confusable script a letter belongs to (Latin, Greek, Cyrillic, Armenian, Cherokee), or null for any other.</summary>
    static string? ConfusableScript(char c) => c switch
    {
        <= '\u024F' or (>= '\u1E00' and <= '\u1EFF') => "Latin",
        (>= '\u0370' and <= '\u03FF') or (>= '\u1F00' and <= '\u1FFF') => "Greek",
        (>= '\u0400' and <= '\u052F') or (>= '\u1C80' and <= '\u1C8F') or (>= '\u2DE0' and <= '\u2DFF') or (>= '\uA640' and <= '\uA69F') => "Cyrillic",
        >= '\u0530' and <= '\u058F' => "Armenian",
        (>= '\u13A0' and <= '\u13FF') or (>= '\uAB70' and <= '\uABBF') => "Cherokee",
        _ => null,
    };

    /// <summary>
    /// Kubernetes identities a member or owner may not name: "system:" users and groups are the cluster's
    /// (system:authenticated is everyone, system:serviceaccounts every ServiceAccount); a ServiceAccount's
    /// username is listed as kind ServiceAccount, where its namespace is checked against the tenant.
    /// </summary>
    public static string? SystemIdentity(string field, string kind, string? name)
    {
        if (name is null || !name.StartsWith("system:", StringComparison.Ordinal)) return null;
        if (kind == "User" && name.StartsWith(KubernetesIdentities.ServiceAccountPrefix, StringComparison.Ordinal))
        {
            var parts = name[KubernetesIdentities.ServiceAccountPrefix.Length..].Split(':');
            var suggestion = parts.Length == 2 ? $"{{kind: ServiceAccount, name: {parts[0]}/{parts[1]}}}" : "kind ServiceAccount with name \"namespace/name\"";
            return $"{field}: \"{Shown(name)}\" is a ServiceAccount's username; list it as {suggestion}, so its namespace is checked against the tenant";
        }

        return $"{field}: \"{Shown(name)}\" is a Kubernetes system {(kind == "Group" ? "group" : "identity")} (\"system:\" names belong to the cluster and include identities outside the tenant)";
    }

    /// <summary>A member's name: a subject name, or for a ServiceAccount "namespace/name" (a DNS label and a DNS subdomain).</summary>
    public static string? MemberName(int i, WorkspaceMember member)
    {
        var field = $"spec.members[{i}].name";
        if (member.Kind != "ServiceAccount") return SubjectName(field, member.Name) ?? SystemIdentity(field, member.Kind, member.Name);
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
            var field = $"spec.owners[{i}].name";
            if ((SubjectName(field, owners![i].Name) ?? SystemIdentity(field, owners[i].Kind, owners[i].Name)) is { } bad) yield return bad;
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
        problems.AddRange(Publishers(tenant.Spec));
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

    /// <summary>A user-supplied string for a message: control and invisible characters escaped (so they show), long ones cut.</summary>
    static string? Shown(string? s)
    {
        if (s is null) return null;
        var cut = s.Length > 80 ? s[..80] + "..." : s;
        return string.Concat(cut.Select(c => char.IsControl(c) || IsInvisible(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }

    static bool IsInvisible(char c) => char.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
        || (char.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator && c != ' ');

    /// <summary>Saturating addition: a sum of quantities never throws; past the bound it stays at decimal.MaxValue.</summary>
    public static decimal Add(decimal a, decimal b) => b > 0 && a > decimal.MaxValue - b ? decimal.MaxValue : a + b;
}
