using System.Text.Json;
using ControlPlane.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// The two races of a namespace-scoped informer (issue 29), replayed in a fixed order through the
/// informer's watch entry point (HandleLine) and its catch-up merge: no server, no timing.
/// </summary>
public class InformerScopeRaceTests
{
    static readonly ResourceType PodType = new("", "v1", "pods", "Pod", true);

    // Nothing listens here: a catch-up that did reach the API would fail fast instead of hanging.
    static KubeApi Api() => new(new KubernetesClientConfiguration { Host = "https://127.0.0.1:1" });

    static (Informer<V1Namespace> Namespaces, Informer<V1Pod> Pods) Scoped()
    {
        var namespaces = new Informer<V1Namespace>(Api(), ResourceType.Namespaces, new OperatorMetrics(), NullLogger.Instance);
        var scope = NamespaceScope.Of(namespaces, n => n.Metadata.Name);
        var pods = new Informer<V1Pod>(Api(), PodType, new OperatorMetrics(), NullLogger.Instance, new InformerOptions { Scope = scope });
        return (namespaces, pods);
    }

    static string NamespaceEvent(string type, string name) =>
        JsonSerializer.Serialize(new { type, @object = new { apiVersion = "v1", kind = "Namespace", metadata = new { name, resourceVersion = "1" } } });

    static string PodEvent(string type, string ns, string name, string rv) =>
        JsonSerializer.Serialize(new { type, @object = new { apiVersion = "v1", kind = "Pod", metadata = new { @namespace = ns, name, resourceVersion = rv } } });

    static V1Pod Pod(string ns, string name, string rv) =>
        new() { ApiVersion = "v1", Kind = "Pod", Metadata = new V1ObjectMeta { NamespaceProperty = ns, Name = name, ResourceVersion = rv } };

    [Fact]
    public void A_namespace_joining_between_the_scope_check_and_the_drop_record_does_not_lose_the_object()
    {
        var (namespaces, pods) = Scoped();
        // The namespace joins exactly after the watch judged the pod out of scope: OnScopeEntered runs
        // before the drop is recorded, so it finds nothing to catch up.
        pods.BeforeDropRecorded = ns => namespaces.HandleLine(NamespaceEvent("ADDED", ns));

        pods.HandleLine(PodEvent("ADDED", "team-a", "web", "10"));

        Assert.NotNull(pods.Get("team-a/web"));
        Assert.Equal("10", pods.ResourceVersion);
    }

    [Fact]
    public void An_object_out_of_scope_stays_dropped()
    {
        var (_, pods) = Scoped();
        pods.HandleLine(PodEvent("ADDED", "elsewhere", "web", "10"));
        Assert.Null(pods.Get("elsewhere/web"));
    }

    [Fact]
    public void A_catch_up_list_does_not_resurrect_an_object_the_watch_deleted_meanwhile()
    {
        var (namespaces, pods) = Scoped();
        namespaces.HandleLine(NamespaceEvent("ADDED", "team-a"));
        var catchUp = pods.BeginCatchUp("team-a");

        // The list saw the pod; its delete reaches the watch before the list's page is merged (a no-op
        // on the cache, which never held the pod).
        var listed = Pod("team-a", "web", "10");
        pods.HandleLine(PodEvent("DELETED", "team-a", "web", "11"));
        pods.MergeCaughtUp(catchUp, [listed]);
        pods.EndCatchUp(catchUp);

        Assert.Null(pods.Get("team-a/web"));
    }

    [Fact]
    public void A_catch_up_list_does_not_replace_a_newer_version_the_watch_brought_and_lost_again()
    {
        var (namespaces, pods) = Scoped();
        namespaces.HandleLine(NamespaceEvent("ADDED", "team-a"));
        var catchUp = pods.BeginCatchUp("team-a");

        pods.HandleLine(PodEvent("ADDED", "team-a", "web", "12"));
        pods.HandleLine(PodEvent("MODIFIED", "team-a", "web", "13"));
        pods.MergeCaughtUp(catchUp, [Pod("team-a", "web", "10")]);
        Assert.Equal("13", pods.Get("team-a/web")!.Metadata.ResourceVersion);

        // Deleted by the watch, then the stale listed copy arrives again (a later page): still gone.
        pods.HandleLine(PodEvent("DELETED", "team-a", "web", "14"));
        pods.MergeCaughtUp(catchUp, [Pod("team-a", "web", "10")]);
        pods.EndCatchUp(catchUp);
        Assert.Null(pods.Get("team-a/web"));
    }

    [Fact]
    public void A_catch_up_list_adds_what_the_watch_never_saw_and_tells_handlers()
    {
        var (namespaces, pods) = Scoped();
        var added = new List<string>();
        pods.AddHandler(e => added.Add($"{e.Type} {Informer<V1Pod>.KeyOf(e.Object)}"));
        namespaces.HandleLine(NamespaceEvent("ADDED", "team-a"));
        var catchUp = pods.BeginCatchUp("team-a");

        pods.HandleLine(PodEvent("DELETED", "team-a", "gone", "11"));
        pods.MergeCaughtUp(catchUp, [Pod("team-a", "quiet", "5"), Pod("team-a", "gone", "9")]);
        pods.EndCatchUp(catchUp);

        Assert.NotNull(pods.Get("team-a/quiet"));
        Assert.Null(pods.Get("team-a/gone"));
        Assert.Equal(["Deleted team-a/gone", "Added team-a/quiet"], added);
    }

    [Fact]
    public void A_catch_up_merge_after_the_namespace_left_the_scope_adds_nothing()
    {
        var (namespaces, pods) = Scoped();
        namespaces.HandleLine(NamespaceEvent("ADDED", "team-a"));
        var catchUp = pods.BeginCatchUp("team-a");
        namespaces.HandleLine(NamespaceEvent("DELETED", "team-a"));

        pods.MergeCaughtUp(catchUp, [Pod("team-a", "web", "10")]);
        pods.EndCatchUp(catchUp);

        Assert.Null(pods.Get("team-a/web"));
    }
}
