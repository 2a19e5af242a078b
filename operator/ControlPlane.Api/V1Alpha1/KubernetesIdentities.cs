namespace ControlPlane.Api.V1Alpha1;

/// <summary>How the API server names identities that are not people: ServiceAccounts, by username and by group.</summary>
public static class KubernetesIdentities
{
    /// <summary>A ServiceAccount authenticates as system:serviceaccount:&lt;namespace&gt;:&lt;name&gt;.</summary>
    public const string ServiceAccountPrefix = "system:serviceaccount:";

    /// <summary>Every ServiceAccount is in this group, and in system:serviceaccounts:&lt;namespace&gt;.</summary>
    public const string ServiceAccountsGroup = "system:serviceaccounts";

    /// <summary>
    /// Whether the requester is a ServiceAccount (a token someone holding the namespace can mint), not a
    /// person: by its username, or by its groups (a proxy that renames the user keeps them).
    /// </summary>
    public static bool IsServiceAccount(string? user, IEnumerable<string>? groups) =>
        (user?.StartsWith(ServiceAccountPrefix, StringComparison.Ordinal) ?? false)
        || (groups ?? []).Any(g => g == ServiceAccountsGroup || g.StartsWith(ServiceAccountsGroup + ":", StringComparison.Ordinal));

    /// <summary>The namespace of a ServiceAccount member ("namespace/name"), or null when the name has no namespace part.</summary>
    public static string? NamespaceOf(WorkspaceMember member) =>
        member.Kind == "ServiceAccount" && member.Name.Split('/') is [var ns, _] ? ns : null;
}
