using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using Xunit.Abstractions;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Applications end to end with no webhook in front (the reconciler's own judgement; the stamps the webhook
/// writes are written by hand): every scope version recorded in Postgres and the audit trail only once CAB
/// approved it (a narrowing at once), the author's approval never counting, an owner-only change needing
/// nothing, "Postgres down" a condition and a retry, and a resync with nothing to do writing nothing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ApplicationTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<List<string>> TenantAsync(List<TenantPublisher>? publishers = null)
    {
        var tenant = Unique("apps");
        await cluster.CreateTenantAsync(tenant, edit: t =>
        {
            t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }];
            t.Publishers = publishers;
        });
        var names = new List<string>();
        foreach (var (ring, environment) in new[] { ("ring-1", "dev"), ("ring-2", "prod") })
        {
            var name = Unique(tenant);
            await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string>
                    {
                        [ApiGroup.RingLabel] = ring, [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online",
                    },
                },
                Spec = new WorkspaceSpec
                {
                    Tenant = tenant, Environment = environment, Database = new WorkspaceDatabase { Enabled = false },
                    Members =
                    [
                        new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Approver" },
                        new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
                        new WorkspaceMember { Kind = "User", Name = "erin@example.com", Role = "Approver" },
                    ],
                },
            }, CancellationToken.None);
            names.Add(name);
        }

        foreach (var name in names) await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        return names;
    }

    /// <summary>What the webhook would have stamped on an approval, written by hand.</summary>
    async Task ApproveAsync(string ns, string name, string approver)
    {
        var app = await cluster.Api.GetAsync<Application>(Applications.Type, ns, name, CancellationToken.None);
        await cluster.Api.CreateAsync(Approvals, ns, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = Application.KubeKind, Name = name }, Decision = "approve", Approver = approver,
                TargetUID = app.Metadata.Uid, TargetGeneration = app.Metadata.Generation,
            },
        }, CancellationToken.None);
    }

    async Task<Application> WaitAsync(string ns, string name, Func<Application, bool> condition, string what)
    {
        Application? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await cluster.Api.GetAsync<Application>(Applications.Type, ns, name, CancellationToken.None)),
                TimeSpan.FromSeconds(60), $"{name}: {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}", e);
        }

        return last!;
    }

    async Task<List<(int Version, string Reason, string Approvers, string Rings)>> RecordedAsync(string uid)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT version, reason, approvers::text, scope->>'rings' FROM controlplane.application_scope_versions WHERE application_uid = $1 ORDER BY version", conn);
        cmd.Parameters.AddWithValue(uid);
        var rows = new List<(int, string, string, string)>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows.Add((reader.GetInt32(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
        return rows;
    }

    async Task<List<string>> AuditActionsAsync(string key)
    {
        await using var conn = new NpgsqlConnection(cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'Application' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(key);
        var actions = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) actions.Add(reader.GetString(0));
        return actions;
    }

    [Fact]
    public async Task ScopeVersions_TakeEffectOnlyWithCab_NeverByTheAuthor_AreRecordedOnce_ANarrowingAtOnce_AndAResyncWritesNothing()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ws = await TenantAsync();
        var ns = ws[0];
        const string name = "app-001";
        var created = await cluster.Api.CreateAsync(Applications.Type, ns, new Application
        {
            Metadata = new V1ObjectMeta { Name = name, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "bob@example.com" } },
            Spec = new ApplicationSpec { Owner = "alice@example.com", AllowedScope = Applications.Scope(["ring-1"]) },
        }, CancellationToken.None);
        var uid = created.Metadata.Uid!;
        var key = $"{ns}/{name}";

        // The author's approval never counts (self-approval), however it got in.
        await ApproveAsync(ns, name, "bob@example.com");
        var first = await WaitAsync(ns, name, a => a.Status?.PendingScope?.Version == 1, "v1 awaits CAB");
        Assert.Equal(ApplicationPhase.AwaitingApproval, first.Status!.Phase);
        Assert.Null(first.Status.ScopeVersion);
        Assert.Null(first.Status.PendingScope!.Approvals);
        await LiveHealth.AssertAsync(cluster.Api, Applications.Type, ns, name, "first version awaiting approval");
        Assert.Empty(await RecordedAsync(uid));

        await ApproveAsync(ns, name, "carol@example.com");
        var v1 = await WaitAsync(ns, name, a => a.Status?.ScopeVersion == 1, "v1 in effect");
        Assert.Equal(ApplicationPhase.Active, v1.Status!.Phase);
        Assert.Equal(["carol@example.com"], v1.Status.ApprovedBy!);
        await LiveHealth.AssertAsync(cluster.Api, Applications.Type, ns, name, "active");
        Assert.Equal([(1, ApplicationReasons.ScopeApproved, "[\"carol@example.com\"]", "[\"ring-1\"]")], await RecordedAsync(uid));
        Assert.Equal(["application.scope-approved"], await AuditActionsAsync(key));

        // Nothing to do: a resync writes nothing, to the API server or to Postgres.
        await op.ResyncWritesNothingAsync($"application {key}");

        // Only the owner, class and tier change: no new version, nothing recorded.
        await cluster.Api.PatchAsync<Application>(Applications.Type, ns, name, """{"spec":{"owner":"zoe@example.com","supportTier":"tier-2"}}""", PatchTypes.Merge, CancellationToken.None);
        await WaitAsync(ns, name, a => a.Status?.ObservedGeneration == a.Metadata.Generation && a.Metadata.Generation == 2, "generation 2 observed");
        var ownerOnly = await cluster.Api.GetAsync<Application>(Applications.Type, ns, name, CancellationToken.None);
        Assert.Equal((ApplicationPhase.Active, (int?)1), (ownerOnly.Status!.Phase, ownerOnly.Status.ScopeVersion));
        Assert.Null(ownerOnly.Status.PendingScope);
        Assert.Single(await RecordedAsync(uid));

        // A widening into prod: two approvers; while Postgres is down the approved version cannot be recorded, so it does not take effect.
        await cluster.Api.PatchAsync<Application>(Applications.Type, ns, name, """{"spec":{"allowedScope":{"rings":["ring-1","ring-2"]}}}""", PatchTypes.Merge, CancellationToken.None);
        var widening = await WaitAsync(ns, name, a => a.Status?.PendingScope?.Version == 2, "v2 awaits CAB");
        Assert.Equal([ws[1]], widening.Status!.PendingScope!.BlastRadius!.Workspaces!);
        Assert.Equal(2, widening.Status.PendingScope.RequiredApprovals);
        await ApproveAsync(ns, name, "carol@example.com");
        await WaitAsync(ns, name, a => a.Status?.PendingScope?.Approvals?.Count == 1, "1 of 2");
        await cluster.Postgres.StopServerAsync();
        try
        {
            await ApproveAsync(ns, name, "erin@example.com");
            var down = await WaitAsync(ns, name, a => a.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Reason == "DatabaseUnavailable") == true, "Postgres down: a condition");
            Assert.Equal(1, down.Status!.ScopeVersion);
            Assert.Equal(["ring-1"], down.Status.ApprovedScope!.Rings);
        }
        finally
        {
            await cluster.Postgres.StartServerAsync();
        }

        var v2 = await WaitAsync(ns, name, a => a.Status?.ScopeVersion == 2, "v2 in effect once Postgres is back (retried)");
        Assert.Equal(["carol@example.com", "erin@example.com"], v2.Status!.ApprovedBy!);

        // A narrowing takes effect at once, recorded without approvers.
        await cluster.Api.PatchAsync<Application>(Applications.Type, ns, name, """{"spec":{"allowedScope":{"rings":["ring-2"]}}}""", PatchTypes.Merge, CancellationToken.None);
        var v3 = await WaitAsync(ns, name, a => a.Status?.ScopeVersion == 3, "v3 (narrowed) in effect at once");
        Assert.Equal(ApplicationPhase.Active, v3.Status!.Phase);
        Assert.Empty(v3.Status.ApprovedBy!);
        var rows = await RecordedAsync(uid);
        Assert.Equal([1, 2, 3], rows.Select(r => r.Version));
        Assert.Equal(ApplicationReasons.ScopeNarrowed, rows[2].Reason);
        Assert.Equal("[]", rows[2].Approvers);
        Assert.Equal(["application.scope-approved", "application.scope-approved", "application.scope-narrowed"], await AuditActionsAsync(key));
        await op.ResyncWritesNothingAsync($"application {key}");
    }

    [Fact]
    public async Task AnIntentPastTheWebhook_OutsideItsAuthorsPublisherScope_IsDeniedAtReconcile_NamingTheDimensionAndTheValue()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output);
        var ws = await TenantAsync([new TenantPublisher { Subjects = ["alice@example.com"], Scopes = [new PublisherScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"], Rings = ["ring-1"] }] }]);
        var ns = ws[0];
        await Applications.ApprovedApplicationAsync(cluster.Api, ns, ["ring-1", "ring-2"], [new("carol@example.com"), new("erin@example.com")]);
        DeploymentIntent Intent(string name, string author, params string[] rings) => new()
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                // What the webhook would have stamped (none runs here): the reconciler judges the recorded author, not the requester.
                Annotations = new Dictionary<string, string>
                {
                    [ApiGroup.CreatedByAnnotation] = author, [ApiGroup.AuthorGroupsAnnotation] = Requesters.WithAuthorGroups(null, author, []),
                },
            },
            Spec = new DeploymentIntentSpec
            {
                Application = "app", Version = "2.1.0", Artifact = new Artifact { Image = "registry.example/app:2.1.0", Sha256 = new string('a', 64) },
                TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = [.. rings] },
                Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
            },
        };
        var intents = ResourceType.For<DeploymentIntent>(true);

        // bob holds no publisher scope; alice's does not reach ring-2: both Denied, naming what is outside (ring-2 is in the Application).
        foreach (var (name, author, rings, expected) in new[]
        {
            ("bobs", "bob@example.com", new[] { "ring-1" }, "spec.targetScope: bob@example.com holds no publisher scope"),
            ("alices", "alice@example.com", new[] { "ring-1", "ring-2" }, "spec.targetScope.rings[1]: \"ring-2\" is outside the publisher scope of alice@example.com"),
        })
        {
            // With its evidence and scan report (else it is denied for those first: ScanReportMissing).
            await cluster.Api.CreateAsync(intents, ns, await Evidence.AttachAsync(cluster.Api, ns, Intent(name, author, rings)), CancellationToken.None);
            DeploymentIntent? last = null;
            await Net.WaitUntilAsync(async () => (last = await cluster.Api.GetAsync<DeploymentIntent>(intents, ns, name, CancellationToken.None)).Status?.Phase == IntentPhase.Denied,
                TimeSpan.FromSeconds(60), $"{name} Denied");
            var ready = last!.Status!.Conditions!.Single(c => c.Type == "Ready");
            Assert.Equal(IntentReasons.OutsidePublisherScope, ready.Reason);
            Assert.Contains(expected, ready.Message);
            Assert.Empty(last.Status.Rings ?? []);
        }
    }
}
