using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// What a Tenant's pass decides on, read by the reconciler: the tenant's workspaces (cache), the
/// configured regions, and, only when the cache has none of its workspaces and the tenant is being
/// deleted, the names of its workspaces as the API server has them now (<see cref="Live"/>).
/// </summary>
public sealed record TenantFacts(IReadOnlyList<Workspace> Workspaces, IReadOnlyCollection<string> Regions, IReadOnlyList<string>? Live = null);

/// <summary>What the system of record said when the tenant's row was synced.</summary>
public abstract record RecordOutcome
{
    /// <summary>The row matches the spec; <see cref="Change"/> is RecordCreated or RecordUpdated when this pass wrote it.</summary>
    public sealed record Synced(Guid Id, string? Change) : RecordOutcome;

    /// <summary>Postgres could not be reached (transient) or refused the write.</summary>
    public sealed record Failed(string Reason, string Message, bool Transient) : RecordOutcome;
}

/// <summary>
/// One write of a Tenant's status: the status and its conditions, the Events sent first whatever the
/// write changes (<see cref="Before"/>), the Warning sent only when the write changed something
/// (<see cref="IfWritten"/>, so a resync repeats nothing), whether the self-service bindings are applied
/// before it, and how the pass ends.
/// </summary>
public sealed record TenantStep(
    TenantStatus Status,
    IReadOnlyList<ConditionVerdict> Verdicts,
    PassResult Result,
    IReadOnlyList<Notice> Before,
    Notice? IfWritten,
    bool ApplyBindings = false);

/// <summary>What a deleted Tenant's finalizer does.</summary>
public abstract record TenantDeletion
{
    /// <summary>Not ours to hold (no finalizer): nothing.</summary>
    public sealed record Release : TenantDeletion;

    /// <summary>Workspaces remain: the deletion is held, and the status says which.</summary>
    public sealed record Hold(TenantStep Step) : TenantDeletion;

    /// <summary>No workspace left: mark the row deleted (audited), tell it, then remove the finalizer.</summary>
    public sealed record MarkDeleted(Notice Done) : TenantDeletion;
}

/// <summary>
/// The Tenant's decisions as pure functions, in the order the reconciler asks them (each between two
/// of its I/O steps): <see cref="Refusal"/> before the finalizer is added, <see cref="RegionRefusal"/>
/// before the system of record is touched, <see cref="Converge"/> with the record's outcome, and on
/// deletion <see cref="Finalize"/> (then <see cref="DeletionWaits"/> when Postgres refuses).
/// </summary>
public static class TenantPlan
{
    /// <summary>A name that is not a DNS label cannot label namespaces: refused before anything is written (no finalizer).</summary>
    public static TenantStep? Refusal(Tenant tenant, TenantFacts facts)
    {
        if (SpecRules.ObjectName(tenant.Metadata.Name) is not { } badName) return null;
        var status = new TenantStatus { ObservedGeneration = tenant.Metadata.Generation, Phase = TenantPhase.Failed };
        return new(status, [new(TenantConditions.Ready, false, TenantReasons.InvalidName, badName)], PassResult.Terminal(badName), [], new(TenantReasons.InvalidName, badName, Warning: true));
    }

    /// <summary>A region the operator is not configured for: Failed, and the row is never written.</summary>
    public static TenantStep? RegionRefusal(Tenant tenant, TenantFacts facts)
    {
        if (Placement.UndeclaredTenantRegion(facts.Regions, tenant.Spec.Region) is not { } message) return null;
        var status = NewStatus(tenant, facts);
        status.Phase = TenantPhase.Failed;
        return new(status, [new(TenantConditions.RecordSynced, false, TenantReasons.InvalidRegion, message), new(TenantConditions.Ready, false, TenantReasons.InvalidRegion, message)],
            PassResult.Terminal(message), [], new(TenantReasons.InvalidRegion, message, Warning: true));
    }

    /// <summary>After the row was synced (or not): the quota check, then Ready (or Suspended) with the self-service bindings applied.</summary>
    public static TenantStep Converge(Tenant tenant, TenantFacts facts, RecordOutcome record)
    {
        var status = NewStatus(tenant, facts);
        if (record is RecordOutcome.Failed failure)
        {
            // Unreachable is retried with backoff; a refusal (permission, constraint, ...) waits for a spec change.
            status.Phase = tenant.Status?.Phase ?? TenantPhase.Pending;
            return new(status, [new(TenantConditions.RecordSynced, false, failure.Reason, failure.Message), new(TenantConditions.Ready, false, failure.Reason, failure.Message)],
                failure.Transient ? PassResult.Retry(failure.Message) : PassResult.Terminal(failure.Message), [], new(TenantReasons.RecordSyncFailed, failure.Message, Warning: true));
        }

        var synced = (RecordOutcome.Synced)record;
        status.RecordId = synced.Id.ToString();
        var verdicts = new List<ConditionVerdict> { new(TenantConditions.RecordSynced, true, TenantReasons.Synced, "The tenant row in the system of record matches the spec.") };
        List<Notice> before = synced.Change is { } change ? [new(change, $"Tenant record {synced.Id} {(change == TenantReasons.RecordCreated ? "created" : "updated")}")] : [];

        // Quantities out of bounds (the tenant's own, or a workspace's stored while the webhook was
        // absent) are counted as zero by the ledger; the tenant says so instead of looking healthy.
        var invalid = InvalidQuantities(tenant, facts.Workspaces);
        if (invalid.Count > 0)
        {
            var message = string.Join("; ", invalid.Take(10)) + (invalid.Count > 10 ? $"; and {invalid.Count - 10} more" : "");
            verdicts.Add(new(TenantConditions.QuotaReady, false, TenantReasons.InvalidQuantity, message));
            verdicts.Add(new(TenantConditions.Ready, false, TenantReasons.InvalidQuantity, message));
            status.Phase = TenantPhase.Failed;
            var previous = tenant.Status?.Conditions?.FirstOrDefault(c => c.Type == TenantConditions.QuotaReady)?.Message;
            // Done: a change of the tenant or of a workspace re-triggers it.
            return new(status, verdicts, PassResult.Done, before, previous != message ? new(TenantReasons.InvalidQuantity, message, Warning: true) : null);
        }

        if (tenant.Status?.Conditions?.Any(c => c.Type == TenantConditions.QuotaReady) == true)
        {
            verdicts.Add(new(TenantConditions.QuotaReady, true, TenantReasons.Valid, "Every quantity of the tenant and its workspaces is within bounds."));
        }

        var suspended = tenant.Spec.Suspended;
        status.Phase = suspended ? TenantPhase.Suspended : TenantPhase.Ready;
        verdicts.Add(new(TenantConditions.Ready, true, suspended ? TenantReasons.Suspended : TenantReasons.Ready,
            suspended ? "Tenant is suspended: no new workspaces, rollouts or publications." : "Tenant is ready."));
        return new(status, verdicts, PassResult.Done, before, null, ApplyBindings: true);
    }

    /// <summary>
    /// Deletion is held while the tenant has workspaces: those in the cache, or, when it has none (letting
    /// go is irreversible, and a cache may not yet have seen a new one), those the API server lists now.
    /// </summary>
    public static TenantDeletion Finalize(Tenant tenant, TenantFacts facts)
    {
        if (tenant.Metadata.Finalizers?.Contains(ApiGroup.Finalizer) != true) return new TenantDeletion.Release();
        var owned = OwnedNames(facts);
        if (owned.Count == 0) owned = facts.Live ?? throw new ArgumentException("the live list of the tenant's workspaces is read when the cache has none", nameof(facts));
        if (owned.Count == 0) return new TenantDeletion.MarkDeleted(new(TenantReasons.RecordDeleted, "Tenant record marked deleted; finalizer removed"));

        var message = $"Deletion held: tenant still has {owned.Count} workspace(s): {string.Join(", ", owned.Take(10))}{(owned.Count > 10 ? ", ..." : "")}. Delete them first.";
        var status = Terminating(tenant, facts);
        // Done: a workspace event re-triggers it.
        return new TenantDeletion.Hold(new(status, [new(TenantConditions.Ready, false, TenantReasons.DeletionBlocked, message)], PassResult.Done, [], new(TenantReasons.DeletionBlocked, message, Warning: true)));
    }

    /// <summary>The row could not be marked deleted: the finalizer stays, and the pass is retried.</summary>
    public static TenantStep DeletionWaits(Tenant tenant, TenantFacts facts, string error)
    {
        var message = $"Deletion waits for the system of record: {error}";
        return new(Terminating(tenant, facts), [new(TenantConditions.RecordSynced, false, TenantReasons.DatabaseUnavailable, message)], PassResult.Retry(message), [], null);
    }

    static TenantStatus Terminating(Tenant tenant, TenantFacts facts)
    {
        var status = NewStatus(tenant, facts);
        status.Phase = TenantPhase.Terminating;
        return status;
    }

    /// <summary>The tenant's workspaces in the cache, by name.</summary>
    static IReadOnlyList<string> OwnedNames(TenantFacts facts) => facts.Workspaces.Select(w => w.Metadata.Name).OrderBy(n => n).ToList();

    static TenantStatus NewStatus(Tenant tenant, TenantFacts facts) => new()
    {
        ObservedGeneration = tenant.Metadata.Generation,
        Workspaces = facts.Workspaces.Count,
        Usage = Usage(tenant, facts.Workspaces),
        RecordId = tenant.Status?.RecordId,
    };

    /// <summary>Every quantity out of bounds, the tenant's and its workspaces' (those are counted as 0).</summary>
    public static List<string> InvalidQuantities(Tenant tenant, IEnumerable<Workspace> workspaces)
    {
        var problems = SpecRules.TenantQuota(tenant.Spec.Quota).ToList();
        foreach (var ws in workspaces.OrderBy(w => w.Metadata.Name, StringComparer.Ordinal))
        {
            problems.AddRange(SpecRules.WorkspaceQuota(ws.Spec.Quota).Select(p => $"workspace {ws.Metadata.Name}: {p} (counted as 0)"));
        }

        return problems;
    }

    /// <summary>What the tenant's workspaces are granted (their requests, capped by the tenant's aggregate quota).</summary>
    public static TenantUsage? Usage(Tenant tenant, IReadOnlyList<Workspace> own)
    {
        if (own.All(w => w.Spec.Quota is null)) return null;
        decimal cpu = 0, memory = 0, storage = 0;
        foreach (var grant in Quota.AllocateAll(tenant, own).Values)
        {
            // Grants are bounded (out-of-bounds asks are granted 0), and the sums saturate.
            cpu = SpecRules.Add(cpu, grant.Granted.TryGetValue("cpu", out var c) && SpecRules.TryQuantity("cpu", c, out var cv) ? cv : 0);
            memory = SpecRules.Add(memory, grant.Granted.TryGetValue("memory", out var m) && SpecRules.TryQuantity("memory", m, out var mv) ? mv : 0);
            storage = SpecRules.Add(storage, grant.Granted.TryGetValue("storage", out var st) && SpecRules.TryQuantity("storage", st, out var sv) ? sv : 0);
        }

        return new TenantUsage
        {
            Cpu = new ResourceQuantity(new ResourceQuantity(cpu, 0, ResourceQuantity.SuffixFormat.DecimalSI).CanonicalizeString()),
            Memory = new ResourceQuantity(new ResourceQuantity(memory, 0, ResourceQuantity.SuffixFormat.BinarySI).CanonicalizeString()),
            Storage = new ResourceQuantity(new ResourceQuantity(storage, 0, ResourceQuantity.SuffixFormat.BinarySI).CanonicalizeString()),
        };
    }
}
