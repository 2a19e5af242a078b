using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using NpgsqlTypes;
using k8s.Models;
using OperatorRuntime = ControlPlane.Operator.OperatorRuntime;

namespace ControlPlane.Bench;

/// <summary>
/// The audit API (docs/audit-api.md) over a large trail: the first page of `kubectl get auditevents`
/// (500 rows, as a Table) through the real API server and the aggregation layer, and a watch's delay
/// from an append's commit to its event.
/// </summary>
public static partial class Program
{
    static readonly int NAuditRows = Env("BENCH_N_AUDIT_ROWS", 100_000);
    static readonly int AuditPageRequests = Env("BENCH_AUDIT_PAGE_REQUESTS", 200);
    static readonly int AuditWatchEvents = Env("BENCH_AUDIT_WATCH_EVENTS", 30);
    const string AuditPrefix = "/apis/audit.controlplane.io/v1alpha1";
    const string TableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    static async Task<JsonObject> AuditAsync(BenchEnv env)
    {
        var address = LocalControlPlane.NonLoopbackAddress()?.ToString() ?? throw new InvalidOperationException("no non-loopback IPv4 address for the APIService's Endpoints");
        var healthPort = Net.FreePort();
        var webhookPort = Net.FreePort();
        var auditPort = Net.FreePort();
        // The chart's Service port for the APIService, with Endpoints at the operator's address (the API server dials them).
        await env.Plane.ServeAuditApiAtAsync(address, auditPort);
        var app = ControlPlane.Operator.Program.BuildApp([], config => Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(config,
            new Dictionary<string, string?>
            {
                ["ControlPlane:Kubeconfig"] = env.Plane.KubeconfigPath,
                ["ControlPlane:SystemDatabase"] = env.Postgres.ConnectionString(),
                ["ControlPlane:Regions:eu:Database"] = env.Postgres.RegionConnectionString(),
                ["ControlPlane:HealthUrls"] = $"http://127.0.0.1:{healthPort}",
                ["ControlPlane:Webhook:BindAddress"] = "127.0.0.1",
                ["ControlPlane:Webhook:Port"] = webhookPort.ToString(CultureInfo.InvariantCulture),
                ["ControlPlane:Webhook:Url"] = $"https://127.0.0.1:{webhookPort}",
                ["ControlPlane:Webhook:ExtraSans:0"] = "127.0.0.1",
                ["ControlPlane:AuditApi:Enabled"] = "true",
                ["ControlPlane:AuditApi:BindAddress"] = address,
                ["ControlPlane:AuditApi:Port"] = auditPort.ToString(CultureInfo.InvariantCulture),
                ["Logging:LogLevel:Default"] = "Warning",
            }));
        await app.StartAsync();
        try
        {
            using var health = new HttpClient();
            await Net.WaitUntilAsync(async () => (await health.GetAsync($"http://127.0.0.1:{healthPort}/readyz")).IsSuccessStatusCode, TimeSpan.FromMinutes(1), "operator ready");
            await CreateTenantsAsync(env, 10);
            var ws = NewWorkspace(0, db: false);
            await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
            var ns = ws.Metadata.Name;
            await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ns, CancellationToken.None)).Status?.Phase == WorkspacePhase.Ready,
                TimeSpan.FromMinutes(1), "workspace Ready");
            var runtime = (OperatorRuntime)app.Services.GetService(typeof(OperatorRuntime))!;

            var load = Stopwatch.StartNew();
            await BulkAppendAsync(env, runtime.Database, ws.Spec.Tenant, ns, NAuditRows);
            var loadSeconds = load.Elapsed.TotalSeconds;

            using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
            using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", env.Plane.Admin.Token);
            var first = $"{env.Plane.Host}{AuditPrefix}/namespaces/{ns}/auditevents?limit=500";
            await Net.WaitUntilAsync(async () => (await http.GetAsync(first)).IsSuccessStatusCode, TimeSpan.FromMinutes(2), "the audit API Available through the API server");

            async Task<List<double>> TimeAsync(string url, string accept)
            {
                var samples = new List<double>();
                for (var i = 0; i < AuditPageRequests; i++)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, url);
                    request.Headers.TryAddWithoutValidation("Accept", accept);
                    var sw = Stopwatch.StartNew();
                    using var response = await http.SendAsync(request);
                    var body = await response.Content.ReadAsStringAsync();
                    sw.Stop();
                    if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"GET {url}: {(int)response.StatusCode} {body}");
                    if (i == 0 && JsonNode.Parse(body)!["rows"] is JsonArray rows && rows.Count != 500) throw new InvalidOperationException($"first page has {rows.Count} rows");
                    samples.Add(sw.Elapsed.TotalMilliseconds);
                }

                return samples;
            }

            JsonArray Triple(List<double> s) => [Math.Round(Percentiles.Of(s, 0.5), 1), Math.Round(Percentiles.Of(s, 0.95), 1), Math.Round(Percentiles.Of(s, 0.99), 1)];
            var namespaced = await TimeAsync(first, TableAccept);
            var clusterWide = await TimeAsync($"{env.Plane.Host}{AuditPrefix}/auditevents?limit=500", TableAccept);
            var json = await TimeAsync(first, "application/json");

            // A watch through the API server from the head; each append timed from its commit to its event.
            var head = JsonNode.Parse(await http.GetStringAsync(first.Replace("limit=500", "limit=1", StringComparison.Ordinal)))!["metadata"]!["resourceVersion"]!.GetValue<string>();
            using var watchRequest = new HttpRequestMessage(HttpMethod.Get, $"{env.Plane.Host}{AuditPrefix}/namespaces/{ns}/auditevents?watch=1&resourceVersion={head}&timeoutSeconds=600");
            using var watch = await http.SendAsync(watchRequest, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await watch.Content.ReadAsStreamAsync());
            var delays = new List<double>();
            for (var i = 0; i < AuditWatchEvents; i++)
            {
                await runtime.Database.AppendAuditAsync(new AuditEntry("bench@example.com", "bench.watched", "Workspace", ns, ws.Spec.Tenant, new JsonObject { ["i"] = i }), CancellationToken.None);
                var committed = Stopwatch.StartNew();
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                while (true)
                {
                    var e = JsonNode.Parse(await reader.ReadLineAsync(deadline.Token) ?? throw new InvalidOperationException("the watch ended"))!;
                    if (e["type"]!.GetValue<string>() == "ADDED" && e["object"]!["event"]!["details"]!["i"]?.GetValue<int>() == i) break;
                }

                delays.Add(committed.Elapsed.TotalMilliseconds);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(50, 400)));
            }

            var verify = Stopwatch.StartNew();
            var verdict = await AuditVerification.VerifyAsync(new AuditLog(runtime.Database.DataSource, "controlplane-system"), AuditTable.AuditEvents, ChainCursor.Start, CancellationToken.None);
            var verifySeconds = verify.Elapsed.TotalSeconds;
            if (verdict.FirstBadId is not null) throw new InvalidOperationException($"the bench's chain does not verify: {verdict.Problem}");

            return new JsonObject
            {
                ["rows"] = NAuditRows,
                ["loadSeconds"] = Math.Round(loadSeconds, 1),
                ["requests"] = AuditPageRequests,
                ["firstPageTableNamespaceMs"] = Triple(namespaced),
                ["firstPageTableClusterWideMs"] = Triple(clusterWide),
                ["firstPageJsonNamespaceMs"] = Triple(json),
                ["watchDelayMs"] = new JsonArray(Math.Round(Percentiles.Of(delays, 0.5), 0), Math.Round(Percentiles.Of(delays, 0.95), 0), Math.Round(delays.Max(), 0)),
                ["fullVerificationSeconds"] = Math.Round(verifySeconds, 2),
                ["note"] = "sequential GETs as admin through kube-apiserver 1.20 and its aggregation layer (front proxy, SubjectAccessReview answers cached 10 s); " +
                           "watch delay = from AppendAuditAsync's commit to the ADDED event read through the API server (poll every 250 ms); p50/p95/p99 (watch: p50/p95/max)",
            };
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>Appends n rows to the trail in one COPY, chained exactly as the operator chains them (global and tenant), under the append lock.</summary>
    static async Task BulkAppendAsync(BenchEnv env, SystemDatabase database, string tenant, string workspace, int n)
    {
        await database.Migrated;
        await using var conn = new NpgsqlConnection(env.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(281142389108)", conn, tx)) await lockCmd.ExecuteNonQueryAsync(); // SystemDatabase's "Audit" lock
        string prev;
        await using (var last = new NpgsqlCommand("SELECT hash FROM controlplane.audit_events ORDER BY id DESC LIMIT 1", conn, tx)) prev = (string?)await last.ExecuteScalarAsync() ?? "";
        long seq = 0;
        var tenantPrev = "";
        await using (var head = new NpgsqlCommand("SELECT tenant_seq, tenant_hash FROM controlplane.audit_events WHERE chain_tenant = $1 ORDER BY tenant_seq DESC LIMIT 1", conn, tx))
        {
            head.Parameters.AddWithValue(tenant);
            await using var r = await head.ExecuteReaderAsync();
            if (await r.ReadAsync())
            {
                seq = r.GetInt64(0);
                tenantPrev = r.GetString(1);
            }
        }

        var start = DateTime.UtcNow.AddHours(-1);
        await using (var copy = await conn.BeginBinaryImportAsync("COPY controlplane.audit_events (occurred_at, actor, action, kind, object_name, tenant, severity, details, prev_hash, hash, chain_tenant, tenant_seq, tenant_prev_hash, tenant_hash) FROM STDIN (FORMAT BINARY)"))
        {
            for (var i = 0; i < n; i++)
            {
                var t = start.AddTicks(i * 10L * 30); // 30 µs apart, microsecond precision
                var entry = new AuditEntry($"dev{i % 50}@example.com", i % 7 == 0 ? "rollout.ringPromoted" : "workspace.membersChanged", "Workspace", workspace, tenant,
                    new JsonObject { ["generation"] = i, ["reason"] = "Bench", ["message"] = $"bench row {i}" });
                var hash = SystemDatabase.ChainHash(prev, t, entry);
                var tenantHash = SystemDatabase.ChainHash(tenantPrev, t, entry);
                seq++;
                await copy.StartRowAsync();
                await copy.WriteAsync(t, NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(entry.Actor);
                await copy.WriteAsync(entry.Action);
                await copy.WriteAsync(entry.Kind);
                await copy.WriteAsync(entry.ObjectName);
                await copy.WriteAsync(tenant);
                await copy.WriteAsync(entry.Severity);
                await copy.WriteAsync(SystemDatabase.Canonical(entry.Details), NpgsqlDbType.Jsonb);
                await copy.WriteAsync(prev);
                await copy.WriteAsync(hash);
                await copy.WriteAsync(tenant);
                await copy.WriteAsync(seq);
                await copy.WriteAsync(tenantPrev);
                await copy.WriteAsync(tenantHash);
                prev = hash;
                tenantPrev = tenantHash;
            }

            await copy.CompleteAsync();
        }

        await tx.CommitAsync();
        await using var analyze = new NpgsqlCommand("ANALYZE controlplane.audit_events", conn);
        await analyze.ExecuteNonQueryAsync();
    }
}
