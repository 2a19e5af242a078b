namespace ControlPlane.Tests;

/// <summary>
/// The repository's root, for tests that read its files (docs, crds/, csproj files). Found here rather
/// than through ControlPlane.LocalEnv, which this project must not reference (it starts servers).
/// </summary>
internal static class Repository
{
    public static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"no ControlPlane.sln above {AppContext.BaseDirectory}");
    }
}
