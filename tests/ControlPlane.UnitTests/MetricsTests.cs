using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Prometheus;
using Xunit;
using k8s;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>The metrics the alerts and the dashboard read, as a scrape returns them.</summary>
public sealed class MetricsTests
{
    static async Task<string> ScrapeAsync(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The value of the one sample whose name and labels are given exactly, or null.</summary>
    static double? Sample(string scrape, string series)
    {
        foreach (var line in scrape.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line[(series.Length + 1)..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    [Fact]
    public async Task WorkQueue_ReportsUnfinishedWork_AndTheLongestRunningProcessor_UntilDone()
    {
        var metrics = new OperatorMetrics();
        var time = new FakeTimeProvider();
        var q = new WorkQueue<string>(time, metrics: new QueueMetrics(metrics, "backup"));
        q.Add("a");
        q.Add("b");
        var (_, a) = await q.GetAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(3));
        var (_, b) = await q.GetAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(2));

        var scrape = await ScrapeAsync(metrics.Registry);
        Assert.Equal(7, Sample(scrape, "workqueue_unfinished_work_seconds{name=\"backup\"}")); // 5 s + 2 s in progress
        Assert.Equal(5, Sample(scrape, "workqueue_longest_running_processor_seconds{name=\"backup\"}"));

        q.Done(a);
        time.Advance(TimeSpan.FromSeconds(1));
        scrape = await ScrapeAsync(metrics.Registry);
        Assert.Equal(3, Sample(scrape, "workqueue_unfinished_work_seconds{name=\"backup\"}"));
        Assert.Equal(3, Sample(scrape, "workqueue_longest_running_processor_seconds{name=\"backup\"}"));

        q.Done(b);
        scrape = await ScrapeAsync(metrics.Registry);
        Assert.Equal(0, Sample(scrape, "workqueue_unfinished_work_seconds{name=\"backup\"}"));
        Assert.Equal(0, Sample(scrape, "workqueue_longest_running_processor_seconds{name=\"backup\"}"));

        // A queue of the next term under the same name replaces it; the old one's Dispose leaves the new one's series alone.
        var next = new WorkQueue<string>(time, metrics: new QueueMetrics(metrics, "backup"));
        next.Add("c");
        await next.GetAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(4));
        q.Dispose();
        Assert.Equal(4, Sample(await ScrapeAsync(metrics.Registry), "workqueue_longest_running_processor_seconds{name=\"backup\"}"));
        next.Dispose();
        Assert.Equal(0, Sample(await ScrapeAsync(metrics.Registry), "workqueue_longest_running_processor_seconds{name=\"backup\"}"));
    }

    sealed class Refuses : IReconciler<V1Secret>
    {
        public Task<ReconcileResult> ReconcileAsync(V1Secret obj, CancellationToken ct) => Task.FromResult(ReconcileResult.Terminal("PlanNotFound"));
    }

    [Fact]
    public async Task ATerminalResult_IsCountedAsATerminalError_NotAsASuccess()
    {
        var metrics = new OperatorMetrics();
        using var api = new KubeApi(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" }); // never called: the object is seeded
        var informer = new Informer<V1Secret>(api, ResourceType.Secrets, metrics, NullLogger.Instance);
        var secret = new V1Secret { Metadata = new V1ObjectMeta { Name = "s", NamespaceProperty = "team-a", ResourceVersion = "1" } };
        informer.Seed(secret);
        var controller = new Controller<V1Secret>("probe", informer, new Refuses(), metrics, NullLogger.Instance);
        await controller.ProcessAsync(Informer<V1Secret>.KeyOf(secret), CancellationToken.None);

        var scrape = await ScrapeAsync(metrics.Registry);
        Assert.Equal(1, Sample(scrape, "controller_runtime_terminal_reconcile_errors_total{controller=\"probe\"}"));
        Assert.Equal(1, Sample(scrape, "controller_runtime_reconcile_total{controller=\"probe\",result=\"terminal\"}"));
        Assert.Null(Sample(scrape, "controller_runtime_reconcile_total{controller=\"probe\",result=\"success\"}"));
        Assert.Equal(0, controller.Queue.NumRequeues(Informer<V1Secret>.KeyOf(secret))); // not retried
    }

    sealed class FakeInformer(ResourceType type, params IKubernetesObject<V1ObjectMeta>[] objects) : IInformer
    {
        public List<IKubernetesObject<V1ObjectMeta>> Items { get; } = [.. objects];
        public ResourceType Type => type;
        public bool HasSynced => true;
        public Task WaitForSyncAsync(CancellationToken ct) => Task.CompletedTask;
        public Task RunAsync(CancellationToken ct) => Task.CompletedTask;
        public IEnumerable<string> Keys => Items.Select(o => o.Metadata.Name);
        public int Count => Items.Count;
        public IEnumerable<IKubernetesObject<V1ObjectMeta>> Objects => Items;
    }

    [Fact]
    public async Task ObjectReady_IsOneSeriesPerObject_LabelledWorkspace_AndGoesWithTheObject()
    {
        var registry = Metrics.NewCustomRegistry();
        var plan = new BackupPlan { Metadata = new V1ObjectMeta { Name = "nightly", NamespaceProperty = "team-a" } };
        plan.Status = new BackupPlanStatus { Conditions = [new V1Condition { Type = "Ready", Status = "True", Reason = "Scheduled", Message = "", LastTransitionTime = DateTime.UtcNow }] };
        var failing = new BackupPlan { Metadata = new V1ObjectMeta { Name = "nightly", NamespaceProperty = "team-b" } };
        failing.Status = new BackupPlanStatus { Conditions = [new V1Condition { Type = "Ready", Status = "False", Reason = "WorkspaceNotReady", Message = "", LastTransitionTime = DateTime.UtcNow }] };
        var fresh = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" } }; // no status yet: not ready
        var plans = new FakeInformer(ResourceType.For<BackupPlan>(namespaced: true), plan, failing);
        var tenants = new FakeInformer(ResourceType.For<Tenant>(namespaced: false), fresh);
        var secrets = new FakeInformer(ResourceType.Secrets, new V1Secret { Metadata = new V1ObjectMeta { Name = "s", NamespaceProperty = "team-a" } });
        IInformer[] informers = [plans, tenants, secrets];
        _ = new ObjectReadyMetrics(registry, () => informers);

        var scrape = await ScrapeAsync(registry);
        Assert.Equal(1, Sample(scrape, "controlplane_object_ready{kind=\"BackupPlan\",workspace=\"team-a\",name=\"nightly\"}"));
        Assert.Equal(0, Sample(scrape, "controlplane_object_ready{kind=\"BackupPlan\",workspace=\"team-b\",name=\"nightly\"}"));
        Assert.Equal(0, Sample(scrape, "controlplane_object_ready{kind=\"Tenant\",workspace=\"\",name=\"acme\"}"));
        Assert.DoesNotContain("Secret", scrape, StringComparison.Ordinal); // only controlplane.io kinds
        Assert.DoesNotContain("namespace=", scrape, StringComparison.Ordinal);

        plans.Items.Remove(failing); // deleted
        scrape = await ScrapeAsync(registry);
        Assert.Null(Sample(scrape, "controlplane_object_ready{kind=\"BackupPlan\",workspace=\"team-b\",name=\"nightly\"}"));
        Assert.Equal(1, Sample(scrape, "controlplane_object_ready{kind=\"BackupPlan\",workspace=\"team-a\",name=\"nightly\"}"));

        informers = []; // leadership lost: a follower caches nothing and exports nothing
        Assert.DoesNotContain("controlplane_object_ready{", await ScrapeAsync(registry), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackupMetrics_LabelTheWorkspace_AndAPlanWithoutSuccess_IsAsOldAsItsCreation()
    {
        var registry = Metrics.NewCustomRegistry();
        var backups = new BackupMetrics(registry);
        var created = new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
        backups.NoSuccess("team-a", "nightly", created);
        var scrape = await ScrapeAsync(registry);
        Assert.Equal(new DateTimeOffset(created).ToUnixTimeSeconds(), Sample(scrape, "controlplane_backup_last_success_timestamp_seconds{workspace=\"team-a\",backupplan=\"nightly\"}"));
        Assert.Null(Sample(scrape, "controlplane_backup_size_bytes{workspace=\"team-a\",backupplan=\"nightly\"}"));

        backups.Set("team-a", "nightly", created.AddHours(2), TimeSpan.FromSeconds(30), 1024);
        scrape = await ScrapeAsync(registry);
        Assert.Equal(new DateTimeOffset(created.AddHours(2)).ToUnixTimeSeconds(), Sample(scrape, "controlplane_backup_last_success_timestamp_seconds{workspace=\"team-a\",backupplan=\"nightly\"}"));
        Assert.Equal(1024, Sample(scrape, "controlplane_backup_size_bytes{workspace=\"team-a\",backupplan=\"nightly\"}"));
    }

    [Fact]
    public async Task WebhookCertificateExpiry_IsTheSecondsUntilNotAfter_OnlyOnceACertificateIsLoaded()
    {
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = new CertificateRequest("CN=webhook", key, HashAlgorithmName.SHA256).CreateSelfSigned(time.GetUtcNow().AddDays(-1), time.GetUtcNow().AddDays(10));
        X509Certificate2? current = null;
        WebhookCertificates.ExportExpiry(registry, () => current, time);

        Assert.Null(Sample(await ScrapeAsync(registry), "controlplane_webhook_certificate_expiry_seconds"));
        current = cert;
        var expected = (cert.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime).TotalSeconds;
        Assert.Equal(expected, Sample(await ScrapeAsync(registry), "controlplane_webhook_certificate_expiry_seconds")!.Value, 3);
        time.Advance(TimeSpan.FromDays(11));
        Assert.True(Sample(await ScrapeAsync(registry), "controlplane_webhook_certificate_expiry_seconds") < 0); // expired: the alert's condition
    }
}
