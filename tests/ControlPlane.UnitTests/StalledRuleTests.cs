using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using k8s.Models;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>kstatus's Stalled: the pure rule (Policy/StalledRule.cs) and where it joins a status write (Kinds/StalledStatus.cs).</summary>
public sealed class StalledRuleTests
{
    static readonly DateTime T0 = new(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc);
    static readonly DateTime T1 = T0.AddMinutes(5);

    static V1Condition Ready(string status, string reason, string message = "why") => new() { Type = "Ready", Status = status, Reason = reason, Message = message };

    [Fact]
    public void EveryKind_HasARule()
    {
        string[] kinds = [Tenant.KubeKind, Workspace.KubeKind, WorkspaceNetworkPolicy.KubeKind, Exposure.KubeKind, Approval.KubeKind, Rollout.KubeKind,
            DeploymentIntent.KubeKind, BackupPlan.KubeKind, Backup.KubeKind, Restore.KubeKind, Application.KubeKind, SecurityException.KubeKind, AccessRequest.KubeKind, BreakGlass.KubeKind,
            NotificationChannel.KubeKind];
        Assert.Equal(kinds.Order(), StalledRule.Kinds.Order());
    }

    [Theory]
    [InlineData("Rollout", "RolledBack", "GateBreached")]
    [InlineData("Rollout", "Failed", "ContainerNotFound")]
    [InlineData("DeploymentIntent", "Denied", "Vulnerable")]
    [InlineData("Backup", "Failed", "PlanNotFound")]
    [InlineData("Restore", "Failed", "OutsideRecoverabilityWindow")]
    [InlineData("Tenant", "Failed", "InvalidRegion")]
    [InlineData("Workspace", "Failed", "TenantNotFound")]
    [InlineData("Exposure", "Rejected", "Rejected")]
    public void TerminalPhase_IsStalled_WithReadysReasonAndMessage(string kind, string phase, string reason)
    {
        var verdict = StalledRule.Of(kind, phase, Ready("False", reason, "the message"));
        Assert.Equal(new StalledVerdict(reason, "the message"), verdict);
    }

    [Theory]
    [InlineData("Exposure", "Draft", "Conflict")]
    [InlineData("Exposure", "PendingApproval", "HostNotDelegated")]
    [InlineData("BackupPlan", null, "InvalidSchedule")]
    [InlineData("WorkspaceNetworkPolicy", null, "PolicyConflict")]
    [InlineData("Approval", null, "SelfApproval")]
    public void RefusingReason_IsStalled_WhateverThePhase(string kind, string? phase, string reason) =>
        Assert.Equal(reason, StalledRule.Of(kind, phase, Ready("False", reason))?.Reason);

    [Theory]
    [InlineData("Rollout", "Progressing", "False", "RingProgressing")]
    [InlineData("Rollout", "Succeeded", "True", "Succeeded")]
    [InlineData("Backup", "Running", "False", "Running")]
    [InlineData("Exposure", "Draft", "False", "BackendNotFound")]
    [InlineData("Approval", null, "False", "TargetNotFound")]
    [InlineData("Workspace", "Failed", "False", "TenantSuspended")]
    [InlineData("Workspace", "Failed", "False", "DatabaseUnavailable")]
    [InlineData("Tenant", "Pending", "False", "DatabaseUnavailable")]
    [InlineData("NotAKind", "Failed", "False", "Failed")]
    public void ProgressingOrWaiting_IsNotStalled(string kind, string? phase, string status, string reason) =>
        Assert.Null(StalledRule.Of(kind, phase, Ready(status, reason)));

    [Fact]
    public void TerminalPhase_WithoutReady_SaysThePhase() =>
        Assert.Equal("RolledBack", StalledRule.Of("Rollout", "RolledBack", null)?.Reason);

    static JsonObject Obj(long generation, JsonObject? status) =>
        new() { ["kind"] = "Rollout", ["metadata"] = new JsonObject { ["name"] = "r", ["generation"] = generation }, ["status"] = status };

    static JsonObject Status(string phase, string readyStatus, string reason, params JsonObject[] more)
    {
        var conditions = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = readyStatus, ["reason"] = reason, ["message"] = "m", ["observedGeneration"] = 2 });
        foreach (var c in more) conditions.Add(c);
        return new JsonObject { ["observedGeneration"] = 2, ["phase"] = phase, ["conditions"] = conditions };
    }

    static JsonObject? Condition(JsonObject status, string type) =>
        status["conditions"]?.AsArray().Select(c => c!.AsObject()).FirstOrDefault(c => c["type"]!.GetValue<string>() == type);

    [Fact]
    public void Shape_AddsStalled_AtTheCurrentGeneration_AndFillsObservedGeneration()
    {
        var status = Status("RolledBack", "False", "GateBreached");
        status.Remove("observedGeneration");
        StalledStatus.Shape("Rollout", Obj(2, null), status, T0);
        var stalled = Condition(status, "Stalled")!;
        Assert.Equal("True", stalled["status"]!.GetValue<string>());
        Assert.Equal("GateBreached", stalled["reason"]!.GetValue<string>());
        Assert.Equal("m", stalled["message"]!.GetValue<string>());
        Assert.Equal(2, stalled["observedGeneration"]!.GetValue<long>());
        Assert.Equal(2, status["observedGeneration"]!.GetValue<long>());
    }

    [Fact]
    public void Shape_OfAnAlreadyStalledStatus_ChangesNothing_SoNoWrite()
    {
        var first = Status("RolledBack", "False", "GateBreached");
        StalledStatus.Shape("Rollout", Obj(2, null), first, T0);
        // The next pass computes the same status again, from a fresh list (no Stalled in it) and later.
        var again = Status("RolledBack", "False", "GateBreached");
        StalledStatus.Shape("Rollout", Obj(2, first.DeepClone().AsObject()), again, T1);
        Assert.True(JsonNode.DeepEquals(first, again), again.ToJsonString());
    }

    [Fact]
    public void Shape_RemovesStalled_WhenTheObjectCanProgress()
    {
        var stalled = Status("RolledBack", "False", "GateBreached");
        StalledStatus.Shape("Rollout", Obj(2, null), stalled, T0);
        var carried = Condition(stalled, "Stalled")!.DeepClone().AsObject();
        var progressing = Status("Progressing", "False", "RingProgressing", carried);
        StalledStatus.Shape("Rollout", Obj(3, stalled), progressing, T1);
        Assert.Null(Condition(progressing, "Stalled"));
        Assert.Equal(["Ready"], progressing["conditions"]!.AsArray().Select(c => c!["type"]!.GetValue<string>()));
    }

    [Fact]
    public void Shape_LeavesAStatusThatNeverStalled_AsItWas()
    {
        var status = Status("Succeeded", "True", "Succeeded");
        var before = status.DeepClone();
        StalledStatus.Shape("Rollout", Obj(2, null), status, T0);
        Assert.True(JsonNode.DeepEquals(before, status));
    }

    /// <summary>The Argo CD health table's rows are statuses the operator writes: a row has Stalled exactly when the rule says so.</summary>
    [Fact]
    public void ArgoCdHealthRows_CarryStalled_ExactlyWhenTheRuleSaysSo()
    {
        var dir = Path.Combine(Repository.Root(), "tests", "ControlPlane.IntegrationTests", "Fixtures", "argocd-health");
        var rows = 0;
        foreach (var file in Directory.GetFiles(dir, "*.json"))
        {
            var table = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
            var kind = table["kind"]!.GetValue<string>();
            foreach (var row in table["cases"]!.AsArray())
            {
                if (row!["status"] is not JsonObject status) continue;
                var conditions = k8s.KubernetesJson.Deserialize<List<V1Condition>>(status["conditions"]?.ToJsonString() ?? "[]");
                var expected = StalledRule.Of(kind, status["phase"]?.GetValue<string>(), conditions.FirstOrDefault(c => c.Type == "Ready"));
                var actual = conditions.FirstOrDefault(c => c.Type == "Stalled");
                var what = $"{kind}: {row["case"]}";
                if (expected is null) Assert.True(actual is null, $"{what}: Stalled where the rule says not stalled");
                else Assert.True(actual is { Status: "True" } && actual.Reason == expected.Reason, $"{what}: expected Stalled=True {expected.Reason}, found {actual?.Status} {actual?.Reason}");
                rows++;
            }
        }

        Assert.True(rows > 50, $"only {rows} rows read from {dir}");
    }
}
