using System.Text.RegularExpressions;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Policy;

/// <summary>One tenant's delegation of a domain (an exact host or a *.suffix pattern).</summary>
public sealed record DomainDelegation(string Tenant, string Domain);

/// <summary>
/// Hosts are delegated, never claimed: pure rules on where an Exposure may publish. A host is the
/// tenant's when the platform delegated it (Tenant spec.exposure.allowedDomains) and no other tenant
/// holds an overlapping delegation; a workspace's default domain (&lt;labels&gt;.&lt;workspace&gt;.&lt;Domain&gt;)
/// is that workspace's alone. Paths come from a safe character set and are compared normalised.
/// </summary>
public static partial class ExposureHosts
{
    public const int MaxPathLength = 1024;

    // RFC 3986 unreserved characters and '/': nothing ingress-nginx could read as configuration (;, {, }, #, spaces, quotes).
    [GeneratedRegex("^/[A-Za-z0-9._~/-]*$")]
    private static partial Regex SafePathRegex();

    /// <summary>Why <paramref name="path"/> cannot be published, naming the field; null when it is a clean prefix.</summary>
    public static string? PathProblem(string? path, string field = "spec.path")
    {
        if (string.IsNullOrEmpty(path)) return null;
        if (path.Length > MaxPathLength) return $"{field}: is {path.Length} characters long; at most {MaxPathLength} are allowed";
        if (!SafePathRegex().IsMatch(path))
        {
            return $"{field}: \"{Shown(path)}\" must start with '/' and contain only letters, digits, '-', '.', '_', '~' and '/' (no spaces, ';', '{{', '}}', '#', '?', '%', quotes or backslashes)";
        }

        // Nothing is collapsed silently: a path that would normalise to another is refused as written.
        var segments = path.TrimEnd('/').Split('/').Skip(1).ToList();
        if (path.Length > 1 && segments.Any(s => s.Length == 0)) return $"{field}: \"{path}\" has an empty segment ('//'); write the path with single slashes";
        if (segments.Any(s => s is "." or "..")) return $"{field}: \"{path}\" has a '.' or '..' segment; write the path it means";
        return null;
    }

    /// <summary>The route's path as served and compared: "/" when unset, without a trailing slash (/p and /p/ are one route).</summary>
    public static string NormalPath(string? path)
    {
        if (string.IsNullOrEmpty(path)) return "/";
        var trimmed = path.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed;
    }

    /// <summary>Two normalised prefixes overlap when one is a segment prefix of the other (/orders and /orders/admin; / and anything).</summary>
    public static bool PathsOverlap(string a, string b) =>
        a == b || a == "/" || b == "/" || b.StartsWith(a + "/", StringComparison.Ordinal) || a.StartsWith(b + "/", StringComparison.Ordinal);

    public static bool IsPattern(string domain) => domain.StartsWith("*.", StringComparison.Ordinal);

    static string SuffixOf(string domain) => IsPattern(domain) ? domain[2..] : domain;

    /// <summary>True when <paramref name="host"/> lies strictly under <paramref name="suffix"/> (one or more labels more).</summary>
    public static bool Under(string host, string suffix) => host.EndsWith("." + suffix, StringComparison.Ordinal);

    /// <summary>A delegation covers a host: an exact one that host only; *.s every host under s, and every wildcard *.t with t at or under s.</summary>
    public static bool Covers(string domain, string host)
    {
        if (!IsPattern(domain)) return !IsPattern(host) && host == domain;
        var suffix = SuffixOf(domain);
        return IsPattern(host) ? SuffixOf(host) == suffix || Under(SuffixOf(host), suffix) : Under(host, suffix);
    }

    /// <summary>Two delegations overlap when some host is covered by both.</summary>
    public static bool Overlap(string a, string b) => (IsPattern(a), IsPattern(b)) switch
    {
        (false, false) => a == b,
        (false, true) => Under(a, SuffixOf(b)),
        (true, false) => Under(b, SuffixOf(a)),
        _ => SuffixOf(a) == SuffixOf(b) || Under(SuffixOf(a), SuffixOf(b)) || Under(SuffixOf(b), SuffixOf(a)),
    };

    /// <summary>The platform's default-domain zone: a delegation may not reach into it (workspaces own their default domains).</summary>
    static bool InPlatformZone(string domain, ExposureOptions options) => SuffixOf(domain) == options.Domain || Overlap(domain, "*." + options.Domain);

    /// <summary>What is wrong with one delegation of a Tenant, judged alone and against every other tenant's.</summary>
    public static IEnumerable<string> DelegationProblems(string tenant, IReadOnlyList<string>? domains, IEnumerable<DomainDelegation> others, ExposureOptions options)
    {
        var all = others.Where(o => o.Tenant != tenant).ToList();
        for (var i = 0; i < (domains?.Count ?? 0); i++)
        {
            var field = $"spec.exposure.allowedDomains[{i}]";
            var d = domains![i];
            var suffix = SuffixOf(d);
            if (!SpecRules.IsDnsSubdomain(suffix) || !suffix.Split('.').All(SpecRules.IsDnsLabel))
            {
                yield return $"{field}: \"{Shown(d)}\" must be a host (api.acme.example) or a pattern *.suffix (*.acme.example) in lowercase DNS syntax";
                continue;
            }

            if (IsPattern(d) && !suffix.Contains('.'))
            {
                yield return $"{field}: \"{d}\" delegates a whole top-level domain; a pattern needs at least two labels after '*.'";
                continue;
            }

            if (InPlatformZone(d, options))
            {
                yield return $"{field}: \"{d}\" reaches into the platform's default domain {options.Domain}, whose hosts belong to each workspace (<name>.<workspace>.{options.Domain})";
                continue;
            }

            for (var j = 0; j < i; j++)
            {
                if (Overlap(d, domains[j])) yield return $"{field}: \"{d}\" overlaps spec.exposure.allowedDomains[{j}] \"{domains[j]}\"; list each delegation once";
            }

            if (all.FirstOrDefault(o => Overlap(d, o.Domain)) is { } taken)
            {
                yield return $"{field}: \"{d}\" overlaps \"{taken.Domain}\", delegated to tenant {taken.Tenant}; a host is delegated to one tenant only";
            }
        }
    }

    public static IEnumerable<DomainDelegation> DelegationsOf(IEnumerable<Tenant> tenants) =>
        tenants.SelectMany(t => (t.Spec.Exposure?.AllowedDomains ?? []).Select(d => new DomainDelegation(t.Metadata.Name, d)));

    /// <summary>
    /// Why an Exposure of <paramref name="workspace"/> (tenant <paramref name="tenant"/>) may not publish at
    /// <paramref name="host"/>, naming spec.host; null when the host is its workspace's default domain, or
    /// delegated to its tenant and to no other (a contested delegation publishes for nobody).
    /// </summary>
    public static string? HostProblem(string host, string workspace, string tenant, IEnumerable<DomainDelegation> delegations, ExposureOptions options)
    {
        // The schema's pattern bounds neither labels nor length: an Ingress the API server refuses would fail every pass.
        if (!SpecRules.IsDnsSubdomain(SuffixOf(host)) || !SuffixOf(host).Split('.').All(SpecRules.IsDnsLabel))
        {
            return $"spec.host: \"{Shown(host)}\" is not a DNS name (labels of at most 63 characters, at most 253 in all; without spec.host the default <name>.{workspace}.{options.Domain} is judged)";
        }

        var zone = options.Domain;
        if (InPlatformZone(host, options))
        {
            var own = workspace + "." + zone;
            return !IsPattern(host) && Under(host, own)
                ? null
                : $"spec.host: \"{host}\" is under the platform's domain {zone}, where workspace {workspace} publishes only under its own default domain (<name>.{own}); no wildcard";
        }

        var list = delegations.ToList();
        var mine = list.Where(d => d.Tenant == tenant).Select(d => d.Domain).ToList();
        if (!mine.Any(d => Covers(d, host)))
        {
            var shown = mine.Count == 0 ? "none" : string.Join(", ", mine);
            return $"spec.host: \"{host}\" is not delegated to tenant {tenant} (its spec.exposure.allowedDomains: {shown}); publish under the workspace's default domain <name>.{workspace}.{zone}, or ask a platform administrator to delegate the host";
        }

        return list.Any(d => d.Tenant != tenant && Overlap(d.Domain, host))
            ? $"spec.host: \"{host}\" is also delegated to another tenant: a contested delegation publishes nothing until a platform administrator resolves it"
            : null;
    }

    static string Shown(string s) =>
        string.Concat((s.Length > 80 ? s[..80] + "..." : s).Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
