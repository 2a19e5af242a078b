using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Store;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl controlplane audit` and `audit verify`, the built binary against a stand-in of the audit API
/// (audit.controlplane.io/v1alpha1 as docs/audit-api.md of the audit branch describes it: rows with
/// event, chain and tenantChain, paged with continue, label and field selectors), its hashes made with
/// the operator's own SystemDatabase.Canonical: listing with filters, an intact tenant chain, a
/// tampered row and a deleted row found at their sequence, the global chain with -A. The real API is
/// tested on its own branch; this pins the plugin to the contract.
/// </summary>
public sealed class PluginAuditTests
{
    /// <summary>Eight rows on the global chain; acme's five (in two workspaces) are also on acme's chain, the others are tenant globex's.</summary>
    static List<JsonObject> Rows(Action<List<JsonObject>>? tamper = null)
    {
        var rows = new List<JsonObject>();
        string prev = "", acmePrev = "";
        var acmeSeq = 0;
        for (var i = 1; i <= 8; i++)
        {
            var tenant = i is 2 or 5 or 8 ? "globex" : "acme";
            var ns = tenant == "globex" ? "globex-dev" : i % 2 == 0 ? "acme-prod" : "acme-dev";
            var e = new JsonObject
            {
                ["occurredAt"] = $"2026-12-07T13:2{i}:00.000001Z", ["actor"] = i % 3 == 0 ? "bob@acme.io" : "alice@acme.io", ["action"] = "workspace.updated",
                ["kind"] = "Workspace", ["objectName"] = ns, ["tenant"] = tenant, ["severity"] = "info", ["details"] = new JsonObject { ["n"] = i, ["note"] = "<é>" },
            };
            var hash = SystemDatabase.Sha256Hex(prev + SystemDatabase.Canonical(e));
            var row = new JsonObject
            {
                ["apiVersion"] = "audit.controlplane.io/v1alpha1", ["kind"] = "AuditEvent",
                ["metadata"] = new JsonObject { ["name"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture), ["namespace"] = ns, ["labels"] = new JsonObject { ["audit.controlplane.io/tenant"] = tenant } },
                ["workspace"] = ns, ["event"] = e, ["chain"] = new JsonObject { ["sequence"] = i, ["prevHash"] = prev, ["hash"] = hash },
            };
            if (tenant == "acme")
            {
                var tenantHash = SystemDatabase.Sha256Hex(acmePrev + SystemDatabase.Canonical(e));
                row["tenantChain"] = new JsonObject { ["tenant"] = "acme", ["sequence"] = ++acmeSeq, ["prevHash"] = acmePrev, ["hash"] = tenantHash };
                acmePrev = tenantHash;
            }

            rows.Add(row);
            prev = hash;
        }

        tamper?.Invoke(rows);
        return rows;
    }

    /// <summary>A stand-in API server on loopback: the audit list (two rows a page), discovery, and the Workspaces of acme.</summary>
    sealed class FakeApi : IAsyncDisposable
    {
        readonly HttpListener listener = new();
        readonly List<JsonObject> rows;
        readonly Task loop;
        public List<string> Queries { get; } = [];
        public string Kubeconfig { get; }

        public FakeApi(List<JsonObject> rows)
        {
            this.rows = rows;
            var port = Net.FreePort();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            listener.Start();
            Kubeconfig = Path.Combine(Path.GetTempPath(), $"kubeconfig-audit-{port}");
            File.WriteAllText(Kubeconfig, $$$"""
                apiVersion: v1
                kind: Config
                clusters: [{name: fake, cluster: {server: "http://127.0.0.1:{{{port}}}"}}]
                users: [{name: auditor, user: {token: auditor-token}}]
                contexts: [{name: fake, context: {cluster: fake, user: auditor, namespace: acme-dev}}]
                current-context: fake
                """);
            loop = Task.Run(ServeAsync);
        }

        async Task ServeAsync()
        {
            while (listener.IsListening)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                (int status, JsonNode body) = (500, new JsonObject { ["kind"] = "Status", ["message"] = "stand-in failed" });
                try
                {
                    (status, body) = Answer(ctx.Request);
                }
                catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
                {
                    body = new JsonObject { ["kind"] = "Status", ["message"] = "stand-in failed: " + e.Message };
                }

                var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
                ctx.Response.StatusCode = status;
                ctx.Response.ContentType = "application/json";
                await ctx.Response.OutputStream.WriteAsync(bytes);
                ctx.Response.Close();
            }
        }

        (int, JsonNode) Answer(HttpListenerRequest request)
        {
            var path = request.Url!.AbsolutePath;
            lock (Queries) Queries.Add(request.Url.PathAndQuery);
            if (path == "/apis/controlplane.io/v1alpha1/workspaces")
            {
                return (200, new JsonObject { ["items"] = new JsonArray(Workspace("acme-dev"), Workspace("acme-prod")), ["metadata"] = new JsonObject() });
            }

            if (path.StartsWith("/apis/controlplane.io/v1alpha1/workspaces/", StringComparison.Ordinal)) return (200, Workspace(path.Split('/')[^1]));
            var prefix = "/apis/audit.controlplane.io/v1alpha1/";
            if (!path.StartsWith(prefix, StringComparison.Ordinal) || !path.EndsWith("/auditevents", StringComparison.Ordinal))
            {
                return (404, new JsonObject { ["kind"] = "Status", ["reason"] = "NotFound", ["message"] = "not here", ["code"] = 404 });
            }

            var parts = path[prefix.Length..].Split('/');
            var ns = parts[0] == "namespaces" ? parts[1] : null;
            var query = System.Web.HttpUtility.ParseQueryString(request.Url.Query);
            IEnumerable<JsonObject> matching = rows.Where(r => ns is null || r["metadata"]!["namespace"]!.GetValue<string>() == ns);
            if (query["labelSelector"] is { } label && label.StartsWith("audit.controlplane.io/tenant=", StringComparison.Ordinal))
            {
                matching = matching.Where(r => r["metadata"]!["labels"]!["audit.controlplane.io/tenant"]!.GetValue<string>() == label.Split('=')[1]);
            }

            if (query["fieldSelector"] is { } field && field.StartsWith("actor=", StringComparison.Ordinal))
            {
                matching = matching.Where(r => r["event"]!["actor"]!.GetValue<string>() == field["actor=".Length..]);
            }

            // Two rows a page: the plugin must follow continue.
            var after = long.TryParse(query["continue"], out var c) ? c : 0;
            var page = matching.Where(r => r["chain"]!["sequence"]!.GetValue<int>() > after).Take(2).ToList();
            var more = matching.Any(r => r["chain"]!["sequence"]!.GetValue<int>() > (page.Count == 0 ? after : page[^1]["chain"]!["sequence"]!.GetValue<int>()));
            var meta = new JsonObject { ["resourceVersion"] = "8" };
            if (more) meta["continue"] = page[^1]["chain"]!["sequence"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture);
            return (200, new JsonObject { ["apiVersion"] = "audit.controlplane.io/v1alpha1", ["kind"] = "AuditEventList", ["metadata"] = meta, ["items"] = new JsonArray(page.Select(r => (JsonNode)r.DeepClone()).ToArray()) });
        }

        static JsonObject Workspace(string name) => new()
        {
            ["apiVersion"] = "controlplane.io/v1alpha1", ["kind"] = "Workspace",
            ["metadata"] = new JsonObject { ["name"] = name }, ["spec"] = new JsonObject { ["tenant"] = name.StartsWith("acme", StringComparison.Ordinal) ? "acme" : "globex" },
        };

        public async ValueTask DisposeAsync()
        {
            listener.Stop();
            listener.Close();
            await loop;
            File.Delete(Kubeconfig);
        }
    }

    [Fact]
    public async Task Audit_ListsWithFilters_AndVerify_FindsTheTenantChainIntact_OrItsFirstBreak()
    {
        await using (var api = new FakeApi(Rows()))
        {
            var list = (await PluginRunner.RunAsync(api.Kubeconfig, "audit", "--actor", "bob@acme.io")).Succeeds();
            Assert.Contains("bob@acme.io", list.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("alice@acme.io", list.Stdout, StringComparison.Ordinal);
            Assert.Contains(api.Queries, q => q.Contains("/namespaces/acme-dev/auditevents", StringComparison.Ordinal) && q.Contains("fieldSelector=actor%3Dbob%40acme.io", StringComparison.Ordinal));

            var json = JsonNode.Parse((await PluginRunner.RunAsync(api.Kubeconfig, "audit", "-w", "acme-dev", "acme-prod", "--tenant", "acme", "-o", "json")).Succeeds().Stdout)!.AsArray();
            Assert.Equal([1, 3, 4, 6, 7], json.Select(r => r!["chain"]!["sequence"]!.GetValue<int>()));

            // A tenant auditor: every row of acme's workspaces (paged), none of globex's, the tenant chain intact.
            var intact = (await PluginRunner.RunAsync(api.Kubeconfig, "audit", "verify")).Succeeds();
            Assert.Contains("auditevents chain of tenant acme: intact (5 row(s) read, 5 on the tenant chain)", intact.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(api.Queries, q => q.Contains("globex-dev", StringComparison.Ordinal));
            Assert.Contains(api.Queries, q => q.Contains("continue=", StringComparison.Ordinal));

            // A platform auditor: the global chain.
            (await PluginRunner.RunAsync(api.Kubeconfig, "audit", "verify", "-A")).Succeeds();
        }

        // A row changed in place (as the Postgres superuser with triggers off would): its sequence is reported, exit 4.
        await using (var api = new FakeApi(Rows(rows => rows[3]["event"]!["actor"] = "mallory@acme.io")))
        {
            var broken = await PluginRunner.RunAsync(api.Kubeconfig, "audit", "verify");
            Assert.True(broken.ExitCode == 4, broken.ToString());
            Assert.Contains("BROKEN at sequence 3 (row 4)", broken.Stdout, StringComparison.Ordinal);
            var global = await PluginRunner.RunAsync(api.Kubeconfig, "audit", "verify", "-A", "-o", "json");
            Assert.Equal(4, global.ExitCode);
            Assert.Equal(4, JsonNode.Parse(global.Stdout)!["firstBreak"]!["sequence"]!.GetValue<int>());
        }

        // A row deleted: a gap in the tenant's sequence.
        await using (var api = new FakeApi(Rows(rows => rows.RemoveAt(5))))
        {
            var gap = await PluginRunner.RunAsync(api.Kubeconfig, "audit", "verify");
            Assert.Equal(4, gap.ExitCode);
            Assert.Contains("BROKEN at sequence 4 (row 7): tenant sequences 4..4 are missing", gap.Stdout, StringComparison.Ordinal);
        }
    }
}
