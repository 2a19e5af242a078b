namespace ControlPlane.LocalEnv.Chaos;

/// <summary>
/// The servers of one chaos run, all its own: a local control plane with the manifests installed
/// (`make install`), the operator's ServiceAccount kubeconfig, and a PostgreSQL with the
/// non-superuser region role.
/// </summary>
public sealed class ChaosEnvironment : IAsyncDisposable
{
    ChaosEnvironment(string root, string repo, LocalControlPlane plane, LocalPostgres postgres, string operatorKubeconfig)
    {
        Root = root;
        Repo = repo;
        Plane = plane;
        Postgres = postgres;
        OperatorKubeconfig = operatorKubeconfig;
    }

    public string Root { get; }
    public string Repo { get; }
    public LocalControlPlane Plane { get; }
    public LocalPostgres Postgres { get; }
    public string OperatorKubeconfig { get; }

    public static async Task<ChaosEnvironment> StartAsync(string root, string repo, bool fsync = false)
    {
        var plane = await LocalControlPlane.StartAsync(Path.Combine(root, "k8s"));
        try
        {
            if (!plane.IsLocal) throw new InvalidOperationException("the chaos scenario restarts the API server and compacts etcd: it needs the local control plane (unset CONTROLPLANE_TEST_KUBECONFIG)");
            var pg = await LocalPostgres.StartAsync(root, fsync);
            try
            {
                await plane.InstallManifestsAsync(repo);
                var kubeconfig = await plane.OperatorKubeconfigAsync();
                return new ChaosEnvironment(root, repo, plane, pg, kubeconfig);
            }
            catch
            {
                await pg.DisposeAsync();
                throw;
            }
        }
        catch
        {
            await plane.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Postgres.DisposeAsync();
        await Plane.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
