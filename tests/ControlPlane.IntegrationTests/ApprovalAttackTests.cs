using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Attacks on approvals, each made as a token user of the local API server against the running
/// operator (webhooks and approval reconciler): forged identity stamps, an approval carried over to
/// a recreated object, an editor approving their own edit, an approval of a generation never seen.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class ApprovalAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType Restores = ResourceType.For<Restore>(true);

    const string ReleaseManagers = "release-managers";

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    static string Email(string user) => user + "@example.com";

    /// <summary>A Ready workspace: bob Operator, carol and erin Approvers, dave Auditor, and the group release-managers Approver (no test user is in it).</summary>
    async Task<string> WorkspaceAsync(string environment = "dev")
    {
        var tenant = Unique("t");
        await Cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = name } };
        ws.Spec.Tenant = tenant;
        ws.Spec.Environment = environment;
        ws.Spec.Database = new WorkspaceDatabase { Enabled = false };
        ws.Spec.Members =
        [
            new WorkspaceMember { Kind = "User", Name = Email("bob"), Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = Email("carol"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("erin"), Role = "Approver" },
            new WorkspaceMember { Kind = "User", Name = Email("dave"), Role = "Auditor" },
            new WorkspaceMember { Kind = "Group", Name = ReleaseManagers, Role = "Approver" },
        ];
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.TryGetAsync<Workspace>(ClusterFixture.Workspaces, null, name, CancellationToken.None))?.Status?.Phase == WorkspacePhase.Ready,
            TimeSpan.FromSeconds(30), $"workspace {name} Ready");
        return name;
    }

    static Exposure NewExposure(string name, string service = "orders", int port = 8080, Dictionary<string, string>? annotations = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Annotations = annotations },
        Spec = new ExposureSpec { Type = "REST", Version = "v1", Backend = new ExposureBackend { Service = service, Port = port }, Path = "/orders" },
    };

    static Approval NewApproval(string target, long? generation = null, string? uid = null, Dictionary<string, string>? annotations = null, string kind = "Exposure") => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = annotations },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = kind, Name = target }, TargetGeneration = generation, TargetUID = uid },
    };

    static async Task<KubeApiException> Refused(Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        return e;
    }

    static string? Annotation(k8s.IKubernetesObject<V1ObjectMeta> o, string key) => o.Metadata.Annotations?.TryGetValue(key, out var v) == true ? v : null;

    static V1Condition? Condition(Approval a, string type) => a.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    async Task<Approval> WaitForAsync(string ws, string name, string type, string reason)
    {
        Approval? last = null;
        await Net.WaitUntilAsync(async () =>
        {
            last = await Cluster.Api.GetAsync<Approval>(Approvals, ws, name, CancellationToken.None);
            return Condition(last, type)?.Reason == reason;
        }, TimeSpan.FromSeconds(30), $"approval {name}: {type} {reason}");
        return last!;
    }

    static string Patch(string key, string? value) =>
        "{\"metadata\":{\"annotations\":{\"" + key + "\":" + (value is null ? "null" : System.Text.Json.JsonSerializer.Serialize(value)) + "}}}";

    static string Pointer(string key) => "/metadata/annotations/" + key.Replace("~", "~0").Replace("/", "~1");

    [Fact]
    public async Task ForgedApproverGroups_OnUpdate_AreRestored_AndTheApprovalDoesNotStartCounting()
    {
        var ws = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        var recorded = Annotation(approval, ApiGroup.ApproverGroupsAnnotation);
        Assert.Contains("controlplane-test-users", ApprovalPolicy.GroupsOf(approval));
        Assert.DoesNotContain(ReleaseManagers, ApprovalPolicy.GroupsOf(approval));
        await WaitForAsync(ws, approval.Metadata.Name, "Ready", "Counts");

        // carol loses her Approver role: her approval stops counting.
        var w = await Cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, ws, CancellationToken.None);
        var members = k8s.KubernetesJson.Serialize(w.Spec.Members!.Where(m => m.Name != Email("carol")).ToList());
        await Cluster.Api.PatchAsync<Workspace>(ClusterFixture.Workspaces, null, ws, "{\"spec\":{\"members\":" + members + "}}", PatchTypes.Merge, CancellationToken.None);
        await WaitForAsync(ws, approval.Metadata.Name, "Ready", "NotAnApprover");

        // She claims membership of release-managers (bound as Approver here) on her own approval: kept as admitted.
        var forged = ApprovalPolicy.FormatGroups([ReleaseManagers]);
        var merged = await carol.PatchAsync<Approval>(Approvals, ws, approval.Metadata.Name, Patch(ApiGroup.ApproverGroupsAnnotation, forged), PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(recorded, Annotation(merged, ApiGroup.ApproverGroupsAnnotation));
        var replaced = await carol.PatchAsync<Approval>(Approvals, ws, approval.Metadata.Name,
            $$"""[{"op":"replace","path":"{{Pointer(ApiGroup.ApproverGroupsAnnotation)}}","value":{{System.Text.Json.JsonSerializer.Serialize(forged)}}}]""", PatchTypes.Json, CancellationToken.None);
        Assert.Equal(recorded, Annotation(replaced, ApiGroup.ApproverGroupsAnnotation));
        // Nor can she name someone else as the approver.
        var approver = await Refused(() => carol.PatchAsync<Approval>(Approvals, ws, approval.Metadata.Name,
            "{\"spec\":{\"approver\":\"" + Email("erin") + "\"}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.approver", approver.StatusMessage);

        var now = await Cluster.Api.GetAsync<Approval>(Approvals, ws, approval.Metadata.Name, CancellationToken.None);
        Assert.Equal(recorded, Annotation(now, ApiGroup.ApproverGroupsAnnotation));
        Assert.Equal("NotAnApprover", Condition(now, "Ready")!.Reason);
        Assert.Equal("False", Condition(now, ApprovalReconciler.TargetApprovedCondition)!.Status);
    }

    [Fact]
    public async Task ARolloutsAuthor_CannotApproveIt_AndAnApproversApproval_BindsToItsGeneration()
    {
        var ws = await WorkspaceAsync("prod");
        using var bob = As("bob");
        using var carol = As("carol");
        var rollouts = ResourceType.For<Rollout>(true);
        var rollout = new Rollout { Metadata = new V1ObjectMeta { Name = "orders-2" } };
        rollout.Spec.Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "registry.example/orders:2.0.0" }] };
        rollout.Spec.Rings = [new Ring { Name = "prod", Workspaces = [ws], RequiresApproval = true }];
        var created = await bob.CreateAsync(rollouts, ws, rollout, CancellationToken.None);
        Assert.Equal(Email("bob"), Annotation(created, ApiGroup.CreatedByAnnotation));

        // bob wrote it: his approval of it is refused.
        var self = await Refused(() => bob.CreateAsync(Approvals, ws, NewApproval("orders-2", kind: "Rollout"), CancellationToken.None));
        Assert.Contains("spec.approver", self.StatusMessage);

        // carol's counts, stamped with the generation she reviewed; bob changing a ring makes him its last editor and a new generation.
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders-2", kind: "Rollout"), CancellationToken.None);
        Assert.Equal(created.Metadata.Generation, approval.Spec.TargetGeneration);
        Assert.Equal(created.Metadata.Uid, approval.Spec.TargetUID);
        await WaitForAsync(ws, approval.Metadata.Name, "Ready", "Counts");
        var edited = await bob.PatchAsync<Rollout>(rollouts, ws, "orders-2", "{\"spec\":{\"rings\":[{\"name\":\"prod\",\"workspaces\":[\"" + ws + "\"],\"requiresApproval\":true,\"soak\":\"1h\"}]}}", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("bob"), Annotation(edited, ApiGroup.LastSpecEditorAnnotation));
        await WaitForAsync(ws, approval.Metadata.Name, "Ready", "StaleGeneration");

        // The change rolled out is fixed once created.
        var target = await Refused(() => bob.PatchAsync<Rollout>(rollouts, ws, "orders-2",
            "{\"spec\":{\"target\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.example/orders:6.6.6\"}]}}}", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.target: field is immutable", target.StatusMessage);
    }

    [Fact]
    public async Task PausingAndResumingAnApprovedRollout_IsAControlAction_AndTheContentHashCannotBeForged()
    {
        var ws = await WorkspaceAsync("prod");
        using var bob = As("bob");
        using var carol = As("carol");
        using var erin = As("erin");
        var rollouts = ResourceType.For<Rollout>(true);
        // Written by the platform (admin), approved by carol and erin; bob, an Operator, pauses and resumes it.
        var rollout = new Rollout { Metadata = new V1ObjectMeta { Name = "orders-3" } };
        rollout.Spec.Target = new RolloutTarget { Deployment = "orders", Containers = [new ContainerImage { Name = "app", Image = "registry.example/orders:3.0.0" }] };
        rollout.Spec.Rings = [new Ring { Name = "prod", Workspaces = [ws], RequiresApproval = true }];
        var created = await Cluster.Api.CreateAsync(rollouts, ws, rollout, CancellationToken.None);

        // erin claims another content hash (say, of the version she would like to ship): the webhook stamps the reviewed one, and says so.
        var forged = new Dictionary<string, string> { [ApiGroup.TargetContentHashAnnotation] = new string('0', 64) };
        var byCarol = await carol.CreateAsync(Approvals, ws, NewApproval("orders-3", kind: "Rollout"), CancellationToken.None);
        var byErin = await erin.CreateAsync(Approvals, ws, NewApproval("orders-3", kind: "Rollout", annotations: forged), CancellationToken.None);
        Assert.Equal(ApprovalPolicy.ContentHash(created), Annotation(byErin, ApiGroup.TargetContentHashAnnotation));
        Assert.Equal(ApprovalPolicy.ContentHash(created), Annotation(byCarol, ApiGroup.TargetContentHashAnnotation));
        // Nor can it be changed afterwards.
        var changed = await erin.PatchAsync<Approval>(Approvals, ws, byErin.Metadata.Name, Patch(ApiGroup.TargetContentHashAnnotation, new string('0', 64)), PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(ApprovalPolicy.ContentHash(created), Annotation(changed, ApiGroup.TargetContentHashAnnotation));
        await WaitForAsync(ws, byErin.Metadata.Name, ApprovalReconciler.TargetApprovedCondition, "Approved");

        // Paused and resumed by bob: two new generations, bob not an author, both approvals still count.
        var paused = await bob.PatchAsync<Rollout>(rollouts, ws, "orders-3", "{\"spec\":{\"paused\":true}}", PatchTypes.Merge, CancellationToken.None);
        Assert.Null(Annotation(paused, ApiGroup.LastSpecEditorAnnotation));
        var resumed = await bob.PatchAsync<Rollout>(rollouts, ws, "orders-3", "{\"spec\":{\"paused\":false}}", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(created.Metadata.Generation + 2, resumed.Metadata.Generation);
        Assert.Null(Annotation(resumed, ApiGroup.LastSpecEditorAnnotation));
        Approval? carried = null;
        await Net.WaitUntilAsync(async () =>
        {
            carried = await Cluster.Api.GetAsync<Approval>(Approvals, ws, byCarol.Metadata.Name, CancellationToken.None);
            return Condition(carried, "Ready")?.Message.Contains("only spec.paused/abort changed since", StringComparison.Ordinal) == true;
        }, TimeSpan.FromSeconds(30), "carol's approval re-judged after the resume");
        Assert.Equal("Counts", Condition(carried!, "Ready")!.Reason);
        Assert.Equal("Approved", Condition(carried!, ApprovalReconciler.TargetApprovedCondition)!.Reason);

        // Any other change by bob: he is its last editor and both approvals are stale.
        await bob.PatchAsync<Rollout>(rollouts, ws, "orders-3", "{\"spec\":{\"rings\":[{\"name\":\"prod\",\"workspaces\":[\"" + ws + "\"],\"requiresApproval\":true,\"soak\":\"1h\"}]}}", PatchTypes.Merge, CancellationToken.None);
        await WaitForAsync(ws, byCarol.Metadata.Name, "Ready", "StaleGeneration");
        await WaitForAsync(ws, byErin.Metadata.Name, ApprovalReconciler.TargetApprovedCondition, "AwaitingApproval");
    }

    [Fact]
    public async Task ADeletedAndRecreatedTarget_IsNotApprovedByTheOldApproval()
    {
        var ws = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        var original = await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        Assert.Equal(original.Metadata.Uid, approval.Spec.TargetUID);
        await WaitForAsync(ws, approval.Metadata.Name, ApprovalReconciler.TargetApprovedCondition, "Approved");

        // Same name, same generation 1, another backend.
        await bob.DeleteAsync(Exposures, ws, "orders", CancellationToken.None);
        await Net.WaitUntilAsync(async () => await Cluster.Api.TryGetAsync<Exposure>(Exposures, ws, "orders", CancellationToken.None) is null,
            TimeSpan.FromSeconds(120), "exposure deleted");
        var recreated = await bob.CreateAsync(Exposures, ws, NewExposure("orders", service: "exfiltrate", port: 9999), CancellationToken.None);
        Assert.Equal(original.Metadata.Generation, recreated.Metadata.Generation);

        var replaced = await WaitForAsync(ws, approval.Metadata.Name, "Ready", "TargetReplaced");
        Assert.Contains(recreated.Metadata.Uid, Condition(replaced, "Ready")!.Message);
        Assert.Equal("False", (await WaitForAsync(ws, approval.Metadata.Name, ApprovalReconciler.TargetApprovedCondition, "AwaitingApproval"))
            .Status!.Conditions!.Single(c => c.Type == ApprovalReconciler.TargetApprovedCondition).Status);

        // Submitting the old UID for the new object is refused, not rewritten.
        var stale = await Refused(() => carol.CreateAsync(Approvals, ws, NewApproval("orders", uid: original.Metadata.Uid), CancellationToken.None));
        Assert.Contains("spec.targetUID", stale.StatusMessage);

        var fresh = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        Assert.Equal(recreated.Metadata.Uid, fresh.Spec.TargetUID);
        await WaitForAsync(ws, fresh.Metadata.Name, ApprovalReconciler.TargetApprovedCondition, "Approved");
    }

    [Fact]
    public async Task AnEditorOfTheGenerationUnderReview_CannotApproveIt()
    {
        var ws = await WorkspaceAsync();
        using var bob = As("bob");
        using var erin = As("erin");
        using var carol = As("carol");
        await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);

        // erin (an Approver) rewrites bob's exposure, then approves "bob's" work.
        var edited = await erin.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"backend":{"service":"erins-proxy","port":9999}}}""", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(2, edited.Metadata.Generation);
        Assert.Equal(Email("bob"), Annotation(edited, ApiGroup.CreatedByAnnotation));
        Assert.Equal(Email("erin"), Annotation(edited, ApiGroup.LastSpecEditorAnnotation));

        var refused = await Refused(() => erin.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("erin")} last changed the spec of Exposure orders (generation 2)", refused.StatusMessage);
        Assert.Contains("self-approval", refused.StatusMessage);

        // A metadata-only update by someone else does not make them an editor, nor clear erin.
        var labelled = await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"metadata":{"labels":{"team":"payments"}}}""", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("erin"), Annotation(labelled, ApiGroup.LastSpecEditorAnnotation));
        await Refused(() => erin.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None));

        // carol, who wrote none of it, may.
        var approval = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        await WaitForAsync(ws, approval.Metadata.Name, "Ready", "Counts");

        // bob edits after erin: she is still an author of what is under review (her backend is in it).
        var later = await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/orders-v2"}}""", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(3, later.Metadata.Generation);
        Assert.Equal(Email("bob"), Annotation(later, ApiGroup.LastSpecEditorAnnotation));
        Assert.Equal($"[\"{Email("erin")}\",\"{Email("bob")}\"]", Annotation(later, ApiGroup.SpecEditorsAnnotation));
        // Refused whatever generation the webhook's cache holds (generation 2: the last editor; 3: an earlier one), until it shows 3.
        await Net.WaitUntilAsync(async () =>
            (await Refused(() => erin.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None))).StatusMessage.Contains($"{Email("erin")} changed the spec of Exposure orders (generation 3)"),
            TimeSpan.FromSeconds(60), "erin refused as an earlier editor of generation 3");

        // The same for a Restore: erin picks another backup of bob's in-place restore. Its plan exists, so the
        // Restore waits for its backup rather than failing PlanNotFound (a Failed Restore's spec is immutable).
        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "nightly" } };
        plan.Spec.Schedule = "0 0 1 1 *";
        await Cluster.Api.CreateAsync(ResourceType.For<BackupPlan>(true), ws, plan, CancellationToken.None);
        var restore = new Restore { Metadata = new V1ObjectMeta { Name = "rollback" } };
        restore.Spec.BackupPlan = "nightly";
        restore.Spec.Backup = "nightly-1";
        restore.Spec.Into = new RestoreTarget { InPlace = true };
        await bob.CreateAsync(Restores, ws, restore, CancellationToken.None);
        var swapped = await erin.PatchAsync<Restore>(Restores, ws, "rollback", """{"spec":{"backup":"nightly-0"}}""", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("erin"), Annotation(swapped, ApiGroup.LastSpecEditorAnnotation));
        // A status write (as the operator makes them, through the status subresource) stamps no editor.
        var status = await Cluster.Api.PatchAsync<Restore>(Restores, ws, "rollback", """{"status":{"phase":"AwaitingApproval"}}""", PatchTypes.Merge, CancellationToken.None, "status");
        Assert.Equal(Email("erin"), Annotation(status, ApiGroup.LastSpecEditorAnnotation));
        Assert.Equal(swapped.Metadata.Generation, status.Metadata.Generation);
        var restoreRefused = await Refused(() => erin.CreateAsync(Approvals, ws, NewApproval("rollback", kind: "Restore"), CancellationToken.None));
        Assert.Contains("last changed the spec of Restore rollback", restoreRefused.StatusMessage);
        var restoreApproval = await carol.CreateAsync(Approvals, ws, NewApproval("rollback", kind: "Restore"), CancellationToken.None);
        await WaitForAsync(ws, restoreApproval.Metadata.Name, "Ready", "Counts");
    }

    [Fact]
    public async Task AStaleTargetGeneration_IsRefused_NotRewritten()
    {
        var ws = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        var v1 = await bob.CreateAsync(Exposures, ws, NewExposure("orders"), CancellationToken.None);
        await bob.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/everything"}}""", PatchTypes.Merge, CancellationToken.None);

        // carol reviewed generation 1; the exposure is at 2 now.
        var refused = await Refused(() => carol.CreateAsync(Approvals, ws, NewApproval("orders", generation: 1, uid: v1.Metadata.Uid), CancellationToken.None));
        Assert.Contains("spec.targetGeneration: 1 is not the current generation 2", refused.StatusMessage);
        Assert.Empty((await Cluster.Api.ListAsync<Approval>(Approvals, ws, null, 100, null, CancellationToken.None)).Items);

        var explicitly = await carol.CreateAsync(Approvals, ws, NewApproval("orders", generation: 2), CancellationToken.None);
        Assert.Equal(2, explicitly.Spec.TargetGeneration);
        var filled = await carol.CreateAsync(Approvals, ws, NewApproval("orders"), CancellationToken.None);
        Assert.Equal(2, filled.Spec.TargetGeneration);
        Assert.Equal(v1.Metadata.Uid, filled.Spec.TargetUID);

        // And an admitted approval's generation cannot be moved afterwards.
        var moved = await Refused(() => carol.PatchAsync<Approval>(Approvals, ws, filled.Metadata.Name, """{"spec":{"targetGeneration":3}}""", PatchTypes.Merge, CancellationToken.None));
        Assert.Contains("spec.targetGeneration", moved.StatusMessage);
    }

    [Fact]
    public async Task StampedAnnotations_CannotBeSetOrChangedByTheRequester_OnCreateOrUpdate()
    {
        var ws = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        var forged = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = "mallory@example.com",
            [ApiGroup.LastSpecEditorAnnotation] = "mallory@example.com",
            [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([ReleaseManagers]),
        };

        // CREATE: what the requester wrote is replaced by who they are, or dropped.
        var created = await bob.CreateAsync(Exposures, ws, NewExposure("orders", annotations: new(forged)), CancellationToken.None);
        Assert.Equal(Email("bob"), Annotation(created, ApiGroup.CreatedByAnnotation));
        Assert.Null(Annotation(created, ApiGroup.LastSpecEditorAnnotation));
        Assert.Null(Annotation(created, ApiGroup.ApproverGroupsAnnotation));

        // UPDATE without a spec change: stamps are restored, whether set, changed or removed.
        var noEditor = await bob.PatchAsync<Exposure>(Exposures, ws, "orders", Patch(ApiGroup.LastSpecEditorAnnotation, Email("carol")), PatchTypes.Merge, CancellationToken.None);
        Assert.Null(Annotation(noEditor, ApiGroup.LastSpecEditorAnnotation));
        await carol.PatchAsync<Exposure>(Exposures, ws, "orders", """{"spec":{"path":"/v2"}}""", PatchTypes.Merge, CancellationToken.None);
        var kept = await bob.PatchAsync<Exposure>(Exposures, ws, "orders",
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.LastSpecEditorAnnotation + "\":\"erin@example.com\",\"" + ApiGroup.CreatedByAnnotation + "\":\"erin@example.com\"}}}",
            PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("carol"), Annotation(kept, ApiGroup.LastSpecEditorAnnotation));
        Assert.Equal(Email("bob"), Annotation(kept, ApiGroup.CreatedByAnnotation));
        var removed = await carol.PatchAsync<Exposure>(Exposures, ws, "orders",
            $$"""[{"op":"remove","path":"{{Pointer(ApiGroup.CreatedByAnnotation)}}"},{"op":"remove","path":"{{Pointer(ApiGroup.LastSpecEditorAnnotation)}}"}]""", PatchTypes.Json, CancellationToken.None);
        Assert.Equal(Email("bob"), Annotation(removed, ApiGroup.CreatedByAnnotation));
        Assert.Equal(Email("carol"), Annotation(removed, ApiGroup.LastSpecEditorAnnotation));

        // Not silently: kubectl shows the requester what was put back.
        var kubeconfig = Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-bob");
        var (code, output) = await RunAsync("kubectl", "--kubeconfig", kubeconfig, "-n", ws, "annotate", "--overwrite", "exposures.controlplane.io", "orders",
            ApiGroup.CreatedByAnnotation + "=mallory@example.com");
        Assert.True(code == 0, output);
        Assert.Contains($"Warning: metadata.annotations[{ApiGroup.CreatedByAnnotation}]: set only by the admission webhook", output);
        Assert.Equal(Email("bob"), Annotation(await bob.GetAsync<Exposure>(Exposures, ws, "orders", CancellationToken.None), ApiGroup.CreatedByAnnotation));

        // UPDATE with a spec change: the requester is the editor, whatever they claim.
        var edited = await bob.PatchAsync<Exposure>(Exposures, ws, "orders",
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.LastSpecEditorAnnotation + "\":\"erin@example.com\"}},\"spec\":{\"path\":\"/v3\"}}", PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("bob"), Annotation(edited, ApiGroup.LastSpecEditorAnnotation));

        // On an Approval too: created-by and approver-groups come from the request, and stay.
        var erin = As("erin");
        var approval = await erin.CreateAsync(Approvals, ws, NewApproval("orders", annotations: new(forged)), CancellationToken.None);
        Assert.Equal(Email("erin"), Annotation(approval, ApiGroup.CreatedByAnnotation));
        Assert.Null(Annotation(approval, ApiGroup.LastSpecEditorAnnotation));
        Assert.DoesNotContain(ReleaseManagers, ApprovalPolicy.GroupsOf(approval));
        Assert.Contains("controlplane-test-users", ApprovalPolicy.GroupsOf(approval));
        var after = await erin.PatchAsync<Approval>(Approvals, ws, approval.Metadata.Name,
            "{\"metadata\":{\"annotations\":{\"" + ApiGroup.CreatedByAnnotation + "\":\"carol@example.com\",\"" + ApiGroup.LastSpecEditorAnnotation + "\":\"carol@example.com\"}}}",
            PatchTypes.Merge, CancellationToken.None);
        Assert.Equal(Email("erin"), Annotation(after, ApiGroup.CreatedByAnnotation));
        Assert.Null(Annotation(after, ApiGroup.LastSpecEditorAnnotation));
    }

    static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }
}
