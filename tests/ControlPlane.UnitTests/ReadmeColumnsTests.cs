using ControlPlane.Operator.Crds;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>The README's `make up` transcript shows each kind's columns as kubectl prints them: in the CRD's order.</summary>
public sealed class ReadmeColumnsTests
{
    [Fact]
    public void EveryControlplaneTableInTheMakeUpExample_HasTheColumnsOfItsCrd_InOrder()
    {
        var readme = File.ReadAllLines(Path.Combine(Repository.Root(), "README.md"));
        var start = Array.FindIndex(readme, l => l.StartsWith("dotnet run --project tests/ControlPlane.LocalEnv", StringComparison.Ordinal));
        Assert.True(start > 0, "README.md: the `make up` transcript is gone");
        var end = Array.FindIndex(readme, start, l => l == "```");

        // kubectl get: NAME, then the printer columns without priority, upper-cased (NAMESPACE first with -A).
        // With -o wide, every column in the CRD's order.
        var columns = CrdGenerator.GenerateAll().SelectMany(c => new[] { false, true }.Select(wide => (
            Key: c.Spec.Names.Kind + (wide ? " -o wide" : ""),
            Value: string.Join(" ", c.Spec.Versions[0].AdditionalPrinterColumns.Where(p => wide || (p.Priority ?? 0) == 0).Select(p => p.Name.ToUpperInvariant())))))
            .ToList();
        var checkedTables = new List<string>();
        for (var i = start; i < end; i++)
        {
            var header = readme[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (header.Length < 2 || !(header[0] == "NAME" || (header[0] == "NAMESPACE" && header[1] == "NAME"))) continue;
            // Every kind of ours prints READY; Ingress and NetworkPolicy tables do not.
            if (!header.Contains("READY")) continue;
            var shown = string.Join(" ", header.SkipWhile(h => h is "NAMESPACE" or "NAME"));
            var kind = columns.FirstOrDefault(c => c.Value == shown).Key;
            Assert.True(kind is not null, $"README.md line {i + 1}: `{shown}` are no kind's columns as kubectl prints them:\n  "
                + string.Join("\n  ", columns.Select(c => $"{c.Key}: {c.Value}")));
            checkedTables.Add(kind.Split()[0]);
        }

        // Tenant, Workspace, Exposure, DeploymentIntent, Rollout, WorkspaceNetworkPolicy, BackupPlan, Backup.
        Assert.True(checkedTables.Distinct().Count() >= 8, $"only {string.Join(", ", checkedTables.Distinct())} found in the README's make up transcript");
    }
}
