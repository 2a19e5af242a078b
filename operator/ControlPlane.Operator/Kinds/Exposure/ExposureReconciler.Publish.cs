using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>Going live, staying live as approved, and coming down: each recorded before the Ingress changes.</summary>
public sealed partial class ExposureReconciler
{
    sealed record PublishResult(Exposure Exposure, Blocker? Refusal);

    sealed record KeptLive(Live? Live, Blocker? Problem);

    static string KeyOf(Exposure e) => $"{e.Metadata.NamespaceProperty}/{e.Metadata.Name}";

    /// <summary>
    /// The current generation is approved: record it (row + audit, once), then serve it. Recorded first,
    /// so nothing is ever live that the system of record does not show.
    /// </summary>
    async Task<PublishResult> PublishAsync(Exposure e, Workspace ws, Tenant tenant, Live? live, ApprovalState state, CancellationToken ct)
    {
        var generation = e.Metadata.Generation ?? 0;
        var desired = ExposureResources.Ingress(e, e.Spec, generation, options);
        var cached = caches.Ingresses.Get(KeyOf(e));
        if (cached is null && await ForeignIngressAsync(e, desired, ct).ConfigureAwait(false) is { } foreign) return new(e, foreign);

        e = await writer.AddFinalizerAsync(Type, e, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        var metadataOnly = WorkspaceResources.EffectiveDataMode(ws, tenant) == "metadataOnly";
        var change = ExposureResources.Change(live?.Spec, e.Spec, metadataOnly);
        var endpoint = ExposureResources.Endpoint(e.Metadata.Name, e.Metadata.NamespaceProperty, e.Spec, options);
        var specHash = ExposureResources.SpecHash(e.Spec);
        var author = AuthorOf(e);
        await database.RecordPublicationAsync(
            new ExposurePublication(e.Metadata.Uid ?? "", e.Metadata.NamespaceProperty, e.Metadata.Name, tenant.Metadata.Name, generation, "published", author,
                state.Approvers, time.GetUtcNow().UtcDateTime, specHash, change, metadataOnly, "approved"),
            new AuditEntry(author, "exposure.published", "Exposure", KeyOf(e), tenant.Metadata.Name, new JsonObject
            {
                ["generation"] = generation,
                ["previousGeneration"] = live?.Generation,
                ["approvers"] = new JsonArray(state.Approvers.Select(a => (JsonNode)JsonValue.Create(a)).ToArray()),
                ["specHash"] = specHash,
                ["endpoint"] = metadataOnly ? null : endpoint,
                ["changes"] = change.Count,
            }), ct).ConfigureAwait(false);

        try
        {
            await applier.ApplyAsync(ExposureResources.Ingresses, desired, cached, ["spec"], ct).ConfigureAwait(false);
        }
        catch (ForeignObjectException f)
        {
            return new(e, new Blocker(ExposureReasons.IngressConflict, f.Message, Security: true));
        }

        await events.NormalAsync(e, ExposureReasons.Published, $"generation {generation} published at {endpoint}, approved by {string.Join(", ", state.Approvers)}", ct).ConfigureAwait(false);
        return new(e, null);
    }

    /// <summary>An Ingress with our name that is not ours (found by a GET: the cache holds only what we labelled) is never adopted.</summary>
    async Task<Blocker?> ForeignIngressAsync(Exposure e, V1Ingress desired, CancellationToken ct)
    {
        var existing = await api.TryGetAsync<V1Ingress>(ExposureResources.Ingresses, e.Metadata.NamespaceProperty, e.Metadata.Name, ct).ConfigureAwait(false);
        if (existing is null || ChildApplier.SameController(desired, existing)) return null;
        return new(ExposureReasons.IngressConflict, $"Ingress {KeyOf(e)} already exists and was not created for Exposure {e.Metadata.Name}: it is not adopted, and nothing is published", Security: true);
    }

    /// <summary>
    /// Keeps the approved generation served as approved: drift of the Ingress is repaired, but only from
    /// a published spec the system of record vouches for (status is the operator's, yet a copy that
    /// differs from what was recorded is never served). A live route another Exposure holds comes down.
    /// </summary>
    async Task<KeptLive> KeepLiveAsync(Exposure e, Tenant tenant, Live live, CancellationToken ct)
    {
        var route = ExposureResources.KeyOf(e, live.Spec, options);
        var holder = ExposureResources.RouteHolder(OnHost(route.Host), route, options);
        if (holder is not null && holder.Metadata.Uid != e.Metadata.Uid)
        {
            var message = $"spec.host/spec.path: {route} is served by Exposure {holder.Metadata.NamespaceProperty}/{holder.Metadata.Name}; generation {live.Generation} was taken down";
            await UnpublishAsync(e, tenant.Metadata.Name, live, ExposureReasons.Conflict, ct).ConfigureAwait(false);
            return new(null, new Blocker(ExposureReasons.Conflict, message, Security: true));
        }

        var desired = ExposureResources.Ingress(e, live.Spec, live.Generation, options);
        var cached = caches.Ingresses.Get(KeyOf(e));
        if (cached is not null && ChildApplier.SameController(desired, cached)
            && ChildApplier.Matches(Json(desired), Json(cached), ["spec"]))
        {
            return Refusal(e, live.Spec, tenant) is { } refused ? await TakeDownAsync(e, tenant, live, refused, ct).ConfigureAwait(false) : new(live, null);
        }

        var recorded = await database.PublishedSpecHashAsync(e.Metadata.Uid ?? "", live.Generation, ct).ConfigureAwait(false);
        if (recorded != ExposureResources.SpecHash(live.Spec))
        {
            return new(live, new Blocker(ExposureReasons.PublishedSpecMismatch,
                $"status.publishedSpec of generation {live.Generation} is not the spec recorded when it was approved: it is not served", Security: true));
        }

        if (Refusal(e, live.Spec, tenant) is { } refusal) return await TakeDownAsync(e, tenant, live, refusal, ct).ConfigureAwait(false);

        try
        {
            var outcome = await applier.ApplyAsync(ExposureResources.Ingresses, desired, cached, ["spec"], ct).ConfigureAwait(false);
            if (outcome != ApplyOutcome.Unchanged) await events.NormalAsync(e, ExposureReasons.IngressRepaired, $"Ingress {KeyOf(e)} restored to approved generation {live.Generation}", ct).ConfigureAwait(false);
            return new(live, null);
        }
        catch (ForeignObjectException f)
        {
            return new(live, new Blocker(ExposureReasons.IngressConflict, f.Message, Security: true));
        }
    }

    /// <summary>An approved generation that may no longer be served (host no longer delegated, backend turned ExternalName, ...) comes down, recorded.</summary>
    async Task<KeptLive> TakeDownAsync(Exposure e, Tenant tenant, Live live, Blocker refusal, CancellationToken ct)
    {
        await UnpublishAsync(e, tenant.Metadata.Name, live, refusal.Reason, ct).ConfigureAwait(false);
        return new(null, refusal with { Message = $"{refusal.Message}; generation {live.Generation} was taken down" });
    }

    static JsonObject Json(object o) => JsonNode.Parse(k8s.KubernetesJson.Serialize(o))!.AsObject();

    /// <summary>spec.publish is false: a draft. Whatever was live comes down, recorded.</summary>
    async Task<ReconcileResult> DraftAsync(Exposure e, Workspace ws, Tenant tenant, Live? live, ConditionSet conditions, CancellationToken ct)
    {
        if (live is not null || caches.Ingresses.Get(KeyOf(e)) is not null)
        {
            await UnpublishAsync(e, tenant.Metadata.Name, live, ExposureReasons.Unpublished, ct).ConfigureAwait(false);
        }

        const string message = "a draft (spec.publish: false): nothing is published";
        conditions.Set(ExposureConditions.Approved, false, ExposureReasons.Draft, "a draft is not up for approval; set spec.publish: true")
            .Set(ExposureConditions.Published, false, ExposureReasons.Draft, message)
            .Set(ExposureConditions.Ready, true, ExposureReasons.Draft, message);
        return await WriteStatusAsync(e, StatusOf(e, null, ExposurePhase.Draft, null, conditions.ToList()), ExposureReasons.Draft, message, warning: false, ct).ConfigureAwait(false);
    }

    /// <summary>Takes the exposure down: the record first, then the Ingress (only ours, by UID).</summary>
    async Task UnpublishAsync(Exposure e, string tenant, Live? live, string reason, CancellationToken ct)
    {
        if (live is not null)
        {
            var specHash = ExposureResources.SpecHash(live.Spec);
            await database.RecordPublicationAsync(
                new ExposurePublication(e.Metadata.Uid ?? "", e.Metadata.NamespaceProperty, e.Metadata.Name, tenant, live.Generation, "unpublished", AuthorOf(e),
                    [], null, specHash, new JsonArray(), true, reason),
                new AuditEntry(AuthorOf(e), "exposure.unpublished", "Exposure", KeyOf(e), tenant, new JsonObject
                {
                    ["reason"] = reason,
                    ["generation"] = e.Metadata.Generation,
                    ["liveGeneration"] = live.Generation,
                    ["specHash"] = specHash,
                }, Severity: reason is ExposureReasons.Unpublished or ExposureReasons.Deleted ? "info" : "security"), ct).ConfigureAwait(false);
        }

        var ingress = caches.Ingresses.Get(KeyOf(e))
                      ?? await api.TryGetAsync<V1Ingress>(ExposureResources.Ingresses, e.Metadata.NamespaceProperty, e.Metadata.Name, ct).ConfigureAwait(false);
        if (ingress is not null && ChildApplier.SameController(ExposureResources.Ingress(e, e.Spec, 0, options), ingress) && ingress.Metadata.DeletionTimestamp is null)
        {
            await api.DeleteAsync(ExposureResources.Ingresses, e.Metadata.NamespaceProperty, e.Metadata.Name, ct, preconditionUid: ingress.Metadata.Uid).ConfigureAwait(false);
        }

        if (live is not null) await events.NormalAsync(e, ExposureReasons.Unpublished, $"generation {live.Generation} taken down ({reason}); Ingress {KeyOf(e)} deleted", ct).ConfigureAwait(false);
    }

    async Task<ReconcileResult> FinalizeAsync(Exposure e, CancellationToken ct)
    {
        if (!ObjectWriter.HasFinalizer(e, ApiGroup.Finalizer)) return ReconcileResult.Done;
        var tenant = caches.Workspaces.Get(e.Metadata.NamespaceProperty)?.Spec.Tenant ?? "";
        await UnpublishAsync(e, tenant, LiveOf(e), ExposureReasons.Deleted, ct).ConfigureAwait(false);
        try
        {
            await writer.RemoveFinalizerAsync(Type, e, ApiGroup.Finalizer, ct).ConfigureAwait(false);
        }
        catch (KubeApiException x) when (x.IsNotFound)
        {
            // A stale copy from the cache: an earlier pass already finished, and the object is gone.
        }

        return ReconcileResult.Done;
    }
}
