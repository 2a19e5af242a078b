using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// What an approval covers: a Rollout's spec without its control fields (paused, abort), any other
/// kind's whole spec. Pausing or aborting neither stales an approval nor makes the requester an author.
/// </summary>
public sealed class ApprovalContentUnitTests
{
    const string Uid = "3f0c1e7a-0000-4000-8000-000000000001";

    static Rollout NewRollout(long generation, string image = "r/app:2", bool paused = false, bool abort = false, string soak = "0s") => new()
    {
        Metadata = new V1ObjectMeta { Name = "orders", NamespaceProperty = "ws", Uid = Uid, Generation = generation, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "bob@example.com" } },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = image }] },
            Rings = [new Ring { Name = "prod", Workspaces = ["ws"], Soak = soak, RequiresApproval = true, Selector = new LabelSelector { MatchLabels = new() { ["a"] = "1", ["b"] = "2" } } }],
            Paused = paused,
            Abort = abort,
        },
    };

    static Approval ApprovalOf(IKubernetesObject<V1ObjectMeta> reviewed, string approver, string? hash) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "apr-" + approver[..4], NamespaceProperty = "ws",
            Annotations = hash is null ? null : new Dictionary<string, string> { [ApiGroup.TargetContentHashAnnotation] = hash },
        },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = reviewed.Kind, Name = reviewed.Metadata.Name }, Decision = "approve", Approver = approver,
            TargetGeneration = reviewed.Metadata.Generation, TargetUID = reviewed.Metadata.Uid,
        },
    };

    static ApprovalVerdict Judge(Approval a, IKubernetesObject<V1ObjectMeta> target) => ApprovalPolicy.Judge(a, target, _ => true);

    [Fact]
    public void ContentHash_IgnoresPausedAndAbort_OfARollout_ButNotItsContent()
    {
        var hash = ApprovalPolicy.ContentHash(NewRollout(3));
        Assert.Matches("^[a-f0-9]{64}$", hash);
        Assert.Equal(hash, ApprovalPolicy.ContentHash(NewRollout(7, paused: true)));
        Assert.Equal(hash, ApprovalPolicy.ContentHash(NewRollout(9, abort: true)));
        Assert.NotEqual(hash, ApprovalPolicy.ContentHash(NewRollout(3, image: "r/app:6.6.6")));
        Assert.NotEqual(hash, ApprovalPolicy.ContentHash(NewRollout(3, soak: "1h")));
    }

    [Fact]
    public void ContentHash_IsCanonical_AndCoversTheWholeSpecOfOtherKinds()
    {
        var reordered = NewRollout(3);
        reordered.Spec.Rings[0].Selector!.MatchLabels = new() { ["b"] = "2", ["a"] = "1" };
        Assert.Equal(ApprovalPolicy.ContentHash(NewRollout(3)), ApprovalPolicy.ContentHash(reordered));
        // Metadata is not content: only the spec is reviewed.
        reordered.Metadata.Labels = new Dictionary<string, string> { ["x"] = "y" };
        Assert.Equal(ApprovalPolicy.ContentHash(NewRollout(3)), ApprovalPolicy.ContentHash(reordered));

        Assert.Empty(ApprovalPolicy.ControlFields("Exposure"));
        var spec = JsonNode.Parse("""{"paused":true,"abort":true,"path":"/v1"}""");
        Assert.True(JsonNode.DeepEquals(spec, ApprovalPolicy.ApprovalRelevantSpec("Exposure", spec)));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"path":"/v1"}"""), ApprovalPolicy.ApprovalRelevantSpec("Rollout", spec)));
    }

    [Fact]
    public void Judge_AnApprovalOfAnOlderGeneration_CountsWhenOnlyPausedOrAbortChanged()
    {
        var reviewed = NewRollout(3);
        var approval = ApprovalOf(reviewed, "carol@example.com", ApprovalPolicy.ContentHash(reviewed));
        Assert.Equal("Counts", Judge(approval, reviewed).Reason);

        var resumed = NewRollout(5);
        var verdict = Judge(approval, resumed);
        Assert.True(verdict.Counts, verdict.Message);
        Assert.Contains("approves generation 3", verdict.Message);
        Assert.Contains("only spec.paused/abort changed since", verdict.Message);
        Assert.True(Judge(approval, NewRollout(4, paused: true)).Counts);

        // Two such approvals approve the prod ring at its new generation.
        var state = ApprovalPolicy.Evaluate(resumed, "prod", [approval, ApprovalOf(reviewed, "erin@example.com", ApprovalPolicy.ContentHash(reviewed))], _ => true);
        Assert.True(state.Approved, state.Message);
    }

    [Fact]
    public void Judge_AnyOtherChange_OrAMissingOrForgedHash_IsStale()
    {
        var reviewed = NewRollout(3);
        var hash = ApprovalPolicy.ContentHash(reviewed);
        Assert.Equal("StaleGeneration", Judge(ApprovalOf(reviewed, "carol@example.com", hash), NewRollout(4, image: "r/app:6.6.6")).Reason);
        Assert.Equal("StaleGeneration", Judge(ApprovalOf(reviewed, "carol@example.com", hash), NewRollout(5, image: "r/app:6.6.6", paused: true)).Reason);
        Assert.Equal("StaleGeneration", Judge(ApprovalOf(reviewed, "carol@example.com", null), NewRollout(4, paused: true)).Reason);
        // A stamp that is not the current content's hash (forged, or of other content) does not carry the approval.
        Assert.Equal("StaleGeneration", Judge(ApprovalOf(reviewed, "carol@example.com", "forged"), NewRollout(4, paused: true)).Reason);
        Assert.Equal("StaleGeneration", Judge(ApprovalOf(reviewed, "carol@example.com", ApprovalPolicy.ContentHash(NewRollout(3, image: "r/app:1"))), NewRollout(4, paused: true)).Reason);
        // Only Rollouts have control fields: any change of another kind's spec stales its approvals.
        var exposure = new Exposure { Metadata = new V1ObjectMeta { Name = "api", NamespaceProperty = "ws", Uid = Uid, Generation = 2 } };
        var exposureApproval = ApprovalOf(exposure, "carol@example.com", ApprovalPolicy.ContentHash(exposure));
        exposure.Metadata.Generation = 3;
        Assert.Equal("StaleGeneration", Judge(exposureApproval, exposure).Reason);
    }

    static AdmissionRequest Update(string kind, JsonObject oldSpec, JsonObject newSpec, string editor) => new()
    {
        Kind = new GroupVersionKind { Group = ApiGroup.Group, Version = ApiGroup.Version, Kind = kind },
        Operation = "UPDATE",
        UserInfo = new AdmissionUserInfo { Username = editor },
        OldObject = new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [ApiGroup.CreatedByAnnotation] = "alice@example.com", [ApiGroup.LastSpecEditorAnnotation] = "carol@example.com" } }, ["spec"] = oldSpec },
        Object = new JsonObject { ["metadata"] = new JsonObject(), ["spec"] = newSpec },
    };

    [Fact]
    public void Stamps_PausingOrAbortingARollout_DoesNotMakeTheRequesterItsLastSpecEditor()
    {
        JsonObject Spec(string json) => JsonNode.Parse(json)!.AsObject();
        const string Before = """{"rings":[{"name":"prod","soak":"0s"}],"paused":false}""";
        Assert.Equal("carol@example.com", StampsAdmission.Stamps(Update("Rollout", Spec(Before), Spec("""{"rings":[{"name":"prod","soak":"0s"}],"paused":true}"""), "bob@example.com"))[ApiGroup.LastSpecEditorAnnotation]);
        Assert.Equal("carol@example.com", StampsAdmission.Stamps(Update("Rollout", Spec(Before), Spec("""{"rings":[{"name":"prod","soak":"0s"}],"abort":true}"""), "bob@example.com"))[ApiGroup.LastSpecEditorAnnotation]);
        Assert.Equal("bob@example.com", StampsAdmission.Stamps(Update("Rollout", Spec(Before), Spec("""{"rings":[{"name":"prod","soak":"1h"}],"paused":true}"""), "bob@example.com"))[ApiGroup.LastSpecEditorAnnotation]);
        // Another kind's "paused" is content.
        Assert.Equal("bob@example.com", StampsAdmission.Stamps(Update("Exposure", Spec("""{"paused":false}"""), Spec("""{"paused":true}"""), "bob@example.com"))[ApiGroup.LastSpecEditorAnnotation]);
    }

    [Fact]
    public void EverySpecEditor_StaysAnAuthor_NotOnlyTheLast()
    {
        JsonObject Spec(string json) => JsonNode.Parse(json)!.AsObject();
        // erin edits (carol was the last editor before, without a spec-editors stamp), then bob edits after her.
        var afterErin = StampsAdmission.Stamps(Update("Exposure", Spec("""{"path":"/a"}"""), Spec("""{"path":"/b"}"""), "erin@example.com"));
        Assert.Equal("""["erin@example.com"]""", afterErin[ApiGroup.SpecEditorsAnnotation]);
        var second = Update("Exposure", Spec("""{"path":"/b"}"""), Spec("""{"path":"/c"}"""), "bob@example.com");
        second.OldObject!["metadata"]!["annotations"]![ApiGroup.SpecEditorsAnnotation] = afterErin[ApiGroup.SpecEditorsAnnotation];
        var afterBob = StampsAdmission.Stamps(second);
        Assert.Equal("bob@example.com", afterBob[ApiGroup.LastSpecEditorAnnotation]);
        Assert.Equal("""["erin@example.com","bob@example.com"]""", afterBob[ApiGroup.SpecEditorsAnnotation]);
        // A metadata-only update keeps the list as it was.
        var labelled = Update("Exposure", Spec("""{"path":"/c"}"""), Spec("""{"path":"/c"}"""), "dave@example.com");
        labelled.OldObject!["metadata"]!["annotations"]![ApiGroup.SpecEditorsAnnotation] = afterBob[ApiGroup.SpecEditorsAnnotation];
        Assert.Equal(afterBob[ApiGroup.SpecEditorsAnnotation], StampsAdmission.Stamps(labelled)[ApiGroup.SpecEditorsAnnotation]);

        // Judged: erin's approval of the generation bob last changed does not count; dave's does.
        var exposure = new Exposure
        {
            Metadata = new V1ObjectMeta
            {
                Name = "api", NamespaceProperty = "ws", Uid = Uid, Generation = 3,
                Annotations = new Dictionary<string, string>
                {
                    [ApiGroup.CreatedByAnnotation] = "alice@example.com", [ApiGroup.LastSpecEditorAnnotation] = "bob@example.com",
                    [ApiGroup.SpecEditorsAnnotation] = afterBob[ApiGroup.SpecEditorsAnnotation]!,
                },
            },
        };
        Assert.Equal("SelfApproval", Judge(ApprovalOf(exposure, "erin@example.com", null), exposure).Reason);
        Assert.True(Judge(ApprovalOf(exposure, "dave@example.com", null), exposure).Counts);
        Assert.Equal(["alice@example.com", "bob@example.com", "erin@example.com"], ApprovalPolicy.EveryAuthorOf(exposure));
    }
}
