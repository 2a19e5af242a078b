using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Runtime;

/// <summary>
/// The background sender of <see cref="EventRecorder"/>: a reconcile hands its Event over and goes on
/// (a POST per reconcile was one more round trip on every converge's critical path). Events are never
/// dropped: each lane is bounded and a full lane makes the recorder wait (backpressure), and a repeat
/// of an Event still waiting is folded into it (one write with the summed count). Events of one object
/// share a lane, so they are written in the order they were recorded. When the sender stops (the term
/// ends) what is queued is still written, for at most <see cref="DrainTimeout"/>.
/// </summary>
public sealed partial class EventRecorder
{
    const int Lanes = 4;
    const int LaneCapacity = 1024;
    static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);

    sealed class Slot(PendingEvent first)
    {
        public PendingEvent Latest { get; set; } = first;
        public int Count { get; set; } = 1;
    }

    sealed class Lane
    {
        public Channel<string> Keys { get; } = Channel.CreateBounded<string>(new BoundedChannelOptions(LaneCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = true,
        });

        public Dictionary<string, Slot> Waiting { get; } = [];
    }

    volatile Lane[]? lanes;
    int pending;

    /// <summary>Events recorded and not yet written, in flight included (idle means none).</summary>
    public int Pending => Volatile.Read(ref pending);

    /// <summary>Queues <paramref name="e"/> while the sender runs, or returns null: the caller then writes it itself.</summary>
    Task? TryQueueAsync(PendingEvent e, CancellationToken ct)
    {
        var current = lanes;
        if (current is null) return null;
        var lane = current[(int)((uint)StringComparer.Ordinal.GetHashCode(e.Object.Uid ?? e.Object.Name ?? "") % Lanes)];
        lock (lane.Waiting)
        {
            if (lane.Waiting.TryGetValue(e.Key, out var slot))
            {
                slot.Count++;
                slot.Latest = e;
                return Task.CompletedTask;
            }

            lane.Waiting[e.Key] = new Slot(e);
        }

        Interlocked.Increment(ref pending);
        return EnqueueAsync(lane, e, ct);
    }

    async Task EnqueueAsync(Lane lane, PendingEvent e, CancellationToken ct)
    {
        try
        {
            await lane.Keys.Writer.WriteAsync(e.Key, ct).ConfigureAwait(false);
        }
        catch (Exception failure) when (failure is ChannelClosedException or OperationCanceledException)
        {
            // The term ended (or the caller gave up) before the key was queued: not written, as the drain does with
            // what is left after it (a leader that lost its lease writes nothing more; the next one reconciles again).
            if (Take(lane, e.Key) is { } slot)
            {
                Interlocked.Decrement(ref pending);
                logger.LogWarning("event {Reason} for {Kind} {Name} not written: the term ended", slot.Latest.Reason, slot.Latest.Object.Kind, slot.Latest.Object.Name);
            }
        }
    }

    /// <summary>The Event waiting under <paramref name="key"/>, no longer open to repeats (it is about to be written).</summary>
    static Slot? Take(Lane lane, string key)
    {
        lock (lane.Waiting)
        {
            return lane.Waiting.Remove(key, out var slot) ? slot : null;
        }
    }

    async Task SendThenDoneAsync(Slot slot, CancellationToken ct)
    {
        try
        {
            await SendAsync(slot.Latest, slot.Count, ct).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref pending);
        }
    }

    /// <summary>Sends queued Events until <paramref name="ct"/> is cancelled, then writes what is left (bounded by <see cref="DrainTimeout"/>).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var current = Enumerable.Range(0, Lanes).Select(_ => new Lane()).ToArray();
        lanes = current;
        using var drain = new CancellationTokenSource();
        using var stop = ct.Register(() =>
        {
            lanes = null;
            foreach (var lane in current) lane.Keys.Writer.TryComplete();
            drain.CancelAfter(DrainTimeout);
        });
        var senders = current.Select(lane => Task.Run(async () =>
        {
            await foreach (var key in lane.Keys.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (Take(lane, key) is not { } slot) continue;
                if (drain.IsCancellationRequested)
                {
                    Interlocked.Decrement(ref pending);
                    logger.LogWarning("event {Reason} for {Kind} {Name} not written: the term ended", slot.Latest.Reason, slot.Latest.Object.Kind, slot.Latest.Object.Name);
                    continue;
                }

                try
                {
                    await SendThenDoneAsync(slot, drain.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (drain.IsCancellationRequested)
                {
                }
                catch (Exception failure)
                {
                    // Never the end of a lane: one Event that could not be written is logged, the next ones go on.
                    logger.LogWarning("event {Reason} for {Kind} {Name} not written ({Error})", slot.Latest.Reason, slot.Latest.Object.Kind, slot.Latest.Object.Name, failure.GetType().Name);
                }
            }
        }, CancellationToken.None)).ToList();
        await Task.WhenAll(senders).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
    }
}
