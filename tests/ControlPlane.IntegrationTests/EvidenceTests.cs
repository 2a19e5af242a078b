using System.Net;
using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Xunit.Abstractions;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>Shared by the evidence tests: a tenant with one dev workspace in ring-1, an intent on the http plane, waits.</summary>
static class EvidenceScenario
{
    public static readonly ResourceType Intents = ResourceType.For<DeploymentIntent>(true);
    public const string Image = "registry.example/app:2.1.0";
    public static readonly string Digest = new('a', 64);

    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>A tenant (scope acq-001/bu-finance) and one Ready dev workspace labelled ring-1 with these members, the plane's Secret, the shared pack and clean reports.</summary>
    public static async Task<(string Tenant, string Workspace)> TenantAsync(ClusterFixture cluster, string planeToken, params (string Name, string Role)[] members) =>
        await TenantAsync(cluster, planeToken, new Applications.Approver("erin@example.com"), members);

    /// <summary><see cref="TenantAsync(ClusterFixture, string, (string, string)[])"/> with erin as the workspace's Approver, approving application "app" as <paramref name="approver"/>.</summary>
    public static async Task<(string Tenant, string Workspace)> TenantAsync(ClusterFixture cluster, string planeToken, Applications.Approver approver, params (string Name, string Role)[] members)
    {
        members = [.. members, ("erin@example.com", "Approver")];
        var tenant = Unique("ev");
        await cluster.CreateTenantAsync(tenant, edit: t => t.Scopes = [new TenantScope { AcquisitionBoundary = "acq-001", BusinessUnits = ["bu-finance"], SiteClasses = ["online"] }]);
        var ws = Unique(tenant);
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta
            {
                Name = ws,
                Labels = new Dictionary<string, string> { [ApiGroup.RingLabel] = "ring-1", [ApiGroup.AcquisitionBoundaryLabel] = "acq-001", [ApiGroup.BusinessUnitLabel] = "bu-finance", [ApiGroup.SiteClassLabel] = "online" },
            },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members = [.. members.Select(m => new WorkspaceMember { Kind = "User", Name = m.Name, Role = m.Role })],
            },
        }, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready");
        await cluster.Api.CreateAsync(ResourceType.Secrets, ws, new V1Secret { Metadata = new V1ObjectMeta { Name = "plane" }, StringData = new Dictionary<string, string> { ["token"] = planeToken } },
            CancellationToken.None);
        await Evidence.CreateAsync(cluster.Api, ws);
        await Applications.ApprovedApplicationAsync(cluster.Api, ws, ["ring-1"], [approver]);
        return (tenant, ws);
    }

    public static DeploymentIntent Intent(string name, Uri plane) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new DeploymentIntentSpec
        {
            Application = "app", Version = "2.1.0",
            Artifact = new Artifact { Image = Image, Sha256 = Digest },
            TargetScope = new TargetScope { AcquisitionBoundary = "acq-001", BusinessUnit = "bu-finance", SiteClass = "online", Rings = ["ring-1"] },
            ExecutionPlane = new ExecutionPlane { Type = "http", Url = plane.AbsoluteUri, CredentialsSecret = new LocalObjectReference { Name = "plane" } },
            Risk = new RiskFactors { PrivilegeImpact = 0.1, SupplyChainTrust = 0.1, BlastRadius = 0.1, ChangeComplexity = 0.1, TestEvidence = 0.9 },
            RollbackPlan = new RollbackPlan { Strategy = "previous-version" },
            DriftCheckInterval = "1h",
        },
    };

    public static async Task<DeploymentIntent> WaitAsync(KubeApi api, string ns, string name, Func<DeploymentIntent, bool> condition, string what, TimeSpan? timeout = null)
    {
        DeploymentIntent? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await api.GetAsync<DeploymentIntent>(Intents, ns, name, CancellationToken.None);
                return condition(last);
            }, timeout ?? TimeSpan.FromSeconds(60), $"intent {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"intent {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    public static V1Condition? Condition(DeploymentIntent i, string type) => i.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    public static ObjectStore Store(LocalS3 s3) => new(new S3Target(s3.Endpoint, Evidence.Bucket, "", LocalS3.AccessKey, LocalS3.SecretKey));

    public static async Task<byte[]> ReadAsync(LocalS3 s3, string key)
    {
        using var store = Store(s3);
        using var sink = new MemoryStream();
        await store.ReadAsync(key, sink, CancellationToken.None);
        return sink.ToArray();
    }

    /// <summary>A Trivy report naming the image, with these vulnerabilities (id, Trivy severity).</summary>
    public static string TrivyReport(string image, params (string Id, string Severity)[] vulnerabilities) =>
        $$"""{"SchemaVersion":2,"ArtifactName":"{{image}}","ArtifactType":"container_image","Results":[{"Target":"{{image}} (debian 12.5)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[{{string.Join(",", vulnerabilities.Select(v => $$"""{"VulnerabilityID":"{{v.Id}}","PkgName":"openssl","InstalledVersion":"3.0.11-1","Severity":"{{v.Severity}}"}"""))}}]}]}""";
}

/// <summary>
/// Evidence and scan reports attacked as token users through the webhook and the whole operator: a
/// tampered evidence pack or scan report (its hash does not match) is denied naming the field, an intent
/// without evidence or scan report is refused at admission, a High CVE the author left out still becomes
/// the serious finding, and the pack is kept in s3rver under its content-addressed key, never overwritten.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class EvidenceAttackTests(WebhookFixture fixture)
{
    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;
    static readonly ResourceType Intents = EvidenceScenario.Intents;

    async Task<(string Tenant, string Workspace)> TenantAsync() =>
        await EvidenceScenario.TenantAsync(Cluster, WebhookFixture.IntentPlaneToken, new Applications.Approver(Email("erin"), As("erin")), (Email("wade"), "Operator"));

    async Task<DeploymentIntent> CreateAsAsync(string user, string ns, DeploymentIntent intent)
    {
        using var api = As(user);
        DeploymentIntent? created = null;
        // RBAC follows the operator's RoleBindings: retried until wade's binding is there.
        await Net.WaitUntilAsync(async () =>
        {
            try
            {
                created = await api.CreateAsync(Intents, ns, intent, CancellationToken.None);
                return true;
            }
            catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Forbidden && e.StatusMessage?.Contains("denied the request", StringComparison.Ordinal) != true)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), $"{user} creates intent {intent.Metadata.Name}");
        return created!;
    }

    async Task<List<string>> AuditActionsAsync(string objectName)
    {
        await using var conn = new Npgsql.NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT action FROM controlplane.audit_events WHERE kind = 'DeploymentIntent' AND object_name = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(objectName);
        var actions = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) actions.Add(r.GetString(0));
        return actions;
    }

    [Fact]
    public async Task AnIntentWithoutEvidenceOrScanReport_OrWithAReportUrlNotAllowed_IsRefusedAtAdmission_NamingTheField()
    {
        var (_, ws) = await TenantAsync();
        using var wade = As("wade");
        var noEvidence = Evidence.Attach(EvidenceScenario.Intent("no-evidence", fixture.IntentPlane.BaseUrl).Spec);
        noEvidence.EvidencePackRef = null;
        var e = await Assert.ThrowsAsync<KubeApiException>(() => CreateAsAsync("wade", ws, new DeploymentIntent { Metadata = new V1ObjectMeta { Name = "no-evidence" }, Spec = noEvidence }));
        Assert.Contains("spec.evidencePackRef: required", e.StatusMessage);

        var noReport = Evidence.Attach(EvidenceScenario.Intent("no-report", fixture.IntentPlane.BaseUrl).Spec);
        noReport.Artifact.ScanReport = null;
        e = await Assert.ThrowsAsync<KubeApiException>(() => CreateAsAsync("wade", ws, new DeploymentIntent { Metadata = new V1ObjectMeta { Name = "no-report" }, Spec = noReport }));
        Assert.Contains("spec.artifact.scanReport: required", e.StatusMessage);

        var elsewhere = Evidence.Attach(EvidenceScenario.Intent("elsewhere", fixture.IntentPlane.BaseUrl).Spec);
        elsewhere.Artifact.ScanReport = new ScanReportRef { Url = "https://169.254.169.254/latest/meta-data", Sha256 = new string('c', 64), Format = "trivy" };
        e = await Assert.ThrowsAsync<KubeApiException>(() => CreateAsAsync("wade", ws, new DeploymentIntent { Metadata = new V1ObjectMeta { Name = "elsewhere" }, Spec = elsewhere }));
        Assert.Contains("spec.artifact.scanReport.url: https://169.254.169.254/latest/meta-data is not under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes", e.StatusMessage);
        Assert.Null(await Cluster.Api.TryGetAsync<DeploymentIntent>(Intents, ws, "no-evidence", CancellationToken.None));
    }

    [Fact]
    public async Task ATamperedEvidencePack_AndATamperedScanReport_AreDenied_NamingTheField_AndNothingIsPublished()
    {
        var (_, ws) = await TenantAsync();
        // The author pins one pack and one report, then the ConfigMaps say something else.
        await Evidence.CreateConfigMapAsync(Cluster.Api, ws, "tampered-pack", "evidence", "{\"tests\":\"failed\"}");
        var pack = EvidenceScenario.Intent("pack", fixture.IntentPlane.BaseUrl);
        pack.Spec.EvidencePackRef = new EvidencePackRef { ConfigMap = "tampered-pack", Sha256 = Evidence.Sha256("{\"tests\":\"passed\"}") };
        Evidence.Attach(pack.Spec);
        var createdPack = await CreateAsAsync("wade", ws, pack);

        var clean = EvidenceScenario.TrivyReport(EvidenceScenario.Image);
        await Evidence.CreateConfigMapAsync(Cluster.Api, ws, "tampered-report", "report", EvidenceScenario.TrivyReport(EvidenceScenario.Image, ("CVE-2024-0727", "HIGH")));
        var report = EvidenceScenario.Intent("report", fixture.IntentPlane.BaseUrl);
        report.Spec.Artifact.ScanReport = new ScanReportRef { ConfigMap = "tampered-report", Sha256 = Evidence.Sha256(clean), Format = "trivy" };
        Evidence.Attach(report.Spec);
        var createdReport = await CreateAsAsync("wade", ws, report);

        var p = await EvidenceScenario.WaitAsync(Cluster.Api, ws, "pack", i => i.Status?.Phase == IntentPhase.Denied, "Denied for its pack");
        Assert.Equal(IntentReasons.EvidenceInvalid, EvidenceScenario.Condition(p, IntentConditions.Ready)!.Reason);
        Assert.StartsWith($"spec.evidencePackRef.sha256: ConfigMap {ws}/tampered-pack has SHA-256 {Evidence.Sha256("{\"tests\":\"failed\"}")}", EvidenceScenario.Condition(p, IntentConditions.Ready)!.Message);
        Assert.Equal("False", EvidenceScenario.Condition(p, IntentConditions.EvidenceStored)!.Status);
        Assert.Null(p.Status!.Evidence);

        var r = await EvidenceScenario.WaitAsync(Cluster.Api, ws, "report", i => i.Status?.Phase == IntentPhase.Denied, "Denied for its report");
        Assert.Equal(IntentReasons.ScanReportInvalid, EvidenceScenario.Condition(r, IntentConditions.Ready)!.Reason);
        Assert.StartsWith($"spec.artifact.scanReport.sha256: ConfigMap {ws}/tampered-report has SHA-256", EvidenceScenario.Condition(r, IntentConditions.Ready)!.Message);

        Assert.DoesNotContain(fixture.IntentPlane.Calls, c => c.Method == "POST" && (c.IdempotencyKey?.StartsWith(createdPack.Metadata.Uid!, StringComparison.Ordinal) == true
                                                                                       || c.IdempotencyKey?.StartsWith(createdReport.Metadata.Uid!, StringComparison.Ordinal) == true));
        // Tampering is a security event in the audit trail.
        Assert.Equal(["deploymentintent.hashMismatch"], await AuditActionsAsync($"{ws}/pack"));
        Assert.Equal(["deploymentintent.hashMismatch"], await AuditActionsAsync($"{ws}/report"));
    }

    [Fact]
    public async Task AHighCveInTheScanReport_ThatTheAuthorDidNotDeclare_IsASeriousFinding()
    {
        var (_, ws) = await TenantAsync();
        var text = EvidenceScenario.TrivyReport(EvidenceScenario.Image, ("CVE-2024-0727", "HIGH"), ("CVE-2023-5678", "LOW"));
        await Evidence.CreateConfigMapAsync(Cluster.Api, ws, "scan-high", "report", text);
        var intent = EvidenceScenario.Intent("hidden", fixture.IntentPlane.BaseUrl);
        // The author declares only the Low one, and lowers nothing by declaring the High one as Low either.
        intent.Spec.Artifact.Vulnerabilities = [new Vulnerability { Id = "CVE-2023-5678", Severity = "Low" }, new Vulnerability { Id = "CVE-2024-0727", Severity = "Low" }];
        intent.Spec.Artifact.ScanReport = new ScanReportRef { ConfigMap = "scan-high", Sha256 = Evidence.Sha256(text), Format = "trivy" };
        Evidence.Attach(intent.Spec);
        await CreateAsAsync("wade", ws, intent);

        // The finding is what the decision reads (on this branch a serious finding denies; with Exceptions it requires one).
        var i = await EvidenceScenario.WaitAsync(Cluster.Api, ws, "hidden", x => x.Status is { Decision: not null } s && s.FindingsGeneration == x.Metadata.Generation, "findings read");
        var high = Assert.Single(i.Status!.Findings!, f => f.Id == "CVE-2024-0727");
        Assert.Equal(("Vulnerability", "High", "scan:trivy"), (high.Type, high.Severity, high.Source));
        Assert.NotEqual("Allow", i.Status.Decision);
        Assert.Contains("CVE-2024-0727 (High)", EvidenceScenario.Condition(i, IntentConditions.Ready)!.Message);

        // The same from a CycloneDX report, the artifact named by the digest in its purl, the highest rating counting.
        var bom = $$$$"""
            {"bomFormat":"CycloneDX","specVersion":"1.5","version":1,
             "metadata":{"component":{"type":"container","name":"{{{{EvidenceScenario.Image}}}}","purl":"pkg:oci/app@sha256%3A{{{{EvidenceScenario.Digest}}}}?repository_url=registry.example%2Fapp"}},
             "vulnerabilities":[{"id":"CVE-2024-5535","ratings":[{"source":{"name":"debian"},"severity":"low"},{"source":{"name":"nvd"},"severity":"critical"}]}]}
            """;
        await Evidence.CreateConfigMapAsync(Cluster.Api, ws, "bom", "report", bom);
        var fromBom = EvidenceScenario.Intent("from-bom", fixture.IntentPlane.BaseUrl);
        fromBom.Spec.Artifact.ScanReport = new ScanReportRef { ConfigMap = "bom", Sha256 = Evidence.Sha256(bom), Format = "cyclonedx" };
        await CreateAsAsync("wade", ws, Evidence.AttachIntent(fromBom));
        var b = await EvidenceScenario.WaitAsync(Cluster.Api, ws, "from-bom", x => x.Status is { Decision: not null } s && s.FindingsGeneration == x.Metadata.Generation, "findings read");
        var critical = Assert.Single(b.Status!.Findings!);
        Assert.Equal(("CVE-2024-5535", "Critical", "scan:cyclonedx"), (critical.Id, critical.Severity, critical.Source));
        Assert.NotEqual("Allow", b.Status.Decision);
    }

    [Fact]
    public async Task TheEvidencePack_IsKeptInTheRegionsStorage_UnderItsContentAddressedKey_AndNeverOverwritten()
    {
        var (tenant, ws) = await TenantAsync();
        var first = await CreateAsAsync("wade", ws, Evidence.AttachIntent(EvidenceScenario.Intent("first", fixture.IntentPlane.BaseUrl)));
        var done = await EvidenceScenario.WaitAsync(Cluster.Api, ws, "first", i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        var key = $"eu/evidence/{tenant}/{Evidence.PackSha256}";
        Assert.Equal((key, Evidence.PackSha256), (done.Status!.Evidence!.Key, done.Status.Evidence.Sha256));
        Assert.Equal(("True", IntentReasons.EvidenceStored), (EvidenceScenario.Condition(done, IntentConditions.EvidenceStored)!.Status, EvidenceScenario.Condition(done, IntentConditions.EvidenceStored)!.Reason));
        Assert.Equal(Evidence.Pack, Encoding.UTF8.GetString(await EvidenceScenario.ReadAsync(Cluster.EvidenceS3, key)));
        var stored = (await fixture.Runtime.Database.GetDeploymentEventsAsync(first.Metadata.Uid!, CancellationToken.None)).Single(e => e.Event.EventType == "evidence_stored");
        Assert.Equal((key, Evidence.PackSha256, true), (stored.Event.Details["key"]!.GetValue<string>(), stored.Event.Details["sha256"]!.GetValue<string>(), stored.Event.Details["copied"]!.GetValue<bool>()));
        // Stored before the ring was published: the event store has it first.
        var events = (await fixture.Runtime.Database.GetDeploymentEventsAsync(first.Metadata.Uid!, CancellationToken.None)).Select(e => e.Event.EventType + "/" + e.Event.Reason).ToList();
        Assert.True(events.IndexOf("evidence_stored/EvidenceStored") < events.IndexOf("ring/RingStarted"), string.Join(", ", events));

        // A second intent with the same pack finds it there: nothing is written again.
        var second = await CreateAsAsync("wade", ws, Evidence.AttachIntent(EvidenceScenario.Intent("second", fixture.IntentPlane.BaseUrl)));
        await EvidenceScenario.WaitAsync(Cluster.Api, ws, "second", i => i.Status?.Phase == IntentPhase.Completed, "Completed");
        var again = (await fixture.Runtime.Database.GetDeploymentEventsAsync(second.Metadata.Uid!, CancellationToken.None)).Single(e => e.Event.EventType == "evidence_stored");
        Assert.False(again.Event.Details["copied"]!.GetValue<bool>());
        using (var store = EvidenceScenario.Store(Cluster.EvidenceS3)) Assert.Equal([key], await store.ListKeysAsync($"eu/evidence/{tenant}/", CancellationToken.None));

        // Other bytes already under a pack's key (planted, or a storage fault): never overwritten, the intent waits and says why.
        const string planted = "{\"planted\":true}";
        const string real = "{\"tests\":\"passed\",\"build\":42}";
        var plantedKey = $"eu/evidence/{tenant}/{Evidence.Sha256(real)}";
        using (var store = EvidenceScenario.Store(Cluster.EvidenceS3)) await store.PutIfAbsentAsync(plantedKey, Encoding.UTF8.GetBytes(planted), CancellationToken.None);
        await Evidence.CreateConfigMapAsync(Cluster.Api, ws, "pack-42", "evidence", real);
        var third = EvidenceScenario.Intent("third", fixture.IntentPlane.BaseUrl);
        third.Spec.EvidencePackRef = new EvidencePackRef { ConfigMap = "pack-42", Sha256 = Evidence.Sha256(real) };
        var held = await CreateAsAsync("wade", ws, Evidence.AttachIntent(third));
        var waiting = await EvidenceScenario.WaitAsync(Cluster.Api, ws, "third", i => EvidenceScenario.Condition(i, IntentConditions.EvidenceStored)?.Reason == IntentReasons.EvidenceStorageUnavailable, "held");
        Assert.Contains("never overwritten", EvidenceScenario.Condition(waiting, IntentConditions.EvidenceStored)!.Message);
        Assert.Empty(waiting.Status!.Rings ?? []);
        Assert.Equal(planted, Encoding.UTF8.GetString(await EvidenceScenario.ReadAsync(Cluster.EvidenceS3, plantedKey)));
        Assert.DoesNotContain(fixture.IntentPlane.Calls, c => c.Method == "POST" && c.IdempotencyKey?.StartsWith(held.Metadata.Uid!, StringComparison.Ordinal) == true);
    }
}

/// <summary>
/// Evidence storage down and back, the signature check against the platform's keys, and the zero-write
/// resync, with a test operator whose options each test sets (no webhook: the reconciler's own checks).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class EvidenceStorageTests(ClusterFixture cluster, ITestOutputHelper output)
{
    const string Token = "plane-token-0123456789";

    TestOperator Start(ConnectorContractServer plane, Action<ControlPlane.Operator.Configuration.ControlPlaneOptions>? tweak = null) =>
        TestOperator.Start(cluster, EvidenceScenario.Unique("lease"), output, o =>
        {
            o.DeploymentIntent.PlaneUrlPrefixes.Add(plane.BaseUrl.AbsoluteUri);
            o.DeploymentIntent.PollInterval = TimeSpan.FromMilliseconds(300);
            tweak?.Invoke(o);
        });

    async Task<DeploymentIntent> CreateAsync(string ns, DeploymentIntent intent)
    {
        intent.Metadata.Annotations = new Dictionary<string, string>
        {
            [ApiGroup.CreatedByAnnotation] = cluster.Plane.Admin.Name,
            [ApiGroup.AuthorGroupsAnnotation] = ControlPlane.Operator.Policy.Requesters.WithAuthorGroups(null, cluster.Plane.Admin.Name, cluster.Plane.Admin.Groups),
        };
        return await cluster.Api.CreateAsync(EvidenceScenario.Intents, ns, Evidence.AttachIntent(intent), CancellationToken.None);
    }

    [Fact]
    public async Task EvidenceStorageUnavailable_PausesPublication_WithTheCondition_ThenResumesWhenItIsBack_AndAResyncWritesNothing()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        var port = Net.FreePort();
        var root = Path.Combine(Path.GetTempPath(), "controlplane-evidence-" + Guid.NewGuid().ToString("N")[..8]);
        await using var op = Start(plane, o => o.Regions["eu"].EvidenceStorage = new ControlPlane.Operator.Configuration.BackupStorageOptions
        {
            Endpoint = $"http://127.0.0.1:{port}", Bucket = Evidence.Bucket, Prefix = "down", CredentialsSecret = Evidence.CredentialsSecret,
        });
        var (tenant, ws) = await EvidenceScenario.TenantAsync(cluster, Token);
        var created = await CreateAsync(ws, EvidenceScenario.Intent("paused", plane.BaseUrl));

        var paused = await EvidenceScenario.WaitAsync(cluster.Api, ws, "paused",
            i => EvidenceScenario.Condition(i, IntentConditions.EvidenceStored)?.Reason == IntentReasons.EvidenceStorageUnavailable, "paused for storage");
        Assert.Equal("False", EvidenceScenario.Condition(paused, IntentConditions.EvidenceStored)!.Status);
        Assert.Contains($"127.0.0.1:{port}", EvidenceScenario.Condition(paused, IntentConditions.EvidenceStored)!.Message);
        Assert.Equal(IntentReasons.EvidenceStorageUnavailable, EvidenceScenario.Condition(paused, IntentConditions.Ready)?.Reason);
        Assert.Contains("ring ring-1 does not start", EvidenceScenario.Condition(paused, IntentConditions.Ready)!.Message);
        Assert.DoesNotContain(LocalS3.SecretKey, k8s.KubernetesJson.Serialize(paused.Status));
        Assert.Empty(paused.Status!.Rings ?? []);
        Assert.DoesNotContain(plane.Calls, c => c.Method == "POST");

        // The storage comes back on the same address: retried, stored, published.
        await using var s3 = await LocalS3.StartAsync(root, [Evidence.Bucket], port: port);
        try
        {
            var done = await EvidenceScenario.WaitAsync(cluster.Api, ws, "paused", i => i.Status?.Phase == IntentPhase.Completed, "Completed once storage is back");
            Assert.Equal($"down/evidence/{tenant}/{Evidence.PackSha256}", done.Status!.Evidence!.Key);
            Assert.Equal("True", EvidenceScenario.Condition(done, IntentConditions.EvidenceStored)!.Status);
            Assert.Equal(Evidence.Pack, Encoding.UTF8.GetString(await EvidenceScenario.ReadAsync(s3, done.Status.Evidence.Key)));
            Assert.Contains(plane.Calls, c => c.Method == "POST" && c.IdempotencyKey?.StartsWith(created.Metadata.Uid!, StringComparison.Ordinal) == true);

            // Nothing left to do: a resync reads no report, copies nothing, writes nothing; it does not even look
            // at the report and the pack again (gone now, they would hold or deny the intent if it did).
            await op.ResyncWritesNothingAsync($"deploymentintent {ws}/paused");
            await cluster.Api.DeleteAsync(WorkspaceReconciler.ConfigMaps, ws, Evidence.PackConfigMap, CancellationToken.None);
            await cluster.Api.DeleteAsync(WorkspaceReconciler.ConfigMaps, ws, Evidence.ReportConfigMap(EvidenceScenario.Image), CancellationToken.None);
            await op.ResyncWritesNothingAsync($"deploymentintent {ws}/paused");
            Assert.Equal(IntentPhase.Completed, (await cluster.Api.GetAsync<DeploymentIntent>(EvidenceScenario.Intents, ws, "paused", CancellationToken.None)).Status!.Phase);
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public async Task WithTrustedKeysConfigured_AnUnsignedArtifactIsAFinding_AndASignedOneIsNot_NeverATenantsKey()
    {
        await using var plane = await ConnectorContractServer.StartAsync(Token);
        using var platformKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var tenantKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var op = Start(plane, o => o.DeploymentIntent.TrustedSigningKeys.Add(platformKey.ExportSubjectPublicKeyInfoPem()));
        var (_, ws) = await EvidenceScenario.TenantAsync(cluster, Token);
        var digest = Convert.FromHexString(EvidenceScenario.Digest);

        await CreateAsync(ws, EvidenceScenario.Intent("unsigned", plane.BaseUrl));
        var byTenant = EvidenceScenario.Intent("tenant-signed", plane.BaseUrl);
        byTenant.Spec.Artifact.Signature = Convert.ToBase64String(tenantKey.SignHash(digest, DSASignatureFormat.Rfc3279DerSequence));
        await CreateAsync(ws, byTenant);
        var signed = EvidenceScenario.Intent("signed", plane.BaseUrl);
        signed.Spec.Artifact.Signature = Convert.ToBase64String(platformKey.SignHash(digest, DSASignatureFormat.Rfc3279DerSequence));
        await CreateAsync(ws, signed);

        foreach (var name in new[] { "unsigned", "tenant-signed" })
        {
            // Asserted on the finding and the decision, not the phase: with Exceptions the decision is RequireException.
            var i = await EvidenceScenario.WaitAsync(cluster.Api, ws, name, x => x.Status is { Decision: not null } s && s.FindingsGeneration == x.Metadata.Generation, "findings read");
            var finding = Assert.Single(i.Status!.Findings!);
            Assert.Equal(("UnsignedPackage", "unsigned", "signature"), (finding.Type, finding.Id, finding.Source));
            Assert.NotEqual("Allow", i.Status.Decision);
            Assert.Empty(i.Status.Rings ?? []);
        }

        var ok = await EvidenceScenario.WaitAsync(cluster.Api, ws, "signed", x => x.Status?.Phase == IntentPhase.Completed, "Completed");
        Assert.Empty(ok.Status!.Findings ?? []);
    }
}
