using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// What a reconciler does when its pass throws: Ready=False (reason ReconcileError) at the current
/// observedGeneration and a Warning Event, so a failure never hides behind a stale Ready. The
/// exception is then rethrown, and the controller retries it on the key's backoff.
/// </summary>
public static class ReconcileErrors
{
    public const string Reason = "ReconcileError";
    const int MaxMessage = 1024;

    /// <summary>Cancellation on shutdown and optimistic-concurrency conflicts are not failures to report.</summary>
    public static bool ShouldReport(Exception e, CancellationToken ct) =>
        !(e is OperationCanceledException && ct.IsCancellationRequested) && !(e is KubeApiException { IsConflict: true });

    /// <summary>
    /// A message for status and Events. Exceptions here carry API statuses and Postgres errors, never
    /// request bodies; of a Postgres error only its code and primary text are kept (not the statement).
    /// </summary>
    public static string Describe(Exception e)
    {
        var text = e switch
        {
            PostgresException p => $"{p.SqlState}: {p.MessageText}",
            KubeApiException k => $"{(int)k.StatusCode} {k.Reason}: {k.StatusMessage}",
            _ => e.Message,
        };
        var message = $"Reconcile failed ({e.GetType().Name}): {text}";
        return message.Length <= MaxMessage ? message : message[..MaxMessage] + "...";
    }

    public static async Task ReportAsync<T>(ObjectWriter writer, ResourceType type, T obj, Func<T, IReadOnlyList<V1Condition>?> conditionsOf,
        Func<T, List<V1Condition>, object> statusOf, string readyType, string message, EventRecorder events, TimeProvider time, ILogger logger, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        try
        {
            var conditions = new ConditionSet(conditionsOf(obj), obj.Metadata.Generation, time.GetUtcNow().UtcDateTime)
                .Set(readyType, false, Reason, message).ToList();
            var updated = await writer.UpdateStatusAsync(type, obj, statusOf(obj, conditions), ct).ConfigureAwait(false);
            if (!ReferenceEquals(updated, obj)) await events.WarningAsync(obj, Reason, message, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The object moved on (conflict) or the API server is away: the retry reports it again.
            logger.LogWarning("could not record the reconcile error of {Name} in its status: {Error}", obj.Metadata.Name, e.Message);
        }
    }
}
