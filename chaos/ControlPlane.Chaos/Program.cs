using System.Globalization;
using System.Text.Json;
using ControlPlane.LocalEnv.Chaos;

namespace ControlPlane.Chaos;

/// <summary>
/// `make chaos`: 200 workspaces with databases applied at once while the operator is SIGKILLed at 20
/// seeded random moments, the API server restarted twice, Postgres once and etcd compacted once;
/// then every invariant checked, everything deleted, and nothing may be left. Writes
/// chaos/results/latest.json; exits 1 when an invariant does not hold. CHAOS_SEED replays a run;
/// CHAOS_REDUCED=1 runs the reduced scenario of `make test`.
/// </summary>
public static class Program
{
    public static async Task<int> Main()
    {
        var repo = ControlPlane.LocalEnv.Program.FindRepoRoot();
        var seed = ChaosSettings.SeedFromEnvironment();
        var settings = Environment.GetEnvironmentVariable("CHAOS_REDUCED") == "1" ? ChaosSettings.Reduced(seed) : ChaosSettings.Full(seed);
        var root = Path.Combine(Path.GetTempPath(), "controlplane-chaos-" + Guid.NewGuid().ToString("N")[..6]);
        var dir = Path.Combine(repo, "chaos", "results");
        Directory.CreateDirectory(dir);
        ChaosOutcome outcome;
        await using (var env = await ChaosEnvironment.StartAsync(root, repo))
        {
            outcome = await new ChaosScenario(env, settings, Console.WriteLine).RunAsync();
            // The operator's log goes away with the environment: keep it beside the results.
            var log = Path.Combine(root, "operator.log");
            if (File.Exists(log))
            {
                File.Copy(log, Path.Combine(dir, "latest-operator.log"), overwrite: true);
                outcome.Report["operator"]!["log"] = "chaos/results/latest-operator.log";
            }
        }

        var json = outcome.Report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        await File.WriteAllTextAsync(Path.Combine(dir, "latest.json"), json);
        await File.WriteAllTextAsync(Path.Combine(dir, DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + ".json"), json);
        Console.WriteLine($"wrote {Path.Combine(dir, "latest.json")}");
        return outcome.Violations.Count == 0 ? 0 : 1;
    }
}
