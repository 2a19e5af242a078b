using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl controlplane channel test|list|history` as token users against the running operator and its webhook: olga
/// (IntegrationAdmin of the workspace) sends a test and the command returns once the channel's status records its nonce;
/// the list shows the channel with its type, phase and counts (text and JSON); its history (through the audit API) the two
/// test events, newest first; mona, no member, is refused by RBAC.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class PluginChannelTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    ClusterFixture Cluster => fixture.Cluster;
    static readonly ResourceType Channels = ResourceType.For<NotificationChannel>(true);
    static readonly ResourceType Reviews = new("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    string Kubeconfig(string user) => Path.Combine(Path.GetDirectoryName(Cluster.Plane.KubeconfigPath)!, "kubeconfig-" + user);

    Task<PluginRun> Run(string user, params string[] args) => PluginRunner.RunAsync(Kubeconfig(user), args);

    async Task<bool> AllowedAsync(string user, string verb, string resource, string ns)
    {
        var u = Cluster.Plane.Users[user];
        return (await Cluster.Api.CreateAsync(Reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = u.Name, Groups = [.. u.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Group = ApiGroup.Group, Resource = resource, NamespaceProperty = ns },
            },
        }, CancellationToken.None)).Status.Allowed;
    }

    [Fact]
    public async Task ChannelTest_WaitsForTheNonceInStatus_ChannelList_ShowsCounts_ANonMemberIsRefused()
    {
        var tenant = Unique("plc");
        await Cluster.CreateTenantAsync(tenant);
        var ns = Unique(tenant);
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = ns },
            Spec = new WorkspaceSpec
            {
                Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members = [new WorkspaceMember { Kind = "User", Name = Cluster.Plane.Users["olga"].Name, Role = "IntegrationAdmin" }],
            },
        }, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(ns, ClusterFixture.IsReady, "Ready");
        await Net.WaitUntilAsync(async () => await AllowedAsync("olga", "patch", "notificationchannels", ns), Deadline, "olga's RoleBinding in effect");

        await Cluster.Api.CreateAsync(ResourceType.Secrets, ns, new V1Secret { Metadata = new V1ObjectMeta { Name = "signing" }, StringData = new Dictionary<string, string> { ["current"] = "s3cret" } },
            CancellationToken.None);
        var name = Unique("oncall");
        await Cluster.Api.CreateAsync(Channels, ns, new NotificationChannel
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new NotificationChannelSpec
            {
                Type = "webhook", Url = "https://hooks.example.invalid/" + name, SigningSecretRef = new SigningSecretReference { Name = "signing" }, MaxConsecutiveFailures = 1000,
            },
        }, CancellationToken.None);

        var test = (await Run("olga", "channel", "test", name, "-n", ns, "--timeout", "00:02:00")).Succeeds();
        Assert.Contains($"notificationchannel.controlplane.io/{name} in {ns}: test delivery ", test.Stdout);
        Assert.Contains("recorded in status.testNonces", test.Stdout);
        var nonce = test.Stdout.Split("test delivery ")[1].Split(' ')[0];
        var channel = await Cluster.Api.GetAsync<NotificationChannel>(Channels, ns, name, CancellationToken.None);
        Assert.Contains(nonce, channel.Status!.TestNonces!);
        Assert.Equal(nonce, channel.Metadata.Annotations![ApiGroup.TestDeliveryAnnotation]);

        // A second test is a new nonce: both recorded.
        var again = (await Run("olga", "channel", "test", name, "-n", ns)).Succeeds();
        var second = again.Stdout.Split("test delivery ")[1].Split(' ')[0];
        Assert.NotEqual(nonce, second);
        Assert.Contains(second, (await Cluster.Api.GetAsync<NotificationChannel>(Channels, ns, name, CancellationToken.None)).Status!.TestNonces!);

        var list = (await Run("olga", "channel", "list", "-n", ns)).Succeeds();
        Assert.StartsWith("NAMESPACE", list.Stdout, StringComparison.Ordinal);
        var row = list.Stdout.Split('\n').Single(l => l.Contains(name, StringComparison.Ordinal));
        Assert.Contains("webhook", row, StringComparison.Ordinal);
        var json = JsonNode.Parse((await Run("olga", "channel", "list", "-n", ns, "-o", "json")).Succeeds().Stdout)!.AsArray().Single(n => (string?)n!["name"] == name)!;
        Assert.Equal("webhook", (string?)json["type"]);
        Assert.NotNull(json["phase"]);

        // The delivery history through the audit API: the two test events (the URL does not resolve: failed or still pending).
        var history = (await Run("olga", "channel", "history", name, "-n", ns)).Succeeds();
        Assert.StartsWith("EVENT", history.Stdout, StringComparison.Ordinal);
        var rows = JsonNode.Parse((await Run("olga", "channel", "history", name, "-n", ns, "-o", "json")).Succeeds().Stdout)!.AsArray();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal("channel.test", (string?)r!["eventType"]));
        Assert.Contains(rows, r => ((string?)r!["eventId"])!.EndsWith(second, StringComparison.Ordinal));
        Assert.Equal($"test/{channel.Metadata.Uid}/{second}", (string?)rows[0]!["eventId"]); // newest first
        Assert.All(rows, r => Assert.Contains((string?)r!["state"], new[] { "pending", "failed" }));
        (await Run("mona", "channel", "history", name, "-n", ns)).FailsWithOneLine("Forbidden");
        // Through the API directly: mona is refused, and the history needs the channel named.
        using (var mona = new KubeApi(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users["mona"])))
        {
            var refused = await Assert.ThrowsAsync<KubeApiException>(() => mona.SendAsync(HttpMethod.Get,
                $"/apis/audit.controlplane.io/v1alpha1/namespaces/{ns}/notificationdeliveries?fieldSelector=channel%3D{name}", null, "application/json", CancellationToken.None));
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        }

        using (var olga = new KubeApi(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users["olga"])))
        {
            var unnamed = await Assert.ThrowsAsync<KubeApiException>(() => olga.SendAsync(HttpMethod.Get,
                $"/apis/audit.controlplane.io/v1alpha1/namespaces/{ns}/notificationdeliveries", null, "application/json", CancellationToken.None));
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, unnamed.StatusCode);
            Assert.Contains("channel=<name>", unnamed.StatusMessage, StringComparison.Ordinal);
        }

        (await Run("mona", "channel", "test", name, "-n", ns)).FailsWithOneLine("Forbidden");
        (await Run("mona", "channel", "list", "-n", ns)).FailsWithOneLine("Forbidden");
        (await Run("olga", "channel", "test", "nope", "-n", ns)).FailsWithOneLine("nope");
    }
}
