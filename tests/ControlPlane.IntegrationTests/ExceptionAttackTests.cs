using System.Net;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Exceptions and RequireException through the whole operator, as token users through the webhook: an intent
/// with a High CVE waits (AwaitingApproval, ExceptionsCovered False) until an Exception of its namespace and digest
/// is approved by a SecurityReviewer, and then completes; the Exception's author and owner, the intent's author and
/// an Operator approving it are refused naming spec.approver; an expiresAt beyond the tenant's policy is refused
/// naming spec.expiresAt; another tenant's Exception for the same digest covers nothing; and an Exception expiring
/// mid-rollout stops the next ring loudly (Warning, audit row, exception_expired), never rolling back.
/// mona and wade have no cluster-wide rights (their roles come from workspace members); alice, bob, carol, dave
/// and erin may write every ControlPlane object anywhere (the fixture), so what refuses them is the webhook.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class ExceptionAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType Exceptions = ResourceType.For<SecurityException>(true);
    static readonly string Digest = new('c', 64);
    const string Cve = "CVE-2025-12345";

    static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    /// <summary>A tenant with scope acq-001/bu-finance and one Ready dev workspace per ring (members as given), with the plane's Secret. Intents live in the first.</summary>
    async Task<List<string>> TenantAsync((string User, string Role)[] members, params string[] rings)
    {
        var tenant = Unique("exa");
        // olga approves the intents' Application (issue 23: every intent names an approved Application); she plays no other part.
        members = [.. members, ("olga", "Approver")];
        await Cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        var names = new List<string>();
        foreach (var ring in rings)
        {
            var name = Unique(tenant);
            await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string> { [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online" },
                },
                Spec = new WorkspaceSpec
                {
                    Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                    Members = [.. members.Select(m => new WorkspaceMember { Kind = "User", Name = Email(m.User), Role = m.Role })],
                },
            }, CancellationToken.None);
            names.Add(name);
        }

        foreach (var name in names)
        {
            await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
            await Cluster.Api.CreateAsync(ResourceType.Secrets, name, new V1Secret
            {
                Metadata = new V1ObjectMeta { Name = "plane" }, StringData = new Dictionary<string, string> { ["token"] = WebhookFixture.IntentPlaneToken },
            }, CancellationToken.None);
            await Evidence.CreateAsync(Cluster.Api, name, Image);
        }

        using (var olga = As("olga")) await Applications.ApprovedApplicationAsync(Cluster.Api, names[0], rings, [new(Email("olga"), olga)], "orders");
        return names;
    }

    /// <summary>RBAC follows the operator's RoleBindings: wait until the API server grants the user this write.</summary>
    async Task WaitForAccessAsync(string user, string verb, string resource, string ns)
    {
        var reviews = new ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
        var u = Cluster.Plane.Users[user];
        await Net.WaitUntilAsync(async () => (await Cluster.Api.CreateAsync(reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = u.Name, Groups = [.. u.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Group = ApiGroup.Group, Resource = resource, NamespaceProperty = ns },
            },
        }, CancellationToken.None)).Status.Allowed, TimeSpan.FromSeconds(60), $"{user} may {verb} {resource} in {ns}");
    }

    /// <summary>
    /// The one builder of this file's DeploymentIntents: a low-risk change on the http plane (no CAB) whose artifact has a
    /// High CVE. What other issues make mandatory for intents (an Application, evidence) is added here.
    /// </summary>
    const string Image = "registry.example/orders:2.1.0";

    DeploymentIntent NewIntent(string name, string digest, params string[] rings) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = Evidence.Attach(new DeploymentIntentSpec
        {
            Application = "orders", Version = "2.1.0",
            Artifact = new Artifact { Image = Image, Sha256 = digest, Vulnerabilities = [new Vulnerability { Id = Cve, Severity = "High" }] },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = [.. rings] },
            ExecutionPlane = new ExecutionPlane { Type = "http", Url = fixture.IntentPlane.BaseUrl.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
            RollbackPlan = new RollbackPlan { Strategy = "previous-version" },
            DriftCheckInterval = "1h",
        }),
    };

    static SecurityException NewException(string name, string digest, string owner, DateTime expiresAt) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new SecurityExceptionSpec
        {
            Type = "vulnerability", Artifact = new ExceptionArtifact { Image = "registry.example/orders:2.1.0", Sha256 = digest },
            Covers = [Cve], Severity = "High", CompensatingControls = ["WAF rule 9001 blocks the upload path"], Owner = owner, ExpiresAt = expiresAt,
            Justification = "The vulnerable parser is unreachable: uploads are disabled in this service until 2.2.",
        },
    };

    static Approval NewApproval(string exception) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("apr") },
        Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = "Exception", Name = exception } },
    };

    async Task<T> WaitAsync<T>(ResourceType type, string ns, string name, Func<T, bool> condition, string what, Func<T, object?> show, TimeSpan? timeout = null) where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        T? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await Cluster.Api.GetAsync<T>(type, ns, name, CancellationToken.None)), timeout ?? TimeSpan.FromSeconds(60), $"{name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{name}: {what}; last status: {k8s.KubernetesJson.Serialize(last is null ? null : show(last))}");
        }

        return last!;
    }

    Task<DeploymentIntent> WaitIntentAsync(string ns, string name, Func<DeploymentIntent, bool> condition, string what, TimeSpan? timeout = null) =>
        WaitAsync<DeploymentIntent>(Intents, ns, name, condition, what, i => i.Status, timeout);

    Task<SecurityException> WaitExceptionAsync(string ns, string name, Func<SecurityException, bool> condition, string what) =>
        WaitAsync<SecurityException>(Exceptions, ns, name, condition, what, e => e.Status);

    static V1Condition? Condition(DeploymentIntent i, string type) => i.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    static bool AwaitsException(DeploymentIntent i) =>
        i.Status?.Phase == IntentPhase.AwaitingApproval && Condition(i, IntentConditions.ExceptionsCovered) is { Status: "False", Reason: IntentReasons.AwaitingException };

    async Task<List<string>> DeploymentEventsAsync(string ns, string name)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT event_type FROM controlplane.deployment_events WHERE namespace = $1 AND name = $2 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(ns);
        cmd.Parameters.AddWithValue(name);
        var types = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) types.Add(r.GetString(0));
        return types;
    }

    async Task<List<string>> AuditActionsAsync(string kind, string objectName)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = $1 AND object_name = $2 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(kind);
        cmd.Parameters.AddWithValue(objectName);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    IEnumerable<ConnectorContractServer.RecordedCall> PublishesOf(DeploymentIntent i) =>
        fixture.IntentPlane.Calls.Where(c => c.Method == "POST" && c.Path == "/deployments" && c.IdempotencyKey?.StartsWith(i.Metadata.Uid + ":", StringComparison.Ordinal) == true);

    /// <summary>The intent reconciled twice more (<see cref="Reconciles.ReconciledAgainAsync"/>).</summary>
    Task ReconciledAgainAsync(string ns, string name) => fixture.Runtime.ReconciledAgainAsync("deploymentintent", ns, name);

    [Fact]
    public async Task AHighCve_WaitsForAnException_ApprovedOnlyByASecurityReviewer_NeverItsAuthorOwnerIntentAuthorOrAnOperator_ThenCompletes()
    {
        // erin writes the Exception, carol owns it, bob writes the intent (an Operator, to deploy it): all three SecurityReviewers, none may approve.
        // dave is an Operator, alice the WorkspaceAdmin: not SecurityReviewers. mona is the one who may.
        var ws = await TenantAsync(
            [("alice", "WorkspaceAdmin"), ("bob", "Operator"), ("bob", "SecurityReviewer"), ("carol", "SecurityReviewer"), ("dave", "Operator"), ("erin", "SecurityReviewer"), ("mona", "SecurityReviewer")],
            "ring-1", "ring-2");
        var ns = ws[0];
        await WaitForAccessAsync("mona", "create", "approvals", ns);
        using var bob = As("bob");
        using var erin = As("erin");
        using var carol = As("carol");
        using var dave = As("dave");
        using var alice = As("alice");
        using var mona = As("mona");

        var created = await bob.CreateAsync(Intents, ns, NewIntent("orders", Digest, "ring-1", "ring-2"), CancellationToken.None);
        var waiting = await WaitIntentAsync(ns, "orders", AwaitsException, "waits for an Exception");
        Assert.Equal("RequireException", waiting.Status!.Decision);
        Assert.Contains($"{Cve} (High)", Condition(waiting, IntentConditions.ExceptionsCovered)!.Message);
        Assert.Equal(IntentReasons.AwaitingException, Condition(waiting, IntentConditions.Ready)!.Reason);
        Assert.Empty(waiting.Status.Rings ?? []);
        Assert.Empty(PublishesOf(created));

        // Beyond the tenant's policy (default 90 days): refused, naming the field.
        var tooLong = await Refused(() => erin.CreateAsync(Exceptions, ns, NewException("too-long", Digest, Email("carol"), DateTime.UtcNow.AddDays(120)), CancellationToken.None));
        Assert.Contains("spec.expiresAt:", tooLong.StatusMessage);
        Assert.Contains("spec.exceptionPolicy.maxDuration (90d)", tooLong.StatusMessage);

        var exception = await erin.CreateAsync(Exceptions, ns, NewException("cve-waiver", Digest, Email("carol"), DateTime.UtcNow.AddDays(30)), CancellationToken.None);
        Assert.Equal(Email("erin"), exception.Metadata.Annotations[ApiGroup.CreatedByAnnotation]);
        await WaitExceptionAsync(ns, "cve-waiver", e => e.Status?.Phase == ExceptionPhase.Pending, "Pending");

        var author = await Refused(() => erin.CreateAsync(Approvals, ns, NewApproval("cve-waiver"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("erin")} created Exception cve-waiver; self-approval is not allowed", author.StatusMessage);
        var owner = await Refused(() => carol.CreateAsync(Approvals, ns, NewApproval("cve-waiver"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("carol")} is spec.owner of Exception cve-waiver", owner.StatusMessage);
        var intentAuthor = await Refused(() => bob.CreateAsync(Approvals, ns, NewApproval("cve-waiver"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("bob")} authored DeploymentIntent orders", intentAuthor.StatusMessage);
        Assert.DoesNotContain("does not hold the SecurityReviewer role", intentAuthor.StatusMessage);
        var operatorRole = await Refused(() => dave.CreateAsync(Approvals, ns, NewApproval("cve-waiver"), CancellationToken.None));
        Assert.Contains($"spec.approver: {Email("dave")} does not hold the SecurityReviewer role in workspace {ns}", operatorRole.StatusMessage);
        var admin = await Refused(() => alice.CreateAsync(Approvals, ns, NewApproval("cve-waiver"), CancellationToken.None));
        Assert.Contains("SecurityReviewer", admin.StatusMessage);
        Assert.True(AwaitsException(await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "orders", CancellationToken.None)));

        // A SecurityReviewer who is none of them: the Exception is Active, the intent goes through its rings.
        await mona.CreateAsync(Approvals, ns, NewApproval("cve-waiver"), CancellationToken.None);
        var active = await WaitExceptionAsync(ns, "cve-waiver", e => e.Status?.Phase == ExceptionPhase.Active, "Active");
        Assert.Equal(Email("mona"), active.Status!.ApprovedBy);
        Assert.NotNull(active.Status.ApprovedAt);
        var done = await WaitIntentAsync(ns, "orders", i => i.Status?.Phase == IntentPhase.Completed, "Completed once covered", TimeSpan.FromSeconds(90));
        Assert.Equal("RequireException", done.Status!.Decision);
        Assert.Equal((ConditionStatus.True, IntentReasons.ExceptionsCovered), (Condition(done, IntentConditions.ExceptionsCovered)!.Status, Condition(done, IntentConditions.ExceptionsCovered)!.Reason));
        Assert.Contains("cve-waiver", Condition(done, IntentConditions.ExceptionsCovered)!.Message);
        Assert.Equal(["ring-1", "ring-2"], done.Status.Rings!.Select(r => r.Name));
        Assert.Contains("exception_granted", await DeploymentEventsAsync(ns, "orders"));
        Assert.Contains("exception.approved", await AuditActionsAsync("Exception", $"{ns}/cve-waiver"));
    }

    [Fact]
    public async Task AnExceptionOfTenantA_ForTenantBsArtifact_CoversNothingThere_AndAReviewerOfACannotApproveInB()
    {
        var a = await TenantAsync([("wade", "SecurityReviewer"), ("alice", "Operator")], "ring-1");
        var b = await TenantAsync([("bob", "Operator")], "ring-1");
        await WaitForAccessAsync("wade", "create", "approvals", a[0]);
        using var alice = As("alice");
        using var bob = As("bob");
        using var wade = As("wade");
        var digest = new string('d', 64);

        await bob.CreateAsync(Intents, b[0], NewIntent("theirs", digest, "ring-1"), CancellationToken.None);
        await WaitIntentAsync(b[0], "theirs", AwaitsException, "B's intent waits for an Exception");

        // Tenant A waives B's CVE on B's digest, approved by A's own SecurityReviewer: it is Active in A, and counts only in A's namespace.
        await alice.CreateAsync(Exceptions, a[0], NewException("for-b", digest, Email("alice"), DateTime.UtcNow.AddDays(10)), CancellationToken.None);
        await wade.CreateAsync(Approvals, a[0], NewApproval("for-b"), CancellationToken.None);
        await WaitExceptionAsync(a[0], "for-b", e => e.Status?.Phase == ExceptionPhase.Active, "Active in tenant A");

        // A's reviewer has no rights in B; B has no Exception of that name for an Approval to name.
        await Refused(() => wade.CreateAsync(Approvals, b[0], NewApproval("for-b"), CancellationToken.None), HttpStatusCode.Forbidden);
        var missing = await Refused(() => alice.CreateAsync(Approvals, b[0], NewApproval("for-b"), CancellationToken.None));
        Assert.Contains("spec.target: Exception", missing.StatusMessage);

        // B's intent, reconciled twice more after all that, still waits: only Exceptions of its own namespace count.
        await ReconciledAgainAsync(b[0], "theirs");
        var still = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, b[0], "theirs", CancellationToken.None);
        Assert.True(AwaitsException(still), k8s.KubernetesJson.Serialize(still.Status));
        Assert.Null(still.Status!.Exceptions);
        Assert.Empty(still.Status.Rings ?? []);
    }

    [Fact]
    public async Task AnExceptionExpiringMidRollout_StopsTheNextRing_WithAWarningAndAnAuditRow_NeverRollingBack()
    {
        var ws = await TenantAsync([("bob", "Operator"), ("mona", "SecurityReviewer")], "ring-1", "ring-2");
        var ns = ws[0];
        await WaitForAccessAsync("mona", "create", "approvals", ns);
        using var bob = As("bob");
        using var mona = As("mona");

        // The Exception lasts 90 seconds (ring 1 runs meanwhile); ring 2's window opens after it has expired.
        var expires = DateTime.UtcNow.AddSeconds(90);
        await bob.CreateAsync(Exceptions, ns, NewException("short", Digest, Email("bob"), expires), CancellationToken.None);
        await mona.CreateAsync(Approvals, ns, NewApproval("short"), CancellationToken.None);
        await WaitExceptionAsync(ns, "short", e => e.Status?.Phase == ExceptionPhase.Active, "Active");
        var intent = NewIntent("expiring", Digest, "ring-1", "ring-2");
        intent.Spec.Schedule = new Dictionary<string, RingSchedule> { ["ring-2"] = new RingSchedule { Start = expires.AddSeconds(15) } };
        await bob.CreateAsync(Intents, ns, intent, CancellationToken.None);
        await WaitIntentAsync(ns, "expiring", i => i.Status?.Rings?.FirstOrDefault(r => r.Name == "ring-1")?.Phase == IntentRingPhase.Completed, "ring 1 completed while covered");

        // Expiry, from spec.expiresAt: the Exception is Expired (stalled), the intent loses cover and says so.
        await WaitAsync<SecurityException>(Exceptions, ns, "short", e => e.Status?.Phase == ExceptionPhase.Expired, "Expired", e => e.Status, TimeSpan.FromSeconds(120));
        await WaitIntentAsync(ns, "expiring", i => Condition(i, IntentConditions.ExceptionsCovered) is { Status: "False", Reason: IntentReasons.ExceptionExpired }, "cover lost");

        // Ring 2's window opens: it does not start. Held, stalled with the reason, ring 1 left as it was (no rollback).
        var held = await WaitIntentAsync(ns, "expiring", i => i.Status?.Phase == IntentPhase.AwaitingApproval && Condition(i, IntentConditions.Ready)?.Reason == IntentReasons.ExceptionExpired,
            "ring 2 held", TimeSpan.FromSeconds(90));
        Assert.Equal((ConditionStatus.True, IntentReasons.ExceptionExpired), (Condition(held, "Stalled")!.Status, Condition(held, "Stalled")!.Reason));
        Assert.Equal(IntentRingPhase.Completed, held.Status!.Rings!.Single(r => r.Name == "ring-1").Phase);
        Assert.DoesNotContain(held.Status.Rings!, r => r.Name == "ring-2");
        Assert.DoesNotContain(held.Status.Rings!, r => r.Phase == IntentRingPhase.RolledBack);
        Assert.DoesNotContain(fixture.IntentPlane.Calls, c => c.IdempotencyKey == $"{held.Metadata.Uid}:ring-2");

        var events = await Cluster.Api.ListAsync<Corev1Event>(ResourceType.Events, ns, null, 500, null, CancellationToken.None);
        Assert.Contains(events.Items, e => e.Type == "Warning" && e.Reason == IntentReasons.ExceptionExpired && e.InvolvedObject.Name == "expiring");
        Assert.Contains(events.Items, e => e.Type == "Warning" && e.Reason == ExceptionReasons.Expired && e.InvolvedObject.Name == "short");
        var recorded = await DeploymentEventsAsync(ns, "expiring");
        Assert.True(recorded.IndexOf("exception_granted") < recorded.IndexOf("exception_expired"), string.Join(", ", recorded));
        Assert.Contains("deploymentintent.exceptionExpired", await AuditActionsAsync(DeploymentIntent.KubeKind, $"{ns}/expiring"));
        Assert.Contains("exception.expired", await AuditActionsAsync("Exception", $"{ns}/short"));
    }

    [Fact]
    public async Task ACoverLost_WithTheStatusWriteAfterItsAuditRowLost_IsAuditedOnce_AndLostAgainAfterItWasRegained_IsAuditedAgain()
    {
        var ws = await TenantAsync([("bob", "Operator"), ("mona", "SecurityReviewer")], "ring-1", "ring-2");
        var ns = ws[0];
        await WaitForAccessAsync("mona", "create", "approvals", ns);
        using var bob = As("bob");
        using var mona = As("mona");
        await bob.CreateAsync(Exceptions, ns, NewException("waiver", Digest, Email("bob"), DateTime.UtcNow.AddDays(10)), CancellationToken.None);
        var approval = await mona.CreateAsync(Approvals, ns, NewApproval("waiver"), CancellationToken.None);
        await WaitExceptionAsync(ns, "waiver", e => e.Status?.Phase == ExceptionPhase.Active, "Active");
        // Ring 2 waits for its window (hours away): the intent stays in progress, its cover looked at on every pass.
        var intent = NewIntent("flap", Digest, "ring-1", "ring-2");
        intent.Spec.Schedule = new Dictionary<string, RingSchedule> { ["ring-2"] = new RingSchedule { Start = DateTime.UtcNow.AddHours(2) } };
        await bob.CreateAsync(Intents, ns, intent, CancellationToken.None);
        var covered = await WaitIntentAsync(ns, "flap", i => Condition(i, IntentConditions.ExceptionsCovered)?.Status == "True"
            && i.Status?.Rings?.FirstOrDefault(r => r.Name == "ring-1")?.Phase == IntentRingPhase.Completed, "ring 1 completed while covered", TimeSpan.FromSeconds(90));
        async Task<int> LossesAsync() => (await AuditActionsAsync(DeploymentIntent.KubeKind, $"{ns}/flap")).Count(a => a == "deploymentintent.exceptionExpired");
        async Task LoseCoverAsync(Approval given, int rows)
        {
            await Cluster.Api.DeleteAsync(Approvals, ns, given.Metadata.Name, CancellationToken.None);
            await WaitIntentAsync(ns, "flap", i => Condition(i, IntentConditions.ExceptionsCovered) is { Status: "False", Reason: IntentReasons.ExceptionExpired }, "cover lost");
            await Net.WaitUntilAsync(async () => await LossesAsync() >= rows, TimeSpan.FromSeconds(30), "the loss audited");
            Assert.Equal(rows, await LossesAsync());
        }

        await LoseCoverAsync(approval, 1);

        // The status written after that row is lost (as a conflict with a lagging cache, or a crash between the two, loses it):
        // the status says covered again, as the pass before wrote it. The next pass (a resync) finds the cover lost again: on record once.
        var lost = await Cluster.Api.PatchAsync<DeploymentIntent>(Intents, ns, "flap", $$"""{"status":{{k8s.KubernetesJson.Serialize(covered.Status)}}}""",
            PatchTypes.Merge, CancellationToken.None, "status");
        var controller = fixture.Runtime.Controllers.Single(c => c.Name == "deploymentintent");
        await Net.WaitUntilAsync(async () =>
        {
            controller.ResyncNow();
            var i = await Cluster.Api.GetAsync<DeploymentIntent>(Intents, ns, "flap", CancellationToken.None);
            return i.Metadata.ResourceVersion != lost.Metadata.ResourceVersion && Condition(i, IntentConditions.ExceptionsCovered)?.Status == "False";
        }, TimeSpan.FromSeconds(60), "the loss written again");
        Assert.Equal(1, await LossesAsync());

        // Cover regained, then lost again: a loss of its own, on record.
        var again = await mona.CreateAsync(Approvals, ns, NewApproval("waiver"), CancellationToken.None);
        await WaitIntentAsync(ns, "flap", i => Condition(i, IntentConditions.ExceptionsCovered)?.Status == "True", "covered again", TimeSpan.FromSeconds(90));
        await LoseCoverAsync(again, 2);
    }
}
