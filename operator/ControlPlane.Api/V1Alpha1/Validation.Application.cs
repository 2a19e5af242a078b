namespace ControlPlane.Api.V1Alpha1;

/// <summary>The scope rules of Applications and of a Tenant's publishers: every value within the tenant's spec.scopes, each problem naming the field.</summary>
public static partial class SpecRules
{
    /// <summary>A tenant's spec.publishers: each entry names someone and only scopes inside spec.scopes.</summary>
    public static List<string> Publishers(TenantSpec spec)
    {
        var problems = new List<string>();
        var publishers = spec.Publishers ?? [];
        for (var i = 0; i < publishers.Count; i++)
        {
            var p = publishers[i];
            var field = $"spec.publishers[{i}]";
            if ((p.Subjects?.Count ?? 0) + (p.Groups?.Count ?? 0) == 0) problems.Add($"{field}: name at least one of subjects and groups: an entry that applies to nobody grants nothing");
            foreach (var (g, j) in (p.Groups ?? []).Select((g, j) => (g, j)))
            {
                if (string.IsNullOrWhiteSpace(g) || g.StartsWith("system:", StringComparison.Ordinal))
                {
                    problems.Add($"{field}.groups[{j}]: \"{Shown(g)}\" is not allowed: a system: group (every ServiceAccount, everyone authenticated) never publishes");
                }
            }

            foreach (var (s, j) in (p.Subjects ?? []).Select((s, j) => (s, j)))
            {
                if (string.IsNullOrWhiteSpace(s)) problems.Add($"{field}.subjects[{j}]: empty");
            }

            if (p.Scopes is not { Count: > 0 }) problems.Add($"{field}.scopes: at least one scope is needed");
            for (var k = 0; k < (p.Scopes?.Count ?? 0); k++)
            {
                var scope = p.Scopes![k];
                var at = $"{field}.scopes[{k}]";
                var boundary = spec.Scopes?.FirstOrDefault(s => s.AcquisitionBoundary == scope.AcquisitionBoundary);
                if (boundary is null)
                {
                    problems.Add($"{at}.acquisitionBoundary: \"{Shown(scope.AcquisitionBoundary)}\" is not one of the tenant's spec.scopes");
                    continue;
                }

                problems.AddRange(Outside(scope.BusinessUnits, boundary.BusinessUnits, $"{at}.businessUnits", $"a business unit of {boundary.AcquisitionBoundary} in the tenant's spec.scopes"));
                problems.AddRange(Outside(scope.SiteClasses, boundary.SiteClasses, $"{at}.siteClasses", $"a site class of {boundary.AcquisitionBoundary} in the tenant's spec.scopes"));
                problems.AddRange(RingNames(scope.Rings, $"{at}.rings"));
            }
        }

        return problems;
    }

    /// <summary>An Application's spec.allowedScope against its tenant's spec.scopes: each value within them, each problem naming the field.</summary>
    public static List<string> ApplicationScope(ApplicationScope scope, Tenant tenant, string field = "spec.allowedScope")
    {
        var problems = new List<string>();
        var scopes = tenant.Spec.Scopes ?? [];
        var boundaries = new List<TenantScope>();
        for (var i = 0; i < scope.AcquisitionBoundaries.Count; i++)
        {
            var b = scopes.FirstOrDefault(s => s.AcquisitionBoundary == scope.AcquisitionBoundaries[i]);
            if (b is null) problems.Add($"{field}.acquisitionBoundaries[{i}]: \"{Shown(scope.AcquisitionBoundaries[i])}\" is not one of tenant {tenant.Metadata.Name}'s spec.scopes ({Listed(scopes.Select(s => s.AcquisitionBoundary))})");
            else boundaries.Add(b);
        }

        var names = string.Join(", ", boundaries.Select(b => b.AcquisitionBoundary));
        problems.AddRange(Outside(scope.BusinessUnits, boundaries.SelectMany(b => b.BusinessUnits ?? []).Distinct().ToList(), $"{field}.businessUnits",
            $"a business unit of {(names.Length == 0 ? "its acquisition boundaries" : names)} in tenant {tenant.Metadata.Name}'s spec.scopes"));
        problems.AddRange(Outside(scope.SiteClasses, boundaries.SelectMany(b => b.SiteClasses ?? []).Distinct().ToList(), $"{field}.siteClasses",
            $"a site class of {(names.Length == 0 ? "its acquisition boundaries" : names)} in tenant {tenant.Metadata.Name}'s spec.scopes"));
        problems.AddRange(RingNames(scope.Rings, $"{field}.rings"));
        foreach (var (values, name) in new[] { (scope.AcquisitionBoundaries, "acquisitionBoundaries"), (scope.BusinessUnits, "businessUnits"), (scope.SiteClasses, "siteClasses"), (scope.Rings, "rings") })
        {
            if (values.Count == 0) problems.Add($"{field}.{name}: at least one value is needed (every dimension is declared)");
        }

        return problems;
    }

    static IEnumerable<string> Outside(List<string>? values, List<string>? allowed, string field, string what) =>
        (values ?? []).Select((v, i) => (allowed ?? []).Contains(v) ? null : $"{field}[{i}]: \"{Shown(v)}\" is not {what} ({Listed(allowed ?? [])})").OfType<string>();

    static IEnumerable<string> RingNames(List<string>? rings, string field) =>
        (rings ?? []).Select((r, i) => IsDnsLabel(r) ? null : $"{field}[{i}]: \"{Shown(r)}\" is not a DNS label (a ring is the controlplane.io/ring label of workspaces)").OfType<string>();

    static string Listed(IEnumerable<string> values) => values.Any() ? string.Join(", ", values) : "none";
}
