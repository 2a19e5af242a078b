using System.Net;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// NotificationChannels as token users through the webhook. bob may write every ControlPlane object anywhere (the fixture),
/// so what refuses him is the webhook: a tenant channel at loopback (even though the platform allows loopback for its own
/// channels), at the metadata address, outside the platform's prefixes (where another tenant's receiver would be), with a
/// Secret of another namespace, of type siem, tenant-wide without owning the tenant, or subscribed to a platform-only event.
/// wade (no cluster rights) cannot make a platform channel. And the events: another tenant's never reach a tenant's channel,
/// a tenant-wide channel hears its tenant's selected workspaces only.
/// </summary>
[Collection(WebhookCollection.Name)]
public sealed class NotificationChannelAttackTests(WebhookFixture fixture)
{
    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";
    static readonly ResourceType Channels = ResourceType.For<NotificationChannel>(true);
    const string Prefix = "https://hooks.example.invalid/";

    ClusterFixture Cluster => fixture.Cluster;
    KubeApi As(string user) => new(Cluster.Plane.ClientConfigFor(Cluster.Plane.Users[user]));
    string Email(string user) => Cluster.Plane.Users[user].Name;

    static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    async Task<(string Tenant, string Workspace)> WorkspaceAsync(string? owner = null, string? tenant = null, Dictionary<string, string>? labels = null)
    {
        if (tenant is null)
        {
            tenant = Unique("nca");
            await Cluster.CreateTenantAsync(tenant, edit: t => t.Owners = owner is null ? null : [new Subject { Kind = "User", Name = owner }]);
        }

        var name = Unique(tenant);
        await Cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = name, Labels = labels },
            Spec = new WorkspaceSpec { Tenant = tenant, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false } },
        }, CancellationToken.None);
        await Cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        return (tenant, name);
    }

    static NotificationChannel Channel(string url, string type = "webhook", string? scope = null, string signing = "signing", string[]? events = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = Unique("nc") },
        Spec = new NotificationChannelSpec
        {
            Type = type, Scope = scope, Url = url, SigningSecretRef = new SigningSecretReference { Name = signing }, Events = events?.ToList(), MaxConsecutiveFailures = 1000,
        },
    };

    [Fact]
    public async Task ATenantsChannel_CannotPointInside_OrOutsideThePrefixes_NorUseAnotherNamespacesSecret_NorBeSiemOrPlatform()
    {
        var (_, ns) = await WorkspaceAsync();
        using var bob = As("bob");
        async Task<string> RefusedFor(NotificationChannel c) => (await Refused(() => bob.CreateAsync(Channels, ns, c, CancellationToken.None))).StatusMessage ?? "";

        Assert.Contains("spec.url", await RefusedFor(Channel("https://127.0.0.1/hook")));
        Assert.Contains("spec.url", await RefusedFor(Channel("http://127.0.0.1:8080/hook")));
        Assert.Contains("spec.url", await RefusedFor(Channel("https://localhost/hook")));
        Assert.Contains("169.254.169.254", await RefusedFor(Channel("https://169.254.169.254/latest/meta-data")));
        Assert.Contains("spec.url", await RefusedFor(Channel("https://[::ffff:169.254.169.254]/latest/meta-data")));
        // Another tenant's receiver, or anywhere else the platform did not allow.
        Assert.Contains("NotificationUrlPrefixes", await RefusedFor(Channel("https://receiver.globex.example.com/hooks")));
        Assert.Contains("spec.signingSecretRef.name", await RefusedFor(Channel(Prefix + "acme", signing: "other-namespace/signing")));
        Assert.Contains("spec.type: siem", await RefusedFor(Channel(Prefix + "acme", type: "siem")));
        Assert.Contains("spec.scope: only an owner of tenant", await RefusedFor(Channel(Prefix + "acme", scope: "Tenant")));
        Assert.Contains("spec.events[0]: channel.auto_disabled", await RefusedFor(Channel(Prefix + "acme", events: ["channel.auto_disabled"])));

        // Under the prefix, a public name: admitted; then an update pointing it inside is refused too.
        var ok = await bob.CreateAsync(Channels, ns, Channel(Prefix + "acme"), CancellationToken.None);
        var e = await Refused(() => bob.PatchAsync<NotificationChannel>(Channels, ns, ok.Metadata.Name, """{"spec":{"url":"https://169.254.169.254/x"}}""",
            "application/merge-patch+json", CancellationToken.None));
        Assert.Contains("spec.url", e.StatusMessage);

        // A platform channel hears every tenant: wade has no right there at all.
        using var wade = As("wade");
        await Refused(() => wade.CreateAsync(Channels, "controlplane-system", Channel(Prefix + "x"), CancellationToken.None), HttpStatusCode.Forbidden);
        // Nor anywhere outside a workspace.
        Assert.Contains("metadata.namespace", (await Refused(() => bob.CreateAsync(Channels, "default", Channel(Prefix + "x"), CancellationToken.None))).StatusMessage);
    }

    async Task<List<string>> QueuedTenantsAsync(string channelUid)
    {
        await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT COALESCE(payload->>'tenant', '') || '/' || COALESCE(payload->>'workspace', '') FROM controlplane.notification_deliveries WHERE channel_uid = $1 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(channelUid);
        var all = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) all.Add(r.GetString(0));
        return all;
    }

    [Fact]
    public async Task AnotherTenantsEvents_NeverReachATenantsChannel_ATenantWideChannelHearsItsSelectedWorkspaces()
    {
        var owner = Email("carol");
        var (a, a1) = await WorkspaceAsync(owner, labels: new() { ["team"] = "payments" });
        var (_, a2) = await WorkspaceAsync(tenant: a, labels: new() { ["team"] = "web" });
        var (b, b1) = await WorkspaceAsync();
        using var bob = As("bob");
        using var carol = As("carol");
        var channelA = await bob.CreateAsync(Channels, a1, Channel(Prefix + "a", events: ["backup.failed"]), CancellationToken.None);
        var channelB = await bob.CreateAsync(Channels, b1, Channel(Prefix + "b", events: ["backup.failed"]), CancellationToken.None);
        var tenantWide = Channel(Prefix + "a-all", scope: "Tenant", events: ["backup.failed"]);
        tenantWide.Spec.WorkspaceSelector = new LabelSelector { MatchLabels = new() { ["team"] = "payments" } };
        // Only an owner makes a tenant-wide channel (carol owns tenant a).
        var wide = await carol.CreateAsync(Channels, a2, tenantWide, CancellationToken.None);
        foreach (var (ns, name) in new[] { (a1, channelA.Metadata.Name), (b1, channelB.Metadata.Name), (a2, wide.Metadata.Name) })
        {
            await Net.WaitUntilAsync(async () => (await Cluster.Api.GetAsync<NotificationChannel>(Channels, ns, name, CancellationToken.None)).Status?.Phase is
                NotificationChannelPhase.Active or NotificationChannelPhase.Pending, TimeSpan.FromSeconds(90), $"{name} registered");
        }

        // Registered (cursor at the head) before the events are written.
        await Net.WaitUntilAsync(async () =>
        {
            await using var conn = new NpgsqlConnection(Cluster.Postgres.ConnectionString());
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM controlplane.notification_channels WHERE channel_uid = ANY($1)", conn);
            cmd.Parameters.AddWithValue(new[] { channelA.Metadata.Uid, channelB.Metadata.Uid, wide.Metadata.Uid });
            return (long)(await cmd.ExecuteScalarAsync())! == 3;
        }, TimeSpan.FromSeconds(90), "channels registered");

        var db = fixture.Runtime.Database;
        foreach (var (tenant, ws) in new[] { (a, a1), (a, a2), (b, b1) })
        {
            await db.AppendAuditAsync(new AuditEntry("op", "backup.failed", "Backup", $"{ws}/nightly", tenant, new JsonObject { ["message"] = "failed" }), CancellationToken.None);
        }

        await Net.WaitUntilAsync(async () => (await QueuedTenantsAsync(channelA.Metadata.Uid!)).Count >= 1 && (await QueuedTenantsAsync(channelB.Metadata.Uid!)).Count >= 1
                                             && (await QueuedTenantsAsync(wide.Metadata.Uid!)).Count >= 1, TimeSpan.FromSeconds(90), "events queued for the channels");
        Assert.Equal([$"{a}/{a1}"], await QueuedTenantsAsync(channelA.Metadata.Uid!));
        Assert.Equal([$"{b}/{b1}"], await QueuedTenantsAsync(channelB.Metadata.Uid!));
        // Tenant-wide: the payments workspace of its tenant only (not web, not tenant b's).
        Assert.Equal([$"{a}/{a1}"], await QueuedTenantsAsync(wide.Metadata.Uid!));
    }

    [Fact]
    public async Task AUrlInATenantsSecret_ThatTheEgressRulesRefuse_IsNotActive_TheStatusNamesTheFieldAndWhy_NeverTheUrl()
    {
        var (_, ns) = await WorkspaceAsync();
        using var bob = As("bob");
        // Admission cannot see a Secret's value: the metadata address, with a token in its query, only the reconciler reads.
        // (Written as a member with Secret rights in the workspace would; bob's rights here are the ControlPlane objects.)
        await Cluster.Api.CreateAsync(ResourceType.Secrets, ns, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "hook-url" },
            StringData = new Dictionary<string, string> { ["url"] = "https://169.254.169.254/latest/meta-data?token=s3cr3t-t0ken" },
        }, CancellationToken.None);
        await Cluster.Api.CreateAsync(ResourceType.Secrets, ns, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "signing" }, StringData = new Dictionary<string, string> { ["current"] = "k1" },
        }, CancellationToken.None);
        var channel = Channel(Prefix + "unused");
        channel.Spec.Url = null;
        channel.Spec.UrlSecretRef = new SecretKeyReference { Name = "hook-url", Key = "url" };
        var created = await bob.CreateAsync(Channels, ns, channel, CancellationToken.None);

        NotificationChannel? seen = null;
        await Net.WaitUntilAsync(async () => (seen = await Cluster.Api.GetAsync<NotificationChannel>(Channels, ns, created.Metadata.Name, CancellationToken.None))
            .Status?.Conditions?.Any(c => c is { Type: "Ready", Status: "False", Reason: NotificationChannelReasons.SecretMissing }) == true,
            TimeSpan.FromSeconds(90), "Ready=False naming the Secret's URL");
        var ready = seen!.Status!.Conditions!.Single(c => c.Type == "Ready");
        Assert.NotEqual(NotificationChannelPhase.Active, seen.Status.Phase);
        Assert.Contains("spec.urlSecretRef (key url of Secret hook-url)", ready.Message, StringComparison.Ordinal);
        Assert.Contains("169.254.169.254", ready.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", ready.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("meta-data", ready.Message, StringComparison.Ordinal);

        // Fixed in the Secret (under the platform's prefixes): the channel delivers.
        await Cluster.Api.PatchAsync<V1Secret>(ResourceType.Secrets, ns, "hook-url", $$$"""{"stringData":{"url":"{{{Prefix}}}acme"}}""", PatchTypes.Merge, CancellationToken.None);
        await Net.WaitUntilAsync(async () => (await Cluster.Api.GetAsync<NotificationChannel>(Channels, ns, created.Metadata.Name, CancellationToken.None)).Status?.Phase
            == NotificationChannelPhase.Active, TimeSpan.FromSeconds(90), "Active once the Secret holds an allowed URL");
    }
}
