using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;

namespace ControlPlane.Operator.Kinds;

/// <summary>Applying a decision: patches, audit events, status (conditions set here, in one place) and Events.</summary>
public sealed partial class RolloutReconciler
{
    const string Actor = "controlplane-operator";

    /// <summary>
    /// A rollback's patches go first (speed is the point; the previous images are already in status);
    /// forward patches go after the status that records the previous images, so a crash in between
    /// never loses what a rollback must restore. Audit events precede the status that reports them.
    /// Returns a result to end the pass with, or null when it went through.
    /// </summary>
    async Task<ReconcileResult?> ApplyAsync(Rollout rollout, RolloutFacts facts, RolloutDecision d, CancellationToken ct)
    {
        var status = d.Status;
        var failures = new List<string>();
        if (d.Rollback)
        {
            failures.AddRange(await PatchAllAsync(rollout, d.Patches, ct).ConfigureAwait(false));
            var issued = time.GetUtcNow().UtcDateTime;
            // Issued means every namespace's patch was accepted; until then the pass is retried (see RolloutPlan's Finished).
            var complete = failures.Count == 0;
            status.RolledBackAt = complete ? issued : null;
            if (status.Rollback is { } record)
            {
                record.IssuedAt = complete ? issued : null;
                record.SecondsToIssue = complete ? Math.Max(0, Math.Round((issued - (record.BreachObservableAt ?? issued)).TotalSeconds, 3)) : null;
            }
        }

        var now = time.GetUtcNow().UtcDateTime;
        var conditions = new ConditionSet(rollout.Status?.Conditions, rollout.Metadata.Generation, now);
        try
        {
            await AuditAsync(rollout, facts, d.Notices, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Nothing is reported as done before it is on record: the transition is taken again on the retry.
            var failure = PostgresFailure.Of(e, "The system of record");
            conditions.Set(RolloutConditions.Ready, false, failure.Reason, failure.Message);
            var updated = await writer.UpdateStatusAsync(Type, rollout, WithConditions(rollout.Status, rollout.Metadata.Generation, conditions.ToList()), ct).ConfigureAwait(false);
            if (!ReferenceEquals(updated, rollout)) await events.WarningAsync(rollout, failure.Reason, failure.Message, ct).ConfigureAwait(false);
            return failure.Transient ? ReconcileResult.Retry(failure.Message) : ReconcileResult.Terminal(failure.Message);
        }

        conditions.Set(RolloutConditions.Progressing, d.Progressing.Status, d.Progressing.Reason, d.Progressing.Message)
            .Set(RolloutConditions.Paused, d.Paused.Status, d.Paused.Reason, d.Paused.Message)
            .Set(RolloutConditions.Ready, d.Ready.Status, d.Ready.Reason, d.Ready.Message);
        if (d.Rollback && failures.Count > 0) conditions.Set(RolloutConditions.Ready, false, RolloutReasons.RollbackIncomplete, "rollback not fully issued, retrying: " + string.Join("; ", failures));
        status.Conditions = conditions.ToList();
        await writer.UpdateStatusAsync(Type, rollout, status, ct).ConfigureAwait(false);
        if (!d.Rollback) failures.AddRange(await PatchAllAsync(rollout, d.Patches, ct).ConfigureAwait(false));

        foreach (var n in d.Notices)
        {
            if (n.Warning) await events.WarningAsync(rollout, n.Reason, n.Message, ct).ConfigureAwait(false);
            else await events.NormalAsync(rollout, n.Reason, n.Message, ct).ConfigureAwait(false);
        }

        if (failures.Count == 0) return null;
        var message = string.Join("; ", failures);
        await events.WarningAsync(rollout, RolloutReasons.PatchFailed, message, ct).ConfigureAwait(false);
        return ReconcileResult.Retry(message);
    }

    /// <summary>Each patch on its own: one namespace failing never stops the others (a rollback above all).</summary>
    async Task<List<string>> PatchAllAsync(Rollout rollout, IReadOnlyList<ImagePatch> patches, CancellationToken ct)
    {
        var failures = new List<string>();
        var name = rollout.Spec.Target.Deployment!;
        foreach (var p in patches)
        {
            // The UID we read: a Deployment deleted and recreated meanwhile is not the one we were told about.
            var uid = caches.Deployments.Get($"{p.Namespace}/{name}")?.Metadata.Uid;
            try
            {
                await api.PatchAsync<k8s.Models.V1Deployment>(Deployments, p.Namespace, name, RolloutResources.ImagePatch(p.Containers, uid), PatchTypes.StrategicMerge, ct)
                    .ConfigureAwait(false);
            }
            catch (KubeApiException e)
            {
                failures.Add($"Deployment {p.Namespace}/{name}: {(int)e.StatusCode} {e.Reason}: {e.StatusMessage}");
            }
        }

        return failures;
    }

    /// <summary>Appends each audited notice once (the cache may lag our own status write: Postgres says whether it is on record).</summary>
    async Task AuditAsync(Rollout rollout, RolloutFacts facts, IReadOnlyList<RolloutNotice> notices, CancellationToken ct)
    {
        var name = $"{rollout.Metadata.NamespaceProperty}/{rollout.Metadata.Name}";
        foreach (var n in notices.Where(n => n.AuditAction is not null))
        {
            var reason = n.AuditReason ?? n.Reason;
            if (await database.AuditExistsAsync("Rollout", name, n.AuditAction!, reason, rollout.Metadata.Generation, ct).ConfigureAwait(false)) continue;
            var actor = rollout.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var who) == true ? who : Actor;
            var details = new JsonObject
            {
                ["reason"] = reason,
                ["generation"] = rollout.Metadata.Generation,
                ["message"] = n.Message,
                ["deployment"] = rollout.Spec.Target.Deployment,
            };
            foreach (var (k, v) in n.AuditDetails ?? []) details[k] ??= v?.DeepClone();
            await database.AppendAuditAsync(new AuditEntry(actor, n.AuditAction!, "Rollout", name, facts.Tenant, details, Severity: n.Warning ? "warning" : "info"), ct)
                .ConfigureAwait(false);
        }
    }
}
