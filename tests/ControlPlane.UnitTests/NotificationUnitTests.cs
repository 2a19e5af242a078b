using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>NotificationChannel's pure parts: the event mapping, routing (tenant isolation), payloads, signatures, backoff, spec rules, the plan, address classes.</summary>
public sealed class NotificationUnitTests
{
    static readonly DateTime T0 = new(2026, 12, 7, 10, 0, 0, DateTimeKind.Utc);

    static SourceRow Audit(string action, string? tenant = "acme", string? workspace = "acme-dev", long id = 7, JsonObject? details = null, string kind = "Rollout") =>
        new(NotificationSource.Audit, id, T0, action, kind, workspace is null ? "x" : $"{workspace}/x", tenant, workspace, "bob@acme.io", null, null, null,
            details ?? new JsonObject { ["message"] = "hello" }, "prev", "hash", 3, "thash");

    static SourceRow Deploy(string type, string? to = null, string reason = "r", long id = 9) =>
        new(NotificationSource.Deployment, id, T0, type, "DeploymentIntent", "acme-dev/intent", "acme", "acme-dev", "bob@acme.io", reason, "InProgress", to,
            new JsonObject(), "p", "h", 1, "th");

    static ChannelScope Scope(ChannelReach reach, string? tenant = "acme", string? ws = "acme-dev", string[]? events = null, LabelSelector? selector = null, string type = "webhook") =>
        new(reach, tenant, ws, type, events ?? [], selector);

    static NotificationEvent Event(string type = NotificationEvents.RolloutRolledBack, string? tenant = "acme", string? ws = "acme-dev") =>
        new($"audit/1/{type}", type, T0, tenant, ws, "Rollout/acme-dev/x", new JsonObject { ["message"] = "m" });

    [Theory]
    [InlineData("rollout.rolled-back", NotificationEvents.RolloutRolledBack)]
    [InlineData("rollout.paused", NotificationEvents.RolloutPaused)]
    [InlineData("rollout.completed", NotificationEvents.RolloutCompleted)]
    [InlineData("backup.failed", NotificationEvents.BackupFailed)]
    [InlineData("backup.overdue", NotificationEvents.BackupOverdue)]
    [InlineData("restore.completed", NotificationEvents.RestoreCompleted)]
    [InlineData("access.expired", NotificationEvents.AccessExpired)]
    [InlineData("breakglass.invoked", NotificationEvents.BreakGlassUsed)]
    [InlineData("channel.auto_disabled", NotificationEvents.ChannelAutoDisabled)]
    [InlineData("access.requested", NotificationEvents.ApprovalRequested)]
    [InlineData("exposure.refused", NotificationEvents.ExposureRejected)]
    [InlineData("restore.rejected", NotificationEvents.ApprovalDecided)]
    public void AuditActions_MapToTheirEventType_WithAStableId(string action, string type)
    {
        var e = Assert.Single(NotificationEvents.Of(Audit(action)));
        Assert.Equal(type, e.Type);
        Assert.Equal($"audit/7/{type}", e.Id);
        Assert.Equal("acme", e.Tenant);
        Assert.Equal("acme-dev", e.Workspace);
        Assert.Equal("bob@acme.io", (string?)e.Details["actor"]);
        Assert.Equal(e.Id, NotificationEvents.Of(Audit(action)).Single().Id); // the same row is the same key, whoever reads it
    }

    [Fact]
    public void AGrant_IsAlsoAnApprovalDecision_AndOrdinaryRowsAreNoEvent()
    {
        var both = NotificationEvents.Of(Audit("access.granted"));
        Assert.Equal([NotificationEvents.AccessGranted, NotificationEvents.ApprovalDecided], both.Select(e => e.Type));
        Assert.Equal("approved", (string?)both[1].Details["decision"]);
        Assert.Empty(NotificationEvents.Of(Audit("workspace.updated")));
        Assert.Empty(NotificationEvents.Of(Audit("rollout.resumed")));
    }

    [Fact]
    public void DeploymentEvents_MapByPhaseAndReason()
    {
        Assert.Equal([NotificationEvents.IntentDenied], NotificationEvents.Of(Deploy("transition", "Denied", "PolicyViolation")).Select(e => e.Type));
        Assert.Equal([NotificationEvents.IntentDenied, NotificationEvents.ApprovalDecided], NotificationEvents.Of(Deploy("transition", "Denied", "Rejected")).Select(e => e.Type));
        Assert.Equal([NotificationEvents.IntentCompleted], NotificationEvents.Of(Deploy("transition", "Completed")).Select(e => e.Type));
        Assert.Equal([NotificationEvents.IntentNeedsCab, NotificationEvents.ApprovalRequested], NotificationEvents.Of(Deploy("transition", "AwaitingApproval", "AwaitingApproval")).Select(e => e.Type));
        Assert.Equal([NotificationEvents.IntentNeedsException, NotificationEvents.ApprovalRequested], NotificationEvents.Of(Deploy("transition", "AwaitingApproval", "RequiresException")).Select(e => e.Type));
        Assert.Equal([NotificationEvents.IntentDrift], NotificationEvents.Of(Deploy("drift", null, "DriftDetected")).Select(e => e.Type));
        Assert.Equal([NotificationEvents.ApprovalDecided], NotificationEvents.Of(Deploy("approval", null, "Approved")).Select(e => e.Type));
        Assert.Empty(NotificationEvents.Of(Deploy("ring", null, "RingStarted")));
        Assert.StartsWith("deployment/9/", NotificationEvents.Of(Deploy("drift")).Single().Id);
    }

    [Fact]
    public void EveryListedType_IsProducedBySomeRow()
    {
        var produced = new[]
        {
            "rollout.rolled-back", "rollout.paused", "rollout.completed", "exposure.published", "exposure.rejected", "backup.failed", "backup.overdue",
            "restore.completed", "access.granted", "access.expired", "breakglass.invoked", "channel.auto_disabled", "access.requested",
        }.SelectMany(a => NotificationEvents.Of(Audit(a)))
            .Concat(new[] { Deploy("transition", "Denied"), Deploy("transition", "Completed"), Deploy("transition", "AwaitingApproval"), Deploy("transition", "AwaitingApproval", "RequiresException"), Deploy("drift") }
                .SelectMany(NotificationEvents.Of))
            .Select(e => e.Type).ToHashSet();
        Assert.DoesNotContain(NotificationEvents.Types, t => !produced.Contains(t));
    }

    [Fact]
    public void ATenantsChannel_NeverReceivesAnotherTenantsEvent_NorAPlatformOne()
    {
        var ws = Scope(ChannelReach.Workspace);
        Assert.True(NotificationRouting.Receives(ws, Event(), null));
        Assert.False(NotificationRouting.Receives(ws, Event(tenant: "globex", ws: "globex-dev"), null));
        // Same workspace name claimed by another tenant's row: the tenant decides, not the name.
        Assert.False(NotificationRouting.Receives(ws, Event(tenant: "globex"), null));
        Assert.False(NotificationRouting.Receives(ws, Event(ws: "acme-prod"), null));
        Assert.False(NotificationRouting.Receives(ws, Event(tenant: null, ws: null), null));
        Assert.False(NotificationRouting.Receives(ws, Event(NotificationEvents.ChannelAutoDisabled), null));

        var tenant = Scope(ChannelReach.Tenant, selector: new LabelSelector { MatchLabels = new() { ["team"] = "payments" } });
        Assert.True(NotificationRouting.Receives(tenant, Event(ws: "acme-prod"), new Dictionary<string, string> { ["team"] = "payments" }));
        Assert.False(NotificationRouting.Receives(tenant, Event(ws: "acme-prod"), new Dictionary<string, string> { ["team"] = "web" }));
        Assert.False(NotificationRouting.Receives(tenant, Event(tenant: "globex", ws: "globex-dev"), new Dictionary<string, string> { ["team"] = "payments" }));
        Assert.True(NotificationRouting.Receives(tenant, Event(ws: null), null));

        var platform = Scope(ChannelReach.Platform, tenant: null, ws: null);
        Assert.True(NotificationRouting.Receives(platform, Event(tenant: "globex", ws: "globex-dev"), null));
        Assert.True(NotificationRouting.Receives(platform, Event(NotificationEvents.ChannelAutoDisabled), null));
    }

    [Fact]
    public void Subscriptions_FilterByType_ButATestIsAlwaysSent_AndSiemGetsRowsOnly()
    {
        var ws = Scope(ChannelReach.Workspace, events: [NotificationEvents.BackupFailed]);
        Assert.False(NotificationRouting.Receives(ws, Event(), null));
        Assert.True(NotificationRouting.Receives(ws, Event(NotificationEvents.BackupFailed), null));
        Assert.True(NotificationRouting.Receives(ws, Event(NotificationEvents.ChannelTest), null));
        var siem = Scope(ChannelReach.Platform, null, null, type: "siem");
        Assert.False(NotificationRouting.Receives(siem, Event(), null));
        Assert.True(NotificationRouting.SiemReceives(siem));
        Assert.False(NotificationRouting.SiemReceives(Scope(ChannelReach.Tenant, type: "siem")));
    }

    [Fact]
    public void Signatures_VerifyWithEitherSecretDuringRotation_AndOnlyInsideTheReplayWindow()
    {
        var body = Encoding.UTF8.GetBytes("{\"id\":\"audit/1/x\"}");
        var header = NotificationRouting.SignatureHeader(1_700_000_000, body, "new-secret", "old-secret");
        Assert.Matches("^t=1700000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$", header);
        Assert.True(NotificationRouting.Verify(header, body, "new-secret", 1_700_000_100, TimeSpan.FromMinutes(5)));
        Assert.True(NotificationRouting.Verify(header, body, "old-secret", 1_700_000_100, TimeSpan.FromMinutes(5)));
        Assert.False(NotificationRouting.Verify(header, body, "other", 1_700_000_100, TimeSpan.FromMinutes(5)));
        Assert.False(NotificationRouting.Verify(header, body, "new-secret", 1_700_001_000, TimeSpan.FromMinutes(5)));
        Assert.False(NotificationRouting.Verify(header, Encoding.UTF8.GetBytes("{\"id\":\"audit/2/x\"}"), "new-secret", 1_700_000_100, TimeSpan.FromMinutes(5)));
        // Known answer: HMAC-SHA256("key", "1.body").
        Assert.Equal("t=1,v1=" + Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData("key"u8, "1.body"u8)),
            NotificationRouting.SignatureHeader(1, "body"u8.ToArray(), "key", null));
    }

    [Fact]
    public void Backoff_IsExponential_Capped_AndJittered()
    {
        var initial = TimeSpan.FromSeconds(1);
        var max = TimeSpan.FromMinutes(5);
        Assert.Equal(TimeSpan.FromSeconds(1), NotificationRouting.Backoff(1, initial, max, 0.999999).RoundTo());
        Assert.Equal(TimeSpan.FromSeconds(0.5), NotificationRouting.Backoff(1, initial, max, 0));
        Assert.Equal(TimeSpan.FromSeconds(4), NotificationRouting.Backoff(3, initial, max, 0.999999).RoundTo());
        Assert.Equal(TimeSpan.FromMinutes(5), NotificationRouting.Backoff(40, initial, max, 0.999999).RoundTo());
        Assert.InRange(NotificationRouting.Backoff(40, initial, max, 0.3), TimeSpan.FromMinutes(2.5), TimeSpan.FromMinutes(5));
    }

    [Fact]
    public void Payloads_Webhook_Slack_PagerDuty_Siem()
    {
        var e = Event(NotificationEvents.ApprovalRequested) with { Details = new JsonObject { ["message"] = "<b>waits</b>", ["approvers"] = new JsonArray("carol@acme.io") } };
        var json = JsonNode.Parse(NotificationPayloads.Body("webhook", e.ToJson(), e.Id, null))!;
        Assert.Equal(e.Id, (string?)json["id"]);
        Assert.Equal("approval.requested", (string?)json["type"]);
        Assert.Equal("acme", (string?)json["tenant"]);
        Assert.Equal("acme-dev", (string?)json["workspace"]);
        Assert.Equal("2026-12-07T10:00:00.000000Z", (string?)json["time"]);

        var slack = JsonNode.Parse(NotificationPayloads.Body("slack", e.ToJson(), e.Id, null))!;
        Assert.Contains("approvers: carol@acme.io", (string?)slack["text"]);
        Assert.Contains("&lt;b&gt;", (string?)slack["blocks"]![0]!["text"]!["text"]);

        var pd = JsonNode.Parse(NotificationPayloads.Body("pagerduty", e.ToJson(), e.Id, "R0UT1NG"))!;
        Assert.Equal("R0UT1NG", (string?)pd["routing_key"]);
        Assert.Equal(e.Id, (string?)pd["dedup_key"]);
        Assert.Equal("trigger", (string?)pd["event_action"]);
        Assert.Equal("info", (string?)pd["payload"]!["severity"]);
        Assert.Equal("error", NotificationPayloads.Severity(NotificationEvents.RolloutRolledBack));

        var line = NotificationEvents.SiemLine(Audit("workspace.updated", id: 41));
        var body = Encoding.UTF8.GetString(NotificationPayloads.Body("siem", line, "audit/41", null));
        Assert.EndsWith("\n", body);
        var parsed = JsonNode.Parse(body)!;
        Assert.Equal(41, (long)parsed["seq"]!);
        Assert.Equal("hash", (string?)parsed["hash"]);
        Assert.Equal("prev", (string?)parsed["prevHash"]);
        Assert.Equal(3, (long)parsed["tenantSeq"]!);
        Assert.Equal("application/x-ndjson", NotificationPayloads.ContentType("siem"));
    }

    [Fact]
    public void ASiemLine_CarriesTheHashedObject_SoTheReceiverRecomputesTheHash()
    {
        var entry = new ControlPlane.Operator.Store.AuditEntry("bob@acme.io", "workspace.updated", "Workspace", "acme-dev", "acme", new JsonObject { ["n"] = 1 });
        var hashed = ControlPlane.Operator.Store.AuditLog.AuditEvent(T0, entry);
        var hash = ControlPlane.Operator.Store.AuditLog.Hash("prev", hashed);
        var row = Audit("workspace.updated") with { PrevHash = "prev", Hash = hash, Hashed = hashed };
        var line = JsonNode.Parse(Encoding.UTF8.GetString(NotificationPayloads.Body("siem", NotificationEvents.SiemLine(row), "audit/7", null)))!;
        Assert.Equal(hash, ControlPlane.Operator.Store.AuditLog.Hash((string)line["prevHash"]!, line["event"]!));
        Assert.Equal(ControlPlane.Operator.Store.SystemDatabase.ChainHash("prev", T0, entry), (string?)line["hash"]);
    }

    static NotificationChannelSpec Spec(string type = "webhook", string? url = "https://hooks.example.com/x", string? scope = null) => new()
    {
        Type = type,
        Scope = scope,
        Url = url,
        SigningSecretRef = new SigningSecretReference { Name = "signing" },
    };

    static string? NoProblem(string _) => null;

    static NotificationChannelSpec WithEvents(NotificationChannelSpec spec, params string[] events)
    {
        spec.Events = [.. events];
        return spec;
    }

    [Fact]
    public void Rules_NameTheField()
    {
        Assert.Empty(NotificationChannelRules.Problems(Spec(), ChannelReach.Workspace, NoProblem));
        Assert.Contains(NotificationChannelRules.Problems(Spec("siem"), ChannelReach.Tenant, NoProblem), p => p.StartsWith("spec.type: siem"));
        Assert.Empty(NotificationChannelRules.Problems(Spec("siem"), ChannelReach.Platform, NoProblem));
        Assert.Contains(NotificationChannelRules.Problems(Spec("slack"), ChannelReach.Workspace, NoProblem), p => p.StartsWith("spec.url: a Slack"));
        Assert.Contains(NotificationChannelRules.Problems(Spec("pagerduty", null), ChannelReach.Workspace, NoProblem), p => p.StartsWith("spec.urlSecretRef:"));
        Assert.Contains(NotificationChannelRules.Problems(WithEvents(Spec(), "rollout.exploded"), ChannelReach.Workspace, NoProblem), p => p.StartsWith("spec.events[0]: \"rollout.exploded\""));
        Assert.Contains(NotificationChannelRules.Problems(WithEvents(Spec(), NotificationEvents.ChannelAutoDisabled), ChannelReach.Tenant, NoProblem), p => p.StartsWith("spec.events[0]: channel.auto_disabled"));
        Assert.Contains(NotificationChannelRules.Problems(Spec(), ChannelReach.Workspace, _ => "spec.url: loopback addresses are refused"), p => p == "spec.url: loopback addresses are refused");
        var ws = Spec();
        ws.WorkspaceSelector = new LabelSelector();
        Assert.Contains(NotificationChannelRules.Problems(ws, ChannelReach.Workspace, NoProblem), p => p.StartsWith("spec.workspaceSelector:"));
        var noSigning = Spec();
        noSigning.SigningSecretRef = null;
        Assert.Contains(NotificationChannelRules.Problems(noSigning, ChannelReach.Workspace, NoProblem), p => p.StartsWith("spec.signingSecretRef:"));
        var badSecret = Spec();
        badSecret.SigningSecretRef = new SigningSecretReference { Name = "other-ns/signing" };
        Assert.Contains(NotificationChannelRules.Problems(badSecret, ChannelReach.Workspace, NoProblem), p => p.StartsWith("spec.signingSecretRef.name:"));
    }

    [Theory]
    [InlineData("https://127.0.0.1/hook", "loopback")]
    [InlineData("http://127.0.0.1:8080/hook", "loopback")]
    [InlineData("https://169.254.169.254/latest/meta-data", "link-local")]
    [InlineData("https://[::ffff:169.254.169.254]/hook", "link-local")]
    [InlineData("https://localhost/hook", "localhost")]
    public void TenantChannels_NeverReachLoopbackOrMetadata_EvenWhereThePlatformAllowsLoopback(string url, string what)
    {
        var prefix = url[..(url.IndexOf('/', 8) + 1)];
        var egress = new NotificationEgress(new ControlPlaneOptions { NotificationUrlPrefixes = [prefix], NotificationAllowLoopback = true, NotificationAllowPrivateAddresses = true });
        foreach (var reach in new[] { ChannelReach.Workspace, ChannelReach.Tenant })
        {
            var problem = egress.UrlProblem("spec.url", url, reach);
            Assert.NotNull(problem);
            Assert.StartsWith("spec.url: ", problem);
            Assert.True(problem.Contains(what, StringComparison.Ordinal) || problem.Contains("https", StringComparison.Ordinal), problem);
        }
    }

    [Fact]
    public void PlatformChannels_ReachLoopbackOnlyWithTheOption_AndNeverTheMetadataAddress()
    {
        var allowing = new NotificationEgress(new ControlPlaneOptions { NotificationAllowLoopback = true });
        Assert.Null(allowing.UrlProblem("spec.url", "http://127.0.0.1:8080/hook", ChannelReach.Platform));
        Assert.NotNull(new NotificationEgress(new ControlPlaneOptions()).UrlProblem("spec.url", "http://127.0.0.1:8080/hook", ChannelReach.Platform));
        Assert.NotNull(allowing.UrlProblem("spec.url", "https://169.254.169.254/latest", ChannelReach.Platform));
        // Not bound to the tenant lists: the platform administrator wrote it.
        Assert.Null(allowing.UrlProblem("spec.url", "https://siem.example.com/ingest", ChannelReach.Platform));
    }

    [Fact]
    public void TenantChannels_OnlyUnderThePrefixes_OverHttps()
    {
        var egress = new NotificationEgress(new ControlPlaneOptions { NotificationUrlPrefixes = ["https://hooks.example.com/acme/"] });
        Assert.Null(egress.UrlProblem("spec.url", "https://hooks.example.com/acme/x", ChannelReach.Workspace));
        Assert.Contains("NotificationUrlPrefixes", egress.UrlProblem("spec.url", "https://hooks.example.com/globex/x", ChannelReach.Workspace));
        Assert.Contains("NotificationUrlPrefixes", egress.UrlProblem("spec.url", "https://hooks.example.com.attacker.net/acme/x", ChannelReach.Workspace));
        Assert.Contains("https", egress.UrlProblem("spec.url", "http://hooks.example.com/acme/x", ChannelReach.Workspace));
        Assert.Contains("user info", egress.UrlProblem("spec.url", "https://u:p@hooks.example.com/acme/x", ChannelReach.Workspace));
    }

    static NotificationChannel Channel(long generation = 1, string? nonce = null, List<string>? sent = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "hooks", NamespaceProperty = "acme-dev", Generation = generation, Uid = "u1",
            Annotations = nonce is null ? null : new Dictionary<string, string> { [ApiGroup.TestDeliveryAnnotation] = nonce },
        },
        Spec = Spec(),
        Status = new NotificationChannelStatus { TestNonces = sent },
    };

    static ChannelCounts Counts(int streak = 0, long? disabledAt = null) => new(2, 10, streak, streak, T0, streak > 0 ? "HTTP 503" : null, disabledAt);

    [Fact]
    public void Plan_Active_AutoDisabled_ReEnabledBySpecChange()
    {
        var active = NotificationChannelPlan.Decide(new ChannelFacts(Channel(), [], [], Counts()));
        Assert.Equal(NotificationChannelPhase.Active, active.Phase);
        Assert.True(active.Deliverable);
        Assert.Contains(active.Conditions, c => c is { Type: "WebhookAutoDisabled", Status: false });

        var disabled = NotificationChannelPlan.Decide(new ChannelFacts(Channel(), [], [], Counts(10, 1)));
        Assert.Equal(NotificationChannelPhase.AutoDisabled, disabled.Phase);
        Assert.False(disabled.Deliverable);
        Assert.Contains(disabled.Conditions, c => c is { Type: "WebhookAutoDisabled", Status: true, Reason: NotificationChannelReasons.AutoDisabled });
        Assert.Contains(disabled.Conditions, c => c is { Type: "Ready", Status: false, Reason: NotificationChannelReasons.AutoDisabled });
        Assert.NotNull(StalledRule.Of(NotificationChannel.KubeKind, nameof(NotificationChannelPhase.AutoDisabled), new V1Condition { Type = "Ready", Status = "False", Reason = "AutoDisabled" }));

        var changed = NotificationChannelPlan.Decide(new ChannelFacts(Channel(generation: 2), [], [], Counts(10, 1)));
        Assert.True(changed.ReEnable);
        Assert.Equal(NotificationChannelPhase.Active, changed.Phase);
        var status = NotificationChannelPlan.Status(new ChannelFacts(Channel(generation: 2), [], [], Counts(10, 1)), changed, false);
        Assert.Equal(0, status.ConsecutiveFailures);
    }

    [Fact]
    public void Plan_ATestNonce_IsQueuedOnce_InvalidIsTerminal_AMissingSecretWaits()
    {
        var first = NotificationChannelPlan.Decide(new ChannelFacts(Channel(nonce: "n1"), [], [], Counts()));
        Assert.Equal("n1", first.TestNonce);
        var status = NotificationChannelPlan.Status(new ChannelFacts(Channel(nonce: "n1"), [], [], Counts()), first, true);
        Assert.Equal(["n1"], status.TestNonces!);
        Assert.Null(NotificationChannelPlan.Decide(new ChannelFacts(Channel(nonce: "n1", sent: ["n1"]), [], [], Counts())).TestNonce);

        var invalid = NotificationChannelPlan.Decide(new ChannelFacts(Channel(), ["spec.url: loopback addresses are refused"], [], Counts()));
        Assert.Equal(NotificationChannelPhase.Invalid, invalid.Phase);
        Assert.Equal(PassResult.Outcome.Terminal, invalid.Result.Kind);

        var missing = NotificationChannelPlan.Decide(new ChannelFacts(Channel(), [], ["spec.signingSecretRef: Secret signing"], Counts()));
        Assert.Equal(NotificationChannelPhase.Pending, missing.Phase);
        Assert.Equal(PassResult.Outcome.Retry, missing.Result.Kind);
        Assert.Null(StalledRule.Of(NotificationChannel.KubeKind, nameof(NotificationChannelPhase.Pending), new V1Condition { Type = "Ready", Status = "False", Reason = NotificationChannelReasons.SecretMissing }));

        // A Secret that exists but holds nothing usable is not Active either: Pending, retried, the field and why named.
        var unusable = NotificationChannelPlan.Decide(new ChannelFacts(Channel(), [], [], Counts(), ["spec.urlSecretRef (key url of Secret hook): the value is empty"]));
        Assert.Equal(NotificationChannelPhase.Pending, unusable.Phase);
        Assert.False(unusable.Deliverable);
        Assert.Equal(PassResult.Outcome.Retry, unusable.Result.Kind);
        var ready = Assert.Single(unusable.Conditions, c => c.Type == "Ready");
        Assert.Equal(NotificationChannelReasons.SecretMissing, ready.Reason);
        Assert.StartsWith("spec.urlSecretRef (key url of Secret hook): the value is empty", ready.Message, StringComparison.Ordinal);
    }
}

static class NotificationTestExtensions
{
    public static TimeSpan RoundTo(this TimeSpan t) => TimeSpan.FromMilliseconds(Math.Round(t.TotalMilliseconds));
}
