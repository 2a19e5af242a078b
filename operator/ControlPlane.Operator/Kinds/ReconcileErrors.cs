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

    /// <summary>
    /// Runs one pass of a kind's reconcile; when it throws (and <see cref="ShouldReport"/> and the kind's
    /// <see cref="ErrorReport{T}.Reports"/> agree), records the failure in the object's status and an
    /// Event, then rethrows. Every kind whose Ready must not outlive a failure calls this, and only this.
    /// </summary>
    public static async Task<ReconcileResult> RunAsync<T>(T obj, Func<T, CancellationToken, Task<ReconcileResult>> pass, ErrorReport<T> report, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        try
        {
            return await pass(obj, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (ShouldReport(e, ct) && report.Reports(e))
        {
            // Whatever failed, the status must not keep saying Ready for a generation we could not converge.
            await ReportAsync(report, obj, Describe(e), ct).ConfigureAwait(false);
            throw;
        }
    }

    static async Task ReportAsync<T>(ErrorReport<T> report, T obj, string message, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        try
        {
            var conditions = new ConditionSet(report.ConditionsOf(obj), obj.Metadata.Generation, report.Time.GetUtcNow().UtcDateTime)
                .Set(report.ReadyType, false, Reason, message).ToList();
            var updated = await report.Writer.UpdateStatusAsync(report.Type, obj, report.StatusOf(obj, conditions), ct).ConfigureAwait(false);
            if (!ReferenceEquals(updated, obj)) await report.Events.WarningAsync(obj, Reason, message, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The object moved on (conflict) or the API server is away: the retry reports it again.
            report.Logger.LogWarning("could not record the reconcile error of {Name} in its status: {Error}", obj.Metadata.Name, e.Message);
        }
    }
}

/// <summary>
/// How one kind records a failed pass: where its status is written, which condition says Ready, and
/// its status as it is with the error's conditions (everything else kept as the object has it).
/// </summary>
public sealed record ErrorReport<T>(
    ObjectWriter Writer,
    ResourceType Type,
    string ReadyType,
    Func<T, IReadOnlyList<V1Condition>?> ConditionsOf,
    Func<T, List<V1Condition>, object> StatusOf,
    EventRecorder Events,
    TimeProvider Time,
    ILogger Logger)
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    /// <summary>Which failures are reported here; a kind that turns some into conditions of its own excludes them.</summary>
    public Func<Exception, bool> Reports { get; init; } = _ => true;
}
