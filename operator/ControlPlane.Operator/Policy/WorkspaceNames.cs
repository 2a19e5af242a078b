using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Names a workspace may not take: its name is its namespace's, so the cluster's own namespaces, the
/// operator's, the common platform add-ons' (installed later, into a namespace a tenant must not hold
/// first) and those the platform lists would otherwise be handed to a tenant. Optionally a workspace's
/// name must also start with its tenant's name (Capsule's forceTenantPrefix) or match the platform's allowlist.
/// </summary>
public static class WorkspaceNames
{
    /// <summary>Always reserved, whatever the configuration: the cluster's own.</summary>
    static readonly string[] Cluster = ["default", "kube-*"];

    /// <summary>
    /// Shipped defaults (ControlPlane:ReservedNamespaceDefaults=false clears them): where the common
    /// platform ecosystem installs itself, by exact name or glob.
    /// </summary>
    public static readonly IReadOnlyList<string> PlatformDefaults =
    [
        "openshift", "openshift-*", "istio-*", "istio-system", "istio-ingress", "kyverno", "kyverno-*", "cattle-*", "fleet-*", "rancher-*", "cert-manager",
        "argocd", "argo-*", "flux-system", "gatekeeper-system", "monitoring", "logging", "observability", "ingress-nginx", "linkerd", "linkerd-*",
        "calico-*", "tigera-operator", "cilium", "cilium-*", "velero", "cnpg-system", "capsule-system", "crossplane-system", "external-secrets",
        "external-dns", "metallb-system", "longhorn-system", "rook-ceph", "local-path-storage", "knative-*", "tekton-*", "keda", "olm", "operators",
        "open-cluster-management*", "gke-*", "gmp-*", "amazon-*", "aws-*", "azure-*", "karpenter", "vault", "sealed-secrets", "kubernetes-dashboard",
        "opentelemetry-operator-system", "prometheus", "grafana", "loki", "trivy-system", "falco", "harbor", "envoy-gateway-system", "gateway-system",
    ];

    /// <summary>Why <paramref name="name"/> is reserved, or null when a workspace may take it.</summary>
    public static string? Reserved(string name, ControlPlaneOptions options)
    {
        if (Cluster.FirstOrDefault(p => Matches(p, name)) is { } cluster) return $"matches {cluster}: a namespace of the cluster itself";
        if (string.Equals(name, options.OperatorNamespace, StringComparison.Ordinal)) return "the operator's own namespace";
        if (options.ReservedNamespaces.FirstOrDefault(p => Matches(p, name)) is { } listed) return $"matches {listed} in ControlPlane:ReservedNamespaces";
        if (options.ReservedNamespaceDefaults && PlatformDefaults.FirstOrDefault(p => Matches(p, name)) is { } platform)
        {
            return $"matches {platform}: a namespace the platform's add-ons install into (ControlPlane:ReservedNamespaceDefaults)";
        }

        return null;
    }

    /// <summary>
    /// Why a new workspace of <paramref name="tenant"/> may not be named <paramref name="name"/> (the
    /// tenant prefix or the allowlist), or null. Only for new workspaces: one provisioned before the
    /// platform turned the rule on keeps its name.
    /// </summary>
    public static string? NotAllowed(string name, string tenant, ControlPlaneOptions options)
    {
        if (options.ForceTenantPrefix && !name.StartsWith(tenant + "-", StringComparison.Ordinal))
        {
            return $"must start with its tenant's name and a dash (\"{tenant}-\"; ControlPlane:ForceTenantPrefix)";
        }

        var allowed = options.AllowedWorkspaceNames.Select(p => p.Replace("{tenant}", tenant, StringComparison.Ordinal)).ToList();
        return allowed.Count == 0 || allowed.Any(p => Matches(p, name))
            ? null
            : $"matches none of the names the platform allows (ControlPlane:AllowedWorkspaceNames: {string.Join(", ", allowed)})";
    }

    /// <summary>
    /// The one answer for admission and the reconciler: the problem with the name, naming metadata.name, or null.
    /// <paramref name="tenants"/>: every tenant's name, for <see cref="AnotherTenantsPrefix"/>.
    /// </summary>
    public static string? Problem(string name, string tenant, ControlPlaneOptions options, bool isNew, IEnumerable<string>? tenants = null)
    {
        if (Reserved(name, options) is { } reserved) return $"metadata.name: \"{name}\" is reserved ({reserved}); a workspace's name is its namespace's name";
        if (!isNew) return null;
        return (NotAllowed(name, tenant, options) ?? AnotherTenantsPrefix(name, tenant, options, tenants ?? [])) is { } notAllowed ? $"metadata.name: \"{name}\" {notAllowed}" : null;
    }

    /// <summary>
    /// Where names are partitioned by tenant prefix (ForceTenantPrefix, or an allowlist with {tenant}), a name under a
    /// longer tenant's prefix is that tenant's: tenant "acme" would otherwise take "acme-corp-prod" before tenant
    /// "acme-corp" does, or its ServiceAccounts' namespaces (Capsule's prefix overlap).
    /// </summary>
    public static string? AnotherTenantsPrefix(string name, string tenant, ControlPlaneOptions options, IEnumerable<string> tenants)
    {
        if (!options.ForceTenantPrefix && !options.AllowedWorkspaceNames.Any(p => p.Contains("{tenant}", StringComparison.Ordinal))) return null;
        var owner = tenants.Where(t => t != tenant && t.Length > tenant.Length && name.StartsWith(t + "-", StringComparison.Ordinal))
            .OrderByDescending(t => t.Length).FirstOrDefault();
        return owner is null ? null : $"starts with \"{owner}-\", the prefix of tenant {owner}: a name under another tenant's prefix is that tenant's";
    }

    /// <summary>
    /// The other direction of <see cref="AnotherTenantsPrefix"/>: a new tenant whose prefix already holds another tenant's
    /// workspaces would find names under its own prefix taken (refused at its creation, naming one), or null.
    /// </summary>
    public static string? PrefixTakenBy(string tenant, ControlPlaneOptions options, IEnumerable<(string Workspace, string Tenant)> workspaces)
    {
        if (!options.ForceTenantPrefix && !options.AllowedWorkspaceNames.Any(p => p.Contains("{tenant}", StringComparison.Ordinal))) return null;
        var taken = workspaces.Where(w => w.Tenant != tenant && w.Workspace.StartsWith(tenant + "-", StringComparison.Ordinal)).OrderBy(w => w.Workspace, StringComparer.Ordinal).FirstOrDefault();
        return taken.Workspace is null ? null
            : $"metadata.name: workspace {taken.Workspace} of tenant {taken.Tenant} is already under the prefix \"{tenant}-\" this tenant's workspaces must take; choose another tenant name";
    }

    /// <summary>A glob over a whole name: '*' stands for any run of characters (none included); everything else is literal.</summary>
    public static bool Matches(string pattern, string name)
    {
        var parts = pattern.Split('*');
        if (parts.Length == 1) return string.Equals(pattern, name, StringComparison.Ordinal);
        if (!name.StartsWith(parts[0], StringComparison.Ordinal) || !name.EndsWith(parts[^1], StringComparison.Ordinal)
            || name.Length < parts[0].Length + parts[^1].Length) return false;
        var at = parts[0].Length;
        var end = name.Length - parts[^1].Length;
        foreach (var middle in parts[1..^1])
        {
            var found = name.IndexOf(middle, at, end - at, StringComparison.Ordinal);
            if (found < 0) return false;
            at = found + middle.Length;
        }

        return true;
    }
}
