using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The Tenant's pure decisions (<see cref="TenantPlan"/>): every status, condition, Event and result
/// the reconciler applies, on each branch it takes, without a server.
/// </summary>
public sealed class TenantPlanTests
{
    static readonly string[] Regions = ["us-east", "eu-west"];

    static Tenant Tenant(string name = "acme", string region = "eu-west", bool suspended = false, TenantStatus? status = null, TenantQuota? quota = null, bool finalizer = true) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Generation = 4, Finalizers = finalizer ? [ApiGroup.Finalizer] : null },
        Spec = new TenantSpec { Region = region, Suspended = suspended, Quota = quota },
        Status = status,
    };

    static Workspace Workspace(string name, string? cpu = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, CreationTimestamp = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc) },
        Spec = new WorkspaceSpec { Tenant = "acme", Quota = cpu is null ? null : new WorkspaceQuota { Cpu = new ResourceQuantity(cpu) } },
    };

    static TenantFacts Facts(params Workspace[] workspaces) => new(workspaces, Regions);

    static readonly RecordOutcome Unchanged = new RecordOutcome.Synced(Guid.Parse("11111111-2222-3333-4444-555555555555"), null);

    static ConditionVerdict Verdict(TenantStep step, string type) => Assert.Single(step.Verdicts, v => v.Type == type);

    [Fact]
    public void AGoodName_IsNoRefusal_ABadOne_FailsBeforeAnythingIsWritten()
    {
        Assert.Null(TenantPlan.Refusal(Tenant(), Facts()));
        var step = TenantPlan.Refusal(Tenant(name: "Not_A_Label"), Facts(Workspace("w1")));
        Assert.NotNull(step);
        Assert.Equal(TenantPhase.Failed, step.Status.Phase);
        Assert.Equal(4, step.Status.ObservedGeneration);
        // Nothing else is reported for a tenant that cannot exist.
        Assert.Null(step.Status.Workspaces);
        Assert.Null(step.Status.RecordId);
        var ready = Verdict(step, TenantConditions.Ready);
        Assert.Equal((false, "InvalidName"), (ready.Status!.Value, ready.Reason));
        Assert.Equal(PassResult.Outcome.Terminal, step.Result.Kind);
        Assert.Equal(new Notice("InvalidName", ready.Message, Warning: true), step.IfWritten);
        Assert.Empty(step.Before);
        Assert.False(step.ApplyBindings);
    }

    [Fact]
    public void AnUnconfiguredRegion_FailsTerminally_NamingTheConfiguredOnes()
    {
        Assert.Null(TenantPlan.RegionRefusal(Tenant(), Facts()));
        var step = TenantPlan.RegionRefusal(Tenant(region: "mars", status: new TenantStatus { RecordId = "r1" }), Facts(Workspace("w1")));
        Assert.NotNull(step);
        const string message = "spec.region: \"mars\" is not a configured region (configured: eu-west, us-east)";
        Assert.Equal([new(TenantConditions.RecordSynced, false, "InvalidRegion", message), new(TenantConditions.Ready, false, "InvalidRegion", message)], step.Verdicts);
        Assert.Equal(((TenantPhase?)TenantPhase.Failed, 1, "r1"), (step.Status.Phase, step.Status.Workspaces, step.Status.RecordId));
        Assert.Equal(PassResult.Terminal(message), step.Result);
        Assert.Equal(new Notice("InvalidRegion", message, Warning: true), step.IfWritten);
        Assert.False(step.ApplyBindings);
    }

    [Fact]
    public void ASyncedTenant_IsReady_WithItsBindingsApplied_AndTellsNothingWhenTheRowWasAlreadyRight()
    {
        var step = TenantPlan.Converge(Tenant(), Facts(Workspace("w1"), Workspace("w2")), Unchanged);
        Assert.Equal(((TenantPhase?)TenantPhase.Ready, 2, "11111111-2222-3333-4444-555555555555"), (step.Status.Phase, step.Status.Workspaces, step.Status.RecordId));
        Assert.Equal([
            new(TenantConditions.RecordSynced, true, "Synced", "The tenant row in the system of record matches the spec."),
            new(TenantConditions.Ready, true, "Ready", "Tenant is ready."),
        ], step.Verdicts);
        Assert.True(step.ApplyBindings);
        Assert.Empty(step.Before);
        Assert.Null(step.IfWritten);
        Assert.Equal(PassResult.Done, step.Result);
        Assert.Null(step.Status.Usage);
    }

    [Theory]
    [InlineData("RecordCreated", "created")]
    [InlineData("RecordUpdated", "updated")]
    public void AWrittenRow_IsToldFirst(string change, string word)
    {
        var id = Guid.NewGuid();
        var step = TenantPlan.Converge(Tenant(), Facts(), new RecordOutcome.Synced(id, change));
        Assert.Equal([new Notice(change, $"Tenant record {id} {word}")], step.Before);
    }

    [Fact]
    public void ASuspendedTenant_IsSuspended_AndStillReady()
    {
        var step = TenantPlan.Converge(Tenant(suspended: true), Facts(), Unchanged);
        Assert.Equal(TenantPhase.Suspended, step.Status.Phase);
        Assert.Equal(new ConditionVerdict(TenantConditions.Ready, true, "Suspended", "Tenant is suspended: no new workspaces, rollouts or publications."), Verdict(step, TenantConditions.Ready));
        Assert.True(step.ApplyBindings);
    }

    [Theory]
    [InlineData(true, PassResult.Outcome.Retry)]
    [InlineData(false, PassResult.Outcome.Terminal)]
    public void ARecordThatCouldNotBeSynced_KeepsThePhaseAndTheOldRecordId_AndIsRetriedOnlyWhenTransient(bool transient, PassResult.Outcome kind)
    {
        var failure = new RecordOutcome.Failed(transient ? "DatabaseUnavailable" : "DatabaseRefused", "The system of record unreachable: boom", transient);
        var step = TenantPlan.Converge(Tenant(status: new TenantStatus { Phase = TenantPhase.Ready, RecordId = "old" }), Facts(), failure);
        Assert.Equal(((TenantPhase?)TenantPhase.Ready, "old"), (step.Status.Phase, step.Status.RecordId));
        Assert.Equal([new(TenantConditions.RecordSynced, false, failure.Reason, failure.Message), new(TenantConditions.Ready, false, failure.Reason, failure.Message)], step.Verdicts);
        Assert.Equal(new PassResult(kind, failure.Message), step.Result);
        Assert.Equal(new Notice("RecordSyncFailed", failure.Message, Warning: true), step.IfWritten);
        Assert.False(step.ApplyBindings);

        Assert.Equal(TenantPhase.Pending, TenantPlan.Converge(Tenant(), Facts(), failure).Status.Phase);
    }

    [Fact]
    public void QuantitiesOutOfBounds_FailTheTenant_WithoutItsBindings_AndWarnOnlyWhenTheMessageIsNew()
    {
        var tenant = Tenant(quota: new TenantQuota { Cpu = new ResourceQuantity("2000000") });
        var step = TenantPlan.Converge(tenant, Facts(Workspace("b", "3000000"), Workspace("a", "1")), Unchanged);
        var quota = Verdict(step, TenantConditions.QuotaReady);
        Assert.Equal((false, "InvalidQuantity"), (quota.Status!.Value, quota.Reason));
        Assert.StartsWith("spec.quota.cpu: \"2M\" is out of bounds", quota.Message, StringComparison.Ordinal);
        Assert.Contains("; workspace b: spec.quota.cpu: \"3M\" is out of bounds", quota.Message, StringComparison.Ordinal);
        Assert.EndsWith("(counted as 0)", quota.Message, StringComparison.Ordinal);
        Assert.Equal(new ConditionVerdict(TenantConditions.Ready, false, "InvalidQuantity", quota.Message), Verdict(step, TenantConditions.Ready));
        Assert.Equal(TenantPhase.Failed, step.Status.Phase);
        Assert.Equal(PassResult.Done, step.Result);
        Assert.False(step.ApplyBindings);
        Assert.Equal(new Notice("InvalidQuantity", quota.Message, Warning: true), step.IfWritten);

        var told = Tenant(quota: tenant.Spec.Quota, status: new TenantStatus { Conditions = [new V1Condition { Type = TenantConditions.QuotaReady, Status = "False", Message = quota.Message }] });
        Assert.Null(TenantPlan.Converge(told, Facts(Workspace("b", "3000000"), Workspace("a", "1")), Unchanged).IfWritten);
    }

    [Fact]
    public void MoreThanTenQuantityProblems_AreCut_SayingHowManyMore()
    {
        var many = Enumerable.Range(0, 12).Select(i => Workspace($"w{i:00}", "3000000")).ToArray();
        var message = Verdict(TenantPlan.Converge(Tenant(), Facts(many), Unchanged), TenantConditions.QuotaReady).Message;
        Assert.EndsWith("; and 2 more", message, StringComparison.Ordinal);
        Assert.Contains("workspace w09:", message, StringComparison.Ordinal);
        Assert.DoesNotContain("workspace w10:", message, StringComparison.Ordinal);
    }

    [Fact]
    public void QuotaReady_TurnsTrueOnlyWhereItWasOnceSaid()
    {
        Assert.DoesNotContain(TenantPlan.Converge(Tenant(), Facts(), Unchanged).Verdicts, v => v.Type == TenantConditions.QuotaReady);
        var wasInvalid = Tenant(status: new TenantStatus { Conditions = [new V1Condition { Type = TenantConditions.QuotaReady, Status = "False" }] });
        Assert.Equal(new ConditionVerdict(TenantConditions.QuotaReady, true, "Valid", "Every quantity of the tenant and its workspaces is within bounds."),
            Verdict(TenantPlan.Converge(wasInvalid, Facts(), Unchanged), TenantConditions.QuotaReady));
    }

    [Fact]
    public void Usage_SumsTheWorkspacesGrants_AndIsAbsentWithoutQuotas()
    {
        Assert.Null(TenantPlan.Usage(Tenant(), [Workspace("a")]));
        var usage = TenantPlan.Usage(Tenant(), [Workspace("a", "1500m"), Workspace("b", "2")]);
        Assert.Equal("3500m", usage?.Cpu?.ToString());
        Assert.Equal("0", usage?.Memory?.ToString());
    }

    [Fact]
    public void ADeletedTenantWithoutOurFinalizer_IsReleased()
    {
        var tenant = Tenant(finalizer: false);
        tenant.Metadata.DeletionTimestamp = DateTime.UtcNow;
        Assert.IsType<TenantDeletion.Release>(TenantPlan.Finalize(tenant, Facts(Workspace("w1"))));
    }

    [Fact]
    public void Deletion_IsHeldWhileTheCacheHasWorkspaces_NamingTenAtMost()
    {
        var many = Enumerable.Range(0, 11).Select(i => Workspace($"w{i:00}")).Reverse().ToArray();
        var hold = Assert.IsType<TenantDeletion.Hold>(TenantPlan.Finalize(Tenant(status: new TenantStatus { RecordId = "r1" }), Facts(many)));
        var message = "Deletion held: tenant still has 11 workspace(s): w00, w01, w02, w03, w04, w05, w06, w07, w08, w09, .... Delete them first.";
        Assert.Equal([new ConditionVerdict(TenantConditions.Ready, false, "DeletionBlocked", message)], hold.Step.Verdicts);
        Assert.Equal(((TenantPhase?)TenantPhase.Terminating, 11, "r1"), (hold.Step.Status.Phase, hold.Step.Status.Workspaces, hold.Step.Status.RecordId));
        Assert.Equal(new Notice("DeletionBlocked", message, Warning: true), hold.Step.IfWritten);
        Assert.Equal(PassResult.Done, hold.Step.Result);
    }

    [Fact]
    public void AnEmptyCache_IsNotTrusted_TheLiveListDecides()
    {
        Assert.Throws<ArgumentException>(() => TenantPlan.Finalize(Tenant(), Facts()));
        var hold = Assert.IsType<TenantDeletion.Hold>(TenantPlan.Finalize(Tenant(), Facts() with { Live = ["late"] }));
        Assert.Contains("tenant still has 1 workspace(s): late.", Assert.Single(hold.Step.Verdicts).Message, StringComparison.Ordinal);
        // The status counts what the cache has; the message names what the API server has.
        Assert.Equal(0, hold.Step.Status.Workspaces);
        var deleted = Assert.IsType<TenantDeletion.MarkDeleted>(TenantPlan.Finalize(Tenant(), Facts() with { Live = [] }));
        Assert.Equal(new Notice("RecordDeleted", "Tenant record marked deleted; finalizer removed"), deleted.Done);
    }

    [Fact]
    public void ARowThatCannotBeMarkedDeleted_KeepsTheFinalizer_AndIsRetried()
    {
        var step = TenantPlan.DeletionWaits(Tenant(), Facts(), "connection refused");
        const string message = "Deletion waits for the system of record: connection refused";
        Assert.Equal([new ConditionVerdict(TenantConditions.RecordSynced, false, "DatabaseUnavailable", message)], step.Verdicts);
        Assert.Equal(TenantPhase.Terminating, step.Status.Phase);
        Assert.Equal(PassResult.Retry(message), step.Result);
        Assert.Null(step.IfWritten);
    }
}
