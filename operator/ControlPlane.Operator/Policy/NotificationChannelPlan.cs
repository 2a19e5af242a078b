using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>The delivery state of a channel as the plan needs it (from the system of record).</summary>
public sealed record ChannelCounts(long Pending, long Delivered, long FailedAttempts, int ConsecutiveFailures, DateTime? LastDeliveredAt, string? LastError, long? DisabledGeneration);

/// <summary>
/// Everything a channel's status follows from: the channel, the problems of its spec (rules, egress, who may
/// own a tenant channel), which Secrets are missing, and its delivery state (null: not registered yet).
/// <paramref name="UnusableSecrets"/>: Secrets that exist but hold nothing the channel can send with (an empty value,
/// a URL the egress rules refuse), each named with its field and why, never with its value.
/// </summary>
public sealed record ChannelFacts(NotificationChannel Channel, IReadOnlyList<string> Problems, IReadOnlyList<string> MissingSecrets, ChannelCounts? Counts,
    IReadOnlyList<string>? UnusableSecrets = null);

/// <summary>What to do: re-enable an auto-disabled channel (its spec changed), queue a test delivery, and the status.</summary>
public sealed record ChannelDecision(NotificationChannelPhase Phase, IReadOnlyList<ConditionVerdict> Conditions, IReadOnlyList<Notice> Notices,
    bool ReEnable, string? TestNonce, bool Deliverable, PassResult Result);

/// <summary>A NotificationChannel's life as a pure function of its facts.</summary>
public static class NotificationChannelPlan
{
    public const int KeptNonces = 10;

    public static ChannelDecision Decide(ChannelFacts f)
    {
        var c = f.Channel;
        var generation = c.Metadata.Generation ?? 0;
        var notices = new List<Notice>();
        if (f.Problems.Count > 0)
        {
            var message = string.Join("; ", f.Problems);
            return new(NotificationChannelPhase.Invalid,
                [new(NotificationChannelConditions.Ready, false, NotificationChannelReasons.InvalidSpec, message), NotDisabled()],
                [new(NotificationChannelReasons.InvalidSpec, message, Warning: true)], false, null, false, PassResult.Terminal(message));
        }

        // Disabled at an older generation: the spec changed since, so it delivers again.
        var disabled = f.Counts?.DisabledGeneration is { } at && at >= generation;
        var reEnable = f.Counts?.DisabledGeneration is { } old && old < generation;
        if (reEnable) notices.Add(new(NotificationChannelReasons.Enabled, $"spec changed (generation {generation}): delivery resumes, waiting events are sent in order"));
        var test = c.Metadata.Annotations?.TryGetValue(ApiGroup.TestDeliveryAnnotation, out var n) == true && n is { Length: > 0 and <= 128 } nonce
                   && !(c.Status?.TestNonces ?? []).Contains(nonce)
            ? nonce
            : null;
        if (test is not null) notices.Add(new(NotificationChannelReasons.TestQueued, $"test delivery {test} queued"));
        var unusable = f.UnusableSecrets ?? [];
        if (f.MissingSecrets.Count > 0 || unusable.Count > 0)
        {
            var parts = new List<string>();
            if (f.MissingSecrets.Count > 0) parts.Add($"{string.Join(", ", f.MissingSecrets)} not found in namespace {c.Metadata.NamespaceProperty}");
            parts.AddRange(unusable);
            var message = $"{string.Join("; ", parts)}: nothing is sent until it is fixed (events wait)";
            return new(NotificationChannelPhase.Pending,
                [new(NotificationChannelConditions.Ready, false, NotificationChannelReasons.SecretMissing, message), disabled ? Disabled(f.Counts!) : NotDisabled()],
                notices, reEnable, test, false, PassResult.Retry(message));
        }

        if (disabled)
        {
            var message = $"{f.Counts!.ConsecutiveFailures} delivery attempts in a row failed (spec.maxConsecutiveFailures {NotificationChannelRules.MaxFailuresOf(c.Spec)}); last: {f.Counts.LastError}. Change the spec to re-enable; waiting events are kept";
            return new(NotificationChannelPhase.AutoDisabled,
                [new(NotificationChannelConditions.Ready, false, NotificationChannelReasons.AutoDisabled, message), Disabled(f.Counts)],
                notices, false, test, false, PassResult.Done);
        }

        var ready = f.Counts is { ConsecutiveFailures: > 0 } failing
            ? $"delivering; the last {failing.ConsecutiveFailures} attempts failed ({failing.LastError}) and are retried with backoff"
            : "delivering";
        return new(NotificationChannelPhase.Active,
            [new(NotificationChannelConditions.Ready, true, NotificationChannelReasons.Delivering, ready), NotDisabled()],
            notices, reEnable, test, true, PassResult.Done);
    }

    static ConditionVerdict NotDisabled() => new(NotificationChannelConditions.WebhookAutoDisabled, false, NotificationChannelReasons.Enabled, "deliveries are attempted");

    static ConditionVerdict Disabled(ChannelCounts counts) =>
        new(NotificationChannelConditions.WebhookAutoDisabled, true, NotificationChannelReasons.AutoDisabled,
            $"disabled after {counts.ConsecutiveFailures} failed attempts in a row; change the spec to re-enable");

    /// <summary>The status the decision reports: counts from the system of record, nonces kept (newest last).</summary>
    public static NotificationChannelStatus Status(ChannelFacts f, ChannelDecision d, bool testQueued)
    {
        var nonces = (f.Channel.Status?.TestNonces ?? []).ToList();
        if (testQueued && d.TestNonce is { } n) nonces.Add(n);
        if (nonces.Count > KeptNonces) nonces = nonces[^KeptNonces..];
        var counts = d.ReEnable && f.Counts is { } c ? c with { ConsecutiveFailures = 0, DisabledGeneration = null } : f.Counts;
        return new NotificationChannelStatus
        {
            Phase = d.Phase,
            ObservedGeneration = f.Channel.Metadata.Generation,
            Pending = counts?.Pending ?? 0,
            Delivered = counts?.Delivered ?? 0,
            Failed = counts?.FailedAttempts ?? 0,
            ConsecutiveFailures = counts?.ConsecutiveFailures ?? 0,
            // Whole seconds: what the API server keeps and gives back, so an unchanged time compares equal.
            LastDeliveredAt = counts?.LastDeliveredAt is { } at ? new DateTime(at.Ticks - at.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc) : null,
            LastError = counts?.LastError,
            TestNonces = nonces.Count == 0 ? null : nonces,
        };
    }
}
