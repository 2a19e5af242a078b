namespace ControlPlane.LocalEnv;

/// <summary>Where `make tools` puts what is not a Debian package, and the PATH line a person needs to use it.</summary>
public static class ToolPaths
{
    /// <summary>hack/install-helm.sh's destination ($HELM_INSTALL_DIR, else ~/.local/share/controlplane-tools/helm).</summary>
    public static string HelmDirectory(Func<string, string?> env) =>
        env("HELM_INSTALL_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "controlplane-tools", "helm");

    /// <summary>
    /// `export PATH=...` when helm is installed in <paramref name="helmDirectory"/> but that directory is
    /// not on <paramref name="path"/>; null when there is nothing to add.
    /// </summary>
    public static string? HelmPathLine(string? path, string helmDirectory, Func<string, bool> exists)
    {
        if (!exists(Path.Combine(helmDirectory, "helm"))) return null;
        var onPath = (path ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(p => string.Equals(Path.TrimEndingDirectorySeparator(p), Path.TrimEndingDirectorySeparator(helmDirectory), StringComparison.Ordinal));
        return onPath ? null : $"export PATH=\"{helmDirectory}:$PATH\"   # helm, as make tools installed it";
    }

    /// <summary>
    /// `export PATH=...` for the kubectl plugin `make plugin` wrote to <paramref name="binDirectory"/>
    /// (kubectl finds kubectl-controlplane on the PATH); null when it is not built or already on the PATH.
    /// </summary>
    public static string? PluginPathLine(string? path, string binDirectory, Func<string, bool> exists)
    {
        if (!exists(Path.Combine(binDirectory, "kubectl-controlplane"))) return null;
        var onPath = (path ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(p => string.Equals(Path.TrimEndingDirectorySeparator(p), Path.TrimEndingDirectorySeparator(binDirectory), StringComparison.Ordinal));
        return onPath ? null : $"export PATH=\"{binDirectory}:$PATH\"   # kubectl controlplane, as make plugin built it";
    }
}
