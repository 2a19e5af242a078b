using ControlPlane.LocalEnv.Chaos;

namespace ControlPlane.Tests;

/// <summary>
/// The operator as its own process against this collection's control plane, so a test can SIGKILL it (no graceful stop,
/// no lease release, a delivery or reconcile cut wherever it was). Shared by the tests that need a real kill
/// (AccessRequestTests.Faults, NotificationChannelTests.Kill).
/// </summary>
public static class ChildOperator
{
    /// <summary>What every test operator gets (the operator's own ServiceAccount, the collection's Postgres, leader election
    /// on <paramref name="lease"/> with short terms, no webhook), plus <paramref name="extra"/> (ControlPlane:X keys) over it.</summary>
    public static IReadOnlyDictionary<string, string> Settings(ClusterFixture cluster, string lease, IReadOnlyDictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["ControlPlane:Kubeconfig"] = cluster.OperatorKubeconfigPath,
            ["ControlPlane:SystemDatabase"] = cluster.Postgres.ConnectionString(),
            ["ControlPlane:Regions:eu:Database"] = cluster.Postgres.RegionConnectionString(),
            ["ControlPlane:KeyEncryptionKey"] = cluster.KeyEncryptionKey,
            ["ControlPlane:Workers"] = "2",
            ["ControlPlane:MaxTransientRetryDelay"] = "00:00:01",
            ["ControlPlane:LeaderElection:Enabled"] = "true",
            ["ControlPlane:LeaderElection:LeaseName"] = lease,
            ["ControlPlane:LeaderElection:LeaseDuration"] = "00:00:04",
            ["ControlPlane:LeaderElection:RenewDeadline"] = "00:00:03",
            ["ControlPlane:LeaderElection:RetryPeriod"] = "00:00:00.500",
            ["ControlPlane:Webhook:Enabled"] = "false",
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft"] = "Warning",
            ["Logging:LogLevel:System"] = "Warning",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>()) settings[key] = value;
        return settings;
    }

    /// <summary>Starts one incarnation (`dotnet ControlPlane.Operator.dll`), its output appended to <paramref name="log"/>.</summary>
    public static OperatorProcess Start(ClusterFixture cluster, string lease, StreamWriter log, int incarnation = 1, IReadOnlyDictionary<string, string>? extra = null) =>
        OperatorProcess.Start(OperatorProcess.FindDll(ControlPlane.LocalEnv.Program.FindRepoRoot()), Settings(cluster, lease, extra), incarnation, log);
}
