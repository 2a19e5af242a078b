using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Argo CD's verdict on a WorkspaceNetworkPolicy's status (config/argocd/health.lua run by Lua 5.4, as
/// ChartTests does): it needs the lua5.4 that `make tools` installs, so it is not in the unit project.
/// </summary>
public sealed class WorkspaceNetworkPolicyHealthTests
{
    [Theory]
    [InlineData("True", "Rendered", "False", "AllRulesRendered", "Healthy")]
    [InlineData("False", "RulesDropped", "True", "RulesDropped", "Degraded")]
    [InlineData("False", "PolicyConflict", "False", "AllRulesRendered", "Degraded")]
    [InlineData("False", "DatabaseUnavailable", "False", "AllRulesRendered", "Progressing")]
    public async Task ArgoCdHealth_ReadsDegraded_AsAbnormalWhenTrue(string ready, string readyReason, string degraded, string degradedReason, string verdict)
    {
        var obj = System.Text.Json.Nodes.JsonNode.Parse($$$$$"""
            {"metadata":{"name":"api","generation":2},"status":{"observedGeneration":2,"conditions":[
              {"type":"Ready","status":"{{{{{ready}}}}}","reason":"{{{{{readyReason}}}}}","message":"m","observedGeneration":2},
              {"type":"Degraded","status":"{{{{{degraded}}}}}","reason":"{{{{{degradedReason}}}}}","message":"d","observedGeneration":2}]}}
            """)!;
        Assert.Equal(verdict, (await Tools.ArgoHealthAsync(obj)).Status);
    }
}
