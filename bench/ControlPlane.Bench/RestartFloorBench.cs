using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;

namespace ControlPlane.Bench;

/// <summary>
/// What a restart cannot beat: the raw paged LISTs of the operator's caches through the same API
/// server (bodies read, nothing parsed), each kind alone and all at once as the informers send them;
/// and, on request, what holds the restarted operator's heap (dotnet-gcdump).
/// </summary>
public static partial class Program
{
    /// <summary>The lists a restart sends for the large caches: resource, namespace-wide selectors, metadata only.</summary>
    static readonly (string Name, ResourceType Type, string? Labels, string? Fields, bool Metadata)[] RestartLists =
    [
        ("workspaces", WorkspaceReconciler.Type, null, null, false),
        ("rolebindings", WorkspaceReconciler.RoleBindings, WorkspaceResources.ManagedSelector, null, false),
        ("networkpolicies", WorkspaceReconciler.NetworkPolicies, WorkspaceResources.ManagedSelector, null, false),
        ("limitranges", WorkspaceReconciler.LimitRanges, WorkspaceResources.ManagedSelector, null, false),
        ("resourcequotas", WorkspaceReconciler.Quotas, WorkspaceResources.ManagedSelector, null, false),
        ("namespaces", ResourceType.Namespaces, WorkspaceResources.ManagedSelector, null, false),
        ("configmaps", WorkspaceReconciler.ConfigMaps, WorkspaceResources.ManagedSelector, null, false),
        ("secrets", WorkspaceReconciler.Secrets, WorkspaceResources.ManagedSelector, null, false),
        ("secrets (metadata)", WorkspaceReconciler.Secrets, null, "type!=kubernetes.io/service-account-token", true),
    ];

    /// <summary>One kind's raw paged list (500 a page, as the informers): seconds, items' bytes, pages.</summary>
    static async Task<(double Seconds, long Bytes, int Pages)> RawListAsync(KubeApi api, (string Name, ResourceType Type, string? Labels, string? Fields, bool Metadata) list, int pageSize)
    {
        var watch = Stopwatch.StartNew();
        long bytes = 0;
        var pages = 0;
        string? next = null;
        do
        {
            var query = $"?limit={pageSize}" + (next is null ? "" : "&continue=" + Uri.EscapeDataString(next))
                + (list.Labels is null ? "" : "&labelSelector=" + Uri.EscapeDataString(list.Labels))
                + (list.Fields is null ? "" : "&fieldSelector=" + Uri.EscapeDataString(list.Fields));
            var body = await api.SendAsync(HttpMethod.Get, list.Type.CollectionPath(null) + query, null, "application/json", CancellationToken.None,
                list.Metadata ? KubeApi.MetadataListAccept : null);
            bytes += body.Length;
            pages++;
            // The list's metadata is at its head (built-in kinds) or its tail (custom resources: keys sorted): no need to parse the page.
            next = ContinueIn(body[..Math.Min(body.Length, 2048)]) ?? ContinueIn(body[Math.Max(0, body.Length - 2048)..]);
        }
        while (next is not null);

        return (watch.Elapsed.TotalSeconds, bytes, pages);
    }

    static string? ContinueIn(string part)
    {
        var at = part.IndexOf("\"continue\":\"", StringComparison.Ordinal);
        if (at < 0) return null;
        var token = part[(at + 12)..part.IndexOf('"', at + 12)];
        return token.Length == 0 ? null : token;
    }

    /// <summary>
    /// BENCH_VARIANTS="name:K=V|K=V;name2:..." restarts the operator once per variant (BENCH_VARIANT_RUNS rounds,
    /// interleaved) with those environment variables (runtime knobs, e.g. DOTNET_TieredPGO=0): ready, syncs,
    /// CPU and memory 20 s after all reconciled, on the same converged cluster.
    /// </summary>
    static async Task<JsonObject?> VariantsAsync(string repo, BenchEnv env, int n)
    {
        if (Environment.GetEnvironmentVariable("BENCH_VARIANTS") is not { Length: > 0 } spec) return null;
        var variants = spec.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v =>
        {
            var colon = v.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? v : v[..colon];
            var vars = colon < 0 ? [] : v[(colon + 1)..].Split('|', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
            return (name, vars);
        }).ToList();
        var result = new JsonObject();
        foreach (var (name, _) in variants) result[name] = new JsonArray();
        for (var round = 0; round < Env("BENCH_VARIANT_RUNS", 2); round++)
        {
            foreach (var (name, vars) in variants)
            {
                await using var child = ChildOperator.Start(repo, env.Settings(Kek), vars);
                var restart = await RestartAsync(child, n);
                await Task.Delay(TimeSpan.FromSeconds(20));
                restart["memory"] = await MemoryAsync(child);
                Console.WriteLine($"variant {name} round {round + 1}: ready {restart["readySeconds"]} s, cpu {restart["operatorCpuSecondsAtReady"]} s, peak {restart["peakWorkingSetMBAtAllReconciled"]} MB, load {restart["loadAverageAtReady"]}");
                result[name]!.AsArray().Add(restart);
            }
        }

        return result;
    }

    /// <summary>The floor of a restart's lists: each kind alone (twice, the faster kept), then all at once.</summary>
    static async Task<JsonObject> ListFloorAsync(BenchEnv env)
    {
        var alone = new JsonObject();
        double sumAlone = 0;
        foreach (var list in RestartLists)
        {
            var first = await RawListAsync(env.Api, list, 500);
            var second = await RawListAsync(env.Api, list, 500);
            var best = first.Seconds < second.Seconds ? first : second;
            sumAlone += best.Seconds;
            alone[list.Name] = new JsonObject { ["seconds"] = Math.Round(best.Seconds, 2), ["MB"] = Math.Round(best.Bytes / 1048576.0, 1), ["pages"] = best.Pages };
        }

        var watch = Stopwatch.StartNew();
        var together = await Task.WhenAll(RestartLists.Select(l => Task.Run(() => RawListAsync(env.Api, l, 500))));
        var allSeconds = watch.Elapsed.TotalSeconds;
        var concurrent = new JsonObject();
        for (var i = 0; i < RestartLists.Length; i++) concurrent[RestartLists[i].Name] = Math.Round(together[i].Seconds, 2);

        // The Workspace list with larger pages: what the page size costs.
        var pageSizes = new JsonObject();
        foreach (var size in new[] { 100, 500, 1000, 5000 })
        {
            pageSizes[size.ToString(CultureInfo.InvariantCulture)] = Math.Round((await RawListAsync(env.Api, RestartLists[0], size)).Seconds, 2);
        }

        return new JsonObject
        {
            ["aloneSeconds"] = alone,
            ["aloneSumSeconds"] = Math.Round(sumAlone, 2),
            ["concurrentSeconds"] = concurrent,
            ["concurrentAllSeconds"] = Math.Round(allSeconds, 2),
            ["workspacesByPageSizeSeconds"] = pageSizes,
            ["loadAverage"] = File.ReadAllText("/proc/loadavg").Trim(),
            ["note"] = "raw paged LISTs from the bench (bodies read as text, nothing parsed), operator idle; what a restart's informers cannot beat on this API server",
        };
    }

    /// <summary>
    /// BENCH_GCDUMP=1: a heap snapshot of the operator process (dotnet-gcdump, which forces a full GC
    /// first), its report kept beside the results; the largest types in the JSON.
    /// </summary>
    static async Task<JsonObject?> HeapDumpAsync(ChildOperator op, string root)
    {
        if (Environment.GetEnvironmentVariable("BENCH_GCDUMP") != "1") return null;
        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-gcdump");
        if (!File.Exists(tool)) return new JsonObject { ["error"] = $"{tool} missing: dotnet tool install -g dotnet-gcdump" };
        var file = Path.Combine(root, "operator.gcdump");
        await RunToolAsync(tool, ["collect", "-p", op.Pid.ToString(CultureInfo.InvariantCulture), "-o", file]);
        var report = await RunToolAsync(tool, ["report", file]);
        var keep = Environment.GetEnvironmentVariable("BENCH_GCDUMP_REPORT");
        if (!string.IsNullOrEmpty(keep)) await File.WriteAllTextAsync(keep, report);
        var top = new JsonArray();
        foreach (var line in report.Split('\n').Where(l => l.Contains("bytes", StringComparison.Ordinal) || l.TrimStart().Length > 0 && char.IsDigit(l.TrimStart()[0])).Take(40))
        {
            top.Add(line.Trim());
        }

        return new JsonObject { ["report"] = top };
    }

    static async Task<string> RunToolAsync(string tool, string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {tool}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return await output + await error;
    }
}
