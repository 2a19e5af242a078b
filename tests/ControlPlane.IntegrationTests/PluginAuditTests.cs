using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl controlplane audit` on a cluster where the audit API is not there: what the Webhook
/// collection's control plane (which serves it) cannot show. A stand-in API server on loopback answers
/// discovery without the group (not installed) or with it but the API unavailable (503, as the
/// aggregator answers while no replica serves the APIService). The real API: AuditApiTests.ThePlugin_*.
/// </summary>
public sealed class PluginAuditTests
{
    /// <summary>A stand-in API server: discovery (with or without audit.controlplane.io) and one answer for every audit path.</summary>
    sealed class StandInApi : IAsyncDisposable
    {
        readonly HttpListener listener = new();
        readonly bool registered;
        readonly Task loop;
        public string Kubeconfig { get; }

        public StandInApi(bool registered)
        {
            this.registered = registered;
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

        static JsonObject Group(string name) => new()
        {
            ["name"] = name,
            ["versions"] = new JsonArray(new JsonObject { ["groupVersion"] = name + "/v1alpha1", ["version"] = "v1alpha1" }),
            ["preferredVersion"] = new JsonObject { ["groupVersion"] = name + "/v1alpha1", ["version"] = "v1alpha1" },
        };

        static JsonObject Status(int code, string reason, string message) => new() { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["reason"] = reason, ["message"] = message, ["code"] = code };

        (int, JsonNode) Answer(string path)
        {
            if (path.TrimEnd('/') == "/apis")
            {
                var groups = new JsonArray(Group("controlplane.io"));
                if (registered) groups.Add(Group("audit.controlplane.io"));
                return (200, new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = groups });
            }

            if (path.StartsWith("/apis/audit.controlplane.io/", StringComparison.Ordinal) && registered)
            {
                return (503, Status(503, "ServiceUnavailable", "the server is currently unable to handle the request"));
            }

            return (404, Status(404, "NotFound", "the server could not find the requested resource"));
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

                var (status, body) = Answer(ctx.Request.Url!.AbsolutePath);
                var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
                ctx.Response.StatusCode = status;
                ctx.Response.ContentType = "application/json";
                await ctx.Response.OutputStream.WriteAsync(bytes);
                ctx.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            listener.Stop();
            listener.Close();
            await loop;
            File.Delete(Kubeconfig);
        }
    }

    [Fact]
    public async Task Audit_WithoutTheAuditApi_SaysSoInOneLine_AndExitsNonZero()
    {
        await using (var api = new StandInApi(registered: false))
        {
            (await PluginRunner.RunAsync(api.Kubeconfig, "audit")).FailsWithOneLine("the audit API is not installed on this cluster");
            (await PluginRunner.RunAsync(api.Kubeconfig, "audit", "verify", "-A")).FailsWithOneLine("the audit API is not installed on this cluster");
        }

        await using (var api = new StandInApi(registered: true))
        {
            (await PluginRunner.RunAsync(api.Kubeconfig, "audit", "--deployments")).FailsWithOneLine("is registered but not available (503)");
        }
    }
}
