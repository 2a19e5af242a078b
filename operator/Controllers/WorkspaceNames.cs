using ControlPlane.Operator.Configuration;

namespace ControlPlane.Operator.Controllers;

/// <summary>
/// Names a workspace may not take: its name is its namespace's, so the cluster's own namespaces,
/// the operator's and those the platform lists would otherwise be handed to a tenant.
/// </summary>
public static class WorkspaceNames
{
    static readonly string[] BuiltIn = ["default", "kube-system", "kube-public", "kube-node-lease"];

    /// <summary>Why <paramref name="name"/> is reserved, or null when a workspace may take it.</summary>
    public static string? Reserved(string name, ControlPlaneOptions options)
    {
        if (name.StartsWith("kube-", StringComparison.Ordinal)) return "kube-* namespaces belong to the cluster";
        if (BuiltIn.Contains(name)) return "a namespace of the cluster itself";
        if (string.Equals(name, options.OperatorNamespace, StringComparison.Ordinal)) return "the operator's own namespace";
        if (options.ReservedNamespaces.Contains(name, StringComparer.Ordinal)) return "listed in ControlPlane:ReservedNamespaces";
        return null;
    }
}
