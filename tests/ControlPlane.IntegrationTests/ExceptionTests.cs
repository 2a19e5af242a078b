using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// An Exception's reconciler with no webhook in front (its own checks): from Pending to Active on a
/// SecurityReviewer's Approval, idle with zero writes to the API server and Postgres once nothing changes,
/// and an approval by an Approver (no SecurityReviewer) never counting, whatever admission was skipped.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ExceptionTests(ClusterFixture cluster, ITestOutputHelper output)
{
    static readonly ResourceType Exceptions = ResourceType.For<SecurityException>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    async Task<string> WorkspaceAsync()
    {
        var tenant = Unique("ex");
        await cluster.CreateTenantAsync(tenant);
        var name = Unique(tenant);
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Database = new WorkspaceDatabase { Enabled = false },
                Members =
                [
                    new WorkspaceMember { Kind = "User", Name = "sam@example.com", Role = "SecurityReviewer" },
                    new WorkspaceMember { Kind = "User", Name = "carol@example.com", Role = "Approver" },
                ],
            },
        }, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        return name;
    }

    /// <summary>What the webhook would have stamped, written by hand (no webhook runs in this collection).</summary>
    async Task<Approval> ApproveAsync(SecurityException target, string approver) =>
        await cluster.Api.CreateAsync(Approvals, target.Metadata.NamespaceProperty, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("apr"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = SecurityException.KubeKind, Name = target.Metadata.Name },
                Approver = approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation,
            },
        }, CancellationToken.None);

    async Task<SecurityException> WaitAsync(string ns, string name, Func<SecurityException, bool> condition, string what)
    {
        SecurityException? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await cluster.Api.GetAsync<SecurityException>(Exceptions, ns, name, CancellationToken.None)),
                TimeSpan.FromSeconds(60), $"exception {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"exception {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    [Fact]
    public async Task AnException_GoesActiveOnlyOnASecurityReviewersApproval_AndIdlesWithZeroWrites()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        var created = await cluster.Api.CreateAsync(Exceptions, ns, new SecurityException
        {
            Metadata = new V1ObjectMeta { Name = "waiver", Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "olga@example.com" } },
            Spec = new SecurityExceptionSpec
            {
                Type = "vulnerability", Artifact = new ExceptionArtifact { Image = "registry.example/app:2.1.0", Sha256 = new string('e', 64) },
                Covers = ["CVE-2025-12345"], Severity = "Critical", CompensatingControls = ["egress denied to everything but the database"],
                Owner = "olga@example.com", ExpiresAt = DateTime.UtcNow.AddDays(7),
                Justification = "Only reachable through an admin endpoint that is not exposed in this workspace.",
            },
        }, CancellationToken.None);
        await WaitAsync(ns, "waiver", e => e.Status?.Phase == ExceptionPhase.Pending, "Pending");

        // Waiting for a SecurityReviewer: audited once (approval.requested names the role), and a resync asks nothing again.
        var ask = await ApprovalAskRows.OneAsync(cluster.Postgres.ConnectionString(), SecurityException.KubeKind, $"{ns}/waiver", "exception.requested");
        Assert.Equal(1, (int)ask["approvers"]!["required"]!);
        Assert.Equal(ExceptionApprovals.ReviewerRoles, ask["approvers"]!["roles"]!.AsArray().Select(r => (string)r!));
        await op.ResyncWritesNothingAsync($"exception {ns}/waiver");
        Assert.Single(await ApprovalAskRows.DetailsAsync(cluster.Postgres.ConnectionString(), SecurityException.KubeKind, $"{ns}/waiver", "exception.requested"));

        // An Approver who is no SecurityReviewer: written past admission, it still does not count.
        var carols = await ApproveAsync(created, "carol@example.com");
        await Net.WaitUntilAsync(async () => (await cluster.Api.GetAsync<Approval>(Approvals, ns, carols.Metadata.Name, CancellationToken.None)).Status?.Conditions?
            .FirstOrDefault(c => c.Type == "Ready") is { Status: "False", Reason: ApprovalReasons.NotAnApprover }, TimeSpan.FromSeconds(30), "carol's approval does not count");
        Assert.Equal(ExceptionPhase.Pending, (await cluster.Api.GetAsync<SecurityException>(Exceptions, ns, "waiver", CancellationToken.None)).Status!.Phase);

        await ApproveAsync(created, "sam@example.com");
        var active = await WaitAsync(ns, "waiver", e => e.Status?.Phase == ExceptionPhase.Active, "Active");
        Assert.Equal("sam@example.com", active.Status!.ApprovedBy);
        Assert.Contains(active.Status.Conditions!, c => c is { Type: "Ready", Status: "True", Reason: ExceptionReasons.Active });
        Assert.Contains(active.Status.Conditions!, c => c is { Type: "Approved", Status: "True" });

        // Idle: reconciled again (twice, after two to settle), nothing is written to the API server or Postgres.
        var controller = op.Runtime.Controllers.Single(c => c.Name == "exception");
        var reconciled = 0;
        void Count(string c, string key, string result)
        {
            if (c == "exception" && key == $"{ns}/waiver") Interlocked.Increment(ref reconciled);
        }

        op.Runtime.Reconciled += Count;
        async Task ResyncAsync(int times)
        {
            for (var i = 0; i < times; i++)
            {
                var want = Volatile.Read(ref reconciled) + 1;
                controller.ResyncNow();
                await Net.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconciled) >= want), TimeSpan.FromSeconds(20), "the exception reconciled again");
            }
        }

        await ResyncAsync(2);
        var before = (op.Requests.Writes, op.Runtime.Database.Writes);
        await ResyncAsync(2);
        op.Runtime.Reconciled -= Count;
        Assert.Equal(before, (op.Requests.Writes, op.Runtime.Database.Writes));
        var after = await cluster.Api.GetAsync<SecurityException>(Exceptions, ns, "waiver", CancellationToken.None);
        Assert.Equal(active.Metadata.ResourceVersion, after.Metadata.ResourceVersion);
        Assert.Single(await ApprovalAskRows.DetailsAsync(cluster.Postgres.ConnectionString(), SecurityException.KubeKind, $"{ns}/waiver", "exception.requested"));
    }

    [Fact]
    public async Task PostgresRefusingTheAuditRow_IsAConditionAndARetry_NeverAnUnauditedActivation()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        await op.WaitUntilLeaderAndSyncedAsync(); // migrations ran
        var ns = await WorkspaceAsync();
        var name = Unique("down");
        var fn = name.Replace('-', '_');
        await using var ds = cluster.Postgres.DataSourceFor();
        // The system of record refuses this Exception's audit rows as a server out of connections would (53300: transient).
        await using (var cmd = ds.CreateCommand($"""
            CREATE FUNCTION public.refuse_{fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.kind = 'Exception' AND NEW.object_name = '{ns}/{name}' THEN RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_{fn} BEFORE INSERT ON controlplane.audit_events FOR EACH ROW EXECUTE FUNCTION public.refuse_{fn}();
            """))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        try
        {
            var created = await cluster.Api.CreateAsync(Exceptions, ns, new SecurityException
            {
                Metadata = new V1ObjectMeta { Name = name, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "olga@example.com" } },
                Spec = new SecurityExceptionSpec
                {
                    Type = "unsignedPackage", Artifact = new ExceptionArtifact { Image = "registry.example/app:2.1.0", Sha256 = new string('f', 64) },
                    Covers = ["registry.example/app"], Severity = "Medium", Owner = "olga@example.com", ExpiresAt = DateTime.UtcNow.AddDays(3),
                    Justification = "Signed by the vendor's old key only; the new key ships with the next release of the image.",
                },
            }, CancellationToken.None);
            await ApproveAsync(created, "sam@example.com");
            var held = await WaitAsync(ns, name, e => e.Status?.Conditions?.Any(c => c is { Type: "Ready", Status: "False", Reason: ExceptionReasons.DatabaseUnavailable }) == true,
                "Ready=False/DatabaseUnavailable");
            Assert.NotEqual(ExceptionPhase.Active, held.Status!.Phase);
        }
        finally
        {
            await using var drop = ds.CreateCommand($"DROP TRIGGER refuse_{fn} ON controlplane.audit_events");
            await drop.ExecuteNonQueryAsync();
        }

        // Reachable again: retried on its own, Active, audited once.
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Active, "Active after the retry");
        await using var count = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Exception' AND object_name = $1 AND action = 'exception.approved'");
        count.Parameters.AddWithValue($"{ns}/{name}");
        Assert.Equal(1L, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task AStatusWriteLostAfterTheAuditRow_IsWrittenAgain_ButTheChangeIsAuditedOnce_AndARevokeMakesTheNextApprovalDue()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        var name = Unique("lost");
        var created = await cluster.Api.CreateAsync(Exceptions, ns, new SecurityException
        {
            Metadata = new V1ObjectMeta { Name = name, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "olga@example.com" } },
            Spec = new SecurityExceptionSpec
            {
                Type = "unsignedPackage", Artifact = new ExceptionArtifact { Image = "registry.example/app:3.0.0", Sha256 = new string('c', 64) },
                Covers = ["registry.example/app"], Severity = "Medium", Owner = "olga@example.com", ExpiresAt = DateTime.UtcNow.AddDays(3),
                Justification = "Signed by the vendor's old key only; the new key ships with the next release of the image.",
            },
        }, CancellationToken.None);
        var approval = await ApproveAsync(created, "sam@example.com");
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Active, "Active");
        await using var ds = cluster.Postgres.DataSourceFor();

        async Task<long> RowsAsync(string action)
        {
            await using var count = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Exception' AND object_name = $1 AND action = $2");
            count.Parameters.AddWithValue($"{ns}/{name}");
            count.Parameters.AddWithValue(action);
            return (long)(await count.ExecuteScalarAsync())!;
        }

        Assert.Equal(1L, await RowsAsync("exception.approved"));

        // The status the operator wrote after the audit row is lost (as a conflict or a crash between the two would lose
        // it): the status says Pending again at the same generation. The next pass (a status change alone wakes none: a
        // resync) writes it again; the approval is not audited again.
        var lost = await cluster.Api.PatchAsync<SecurityException>(Exceptions, ns, name,
            """{"status":{"phase":"Pending","approvedBy":null,"approvedAt":null}}""", PatchTypes.Merge, CancellationToken.None, "status");
        var controller = op.Runtime.Controllers.Single(c => c.Name == "exception");
        await Net.WaitUntilAsync(async () =>
        {
            controller.ResyncNow();
            var e = await cluster.Api.GetAsync<SecurityException>(Exceptions, ns, name, CancellationToken.None);
            return e.Metadata.ResourceVersion != lost.Metadata.ResourceVersion;
        }, TimeSpan.FromSeconds(30), "the lost status written again");
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Active && e.Status.ApprovedBy == "sam@example.com"
            && long.Parse(e.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture) > long.Parse(lost.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture),
            "Active again after the lost status");
        Assert.Equal(1L, await RowsAsync("exception.approved"));

        // A real change in between: the approval withdrawn is a revoke, and approving again is a new approval on record.
        await cluster.Api.DeleteAsync(Approvals, ns, approval.Metadata.Name, CancellationToken.None);
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Pending, "Pending once its approval is withdrawn");
        Assert.Equal(1L, await RowsAsync("exception.revoked"));
        await ApproveAsync(created, "sam@example.com");
        // What this test is about is the audit trail; the wakeup on an Approval is the first test's. (Once, under a load of
        // 30 on two cores, this pass had not run 60 s after the Approval was created: a resync nudges it here.)
        await Net.WaitUntilAsync(async () =>
        {
            controller.ResyncNow();
            return (await cluster.Api.GetAsync<SecurityException>(Exceptions, ns, name, CancellationToken.None)).Status?.Phase == ExceptionPhase.Active;
        }, TimeSpan.FromSeconds(60), "Active on the new approval");
        await Net.WaitUntilAsync(async () => await RowsAsync("exception.approved") == 2, TimeSpan.FromSeconds(30), "the re-approval audited");
        Assert.Equal(2L, await RowsAsync("exception.approved"));
    }

    [Fact]
    public async Task AnExceptionDeletedWhileActive_AndMadeAgainUnderItsName_IsAuditedApprovedAgain()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        var name = Unique("again");
        var now = DateTime.UtcNow;
        var expires = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc).AddDays(30); // the same for both
        SecurityException New() => new()
        {
            Metadata = new V1ObjectMeta { Name = name, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "olga@example.com" } },
            Spec = new SecurityExceptionSpec
            {
                Type = "unsignedPackage", Artifact = new ExceptionArtifact { Image = "registry.example/app:3.0.0", Sha256 = new string('d', 64) },
                Covers = ["registry.example/app"], Severity = "Medium", Owner = "olga@example.com", ExpiresAt = expires,
                Justification = "Signed by the vendor's old key only; the new key ships with the next release of the image.",
            },
        };
        await using var ds = cluster.Postgres.DataSourceFor();

        async Task<long> ApprovedRowsAsync()
        {
            await using var count = ds.CreateCommand("SELECT count(*) FROM controlplane.audit_events WHERE kind = 'Exception' AND object_name = $1 AND action = 'exception.approved'");
            count.Parameters.AddWithValue($"{ns}/{name}");
            return (long)(await count.ExecuteScalarAsync())!;
        }

        var first = await cluster.Api.CreateAsync(Exceptions, ns, New(), CancellationToken.None);
        await ApproveAsync(first, "sam@example.com");
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Active, "Active");
        await Net.WaitUntilAsync(async () => await ApprovedRowsAsync() == 1, TimeSpan.FromSeconds(30), "the approval audited");

        // Deleted while Active (no row says so), then made again, the same in every detail, and approved by the same reviewer:
        // a new Exception's approval, on record although the newest row under that name looks the same.
        await cluster.Api.DeleteAsync(Exceptions, ns, name, CancellationToken.None);
        await Net.WaitUntilAsync(async () => await cluster.Api.TryGetAsync<SecurityException>(Exceptions, ns, name, CancellationToken.None) is null,
            TimeSpan.FromSeconds(30), "the first Exception gone");
        // creationTimestamp has whole seconds: the second Exception is made in a later second than the first one's row.
        await using (var at = ds.CreateCommand("SELECT max(occurred_at) FROM controlplane.audit_events WHERE kind = 'Exception' AND object_name = $1"))
        {
            at.Parameters.AddWithValue($"{ns}/{name}");
            var last = (DateTime)(await at.ExecuteScalarAsync())!;
            var next = new DateTime(last.Ticks - last.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc).AddSeconds(1);
            await Net.WaitUntilAsync(() => Task.FromResult(DateTime.UtcNow >= next), TimeSpan.FromSeconds(5), "a second after the first Exception's last row");
        }

        var second = await cluster.Api.CreateAsync(Exceptions, ns, New(), CancellationToken.None);
        await ApproveAsync(second, "sam@example.com");
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Active && e.Metadata.Uid == second.Metadata.Uid, "the second Active");
        await Net.WaitUntilAsync(async () => await ApprovedRowsAsync() == 2, TimeSpan.FromSeconds(30), "the second approval audited");
        Assert.Equal(2L, await ApprovedRowsAsync());
    }

    [Fact]
    public async Task ARejectionWithdrawn_ThenAnotherReviewersRejection_IsAuditedToo()
    {
        await using var op = TestOperator.Start(cluster, Unique("lease"), output, o => o.MaxTransientRetryDelay = TimeSpan.FromSeconds(1));
        var ns = await WorkspaceAsync();
        // A second SecurityReviewer.
        var ws = await cluster.Api.GetAsync<Workspace>(ClusterFixture.Workspaces, null, ns, CancellationToken.None);
        ws.Spec.Members = [.. ws.Spec.Members ?? [], new WorkspaceMember { Kind = "User", Name = "rita@example.com", Role = "SecurityReviewer" }];
        await cluster.Api.ReplaceAsync(ClusterFixture.Workspaces, null, ns, ws, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(ns, w => ClusterFixture.IsReady(w) && w.Status?.ObservedGeneration == w.Metadata.Generation, "Ready with rita");
        var name = Unique("rej");
        var created = await cluster.Api.CreateAsync(Exceptions, ns, new SecurityException
        {
            Metadata = new V1ObjectMeta { Name = name, Annotations = new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "olga@example.com" } },
            Spec = new SecurityExceptionSpec
            {
                Type = "unsignedPackage", Artifact = new ExceptionArtifact { Image = "registry.example/app:4.0.0", Sha256 = new string('d', 64) },
                Covers = ["registry.example/app"], Severity = "Medium", Owner = "olga@example.com", ExpiresAt = DateTime.UtcNow.AddDays(3),
                Justification = "Signed by the vendor's old key only; the new key ships with the next release of the image.",
            },
        }, CancellationToken.None);
        await using var ds = cluster.Postgres.DataSourceFor();

        async Task<List<string>> RejectedByAsync()
        {
            await using var cmd = ds.CreateCommand("SELECT COALESCE(details->>'rejectedBy', '') FROM controlplane.audit_events WHERE kind = 'Exception' AND object_name = $1 AND action = 'exception.rejected' ORDER BY id");
            cmd.Parameters.AddWithValue($"{ns}/{name}");
            var rows = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) rows.Add(r.GetString(0));
            return rows;
        }

        Task<Approval> RejectAsync(string reviewer) => cluster.Api.CreateAsync(Approvals, ns, new Approval
        {
            Metadata = new V1ObjectMeta { Name = Unique("rej"), Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) } },
            Spec = new ApprovalSpec
            {
                Target = new ApprovalTarget { Kind = SecurityException.KubeKind, Name = name }, Decision = "reject",
                Approver = reviewer, TargetUID = created.Metadata.Uid, TargetGeneration = created.Metadata.Generation,
            },
        }, CancellationToken.None);

        var sams = await RejectAsync("sam@example.com");
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Rejected, "Rejected by sam");
        await cluster.Api.DeleteAsync(Approvals, ns, sams.Metadata.Name, CancellationToken.None);
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Pending, "Pending once sam's rejection is withdrawn");
        await RejectAsync("rita@example.com");
        await WaitAsync(ns, name, e => e.Status?.Phase == ExceptionPhase.Rejected, "Rejected by rita");
        // Two rejections, two rows, each naming its reviewer.
        await Net.WaitUntilAsync(async () => (await RejectedByAsync()).Count == 2, TimeSpan.FromSeconds(30), "both rejections audited");
        Assert.Equal(["[\"sam@example.com\"]", "[\"rita@example.com\"]"], await RejectedByAsync());
    }
}
