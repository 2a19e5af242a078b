using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// The `kubernetes` plane: each ring of an intent is a Rollout the intent owns (`&lt;intent&gt;-&lt;ring&gt;`,
/// one ring: the intent sequences the rings, holds CAB and the schedule windows between them), patching
/// the application's Deployment in the ring's workspaces to the artifact, pinned by its digest. The
/// Rollout watches the gates and rolls its ring back on a breach; a finished ring is rolled back or
/// redeployed by a new Rollout. The correlation id is on every Rollout: a replayed publish finds its
/// Rollout and creates nothing.
/// </summary>
public sealed class KubernetesExecutionPlane(KubeApi api, ChildApplier applier, Informer<Rollout> rollouts, DeploymentIntent intent) : IExecutionPlane
{

    public static string RolloutName(string intent, string ring, string? purpose = null) => purpose is null ? $"{intent}-{ring}" : $"{intent}-{ring}-{purpose}";

    /// <summary>The artifact as deployed: its image pinned by the digest that was scored and approved.</summary>
    public static string PinnedImage(string image, string sha256) =>
        string.IsNullOrEmpty(sha256) || image.Contains("@sha256:", StringComparison.Ordinal) ? image : $"{image}@sha256:{sha256}";

    string Container => intent.Spec.Artifact.Container ?? intent.Spec.Application;

    /// <summary>The Rollout of one ring (pure): owned by the intent, labelled with it, carrying the correlation id.</summary>
    public static Rollout Desired(DeploymentIntent intent, PlaneDeployment d, string name, IReadOnlyList<ContainerImage> containers) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = d.Namespace,
            Labels = new Dictionary<string, string>
            {
                [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue,
                [ApiGroup.IntentLabel] = d.Intent,
                [ApiGroup.IntentRingLabel] = d.Ring,
            },
            // The Rollout acts with the intent's authors' rights (checked before its ring starts), never the operator's own.
            Annotations = new Dictionary<string, string>
            {
                [ApiGroup.CorrelationAnnotation] = d.CorrelationId,
                [ApiGroup.OnBehalfOfAnnotation] = Requesters.FormatOnBehalfOf(Requesters.AuthorsOf(intent)),
            },
            OwnerReferences = [ChildApplier.OwnerReference(intent)],
        },
        Spec = new RolloutSpec
        {
            Target = new RolloutTarget { Deployment = d.Application, DeploymentIntent = d.Intent, Containers = [.. containers] },
            Rings = [new Ring { Name = d.Ring, Workspaces = [.. d.Workspaces], Soak = "0s" }],
            Gates = new RolloutGates
            {
                MaxIncidents = intent.Spec.PromotionGates?.MaxIncidents ?? 0,
                ProgressDeadline = intent.Spec.PromotionGates?.TimeToComplianceHours is { } h and > 0 ? $"{h}h" : "30m",
            },
            AutoRollback = true,
        },
    };

    async Task<Rollout?> GetAsync(string ns, string name, CancellationToken ct) =>
        rollouts.Get($"{ns}/{name}") ?? await api.TryGetAsync<Rollout>(RolloutReconciler.Type, ns, name, ct).ConfigureAwait(false);

    /// <summary>
    /// The Rollout of that name only when this intent controls it (by UID). Two intents can build one name
    /// ("a-b" with ring "c", "a" with ring "b-c"): another's Rollout is never read as ours, nor aborted.
    /// </summary>
    async Task<Rollout?> OwnedAsync(string ns, string name, CancellationToken ct)
    {
        var rollout = await GetAsync(ns, name, ct).ConfigureAwait(false);
        if (rollout is null || rollout.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == intent.Metadata.Uid) == true) return rollout;
        throw new PlaneError(PlaneErrorClass.PolicyViolation, "unauthorized", $"Rollout {ns}/{name} is not controlled by DeploymentIntent {intent.Metadata.Name}: it is neither read nor changed");
    }

    public async Task<PlaneStatus> PublishAsync(PlaneDeployment d, CancellationToken ct)
    {
        var name = RolloutName(d.Intent, d.Ring);
        var desired = Desired(intent, d, name, [new ContainerImage { Name = Container, Image = PinnedImage(d.Image, d.Sha256) }]);
        await ApplyAsync(desired, ct).ConfigureAwait(false);
        return await QueryStatusAsync(d, ct).ConfigureAwait(false);
    }

    async Task ApplyAsync(Rollout desired, CancellationToken ct)
    {
        try
        {
            await applier.ApplyAsync(RolloutReconciler.Type, desired, await GetAsync(desired.Metadata.NamespaceProperty, desired.Metadata.Name, ct).ConfigureAwait(false),
                ["spec"], ct).ConfigureAwait(false);
        }
        catch (ForeignObjectException e)
        {
            throw new PlaneError(PlaneErrorClass.PolicyViolation, "unauthorized", e.Message);
        }
    }

    public async Task<PlaneStatus> QueryStatusAsync(PlaneDeployment d, CancellationToken ct)
    {
        var rollout = await OwnedAsync(d.Namespace, RolloutName(d.Intent, d.Ring), ct).ConfigureAwait(false);
        if (rollout is null) return new PlaneStatus("failed", null, false, [], null, 0, $"Rollout {d.Namespace}/{RolloutName(d.Intent, d.Ring)} is gone");
        // Members may write Rollouts in this namespace: ours (OwnedAsync) edited by anyone but the operator reports
        // on a change nobody reviewed for this intent (another image, other workspaces). Its status is not trusted.
        if (!RolloutResources.GatedByIntent(rollout))
        {
            return new PlaneStatus("failed", null, false, [], null, 0,
                $"Rollout {d.Namespace}/{rollout.Metadata.Name} is not as the operator made it for this intent (written by {string.Join(", ", ApprovalPolicy.WritersOf(rollout).DefaultIfEmpty("nobody on record"))}): its status is not trusted");
        }

        var ring = rollout.Status?.Rings?.FirstOrDefault(r => r.Name == d.Ring);
        var state = rollout.Status?.Phase switch
        {
            RolloutPhase.Succeeded => "succeeded",
            RolloutPhase.RolledBack => "rolled_back",
            RolloutPhase.Failed => "failed",
            null or RolloutPhase.Pending => "pending",
            _ => "in_progress",
        };
        var message = rollout.Status?.Conditions?.FirstOrDefault(c => c.Type == RolloutConditions.Ready)?.Message;
        if (state != "succeeded") return new PlaneStatus(state, null, true, d.Workspaces, ring?.SuccessRate, ring?.Incidents ?? 0, message);
        var (version, assigned, where) = await ActualAsync(d, ct).ConfigureAwait(false);
        return new PlaneStatus(state, version, assigned, where, ring?.SuccessRate, ring?.Incidents ?? 0, message);
    }

    /// <summary>What the ring's Deployments run now: the intent's version when every one runs the pinned artifact, else the image found.</summary>
    async Task<(string? Version, bool Assigned, IReadOnlyList<string> Workspaces)> ActualAsync(PlaneDeployment d, CancellationToken ct)
    {
        var want = PinnedImage(d.Image, d.Sha256);
        string? other = null;
        var found = new List<string>();
        foreach (var ns in d.Workspaces)
        {
            var deployment = await api.TryGetAsync<V1Deployment>(RolloutReconciler.Deployments, ns, d.Application, ct).ConfigureAwait(false);
            if (deployment is null) continue;
            found.Add(ns);
            var image = deployment.Spec.Template.Spec.Containers.FirstOrDefault(c => c.Name == Container)?.Image;
            if (image != want) other ??= image ?? "(no container " + Container + ")";
        }

        return (other ?? d.Version, found.Count == d.Workspaces.Count, found);
    }

    /// <summary>The kubernetes plane advertises the built-in strategies: it is this operator's own, no call is made.</summary>
    public Task<PlaneCapabilities> CapabilitiesAsync(CancellationToken ct) => Task.FromResult(new PlaneCapabilities(PlaneCapabilities.BuiltInStrategies));

    public Task<PlaneStatus> RemediateAsync(PlaneDeployment d, string action, string? version, string? strategy, CancellationToken ct) =>
        strategy is null || PlaneCapabilities.BuiltInStrategies.Contains(strategy)
            ? RemediateAsync(d, action, version, ct)
            : throw new PlaneError(PlaneErrorClass.Permanent, "invalid_request", $"the kubernetes plane has no rollback strategy {strategy} (it advertises {string.Join(", ", PlaneCapabilities.BuiltInStrategies)})");

    public async Task<PlaneStatus> RemediateAsync(PlaneDeployment d, string action, string? version, CancellationToken ct)
    {
        var rollout = await OwnedAsync(d.Namespace, RolloutName(d.Intent, d.Ring), ct).ConfigureAwait(false);
        switch (action)
        {
            case PlaneRemediation.Rollback when rollout is not null && rollout.Status?.Phase is not (RolloutPhase.Succeeded or RolloutPhase.RolledBack or RolloutPhase.Failed):
                // Still running: the Rollout itself restores what it recorded.
                await api.PatchAsync<Rollout>(RolloutReconciler.Type, d.Namespace, rollout.Metadata.Name, """{"spec":{"abort":true}}""", PatchTypes.Merge, ct).ConfigureAwait(false);
                break;
            case PlaneRemediation.Rollback:
            {
                var previous = version is not null
                    ? [new ContainerImage { Name = Container, Image = WithTag(d.Image, version) }]
                    : rollout?.Status?.Previous?.FirstOrDefault()?.Containers ?? [];
                if (rollout?.Status?.Phase == RolloutPhase.RolledBack) break; // it already restored its ring
                if (previous.Count == 0) throw new PlaneError(PlaneErrorClass.Permanent, "resource_not_found", $"ring {d.Ring}: no previous images are recorded to roll back to");
                await ReplaceAsync(Desired(intent, d, RolloutName(d.Intent, d.Ring, "rollback"), previous), ct).ConfigureAwait(false);
                break;
            }

            case PlaneRemediation.Redeploy:
                await ReplaceAsync(Desired(intent, d, RolloutName(d.Intent, d.Ring, "redeploy"),
                    [new ContainerImage { Name = Container, Image = PinnedImage(d.Image, d.Sha256) }]), ct).ConfigureAwait(false);
                break;
            default:
                throw new PlaneError(PlaneErrorClass.Permanent, "invalid_request", $"the kubernetes plane does not {action}; it rolls back and redeploys");
        }

        return await QueryStatusAsync(d, ct).ConfigureAwait(false);
    }

    /// <summary>A remediation Rollout runs once: a finished earlier one (ours, by UID) is replaced by a new one.</summary>
    async Task ReplaceAsync(Rollout desired, CancellationToken ct)
    {
        var existing = await GetAsync(desired.Metadata.NamespaceProperty, desired.Metadata.Name, ct).ConfigureAwait(false);
        if (existing is not null && ChildApplier.SameController(desired, existing) && existing.Status?.Phase is RolloutPhase.Succeeded or RolloutPhase.RolledBack or RolloutPhase.Failed)
        {
            await api.DeleteAsync(RolloutReconciler.Type, existing.Metadata.NamespaceProperty, existing.Metadata.Name, ct, preconditionUid: existing.Metadata.Uid).ConfigureAwait(false);
            existing = null;
        }

        if (existing is null) await ApplyAsync(desired, ct).ConfigureAwait(false);
    }

    static string WithTag(string image, string tag)
    {
        var at = image.IndexOf('@', StringComparison.Ordinal);
        var bare = at < 0 ? image : image[..at];
        var colon = bare.LastIndexOf(':');
        var slash = bare.LastIndexOf('/');
        return (colon > slash ? bare[..colon] : bare) + ":" + tag;
    }

    public async Task<bool> VerifyIdempotencyAsync(PlaneDeployment d, CancellationToken ct) =>
        (await GetAsync(d.Namespace, RolloutName(d.Intent, d.Ring), ct).ConfigureAwait(false))?.Metadata.Annotations?.TryGetValue(ApiGroup.CorrelationAnnotation, out var id) == true
        && id == d.CorrelationId;
}
