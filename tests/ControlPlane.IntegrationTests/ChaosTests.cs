using ControlPlane.LocalEnv.Chaos;
using Xunit.Abstractions;
using Xunit;

namespace ControlPlane.Tests;

// Alone, after the other collections: it restarts its servers and loads both cores, which would
// stretch the other tests' deadlines.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ChaosCollection : ICollectionFixture<ChaosFixture>
{
    public const string Name = "chaos";
}

/// <summary>
/// Servers of the chaos test alone: it restarts the API server and Postgres and compacts etcd, and
/// counts every database, role and namespace, so it shares nothing with the other tests.
/// </summary>
public sealed class ChaosFixture : IAsyncLifetime
{
    public ChaosEnvironment Env { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Env = await ChaosEnvironment.StartAsync(Path.Combine(Path.GetTempPath(), "controlplane-chaos-test-" + Guid.NewGuid().ToString("N")[..8]),
            ControlPlane.LocalEnv.Program.FindRepoRoot());

    public async Task DisposeAsync() => await Env.DisposeAsync();
}

[Collection(ChaosCollection.Name)]
public sealed class ChaosTests(ChaosFixture fixture, ITestOutputHelper output)
{
    /// <summary>
    /// The reduced `make chaos`: 30 workspaces with databases applied at once; the operator (a child
    /// process with leader election) SIGKILLed at 5 seeded random moments and restarted, the API server
    /// and Postgres restarted and etcd compacted in between. Then: all Ready, exactly one row,
    /// allocation, database, role, namespace and Secret per workspace, the audit chain verifies with
    /// each change recorded once; deleting them all (one more kill meanwhile) leaves nothing. CHAOS_SEED replays a failure.
    /// </summary>
    [Fact]
    public async Task OperatorKilledAndServersRestarted_WhileConverging_LosesAndDuplicatesNothing_AndDeletionLeavesNothing()
    {
        var settings = ChaosSettings.Reduced(ChaosSettings.SeedFromEnvironment());
        var outcome = await new ChaosScenario(fixture.Env, settings, Say).RunAsync();
        Say(outcome.Report.ToJsonString());
        var log = "";
        if (outcome.Violations.Count > 0)
        {
            // The environment's folder goes with the fixture: keep the operator's log for the diagnosis.
            log = Path.Combine(Path.GetTempPath(), $"controlplane-chaos-{settings.Seed}-operator.log");
            File.Copy(Path.Combine(fixture.Env.Root, "operator.log"), log, overwrite: true);
        }

        Assert.True(outcome.Violations.Count == 0,
            $"seed {settings.Seed} (CHAOS_SEED={settings.Seed} replays it), operator log {log}:\n" + string.Join("\n", outcome.Violations));
        Assert.Equal(settings.Workspaces, (int)outcome.Report["afterConvergence"]!["serverDatabases"]!);
        Assert.Equal(0, (int)outcome.Report["afterDeletion"]!["serverDatabases"]!);
    }

    void Say(string line)
    {
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // the test has finished; its output is closed
        }
    }
}
