using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// The namespaced informer set (issue 29): a namespace is listed and watched while a reader holds it,
/// shared by its holders, let go with the last; the set is ready at once and a reader waits for its own
/// namespaces. The API server here is unreachable, so no member ever syncs: what is checked is the
/// bookkeeping and that nothing waits on a namespace it does not read.
/// </summary>
public sealed class NamespacedInformerTests
{
    static readonly KubeApi Offline = new(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });
    static readonly ResourceType Pods = new("", "v1", "pods", "Pod", true);

    static (NamespacedInformer<V1Pod> Set, List<string> Made) NewSet()
    {
        var made = new List<string>();
        var set = new NamespacedInformer<V1Pod>(Pods, ns =>
        {
            lock (made) made.Add(ns);
            return new Informer<V1Pod>(Offline, Pods, new OperatorMetrics(), NullLogger.Instance,
                new InformerOptions { Namespace = ns, IndexByNamespace = false, InitialBackoff = TimeSpan.FromSeconds(5), MaxBackoff = TimeSpan.FromSeconds(5) });
        }, NullLogger.Instance);
        return (set, made);
    }

    /// <summary>Holds and gives up waiting at once (the members never sync against an unreachable server).</summary>
    static async Task HoldAsync(NamespacedInformer<V1Pod> set, string holder, params string[] namespaces)
    {
        using var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => set.HoldAsync(holder, namespaces, soon.Token));
    }

    [Fact]
    public async Task ANamespaceIsWatchedWhileHeld_SharedByItsHolders_AndLetGoWithTheLast()
    {
        var (set, made) = NewSet();
        using var term = new CancellationTokenSource();
        var run = set.RunAsync(term.Token);
        // Ready as soon as it runs: nothing is listed until someone holds a namespace.
        Assert.True(set.HasSynced);
        Assert.Empty(set.Namespaces);

        await HoldAsync(set, "team-a/r1", "team-a", "team-b");
        await HoldAsync(set, "team-a/r2", "team-b");
        Assert.Equal(["team-a", "team-b"], set.Namespaces.Order());
        Assert.Equal(2, set.HoldersOf("team-b"));
        Assert.False(set.IsSynced("team-b"));
        Assert.Null(set.Get("team-b/web"));
        Assert.Empty(set.InNamespace("team-b"));

        // A holder's new set replaces its old one; a namespace in both is not restarted.
        await HoldAsync(set, "team-a/r1", "team-b", "team-c");
        Assert.Equal(["team-b", "team-c"], set.Namespaces.Order());
        Assert.Equal(["team-a", "team-b", "team-c"], made.Order());

        set.Forget("team-a/r1");
        Assert.Equal(["team-b"], set.Namespaces);
        Assert.Equal(1, set.HoldersOf("team-b"));
        set.Forget("team-a/r2");
        Assert.Empty(set.Namespaces);
        set.Forget("never-held");

        // Held again after it was let go: a new informer lists it afresh.
        await HoldAsync(set, "team-a/r3", "team-b");
        Assert.Equal(2, made.Count(n => n == "team-b"));

        await term.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        // A holder letting go after the term ended (its informers stopped with it) is no error.
        set.Forget("team-a/r3");
        Assert.Empty(set.Namespaces);
    }

    [Fact]
    public async Task HoldingNothing_ReturnsAtOnce_AndAReaderWaitsOnlyForItsOwnNamespaces()
    {
        var (set, _) = NewSet();
        using var term = new CancellationTokenSource();
        var run = set.RunAsync(term.Token);
        await HoldAsync(set, "x/slow", "unreachable");
        // Another holder with no namespaces is not held up by one that never syncs.
        await set.HoldAsync("x/none", [], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        await set.HoldAsync("x/empty", ["", ""], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(["unreachable"], set.Namespaces);
        await term.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void NotSyncedBeforeItRuns_AndOnlyForNamespacedKinds()
    {
        // Readiness (Manager.IsReady) is every term informer's HasSynced: the set counts once the term runs it.
        var (set, _) = NewSet();
        Assert.False(set.HasSynced);
        Assert.Throws<ArgumentException>(() => new NamespacedInformer<V1Namespace>(ResourceType.Namespaces, _ => null!, NullLogger.Instance));
    }
}
