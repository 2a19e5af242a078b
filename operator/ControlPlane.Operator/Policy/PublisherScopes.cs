using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// The publisher rule (issue 23): who may target what, from the Tenant's spec.publishers (subjects or groups
/// to scopes). Every author of an intent (its creator and every spec editor, with the groups the webhook
/// recorded) must hold a publisher scope covering the target. A tenant without publishers keeps the rule
/// from before they existed: any author publishes within the tenant's spec.scopes (checked elsewhere).
/// </summary>
public static class PublisherScopes
{
    /// <summary>The scopes <paramref name="author"/> may publish to, or null when the tenant declares no publishers (no publisher rule).</summary>
    public static IReadOnlyList<PublisherScope>? ScopesOf(Tenant tenant, Requester author)
    {
        if (tenant.Spec.Publishers is not { Count: > 0 } publishers) return null;
        return publishers
            .Where(p => (p.Subjects ?? []).Contains(author.User)
                        || (p.Groups ?? []).Any(g => !g.StartsWith("system:", StringComparison.Ordinal) && author.Groups.Contains(g)))
            .SelectMany(p => p.Scopes)
            .ToList();
    }

    /// <summary>Why <paramref name="author"/> may not publish <paramref name="target"/>, naming the dimension and the value outside; null when they may.</summary>
    public static string? Problem(TargetScope target, Requester author, Tenant tenant)
    {
        if (ScopesOf(tenant, author) is not { } scopes) return null;
        var what = $"the publisher scope of {author.User} in tenant {tenant.Metadata.Name}'s spec.publishers";
        if (scopes.Count == 0) return $"spec.targetScope: {author.User} holds no publisher scope in tenant {tenant.Metadata.Name}'s spec.publishers: they publish nowhere";
        var candidates = scopes.Where(s => s.AcquisitionBoundary == target.AcquisitionBoundary).ToList();
        if (candidates.Count == 0) return $"spec.targetScope.acquisitionBoundary: \"{target.AcquisitionBoundary}\" is outside {what} ({Listed(scopes.Select(s => s.AcquisitionBoundary))})";
        string? Narrow(string field, string? value, Func<PublisherScope, List<string>?> values)
        {
            if (string.IsNullOrEmpty(value)) return $"spec.targetScope.{field}: not declared; {what} is scoped by it ({Listed(candidates.SelectMany(c => values(c) ?? []))})";
            var inside = candidates.Where(c => (values(c) ?? []).Contains(value)).ToList();
            if (inside.Count == 0) return $"spec.targetScope.{field}: \"{value}\" is outside {what} ({Listed(candidates.SelectMany(c => values(c) ?? []))})";
            candidates = inside;
            return null;
        }

        if (Narrow("businessUnit", target.BusinessUnit, s => s.BusinessUnits) is { } bu) return bu;
        if (Narrow("siteClass", target.SiteClass, s => s.SiteClasses) is { } sc) return sc;
        var rings = target.Rings ?? [];
        for (var i = 0; i < rings.Count; i++)
        {
            if (!candidates.Any(c => (c.Rings ?? []).Contains(rings[i])))
            {
                return $"spec.targetScope.rings[{i}]: \"{rings[i]}\" is outside {what} ({Listed(candidates.SelectMany(c => c.Rings ?? []))})";
            }
        }

        return null;
    }

    /// <summary>Every author's problem, in order (distinct).</summary>
    public static List<string> Problems(TargetScope target, IEnumerable<Requester> authors, Tenant tenant) =>
        authors.Select(a => Problem(target, a, tenant)).OfType<string>().Distinct().ToList();

    static string Listed(IEnumerable<string> values)
    {
        var list = values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return list.Count == 0 ? "none" : string.Join(", ", list);
    }
}
