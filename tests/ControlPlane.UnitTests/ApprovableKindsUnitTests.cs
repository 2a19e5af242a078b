using System.Reflection;
using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The approvable kinds are one list: what an Approval may name, what counts as content, how many approvals each needs.</summary>
public sealed class ApprovableKindsUnitTests
{
    [Fact]
    public void TheApprovableKinds_AreExactlyTheKindsAnApprovalMayName()
    {
        var named = typeof(ApprovalTarget).GetProperty(nameof(ApprovalTarget.Kind))!.GetCustomAttribute<EnumAttribute>()!.Values;
        Assert.Equal(named.Order(), ApprovableKinds.All.Select(k => k.Kind).Order());
        Assert.All(ApprovableKinds.All, k => Assert.Same(k, ApprovableKinds.Of(k.Kind)));
        Assert.Null(ApprovableKinds.Of("Workspace"));
    }

    [Fact]
    public void EachKind_SaysItsContent_AndItsCount()
    {
        var spec = JsonNode.Parse("""{"rings":[],"paused":true,"abort":false}""");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"rings":[]}"""), ApprovableKinds.Rollout.ContentOf(spec)));
        Assert.True(JsonNode.DeepEquals(spec, ApprovableKinds.Exposure.ContentOf(spec)));
        var inPlace = new Restore { Metadata = new V1ObjectMeta { Name = "r" }, Spec = new RestoreSpec { Into = new RestoreTarget { InPlace = true } } };
        var newDatabase = new Restore { Metadata = new V1ObjectMeta { Name = "r" }, Spec = new RestoreSpec { Into = new RestoreTarget { Database = "ws_copy" } } };
        Assert.Equal([2, 1, 0], new[] { ApprovableKinds.Restore.RequiredApprovals(newDatabase, "prod"), ApprovableKinds.Restore.RequiredApprovals(inPlace, "dev"), ApprovableKinds.Restore.RequiredApprovals(newDatabase, "dev") });
        Assert.Same(ApprovableKinds.Restore, ApprovableKinds.Of(inPlace));
        Assert.Equal([2, 1], new[] { ApprovableKinds.Exposure.RequiredApprovals(new Exposure(), "prod"), ApprovableKinds.Exposure.RequiredApprovals(new Exposure(), "test") });
    }
}
