using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Governs a NotificationChannel's record and status; the leader's <see cref="NotificationDispatcher"/> does the
/// delivering. Facts: the spec's problems (rules, egress, who may own a tenant-wide channel, re-checked here for
/// what admission may have missed), which named Secrets are missing, and the channel's delivery state in Postgres.
/// The decision is <see cref="NotificationChannelPlan.Decide"/>; the apply registers the channel once (its cursors
/// at the current heads), re-enables it when its spec changed after an auto-disable (audited), queues a test
/// delivery per new nonce, and writes the status only when it changed. The dispatcher asks for a pass (at most
/// every StatusInterval) when counts move, so status follows deliveries without a write per event.
/// </summary>
public sealed class NotificationChannelReconciler(
    Informer<Workspace> workspaces,
    Informer<Tenant> tenants,
    KubeApi api,
    SystemDatabase database,
    ControlPlaneOptions options,
    ObjectWriter writer,
    EventRecorder events,
    TimeProvider time,
    ILogger<NotificationChannelReconciler> logger) : IReconciler<NotificationChannel>
{
    public static readonly ResourceType Type = ResourceType.For<NotificationChannel>(namespaced: true);
    const string Actor = "controlplane-operator";
    readonly NotificationEgress egress = new(options);

    public static void Setup(TermBuilder b, SystemDatabase database, ControlPlaneOptions options, NotificationMetrics metrics)
    {
        var channels = b.Informer<NotificationChannel>(Type);
        var ws = WorkspaceReconciler.WorkspacesOf(b);
        var tenants = b.Informer<Tenant>(TenantReconciler.Type);
        var writes = new OwnWrites();
        var reconciler = new NotificationChannelReconciler(ws, tenants, b.Api, database, options, StalledStatus.Writer(b, writes), b.Events, b.Time,
            b.Loggers.CreateLogger<NotificationChannelReconciler>());
        var controller = b.Controller("notificationchannel", channels, reconciler)
            .SkipsEchoesOf(writes)
            // A channel's tenant and reach follow its workspace; a tenant's owners decide its tenant-wide channels.
            .Watches(ws, w => channels.InNamespace(w.Metadata.Name).Select(c => $"{w.Metadata.Name}/{c.Metadata.Name}"))
            .WatchesEvents(tenants, e => e.Type == InformerEventType.Modified && e.Old?.Metadata.Generation == e.Object.Metadata.Generation
                ? []
                : ws.ByIndex(WorkspaceResources.TenantIndex, e.Object.Metadata.Name)
                    .SelectMany(w => channels.InNamespace(w.Metadata.Name).Select(c => $"{w.Metadata.Name}/{c.Metadata.Name}")));
        var dispatcher = new NotificationDispatcher(channels, ws, b.Api, database, options, reconciler.egress, b.Events, b.Time,
            metrics, key => controller.Queue.AddAfter(key, options.NotificationDelivery.StatusInterval),
            b.Loggers.CreateLogger<NotificationDispatcher>());
        b.Loop("notifications", dispatcher.RunAsync);
    }

    public Task<ReconcileResult> ReconcileAsync(NotificationChannel channel, CancellationToken ct) => ReconcileErrors.RunAsync(channel, PassAsync, ErrorReport, ct);

    // Postgres failures are the pass's own condition (DatabaseUnavailable), not a ReconcileError.
    ErrorReport<NotificationChannel> ErrorReport => new(writer, Type, NotificationChannelConditions.Ready, c => c.Status?.Conditions, CopyStatus, events, time, logger)
    {
        Reports = e => e is not (NpgsqlException or TimeoutException),
    };

    static NotificationChannelStatus CopyStatus(NotificationChannel c, List<V1Condition> conditions) => new()
    {
        Phase = c.Status?.Phase ?? NotificationChannelPhase.Pending,
        Pending = c.Status?.Pending,
        Delivered = c.Status?.Delivered,
        Failed = c.Status?.Failed,
        ConsecutiveFailures = c.Status?.ConsecutiveFailures,
        LastDeliveredAt = c.Status?.LastDeliveredAt,
        LastError = c.Status?.LastError,
        TestNonces = c.Status?.TestNonces,
        ObservedGeneration = c.Metadata.Generation,
        Conditions = conditions,
    };

    /// <summary>The channel's reach, tenant and workspace from the operator's own records (the namespace's Workspace), with what is wrong with it.</summary>
    internal (ChannelScope? Scope, List<string> Problems) Resolve(NotificationChannel c)
    {
        var ns = c.Metadata.NamespaceProperty;
        var reach = NotificationRouting.ReachOf(c, options.OperatorNamespace);
        var problems = new List<string>();
        string? tenantName = null;
        string? workspace = null;
        if (reach != ChannelReach.Platform)
        {
            var ws = workspaces.Get(ns);
            var tenant = ws is null ? null : tenants.Get(ws.Spec.Tenant);
            if (ws is null || tenant is null) return (null, [$"metadata.namespace: \"{ns}\" is neither a workspace nor the operator's namespace"]);
            tenantName = tenant.Metadata.Name;
            workspace = ns;
            // Admission let only an owner make it; an owner removed since, or a webhook bypassed, is caught here.
            var creator = c.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var who) == true ? who : null;
            if (reach == ChannelReach.Tenant && (creator is null || !SelfService.IsOwner(tenant, creator, [])))
            {
                problems.Add($"spec.scope: a tenant-wide channel must be created by an owner of tenant {tenantName}; {creator ?? "its creator"} is not one");
            }
        }

        problems.AddRange(NotificationChannelRules.Problems(c.Spec, reach, url => egress.UrlProblem("spec.url", url, reach)));
        return (new ChannelScope(reach, tenantName, workspace, c.Spec.Type, c.Spec.Events ?? [], c.Spec.WorkspaceSelector), problems);
    }

    /// <summary>
    /// Which named Secrets (or keys) are missing, and which hold nothing the dispatcher could send with: an empty value,
    /// or, for a URL held in a Secret, one the channel's egress rules refuse (the dispatcher checks the same before
    /// every run). Named by field and reason; of a URL only its origin (scheme, host, port) may appear, never its path,
    /// query or user info (where webhook tokens live).
    /// </summary>
    async Task<(List<string> Missing, List<string> Unusable)> CheckSecretsAsync(NotificationChannel c, ChannelReach reach, CancellationToken ct)
    {
        var ns = c.Metadata.NamespaceProperty;
        var missing = new List<string>();
        var unusable = new List<string>();
        async Task<string?> Read(string field, string name, string key)
        {
            var secret = await api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, name, ct).ConfigureAwait(false);
            if (secret is null) missing.Add($"{field}: Secret {name}");
            else if (secret.Data?.TryGetValue(key, out var bytes) == true) return System.Text.Encoding.UTF8.GetString(bytes).Trim();
            else if (secret.StringData?.TryGetValue(key, out var text) == true) return text.Trim();
            else missing.Add($"{field}: key {key} of Secret {name}");
            return null;
        }

        if (c.Spec.UrlSecretRef is { } u && await Read("spec.urlSecretRef", u.Name, u.Key).ConfigureAwait(false) is { } value)
        {
            var field = $"spec.urlSecretRef (key {u.Key} of Secret {u.Name})";
            if (value.Length == 0) unusable.Add($"{field}: the value is empty");
            // A PagerDuty routing key is not a URL; any other type's value is where deliveries go.
            else if (c.Spec.Type != "pagerduty" && egress.UrlProblem(field, value, reach) is { } refusal) unusable.Add(refusal);
        }

        if (c.Spec.SigningSecretRef is { } s && await Read("spec.signingSecretRef", s.Name, s.CurrentKey ?? "current").ConfigureAwait(false) is { Length: 0 })
        {
            unusable.Add($"spec.signingSecretRef (key {s.CurrentKey ?? "current"} of Secret {s.Name}): the value is empty");
        }

        return (missing, unusable);
    }

    async Task<ReconcileResult> PassAsync(NotificationChannel channel, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var uid = channel.Metadata.Uid ?? "";
        var key = $"{channel.Metadata.NamespaceProperty}/{channel.Metadata.Name}";
        var (scope, problems) = Resolve(channel);
        var (missing, unusable) = problems.Count == 0 && scope is not null ? await CheckSecretsAsync(channel, scope.Reach, ct).ConfigureAwait(false) : ([], []);
        var conditions = new ConditionSet(channel.Status?.Conditions, channel.Metadata.Generation, now);
        ChannelState? state;
        try
        {
            state = await database.GetChannelStateAsync(uid, ct).ConfigureAwait(false);
            if (state is null && problems.Count == 0)
            {
                await database.EnsureChannelAsync(uid, key, ct).ConfigureAwait(false);
                state = await database.GetChannelStateAsync(uid, ct).ConfigureAwait(false);
            }

            var facts = new ChannelFacts(channel, problems, missing, state is null ? null : Counts(state), unusable);
            var decision = NotificationChannelPlan.Decide(facts);
            if (decision.ReEnable)
            {
                await database.ReEnableChannelAsync(uid, new AuditEntry(Actor, "channel.reenabled", NotificationChannel.KubeKind, key, scope?.Tenant,
                    new System.Text.Json.Nodes.JsonObject { ["generation"] = channel.Metadata.Generation, ["reason"] = "spec changed" }), ct).ConfigureAwait(false);
            }

            var queued = false;
            if (decision.TestNonce is { } nonce && state is not null)
            {
                var test = new NotificationEvent($"test/{uid}/{nonce}", NotificationEvents.ChannelTest, now, scope?.Tenant, scope?.Workspace,
                    $"{NotificationChannel.KubeKind}/{key}", new System.Text.Json.Nodes.JsonObject { ["nonce"] = nonce, ["message"] = "test delivery" });
                var payload = channel.Spec.Type == "siem" ? new System.Text.Json.Nodes.JsonObject { ["id"] = test.Id, ["type"] = test.Type, ["test"] = true, ["nonce"] = nonce } : test.ToJson();
                await database.QueueDeliveryAsync(uid, new NewDelivery(test.Id, test.Type, payload, now), ct).ConfigureAwait(false);
                queued = true;
            }

            if (decision.ReEnable || queued) state = await database.GetChannelStateAsync(uid, ct).ConfigureAwait(false);
            facts = facts with { Counts = state is null ? null : Counts(state) };
            var status = NotificationChannelPlan.Status(facts, decision, queued);
            status.Conditions = conditions.Apply(decision.Conditions).ToList();
            await writer.UpdateStatusAsync(Type, channel, status, ct).ConfigureAwait(false);
            await events.SendAsync(channel, decision.Notices, ct).ConfigureAwait(false);
            return decision.Result.ToResult();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            var failure = PostgresFailure.Of(e, "The system of record");
            conditions.Set(NotificationChannelConditions.Ready, false, failure.Reason, $"{failure.Message}; events wait in the audit trail and are delivered once it is reachable");
            await writer.UpdateStatusAsync(Type, channel, CopyStatus(channel, conditions.ToList()), ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }
    }

    internal static ChannelCounts Counts(ChannelState s) =>
        new(s.Pending, s.Delivered, s.FailedAttempts, s.ConsecutiveFailures, s.LastDeliveredAt, s.LastError, s.DisabledGeneration);
}
