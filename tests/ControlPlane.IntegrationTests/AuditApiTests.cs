using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ControlPlane.Tests;

/// <summary>
/// The audit trail through the Kubernetes API (issue 24, docs/audit-api.md): the aggregated API
/// audit.controlplane.io served by the running operator, reached through the real API server (front
/// proxy, APIService, Endpoints at a non-loopback address) as token users of two tenants.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed partial class AuditApiTests(WebhookFixture fixture, ITestOutputHelper output)
{
    const string Prefix = "/apis/audit.controlplane.io/v1alpha1";
    const string TableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io";
    static readonly TimeSpan Generous = TimeSpan.FromSeconds(90);

    ClusterFixture Cluster => fixture.Cluster;

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));

    sealed record TenantUnderAudit(string Tenant, string Workspace, string Auditor);

    /// <summary>A tenant with one workspace (no database: quick) whose Auditor is <paramref name="auditor"/>; waits until the auditor can list it.</summary>
    async Task<TenantUnderAudit> TenantAsync(string auditor)
    {
        var tenant = Unique("aud");
        var ws = tenant + "-dev";
        await Cluster.CreateTenantAsync(tenant);
        await Cluster.CreateWorkspaceAsync(ws, tenant, s =>
        {
            s.Database = new WorkspaceDatabase { Enabled = false };
            s.Members = [new WorkspaceMember { Kind = "User", Name = Cluster.Plane.Users[auditor].Name, Role = "Auditor" }];
        });
        await Cluster.WaitForWorkspaceAsync(ws, ClusterFixture.IsReady, "Ready", Generous);
        using var api = As(auditor);
        // The APIService turns Available, and the Auditor RoleBinding appears, shortly after the operator starts.
        var last = "";
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                try
                {
                    return Items(await api.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{ws}/auditevents", null, "application/json", CancellationToken.None)).Count > 0;
                }
                catch (KubeApiException e) when (e.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.ServiceUnavailable or HttpStatusCode.NotFound)
                {
                    last = $"{(int)e.StatusCode} {e.Reason}: {e.StatusMessage}";
                    return false;
                }
            }, Generous, $"{auditor} lists the audit events of {ws}");
        }
        catch (TimeoutException e)
        {
            var apiService = await Cluster.Api.SendAsync(HttpMethod.Get, "/apis/apiregistration.k8s.io/v1/apiservices/v1alpha1.audit.controlplane.io", null, "application/json", CancellationToken.None)
                .ContinueWith(t => t.IsCompletedSuccessfully ? JsonNode.Parse(t.Result)?["status"]?.ToJsonString() : t.Exception?.InnerException?.Message, TaskScheduler.Default);
            throw new TimeoutException($"{e.Message}; last answer: {last}; APIService status: {apiService}");
        }

        return new TenantUnderAudit(tenant, ws, auditor);
    }

    static List<JsonObject> Items(string list) => [.. JsonNode.Parse(list)!["items"]!.AsArray().Select(i => i!.AsObject())];

    static async Task<HttpStatusCode> StatusOf(Func<Task> call)
    {
        try
        {
            await call();
            return HttpStatusCode.OK;
        }
        catch (KubeApiException e)
        {
            return e.StatusCode;
        }
    }

    /// <summary>Every page of a list (limit/continue), as a client pages.</summary>
    static async Task<(List<JsonObject> Items, int Pages)> ListAllAsync(KubeApi api, string path, int limit, string query = "")
    {
        var all = new List<JsonObject>();
        string? next = null;
        var pages = 0;
        do
        {
            var url = $"{path}?limit={limit}{query}" + (next is null ? "" : $"&continue={Uri.EscapeDataString(next)}");
            var page = JsonNode.Parse(await api.SendAsync(HttpMethod.Get, url, null, "application/json", CancellationToken.None))!;
            var items = page["items"]!.AsArray().Select(i => i!.AsObject()).ToList();
            Assert.True(items.Count <= limit, $"a page of {items.Count} items for limit {limit}");
            all.AddRange(items);
            next = page["metadata"]?["continue"]?.GetValue<string>();
            pages++;
        }
        while (next is not null);
        return (all, pages);
    }

    /// <summary>
    /// The client-side verification docs/audit-api.md describes, written independently of the operator's code:
    /// the tenant chain ordered by its sequence, no gap, each prevHash the previous hash, each hash recomputed.
    /// Returns the first bad tenant sequence, or null.
    /// </summary>
    static long? FirstTenantChainBreak(IEnumerable<JsonObject> items)
    {
        var chain = items.Where(i => i["tenantChain"] is not null).OrderBy(i => i["tenantChain"]!["sequence"]!.GetValue<long>()).ToList();
        var prev = "";
        long expected = 1;
        foreach (var item in chain)
        {
            var link = item["tenantChain"]!;
            var seq = link["sequence"]!.GetValue<long>();
            if (seq != expected || link["prevHash"]!.GetValue<string>() != prev) return seq;
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(prev + Canonical(item["event"]))));
            if (hash != link["hash"]!.GetValue<string>()) return seq;
            prev = hash;
            expected++;
        }

        return null;
    }

    static string Canonical(JsonNode? node) => Sorted(node)?.ToJsonString() ?? "null";

    static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, Sorted(kv.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sorted)]),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };

    async Task<(int Exit, string Stdout, string Stderr)> KubectlAsAsync(string user, params string[] args)
    {
        var info = new ProcessStartInfo("kubectl") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["KUBECONFIG"] = Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, $"kubeconfig-{user}");
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }

    Task AppendAsync(TenantUnderAudit t, string action, int i) =>
        fixture.Runtime.Database.AppendAuditAsync(new AuditEntry("tester@example.com", action, "Workspace", t.Workspace, t.Tenant, new JsonObject { ["i"] = i, ["note"] = "ünïcode <&> 'quoted'" }), CancellationToken.None);

    [Fact]
    public async Task TenantAuditors_ReadOnlyTheirTenantsWorkspaces_AndVerifyTheirChainFromWhatTheyRead()
    {
        var a = await TenantAsync("dave");
        var b = await TenantAsync("erin");
        using var dave = As("dave");
        using var erin = As("erin");

        var (mine, _) = await ListAllAsync(dave, $"{Prefix}/namespaces/{a.Workspace}/auditevents", 500);
        Assert.NotEmpty(mine);
        Assert.All(mine, i =>
        {
            Assert.Equal(a.Workspace, i["metadata"]!["namespace"]!.GetValue<string>());
            Assert.Equal(a.Tenant, i["metadata"]!["labels"]!["audit.controlplane.io/tenant"]!.GetValue<string>());
        });
        Assert.Contains(mine, i => i["event"]!["action"]!.GetValue<string>() == "workspace.created");
        // The whole tenant chain is in what the auditor may read: it starts at 1 and verifies.
        Assert.Equal(1, mine.Where(i => i["tenantChain"] is not null).Min(i => i["tenantChain"]!["sequence"]!.GetValue<long>()));
        Assert.Null(FirstTenantChainBreak(mine));
        // Each row's global link can be recomputed from the row alone.
        Assert.All(mine, i => Assert.Equal(i["chain"]!["hash"]!.GetValue<string>(),
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(i["chain"]!["prevHash"]!.GetValue<string>() + Canonical(i["event"]))))));

        var (theirs, _) = await ListAllAsync(erin, $"{Prefix}/namespaces/{b.Workspace}/auditevents", 500);
        Assert.NotEmpty(theirs);
        Assert.All(theirs, i => Assert.Equal(b.Tenant, i["metadata"]!["labels"]!["audit.controlplane.io/tenant"]!.GetValue<string>()));
        var theirName = theirs[0]["metadata"]!["name"]!.GetValue<string>();

        // Across tenants: list, get, watch and the cluster-wide list are 403, both ways.
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(() => dave.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{b.Workspace}/auditevents", null, "application/json", CancellationToken.None)));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(() => dave.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{b.Workspace}/auditevents/{theirName}", null, "application/json", CancellationToken.None)));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(() => dave.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{b.Workspace}/auditevents?watch=1&timeoutSeconds=2", null, "application/json", CancellationToken.None)));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(() => dave.SendAsync(HttpMethod.Get, $"{Prefix}/auditevents", null, "application/json", CancellationToken.None)));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(() => dave.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{b.Workspace}/deploymentevents", null, "application/json", CancellationToken.None)));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(() => erin.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{a.Workspace}/auditevents", null, "application/json", CancellationToken.None)));
        // A row of tenant B named in tenant A's namespace is simply not there.
        Assert.Equal(HttpStatusCode.NotFound, await StatusOf(() => dave.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{a.Workspace}/auditevents/{theirName}", null, "application/json", CancellationToken.None)));
        // Read-only.
        Assert.Equal(HttpStatusCode.MethodNotAllowed, await StatusOf(() => Cluster.Api.SendAsync(HttpMethod.Post, $"{Prefix}/namespaces/{a.Workspace}/auditevents", "{}", "application/json", CancellationToken.None)));

        // kubectl, as the users: the server's Table, and the refusal.
        var got = await KubectlAsAsync("dave", "get", "auditevents", "-n", a.Workspace);
        Assert.True(got.Exit == 0, got.Stderr);
        output.WriteLine(got.Stdout);
        var header = got.Stdout.Split('\n')[0];
        foreach (var column in new[] { "SEQ", "OCCURRED", "ACTOR", "ACTION", "KIND", "OBJECT", "SEVERITY", "TENANT" }) Assert.Contains(column, header, StringComparison.Ordinal);
        Assert.Contains("workspace.created", got.Stdout, StringComparison.Ordinal);
        var refused = await KubectlAsAsync("dave", "get", "auditevents", "-n", b.Workspace);
        Assert.NotEqual(0, refused.Exit);
        Assert.Contains("Forbidden", refused.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(b.Tenant, refused.Stdout, StringComparison.Ordinal);

        // The Table asked for directly: its columns and a row per item.
        var table = JsonNode.Parse(await dave.SendAsync(HttpMethod.Get, $"{Prefix}/namespaces/{a.Workspace}/auditevents?limit=5", null, "application/json", CancellationToken.None, TableAccept))!;
        Assert.Equal("Table", table["kind"]!.GetValue<string>());
        Assert.Equal(8, table["columnDefinitions"]!.AsArray().Count);
        Assert.InRange(table["rows"]!.AsArray().Count, 1, 5);
    }

    [Fact]
    public async Task Lists_PageWithLimitAndContinue_FilterBySelectors_AndAWatchSeesANewRowWithinASecond()
    {
        var a = await TenantAsync("dave");
        using var dave = As("dave");
        for (var i = 0; i < 5; i++) await AppendAsync(a, "test.marker", i);
        var path = $"{Prefix}/namespaces/{a.Workspace}/auditevents";

        var (whole, onePage) = await ListAllAsync(dave, path, 500);
        var (paged, pages) = await ListAllAsync(dave, path, 2);
        Assert.Equal(1, onePage);
        Assert.True(whole.Count >= 6, $"{whole.Count} items");
        Assert.Equal((whole.Count + 1) / 2, pages); // no empty last page
        Assert.Equal(whole.Select(i => i["metadata"]!["name"]!.GetValue<string>()), paged.Select(i => i["metadata"]!["name"]!.GetValue<string>()));
        var ids = paged.Select(i => long.Parse(i["metadata"]!["name"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(ids.Order(), ids);

        var (byActor, _) = await ListAllAsync(dave, path, 500, "&fieldSelector=" + Uri.EscapeDataString("actor=tester@example.com"));
        Assert.Equal(5, byActor.Count);
        var (byLabel, _) = await ListAllAsync(dave, path, 500, "&labelSelector=" + Uri.EscapeDataString("audit.controlplane.io/action in (test.marker),audit.controlplane.io/kind=Workspace"));
        Assert.Equal(5, byLabel.Count);
        var (notMarker, _) = await ListAllAsync(dave, path, 500, "&labelSelector=" + Uri.EscapeDataString("audit.controlplane.io/action!=test.marker"));
        Assert.Equal(whole.Count - 5, notMarker.Count);
        var bad = await Assert.ThrowsAsync<KubeApiException>(() => dave.SendAsync(HttpMethod.Get, path + "?fieldSelector=colour%3Dred", null, "application/json", CancellationToken.None));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("colour", bad.StatusMessage, StringComparison.Ordinal);

        // A watch from the list's resourceVersion, through the API server, as the auditor.
        var rv = JsonNode.Parse(await dave.SendAsync(HttpMethod.Get, path + "?limit=1", null, "application/json", CancellationToken.None))!["metadata"]!["resourceVersion"]!.GetValue<string>();
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Cluster.Plane.Host}{path}?watch=1&resourceVersion={rv}&timeoutSeconds=120");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Cluster.Plane.Users["dave"].Token);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var latencies = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await AppendAsync(a, "test.watched", i);
            var committed = Stopwatch.StartNew();
            while (true)
            {
                var line = await reader.ReadLineAsync(deadline.Token) ?? throw new InvalidOperationException("the watch ended");
                var e = JsonNode.Parse(line)!;
                if (e["type"]!.GetValue<string>() == "ADDED" && e["object"]!["event"]!["action"]!.GetValue<string>() == "test.watched"
                    && e["object"]!["event"]!["details"]!["i"]!.GetValue<int>() == i)
                {
                    Assert.Equal(a.Workspace, e["object"]!["metadata"]!["namespace"]!.GetValue<string>());
                    break;
                }
            }

            latencies.Add(committed.Elapsed.TotalMilliseconds);
        }

        output.WriteLine($"watch latencies (ms): {string.Join(", ", latencies.Select(l => l.ToString("0", System.Globalization.CultureInfo.InvariantCulture)))}");
        // Within a second of the commit (the median, so one hiccup of a loaded machine does not decide it).
        Assert.True(latencies.Order().ElementAt(1) < 1000, $"watch latencies {string.Join(", ", latencies)} ms");
    }

    [Fact]
    public async Task DeploymentEvents_AreServedInTheirIntentsWorkspace_OnTheirTenantsChain()
    {
        var a = await TenantAsync("dave");
        using var dave = As("dave");
        var uid = Guid.NewGuid().ToString();
        DeploymentEvent Event(int i, string from, string to) => new(uid, a.Workspace, "checkout", a.Tenant, "corr-" + uid[..8], 1, "PhaseChanged", from, to, null,
            "bob@example.com", "Approved", new JsonObject { ["i"] = i }, $"{uid}-{i}");
        Assert.True(await fixture.Runtime.Database.AppendDeploymentEventsAsync([Event(0, "Pending", "Approved"), Event(1, "Approved", "Executing")], CancellationToken.None));
        Assert.True(await fixture.Runtime.Database.AppendDeploymentEventsAsync([Event(2, "Executing", "Succeeded")], CancellationToken.None));

        var (events, _) = await ListAllAsync(dave, $"{Prefix}/namespaces/{a.Workspace}/deploymentevents", 500, "&fieldSelector=" + Uri.EscapeDataString("intentUid=" + uid));
        Assert.Equal(3, events.Count);
        Assert.Equal(["Approved", "Executing", "Succeeded"], events.Select(e => e["event"]!["toPhase"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal("PhaseChanged", e["metadata"]!["labels"]!["audit.controlplane.io/type"]!.GetValue<string>()));
        // The tenant's deployment chain is all in its one workspace: it verifies from sequence 1.
        var (all, _) = await ListAllAsync(dave, $"{Prefix}/namespaces/{a.Workspace}/deploymentevents", 500);
        Assert.Equal(1, all.Min(e => e["tenantChain"]!["sequence"]!.GetValue<long>()));
        Assert.Null(FirstTenantChainBreak(all));
        var table = await KubectlAsAsync("dave", "get", "deploymentevents", "-n", a.Workspace);
        Assert.True(table.Exit == 0, table.Stderr);
        Assert.Contains("INTENT", table.Stdout.Split('\n')[0], StringComparison.Ordinal);
        Assert.Contains("Succeeded", table.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheOperatorsPort_RefusesEveryoneButTheFrontProxy()
    {
        var pki = Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "pki");
        var url = $"https://{fixture.AuditAddress}:{fixture.AuditPort}{Prefix}/namespaces/default/auditevents";

        async Task<HttpStatusCode> CallAsync(X509Certificate2? client, bool withUser)
        {
            using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
            if (client is not null) handler.ClientCertificates.Add(client);
            using var http = new HttpClient(handler);
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (withUser)
            {
                request.Headers.Add("X-Remote-User", "admin");
                request.Headers.Add("X-Remote-Group", "system:masters");
            }

            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        // Wait until the operator has read the front proxy's CA (the valid certificate then gets past authentication).
        using var proxyCert = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "front-proxy-client.crt"), Path.Combine(pki, "front-proxy-client.key"));
        using var proxyClient = X509CertificateLoader.LoadPkcs12(proxyCert.Export(X509ContentType.Pkcs12), null);
        await Net.WaitUntilAsync(async () => await CallAsync(proxyClient, withUser: true) != HttpStatusCode.Unauthorized, Generous, "the audit API trusts the front proxy");

        // Headers alone, no certificate: 401.
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(null, withUser: true));
        // A client certificate of the cluster's main CA (the API server's webhook client), not the front proxy's: 401.
        using var otherCert = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "webhook-client.crt"), Path.Combine(pki, "webhook-client.key"));
        using var otherClient = X509CertificateLoader.LoadPkcs12(otherCert.Export(X509ContentType.Pkcs12), null);
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(otherClient, withUser: true));
        // The front proxy's certificate without a user: 401 for data.
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(proxyClient, withUser: false));
        // Through the API server, anonymous: refused there.
        using var anonymousHandler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var anonymous = new HttpClient(anonymousHandler);
        var viaApiServer = await anonymous.GetAsync($"{Cluster.Plane.Host}{Prefix}/namespaces/default/auditevents");
        Assert.True(viaApiServer.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, viaApiServer.StatusCode.ToString());
    }

    [Fact]
    public async Task ARowChangedBehindTheTriggers_IsCaughtByTheMetric_AndByVerificationFromTheApi()
    {
        var a = await TenantAsync("dave");
        using var dave = As("dave");
        for (var i = 0; i < 3; i++) await AppendAsync(a, "test.tamper", i);
        await WaitForMetricAsync("controlplane_audit_chain_broken{chain=\"audit_events\"}", v => v == 0, "the chain verified intact");
        await WaitForMetricAsync("controlplane_audit_chain_verified_timestamp_seconds{chain=\"audit_events\"}", v => v > 0, "a verification timestamp");

        var path = $"{Prefix}/namespaces/{a.Workspace}/auditevents";
        var (before, _) = await ListAllAsync(dave, path, 500, "&labelSelector=" + Uri.EscapeDataString("audit.controlplane.io/action=test.tamper"));
        var victim = before[1];
        var id = long.Parse(victim["metadata"]!["name"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var tenantSeq = victim["tenantChain"]!["sequence"]!.GetValue<long>();
        var actor = victim["event"]!["actor"]!.GetValue<string>();

        // As the Postgres superuser, with the append-only triggers off for the session.
        async Task SetActorAsync(string value)
        {
            await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
            await conn.OpenAsync();
            await using var tx = await conn.BeginTransactionAsync();
            await using (var replica = new NpgsqlCommand("SET LOCAL session_replication_role = replica", conn, tx)) await replica.ExecuteNonQueryAsync();
            await using (var update = new NpgsqlCommand("UPDATE controlplane.audit_events SET actor = $1 WHERE id = $2", conn, tx))
            {
                update.Parameters.AddWithValue(value);
                update.Parameters.AddWithValue(id);
                Assert.Equal(1, await update.ExecuteNonQueryAsync());
            }

            await tx.CommitAsync();
        }

        await SetActorAsync("mallory@example.com");
        try
        {
            await WaitForMetricAsync("controlplane_audit_chain_broken{chain=\"audit_events\"}", v => v == 1, "the break seen by the operator");
            Assert.Equal(id, await MetricAsync("controlplane_audit_chain_first_bad_sequence{chain=\"audit_events\"}"));
            // What the auditor reads shows the change, and their own verification finds the row.
            var (after, _) = await ListAllAsync(dave, path, 500);
            Assert.Equal("mallory@example.com", after.Single(i => i["metadata"]!["name"]!.GetValue<string>() == id.ToString(System.Globalization.CultureInfo.InvariantCulture))["event"]!["actor"]!.GetValue<string>());
            Assert.Equal(tenantSeq, FirstTenantChainBreak(after));
        }
        finally
        {
            await SetActorAsync(actor);
        }

        await WaitForMetricAsync("controlplane_audit_chain_broken{chain=\"audit_events\"}", v => v == 0, "the chain intact again once the row is restored");
        var (restored, _) = await ListAllAsync(dave, path, 500);
        Assert.Null(FirstTenantChainBreak(restored));
    }

    async Task<double?> MetricAsync(string series)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{fixture.HealthPort}/metrics");
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    async Task WaitForMetricAsync(string series, Func<double, bool> condition, string what)
    {
        double? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await MetricAsync(series);
                return last is { } v && condition(v);
            }, Generous, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}: {series} is {last?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "absent"}");
        }
    }
}
