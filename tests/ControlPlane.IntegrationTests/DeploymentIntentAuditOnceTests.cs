using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>A DeploymentIntent's security audit row is appended before the status that reports it, and once, even when that status write is lost.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DeploymentIntentAuditOnceTests(ClusterFixture cluster, ITestOutputHelper output)
{
    const string Token = "plane-token-0123456789";

    [Fact]
    public async Task ATamperedEvidencePack_DeniedWithAStatusWriteLostAfterItsAuditRow_IsDeniedAgain_ButTheHashMismatchIsAuditedOnce()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        await using var op = TestOperator.Start(cluster, EvidenceScenario.Unique("lease"), output, o =>
        {
            o.DeploymentIntent.PlaneUrlPrefixes.Add(plane.BaseUrl.AbsoluteUri);
            o.DeploymentIntent.PollInterval = TimeSpan.FromMilliseconds(300);
        });
        var (_, ws) = await EvidenceScenario.TenantAsync(cluster, Token);
        await Evidence.CreateConfigMapAsync(cluster.Api, ws, "tampered-pack", "evidence", "{\"tests\":\"failed\"}");
        var intent = EvidenceScenario.Intent("pack", plane.BaseUrl);
        intent.Spec.EvidencePackRef = new EvidencePackRef { ConfigMap = "tampered-pack", Sha256 = Evidence.Sha256("{\"tests\":\"passed\"}") };
        intent.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = cluster.Plane.Admin.Name,
            [ApiGroup.AuthorGroupsAnnotation] = ControlPlane.Operator.Policy.Requesters.WithAuthorGroups(null, cluster.Plane.Admin.Name, cluster.Plane.Admin.Groups),
        };
        await cluster.Api.CreateAsync(EvidenceScenario.Intents, ws, Evidence.AttachIntent(intent), CancellationToken.None);
        await EvidenceScenario.WaitAsync(cluster.Api, ws, "pack", i => i.Status?.Phase == IntentPhase.Denied, "Denied for its pack");
        await using var ds = cluster.Postgres.DataSourceFor();

        async Task<List<string>> ActionsAsync()
        {
            await using var cmd = ds.CreateCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'DeploymentIntent' AND object_name = $1 ORDER BY id");
            cmd.Parameters.AddWithValue($"{ws}/pack");
            var actions = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) actions.Add(r.GetString(0));
            return actions;
        }

        Assert.Equal(["deploymentintent.hashMismatch"], await ActionsAsync());

        // The status written after the audit row is lost (as a conflict with a lagging cache, or a crash between the two, loses
        // it): the next pass (a status change alone wakes none: a resync) decides from the old status and denies it again.
        var lost = await cluster.Api.PatchAsync<DeploymentIntent>(EvidenceScenario.Intents, ws, "pack", """{"status":null}""", PatchTypes.Merge, CancellationToken.None, "status");
        var controller = op.Runtime.Controllers.Single(c => c.Name == "deploymentintent");
        await Net.WaitUntilAsync(async () =>
        {
            controller.ResyncNow();
            var i = await cluster.Api.GetAsync<DeploymentIntent>(EvidenceScenario.Intents, ws, "pack", CancellationToken.None);
            return i.Metadata.ResourceVersion != lost.Metadata.ResourceVersion && i.Status?.Phase == IntentPhase.Denied;
        }, TimeSpan.FromSeconds(60), "Denied written again");
        Assert.Equal(IntentReasons.EvidenceInvalid, EvidenceScenario.Condition(
            await cluster.Api.GetAsync<DeploymentIntent>(EvidenceScenario.Intents, ws, "pack", CancellationToken.None), IntentConditions.Ready)!.Reason);
        Assert.Equal(["deploymentintent.hashMismatch"], await ActionsAsync());
    }
}
