using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// A BreakGlass's reconciler with no webhook in front (what the webhook stamps is written by hand): granted at once
/// (its RoleBinding, breakglass.invoked audited with severity security), then idle with zero writes to the API server
/// and Postgres, ended early by spec.end; with a short review window: expired at its recorded time (binding gone),
/// ReviewOverdue (audited once), cleared by a late review whose audit row says it was late; and Postgres refusing the
/// breakglass.invoked row grants nothing until the row is written (Ready=False/DatabaseUnavailable, then a retry).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BreakGlassTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType BreakGlasses = ResourceType.For<BreakGlass>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static readonly ResourceType RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);
    const string Wade = "wade@example.com";

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<string> WorkspaceAsync()
    {
        var tenant = Unique("bg");
        await cluster.CreateTenantAsync(tenant, edit: s => s.AccessPolicy = new TenantAccessPolicy
        {
            BreakGlass = new TenantBreakGlassPolicy { Role = "Operator", Invokers = new BreakGlassInvokers { Users = [Wade] } },
        });
        var name = Unique(tenant);
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Database = new WorkspaceDatabase { Enabled = false },
                Members = [new WorkspaceMember { Kind = "User", Name = Wade, Role = "Auditor" }, new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" }],
            },
        }, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready", TimeSpan.FromSeconds(90));
        return name;
    }

    /// <summary>What the webhook would have stamped (the invoker and the policy entry that matched), written by hand.</summary>
    Task<BreakGlass> InvokeAsync(string ns, string name, string duration) =>
        cluster.Api.CreateAsync(BreakGlasses, ns, new BreakGlass
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = Wade, [ApiGroup.BreakGlassInvokerMatchAnnotation] = "user:" + Wade },
            },
            Spec = new BreakGlassSpec { Role = "Operator", Duration = duration, Justification = "Payments are down and the batch pods need a restart", Incident = "INC-4711" },
        }, CancellationToken.None);

    Task<Approval> ReviewAsync(BreakGlass target, string reviewer) =>
        cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("review"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = BreakGlass.KubeKind, Name = target.Metadata.Name },
                Approver = reviewer, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation,
            },
        }, CancellationToken.None);

    Task<BreakGlass> WaitAsync(string ns, string name, Func<BreakGlass, bool> condition, string what, TimeSpan? timeout = null) =>
        cluster.WaitForObjectAsync(BreakGlasses, ns, name, condition, what, timeout);

    static bool Has(BreakGlass b, string type, string status) => b.Status?.Conditions?.Any(c => c.Type == type && c.Status == status) == true;

    Task<V1RoleBinding?> BindingAsync(string ns, string name) =>
        cluster.Api.TryGetAsync<V1RoleBinding>(RoleBindings, ns, "controlplane-breakglass-" + name, CancellationToken.None);

    async Task<List<(string Action, string Severity, string Details)>> AuditAsync(string key)
    {
        await using var ds = cluster.Postgres.DataSourceFor();
        await using var cmd = ds.CreateCommand("SELECT action, severity, details::text FROM controlplane.audit_events WHERE kind = 'BreakGlass' AND object_name = $1 ORDER BY id");
        cmd.Parameters.AddWithValue(key);
        var rows = new List<(string, string, string)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        return rows;
    }

    [Fact]
    public async Task GrantedAtOnce_Audited_IdleWithZeroWrites_ThenEndedEarly()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        await InvokeAsync(ns, "fire", "1h");
        var active = await WaitAsync(ns, "fire", b => b.Status?.Phase == BreakGlassPhase.Active, "Active at once, no approval first");
        Assert.Equal(Wade, active.Status!.Invoker);
        Assert.Equal(active.Status.GrantedAt!.Value.AddHours(1), active.Status.ExpiresAt);
        Assert.Equal(active.Status.GrantedAt!.Value.AddHours(24), active.Status.ReviewDeadline);
        Assert.True(Has(active, BreakGlassConditions.Reviewed, "False") && Has(active, BreakGlassConditions.ReviewOverdue, "False"));
        await Net.WaitUntilAsync(async () => await BindingAsync(ns, "fire") is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");
        Assert.Equal([("breakglass.invoked", "security")], (await AuditAsync($"{ns}/fire")).Select(a => (a.Action, a.Severity)));

        // Idle: reconciled again (twice, after two to settle), nothing is written to the API server or Postgres.
        await op.Runtime.ReconciledAgainAsync("breakglass", ns, "fire");
        var before = (op.Requests.Writes, op.Runtime.Database.Writes);
        var version = (await cluster.Api.GetAsync<BreakGlass>(BreakGlasses, ns, "fire", CancellationToken.None)).Metadata.ResourceVersion;
        await op.Runtime.ReconciledAgainAsync("breakglass", ns, "fire");
        Assert.Equal(before, (op.Requests.Writes, op.Runtime.Database.Writes));
        Assert.Equal(version, (await cluster.Api.GetAsync<BreakGlass>(BreakGlasses, ns, "fire", CancellationToken.None)).Metadata.ResourceVersion);

        // spec.end: ended early, the binding goes, audited.
        await cluster.Api.PatchAsync<BreakGlass>(BreakGlasses, ns, "fire", "{\"spec\":{\"end\":true}}", PatchTypes.Merge, CancellationToken.None);
        var ended = await WaitAsync(ns, "fire", b => b.Status?.Phase == BreakGlassPhase.Ended, "Ended");
        Assert.NotNull(ended.Status!.EndedAt);
        Assert.Null(await BindingAsync(ns, "fire"));
        Assert.Equal(["breakglass.invoked", "breakglass.ended"], (await AuditAsync($"{ns}/fire")).Select(a => a.Action));
    }

    [Fact]
    public async Task AStatusWriteLostAfterTheAuditRow_IsWrittenAgain_ButTheInvocationAndTheReviewAreAuditedOnce()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        await InvokeAsync(ns, "lost", "1h");
        var active = await WaitAsync(ns, "lost", b => b.Status?.Phase == BreakGlassPhase.Active, "Active");
        await Net.WaitUntilAsync(async () => await BindingAsync(ns, "lost") is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");
        var controller = op.Runtime.Controllers.Single(c => c.Name == "breakglass");

        // The status written after an audit row is lost (as a conflict the live read did not foresee, or a crash between the
        // two, loses it): the next pass (a status change alone wakes none: a resync) decides from the old status and writes it again.
        async Task LoseStatusAsync(string patch, Func<BreakGlass, bool> rewritten, string what)
        {
            var lost = await cluster.Api.PatchAsync<BreakGlass>(BreakGlasses, ns, "lost", patch, PatchTypes.Merge, CancellationToken.None, "status");
            await Net.WaitUntilAsync(async () =>
            {
                controller.ResyncNow();
                var b = await cluster.Api.GetAsync<BreakGlass>(BreakGlasses, ns, "lost", CancellationToken.None);
                return b.Metadata.ResourceVersion != lost.Metadata.ResourceVersion && rewritten(b);
            }, TimeSpan.FromSeconds(60), what);
        }

        Assert.Equal(["breakglass.invoked"], (await AuditAsync($"{ns}/lost")).Select(a => a.Action));
        await LoseStatusAsync("""{"status":null}""", b => b.Status?.Phase == BreakGlassPhase.Active, "Active written again");
        Assert.Equal(["breakglass.invoked"], (await AuditAsync($"{ns}/lost")).Select(a => a.Action));

        await ReviewAsync(active, "carol@example.com");
        await WaitAsync(ns, "lost", b => Has(b, BreakGlassConditions.Reviewed, "True"), "Reviewed");
        Assert.Equal(["breakglass.invoked", "breakglass.reviewed"], (await AuditAsync($"{ns}/lost")).Select(a => a.Action));
        await LoseStatusAsync("""{"status":{"reviewedAt":null,"reviewedBy":null}}""", b => b.Status?.ReviewedBy == "carol@example.com", "the review written again");
        Assert.Equal(["breakglass.invoked", "breakglass.reviewed"], (await AuditAsync($"{ns}/lost")).Select(a => a.Action));

        // Its end is a change of its own, on record once.
        await cluster.Api.PatchAsync<BreakGlass>(BreakGlasses, ns, "lost", "{\"spec\":{\"end\":true}}", PatchTypes.Merge, CancellationToken.None);
        await WaitAsync(ns, "lost", b => b.Status?.Phase == BreakGlassPhase.Ended, "Ended");
        Assert.Equal(["breakglass.invoked", "breakglass.reviewed", "breakglass.ended"], (await AuditAsync($"{ns}/lost")).Select(a => a.Action));
    }

    [Fact]
    public async Task ExpiresAtItsRecordedTime_ThenReviewOverdueOnce_ClearedByALateReview()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o =>
        {
            o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1);
            o.BreakGlassReviewWindow = TimeSpan.FromSeconds(25);
        });
        var ns = await WorkspaceAsync();
        await InvokeAsync(ns, "short", "12s");
        var active = await WaitAsync(ns, "short", b => b.Status?.Phase == BreakGlassPhase.Active, "Active");
        Assert.Equal(active.Status!.GrantedAt!.Value.AddSeconds(25), active.Status.ReviewDeadline);

        // At the recorded expiry the binding goes.
        var expired = await WaitAsync(ns, "short", b => b.Status?.Phase == BreakGlassPhase.Expired, "Expired", TimeSpan.FromSeconds(120));
        Assert.Null(await BindingAsync(ns, "short"));
        Assert.True(expired.Status!.EndedAt >= expired.Status.ExpiresAt);

        // No review by the deadline: ReviewOverdue, audited once (looked at again at the recorded deadline, no resync needed).
        var overdue = await WaitAsync(ns, "short", b => Has(b, BreakGlassConditions.ReviewOverdue, "True"), "ReviewOverdue", TimeSpan.FromSeconds(120));
        output.WriteLine($"review due {overdue.Status!.ReviewDeadline:O}, overdue seen at {DateTime.UtcNow:O}");
        await op.Runtime.ReconciledAgainAsync("breakglass", ns, "short");
        Assert.Single(await AuditAsync($"{ns}/short"), a => a.Action == "breakglass.review_overdue" && a.Severity == "security");

        // A late review clears it; its audit row says it was late.
        var reviewed = await ReviewAsync(overdue, "carol@example.com");
        var done = await WaitAsync(ns, "short", b => Has(b, BreakGlassConditions.Reviewed, "True"), "Reviewed");
        Assert.True(Has(done, BreakGlassConditions.ReviewOverdue, "False"));
        Assert.Equal("carol@example.com", done.Status!.ReviewedBy);
        var review = Assert.Single(await AuditAsync($"{ns}/short"), a => a.Action == "breakglass.reviewed");
        Assert.Contains("\"late\": true", review.Details);
        Assert.Equal(["breakglass.invoked", "breakglass.expired", "breakglass.review_overdue", "breakglass.reviewed"], (await AuditAsync($"{ns}/short")).Select(a => a.Action));
        Assert.NotNull(reviewed);
    }

    [Fact]
    public async Task PostgresRefusingTheInvokedRow_GrantsNothingUntilItIsWritten_AConditionAndARetry()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        await op.WaitUntilLeaderAndSyncedAsync(); // migrations ran
        var ns = await WorkspaceAsync();
        var name = Unique("down");
        // The system of record refuses this invocation's row; every other row is written.
        await using (await cluster.RefuseAuditRowAsync(BreakGlass.KubeKind, $"{ns}/{name}", "breakglass.invoked"))
        {
            await InvokeAsync(ns, name, "1h");
            var held = await WaitAsync(ns, name, b => b.Status?.Conditions?.Any(c => c is { Type: "Ready", Status: "False", Reason: BreakGlassReasons.DatabaseUnavailable }) == true,
                "Ready=False/DatabaseUnavailable");
            // Loud or not at all: no grant without its record.
            Assert.Null(await BindingAsync(ns, name));
            Assert.NotEqual(BreakGlassPhase.Active, held.Status!.Phase);
        }

        // Reachable again: retried on its own, Active, audited once.
        await WaitAsync(ns, name, b => b.Status?.Phase == BreakGlassPhase.Active, "Active after the retry");
        await Net.WaitUntilAsync(async () => await BindingAsync(ns, name) is not null, TimeSpan.FromSeconds(60), "the grant's RoleBinding exists");
        Assert.Equal(["breakglass.invoked"], (await AuditAsync($"{ns}/{name}")).Select(a => a.Action));
    }
}
