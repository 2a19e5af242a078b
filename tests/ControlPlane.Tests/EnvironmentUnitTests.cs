using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Controllers;
using ControlPlane.Operator.Webhooks;
using k8s.Models;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// A workspace's environment is a classification the requester must not control: the strictest of
/// what applies decides, a lowered spec is not followed unless a platform administrator lifted the
/// deletion guard, and a prod workspace forced past admission keeps its namespace and database.
/// </summary>
public sealed class EnvironmentUnitTests
{
    static Workspace Ws(string spec, string? recorded, bool guardLifted = false) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "acme-prod",
            Annotations = guardLifted ? new Dictionary<string, string> { [AdmissionHandler.AllowDeleteAnnotation] = "true" } : null,
        },
        Spec = new WorkspaceSpec { Tenant = "acme", Environment = spec },
        Status = recorded is null ? null : new WorkspaceStatus { Environment = recorded },
    };

    [Theory]
    [InlineData("prod", "dev", true)]
    [InlineData("prod", "test", true)]
    [InlineData("test", "dev", true)]
    [InlineData("dev", "prod", false)]
    [InlineData("test", "prod", false)]
    [InlineData("prod", "prod", false)]
    [InlineData("prod", null, true)]   // unset is the default dev
    [InlineData("surprise", "prod", false)] // unknown counts as prod
    public void Lowering_IsFromStricterToLooser(string from, string? to, bool lowers) =>
        Assert.Equal(lowers, WorkspaceEnvironments.Lowers(from, to));

    [Fact]
    public void TheStrictest_Decides()
    {
        Assert.Equal("prod", WorkspaceEnvironments.Strictest("dev", "prod", "test"));
        Assert.Equal("test", WorkspaceEnvironments.Strictest("dev", null, "test"));
        Assert.Equal("dev", WorkspaceEnvironments.Strictest());
        Assert.Equal("prod", WorkspaceEnvironments.Strictest("dev", "qa"));
    }

    [Fact]
    public void ALoweredSpec_ForcedPastAdmission_StaysProd_ForEveryRule_UntilTheGuardIsLifted()
    {
        // Recorded prod, spec patched to dev (webhook down): the operator records and applies prod.
        Assert.Equal("prod", WorkspaceEnvironments.ToRecord("dev", "prod", guardLifted: false));
        var lowered = Ws("dev", "prod");
        Assert.Equal("prod", WorkspaceEnvironments.Effective(lowered));
        Assert.Equal(2, ApprovalPolicy.RequiredApprovals(WorkspaceEnvironments.Effective(lowered)));
        Assert.Equal(2, RestoreResources.RequiredApprovals(WorkspaceEnvironments.Effective(lowered), inPlace: true));
        Assert.Equal("prod", WorkspaceResources.Namespace(lowered, "acme", "eu").Metadata.Labels[WorkspaceResources.EnvironmentLabel]);
        Assert.NotNull(WorkspaceReconciler.DeletionHold(lowered));

        // Raising is followed at once; lowering only through the guard a platform administrator lifts.
        Assert.Equal("prod", WorkspaceEnvironments.ToRecord("prod", "dev", guardLifted: false));
        Assert.Equal("dev", WorkspaceEnvironments.ToRecord("dev", "prod", guardLifted: true));
        Assert.Equal("test", WorkspaceEnvironments.ToRecord("test", null, guardLifted: false));
        Assert.Null(WorkspaceReconciler.DeletionHold(Ws("dev", "prod", guardLifted: true)));
        Assert.Null(WorkspaceReconciler.DeletionHold(Ws("dev", "dev")));
        Assert.NotNull(WorkspaceReconciler.DeletionHold(Ws("prod", null)));
    }
}
