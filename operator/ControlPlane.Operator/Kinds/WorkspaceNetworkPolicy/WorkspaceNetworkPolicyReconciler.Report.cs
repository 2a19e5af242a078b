using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;

namespace ControlPlane.Operator.Kinds;

/// <summary>Conditions (set here only), Events, and the security audit event for rules left out.</summary>
public sealed partial class WorkspaceNetworkPolicyReconciler
{
    public const string RulesDroppedAction = "networkPolicy.rulesDropped";

    static string? DroppedMessage(IReadOnlyList<string> dropped) =>
        dropped.Count == 0 ? null : $"{dropped.Count} peer(s) or rule(s) not rendered: {string.Join("; ", dropped)}";

    /// <summary>What the last pass left out, as its Degraded condition says (null when nothing was).</summary>
    static string? PreviousDropped(WorkspaceNetworkPolicy policy) =>
        Conditions.Find(policy.Status?.Conditions, NetworkPolicyConditions.Degraded) is { Status: ConditionStatus.True } c ? c.Message : null;

    async Task<ReconcileResult> ReportAsync(WorkspaceNetworkPolicy policy, Tenant? tenant, WorkspaceNetworkPolicyStatus status, ConditionSet conditions,
        IReadOnlyList<string> dropped, IReadOnlyList<string> conflicts, (string Reason, string Message)? gate, Changes log, CancellationToken ct)
    {
        var previousReady = Conditions.Find(policy.Status?.Conditions, NetworkPolicyConditions.Ready);
        var droppedMessage = DroppedMessage(dropped);
        var previousDropped = PreviousDropped(policy);
        var newlyDropped = gate is null && droppedMessage is not null && droppedMessage != previousDropped;

        // The rules are already gone from the cluster; the record of it comes before Degraded says so,
        // so a failed append is retried (Degraded still shows the previous state) and never lost.
        if (newlyDropped)
        {
            try
            {
                await AuditDroppedAsync(policy, tenant!, dropped, status.RenderedPolicies ?? [], droppedMessage!, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                var failure = PostgresFailure.Of(e, "The system of record");
                status.Conditions = conditions.Set(NetworkPolicyConditions.Ready, false, failure.Reason,
                    $"Rules outside the tenant's bounds were removed, but recording it failed: {failure.Message}").ToList();
                var updated = await writer.UpdateStatusAsync(Type, policy, status, ct).ConfigureAwait(false);
                if (!ReferenceEquals(updated, policy)) await events.WarningAsync(policy, failure.Reason, failure.Message, ct).ConfigureAwait(false);
                return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
            }
        }

        if (gate is null)
        {
            if (droppedMessage is null) conditions.Set(NetworkPolicyConditions.Degraded, false, NetworkPolicyReasons.AllRulesRendered, "Every peer and rule of the spec is rendered.");
            else conditions.Set(NetworkPolicyConditions.Degraded, true, NetworkPolicyReasons.RulesDropped, droppedMessage);
        }

        var renderedText = status.RenderedPolicies is { Count: > 0 } names ? "Rendered " + string.Join(", ", names) : "Nothing to render";
        var (ready, reason, message) = gate is { } g ? (false, g.Reason, g.Message)
            : conflicts.Count > 0 ? (false, NetworkPolicyReasons.PolicyConflict, string.Join("; ", conflicts))
            : droppedMessage is not null ? (false, NetworkPolicyReasons.RulesDropped, $"{renderedText}; {dropped.Count} peer(s) or rule(s) outside tenant {tenant!.Metadata.Name}'s bounds are not rendered (see Degraded).")
            : (true, NetworkPolicyReasons.Rendered, renderedText + ".");
        conditions.Set(NetworkPolicyConditions.Ready, ready, reason, message);
        status.Conditions = conditions.ToList();
        await writer.UpdateStatusAsync(Type, policy, status, ct).ConfigureAwait(false);

        if (log.Created.Count > 0) await events.NormalAsync(policy, NetworkPolicyReasons.Rendered, "Created " + string.Join(", ", log.Created), ct).ConfigureAwait(false);
        if (log.Updated.Count > 0) await events.NormalAsync(policy, NetworkPolicyReasons.Updated, "Updated " + string.Join(", ", log.Updated), ct).ConfigureAwait(false);
        if (log.Repaired.Count > 0) await events.NormalAsync(policy, NetworkPolicyReasons.DriftRepaired, "Restored " + string.Join(", ", log.Repaired), ct).ConfigureAwait(false);
        if (log.Removed.Count > 0) await events.NormalAsync(policy, NetworkPolicyReasons.PolicyRemoved, "Removed " + string.Join(", ", log.Removed), ct).ConfigureAwait(false);
        if (newlyDropped) await events.WarningAsync(policy, NetworkPolicyReasons.RulesDropped, droppedMessage!, ct).ConfigureAwait(false);
        else if (gate is null && droppedMessage is null && previousDropped is not null)
        {
            await events.NormalAsync(policy, NetworkPolicyReasons.RulesRestored, "Every peer and rule of the spec is rendered again.", ct).ConfigureAwait(false);
        }

        var readyIsNew = previousReady?.Reason != reason || previousReady.Message != message;
        if (!ready && reason != NetworkPolicyReasons.RulesDropped && readyIsNew) await events.WarningAsync(policy, reason, message, ct).ConfigureAwait(false);
        if (gate is not null) return ReconcileResult.Terminal(gate.Value.Message);
        // A foreign object is not ours to watch: the periodic resync sees it go.
        return conflicts.Count > 0 ? ReconcileResult.Terminal(message) : ReconcileResult.Done;
    }

    /// <summary>
    /// One security audit event per distinct set of dropped rules (for this generation of the policy
    /// and of its tenant): Postgres says whether it is already on record, as the cache may lag our status.
    /// </summary>
    async Task AuditDroppedAsync(WorkspaceNetworkPolicy policy, Tenant tenant, IReadOnlyList<string> dropped, IReadOnlyList<string> rendered, string droppedMessage,
        CancellationToken ct)
    {
        var objectName = $"{policy.Metadata.NamespaceProperty}/{policy.Metadata.Name}";
        var key = "RulesDropped:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{tenant.Metadata.Generation}\n{droppedMessage}")))[..16];
        if (await database.AuditExistsAsync("WorkspaceNetworkPolicy", objectName, RulesDroppedAction, key, policy.Metadata.Generation, ct).ConfigureAwait(false)) return;
        await database.AppendAuditAsync(new AuditEntry(Actor, RulesDroppedAction, "WorkspaceNetworkPolicy", objectName, tenant.Metadata.Name, new JsonObject
        {
            ["reason"] = key,
            ["generation"] = policy.Metadata.Generation,
            ["tenantGeneration"] = tenant.Metadata.Generation,
            ["workspace"] = policy.Metadata.NamespaceProperty,
            ["dropped"] = new JsonArray([.. dropped.Select(d => (JsonNode?)JsonValue.Create(d))]),
            ["rendered"] = new JsonArray([.. rendered.Select(r => (JsonNode?)JsonValue.Create(r))]),
        }, Severity: "security"), ct).ConfigureAwait(false);
    }
}
