using System.Reflection;
using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// Argo CD's verdict on a controlplane.io object, as Argo CD computes it: the script of the kind's key in
/// samples/gitops/argocd-cm-health.yaml (what users apply), run by Debian's Lua 5.1 (gopher-lua implements
/// 5.1) in an environment holding only what Argo CD opens for a custom health check: the base library and
/// table (no string, math, io, os or debug; strings have no methods). `make tools` installs lua5.1.
/// </summary>
public static class ArgoCdHealth
{
    public const string Sample = "samples/gitops/argocd-cm-health.yaml";
    public const string KeyPrefix = "resource.customizations.health.controlplane.io_";
    public static readonly string[] Verdicts = ["Healthy", "Progressing", "Suspended", "Degraded", "Missing"];

    public static IDictionary<string, string> Scripts() =>
        ManifestObject.Parse(File.ReadAllText(Path.Combine(Tools.Repo, Sample))).Single().As<V1ConfigMap>().Data;

    /// <summary>Runs a health script on obj; throws when the script fails, as Argo CD then shows the object Unknown.</summary>
    public static async Task<(string Status, string Message)> RunAsync(string script, JsonNode obj)
    {
        var harness = $$"""
            local script = {{LuaLiteral(JsonValue.Create(script))}}
            local object = {{LuaLiteral(obj)}}
            local write, exit, stderr = io.write, os.exit, io.stderr
            local env = { obj = object, table = { insert = table.insert, remove = table.remove, concat = table.concat, sort = table.sort, getn = table.getn, maxn = table.maxn } }
            for _, name in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawset", "select", "setmetatable",
                                    "getmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION" }) do env[name] = _G[name] end
            env._G = env
            getmetatable("").__index = nil
            local chunk, err = loadstring(script, "=health")
            if chunk == nil then stderr:write(err) exit(2) end
            setfenv(chunk, env)
            local ok, hs = pcall(chunk)
            if not ok then stderr:write(tostring(hs)) exit(3) end
            if type(hs) ~= "table" then stderr:write("returned " .. type(hs)) exit(4) end
            write(tostring(hs.status), "\t", tostring(hs.message))
            """;
        var result = (await Tools.RunAsync("lua5.1", ["-"], stdin: harness)).EnsureSuccess("lua5.1 (install it with `make tools`) running an Argo CD health script");
        var parts = result.Stdout.Split('\t', 2);
        return (parts[0], parts.Length > 1 ? parts[1] : "");
    }

    /// <summary>The verdict of the script Argo CD picks for obj's kind.</summary>
    public static Task<(string Status, string Message)> EvaluateAsync(JsonNode obj)
    {
        var kind = obj["kind"]?.GetValue<string>() ?? throw new ArgumentException("the object has no kind: Argo CD picks the health script by group and kind");
        return Scripts().TryGetValue(KeyPrefix + kind, out var script)
            ? RunAsync(script, obj)
            : throw new InvalidOperationException($"{Sample} has no {KeyPrefix}{kind}");
    }

    static string LuaLiteral(JsonNode? node) => node switch
    {
        null => "nil",
        JsonObject o => "{" + string.Join(",", o.Select(kv => $"[{LuaLiteral(JsonValue.Create(kv.Key))}]={LuaLiteral(kv.Value)}")) + "}",
        JsonArray a => "{" + string.Join(",", a.Select(LuaLiteral)) + "}",
        JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String =>
            "\"" + v.GetValue<string>().Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
                .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "\"",
        _ => node.ToJsonString(),
    };
}

/// <summary>One row of the kind x phase table: a status the operator writes, and the verdict Argo CD must give.</summary>
public sealed record HealthCase(string Kind, string Case, string Health, JsonObject Object)
{
    public const string Folder = "tests/ControlPlane.IntegrationTests/Fixtures/argocd-health";

    public static IReadOnlyList<HealthCase> All() =>
        Directory.GetFiles(Path.Combine(Tools.Repo, Folder), "*.json").Order(StringComparer.Ordinal).SelectMany(Load).ToList();

    static IEnumerable<HealthCase> Load(string file)
    {
        var table = JsonNode.Parse(File.ReadAllText(file))!;
        var kind = table["kind"]!.GetValue<string>();
        foreach (var c in table["cases"]!.AsArray())
        {
            var metadata = new JsonObject { ["name"] = "sample", ["generation"] = 1 };
            foreach (var (k, v) in c!["metadata"]?.AsObject() ?? []) metadata[k] = v?.DeepClone();
            var obj = new JsonObject { ["apiVersion"] = ApiGroup.ApiVersion, ["kind"] = kind, ["metadata"] = metadata, ["spec"] = c["spec"]?.DeepClone() ?? new JsonObject() };
            if (c["status"] is { } status) obj["status"] = status.DeepClone();
            yield return new HealthCase(kind, c["case"]!.GetValue<string>(), c["health"]!.GetValue<string>(), obj);
        }
    }
}

/// <summary>
/// The Argo CD health checks against the table of every kind in every phase (Fixtures/argocd-health, one file
/// per kind: see its README for where the statuses come from), the ConfigMap's shape, and the sandbox itself.
/// No cluster: these need only lua5.1, which is why they are not in the unit project.
/// </summary>
public sealed class ArgoCdHealthTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in HealthCase.All()) data.Add(c.Kind, c.Case);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task EveryKindInEveryPhase_GetsItsVerdict(string kind, string name)
    {
        var c = HealthCase.All().Single(x => x.Kind == kind && x.Case == name);
        var (status, message) = await ArgoCdHealth.EvaluateAsync(c.Object);
        Assert.True(c.Health == status, $"{kind} {name}: expected {c.Health}, got {status} ({message})\n{c.Object["status"]?.ToJsonString()}");
        Assert.False(string.IsNullOrEmpty(message), $"{kind} {name}: {status} without a message");
    }

    [Fact]
    public void Table_CoversEveryKind_EveryPhase_AndEveryVerdictButMissing()
    {
        var cases = HealthCase.All();
        foreach (var type in ApiKinds.All)
        {
            var kind = ApiKinds.KindOf(type);
            var own = cases.Where(c => c.Kind == kind).ToList();
            Assert.True(own.Count >= 4, $"{kind}: {own.Count} case(s) in {HealthCase.Folder}");
            // Every phase the API declares for the kind (status.phase's enum) has at least one row.
            var statusType = type.GetProperty("Status")!.PropertyType;
            if (statusType.GetProperty("Phase")?.GetCustomAttribute<EnumAttribute>() is { } phases)
            {
                var seen = own.Select(c => c.Object["status"]?["phase"]?.GetValue<string>()).ToHashSet();
                Assert.All(phases.Values, p => Assert.True(seen.Contains(p), $"{kind}: no case with phase {p}"));
            }

            Assert.All(own, c => Assert.Contains(c.Health, ArgoCdHealth.Verdicts));
        }

        // Missing is Argo CD's own verdict for an absent object: no status maps to it.
        Assert.Equal(["Degraded", "Healthy", "Progressing", "Suspended"], cases.Select(c => c.Health).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ConfigMap_HasOneKeyPerKind_EachTheSharedPartThenTheKindsOwn()
    {
        var data = ArgoCdHealth.Scripts();
        Assert.Equal(ApiKinds.All.Select(t => ArgoCdHealth.KeyPrefix + ApiKinds.KindOf(t)).Order(StringComparer.Ordinal), data.Keys.Order(StringComparer.Ordinal));
        var folder = Path.Combine(Tools.Repo, "config", "argocd", "health");
        var common = File.ReadAllText(Path.Combine(folder, "common.lua"));
        foreach (var type in ApiKinds.All)
        {
            var kind = ApiKinds.KindOf(type);
            Assert.True(data[ArgoCdHealth.KeyPrefix + kind] == common + File.ReadAllText(Path.Combine(folder, kind + ".lua")),
                $"{ArgoCdHealth.Sample} differs from config/argocd/health/{kind}.lua: run `make manifests` and commit the result");
        }

        // Argo CD takes no wildcard in a key (only the block form of resource.customizations has them), and the API server refuses it.
        Assert.All(data.Keys, k => Assert.Matches("^[-._a-zA-Z0-9]+$", k));
    }

    [Fact]
    public async Task Sandbox_HasOnlyWhatArgoCdOpens()
    {
        var obj = JsonNode.Parse("""{"kind":"Tenant","metadata":{"generation":1}}""")!;
        Assert.Equal(("Healthy", "5.1"), await ArgoCdHealth.RunAsync("""return { status = "Healthy", message = _VERSION == "Lua 5.1" and "5.1" or _VERSION }""", obj));
        foreach (var forbidden in new[] { "string.format('%d', 1)", "('x'):upper()", "math.floor(1.5)", "os.time()", "io.write('x')", "debug.traceback()" })
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => ArgoCdHealth.RunAsync($"local x = {forbidden}\nreturn {{ status = \"Healthy\" }}", obj));
        }
    }

    [Fact]
    public async Task EdgeCases_TheApiServerCanHold()
    {
        // Deletion, a generation ahead of the status, a message with quotes and a line break.
        var deleting = JsonNode.Parse("""{"kind":"Tenant","metadata":{"generation":1,"deletionTimestamp":"2026-01-01T00:00:00Z"},"status":{"phase":"Ready","observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Ready"}]}}""")!;
        Assert.Equal("Progressing", (await ArgoCdHealth.EvaluateAsync(deleting)).Status);
        var ahead = JsonNode.Parse("""{"kind":"Workspace","metadata":{"generation":3},"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"a \"quoted\"\nline"}]}}""")!;
        Assert.Equal("Progressing", (await ArgoCdHealth.EvaluateAsync(ahead)).Status);
        ahead["status"]!["observedGeneration"] = 3;
        Assert.Equal(("Healthy", "a \"quoted\"\nline"), await ArgoCdHealth.EvaluateAsync(ahead));
        // A Ready condition of an older generation than the status is not trusted either.
        ahead["status"]!["conditions"]![0]!["observedGeneration"] = 2;
        Assert.Equal("Progressing", (await ArgoCdHealth.EvaluateAsync(ahead)).Status);
        // A Stalled condition of an older generation is history: the new spec may progress.
        var stalled = JsonNode.Parse("""{"kind":"Backup","metadata":{"generation":2},"status":{"observedGeneration":2,"phase":"Running","conditions":[{"type":"Stalled","status":"True","reason":"PlanNotFound","observedGeneration":1},{"type":"Ready","status":"False","reason":"Running","message":"pg_dump","observedGeneration":2}]}}""")!;
        Assert.Equal("Progressing", (await ArgoCdHealth.EvaluateAsync(stalled)).Status);
        stalled["status"]!["conditions"]![0]!["observedGeneration"] = 2;
        Assert.Equal("Degraded", (await ArgoCdHealth.EvaluateAsync(stalled)).Status);
    }
}

/// <summary>
/// The table checked against the operator: an object it drove into a phase is the table's row of that name
/// (same phase, same conditions with the same status and reason) and gets the row's verdict, live.
/// </summary>
public static class LiveHealth
{
    public static async Task AssertAsync(ControlPlane.Runtime.KubeApi api, ControlPlane.Runtime.ResourceType type, string? ns, string name, string row)
    {
        JsonNode? live = null;
        HealthCase? expected = null;
        var seen = "";
        try
        {
            // The operator may still be writing the step the test waited for: the row must be reached, not be the first read.
            await Net.WaitUntilAsync(async () =>
            {
                live = JsonNode.Parse(k8s.KubernetesJson.Serialize(await api.GetAsync<JsonObject>(type, ns, name, CancellationToken.None)))!;
                var kind = live["kind"]!.GetValue<string>();
                expected = HealthCase.All().SingleOrDefault(c => c.Kind == kind && c.Case == row) ?? throw new InvalidOperationException($"{HealthCase.Folder}/{kind}.json has no case \"{row}\"");
                seen = Shape(live);
                return seen == Shape(expected.Object);
            }, TimeSpan.FromSeconds(60), $"{name} as the row \"{row}\"");
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"{name} is not the row \"{row}\" of {HealthCase.Folder}:\n live: {seen}\n  row: {(expected is null ? "" : Shape(expected.Object))}");
        }

        var (status, message) = await ArgoCdHealth.EvaluateAsync(live!);
        Assert.True(status == expected!.Health, $"{name} ({row}): Argo CD says {status} ({message}), the table {expected.Health}");
    }

    /// <summary>Phase and every condition's type, status and reason (Stalled aside: kstatus' own, judged in common.lua).</summary>
    static string Shape(JsonNode obj) =>
        $"phase={obj["status"]?["phase"]?.GetValue<string>()} " + string.Join(" ", (obj["status"]?["conditions"]?.AsArray() ?? [])
            .Select(c => $"{c!["type"]!.GetValue<string>()}={c["status"]!.GetValue<string>()}/{c["reason"]?.GetValue<string>()}")
            .Where(c => !c.StartsWith("Stalled=", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
}
