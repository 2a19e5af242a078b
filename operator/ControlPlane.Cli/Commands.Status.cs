using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using k8s.Autorest;

namespace ControlPlane.Cli;

/// <summary>One node of the status tree: a kind, a name, its phase and readiness, and what is under it.</summary>
public sealed record StatusNode(string Kind, string Name, string? Phase, string Ready, string? Reason, string? Message, IReadOnlyList<StatusNode> Children);

public static partial class Commands
{
    public static Command Status(Globals g)
    {
        var scope = new Argument<string?>("tenant-or-workspace") { Description = "A Tenant (its workspaces) or a Workspace; default: every tenant you may list, else the current namespace's workspace", Arity = ArgumentArity.ZeroOrOne };
        var watch = new Option<bool>("--watch", "-w") { Description = "Redraw whenever something changes (Ctrl-C ends)" };
        var interval = new Option<TimeSpan>("--interval") { Description = "How often --watch looks", DefaultValueFactory = _ => TimeSpan.FromSeconds(2) };
        var output = Globals.OutputOption();
        var cmd = new Command("status", "A tree tenant → workspaces → each governed object, with phase, Ready/Stalled and the reason (like kubectl argo rollouts get).")
        {
            scope, watch, interval, output,
        };
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var format = r.GetValue(output);
            string? last = null;
            do
            {
                var tree = await TreeAsync(kube, r.GetValue(scope), ct);
                var text = format is null ? RenderTree(tree) : Output.Render(tree, format);
                if (text != last)
                {
                    if (r.GetValue(watch) && last is not null && !Console.IsOutputRedirected) Console.Write("\u001b[H\u001b[2J");
                    else if (r.GetValue(watch) && last is not null) Console.WriteLine("---");
                    Console.Write(text);
                    last = text;
                }

                if (!r.GetValue(watch)) break;
                try
                {
                    await Task.Delay(r.GetValue(interval), ct);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            while (!ct.IsCancellationRequested);
            return 0;
        });
        return cmd;
    }

    static async Task<List<StatusNode>> TreeAsync(Kube kube, string? scope, CancellationToken ct)
    {
        List<Tenant> tenants;
        List<Workspace>? workspaces = null;
        if (scope is not null)
        {
            if (await kube.TryGetClusterAsync<Tenant>(scope, ct) is { } tenant)
            {
                tenants = [tenant];
            }
            else if (await kube.TryGetClusterAsync<Workspace>(scope, ct) is { } ws)
            {
                workspaces = [ws];
                tenants = await kube.TryGetClusterAsync<Tenant>(ws.Spec.Tenant, ct) is { } t ? [t] : [new Tenant { Metadata = new() { Name = ws.Spec.Tenant } }];
            }
            else
            {
                throw new CliError($"\"{scope}\" is neither a Tenant nor a Workspace you may read");
            }
        }
        else
        {
            tenants = await TryListAsync<Tenant>(kube, ct) ?? [];
            if (tenants.Count == 0)
            {
                // Not allowed to list tenants: the workspace of the current namespace.
                var ws = await kube.TryGetClusterAsync<Workspace>(kube.Namespace, ct)
                    ?? throw new CliError($"you may not list tenants, and namespace \"{kube.Namespace}\" is not a workspace you may read: name one (kubectl controlplane status <workspace>) or pass -n");
                workspaces = [ws];
                tenants = [new Tenant { Metadata = new() { Name = ws.Spec.Tenant } }];
            }
        }

        workspaces ??= await TryListAsync<Workspace>(kube, ct) ?? [];
        var nodes = new List<StatusNode>();
        foreach (var tenant in tenants.OrderBy(t => t.Metadata.Name, StringComparer.Ordinal))
        {
            var children = new List<StatusNode>();
            foreach (var ws in workspaces.Where(w => w.Spec.Tenant == tenant.Metadata.Name).OrderBy(w => w.Metadata.Name, StringComparer.Ordinal))
            {
                children.Add(Node(Json(ws), await ObjectsInAsync(kube, ws.Metadata.Name, ct)));
            }

            nodes.Add(Node(Json(tenant), children));
        }

        return nodes;
    }

    static async Task<List<T>?> TryListAsync<T>(Kube kube, CancellationToken ct)
    {
        try
        {
            return await kube.ListAsync<T>(null, ct);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.Forbidden)
        {
            return null;
        }
    }

    /// <summary>Every namespaced controlplane.io object of a workspace the caller may list, kind by kind.</summary>
    static async Task<List<StatusNode>> ObjectsInAsync(Kube kube, string ns, CancellationToken ct)
    {
        var nodes = new List<StatusNode>();
        foreach (var kind in Kinds.All.Where(k => k.Namespaced))
        {
            var items = await kube.ListNodesAsync(kind, ns, ct);
            if (items is null) continue;
            nodes.AddRange(items.OrderBy(Obj.Name, StringComparer.Ordinal).Select(o => Node(o, [])));
        }

        return nodes;
    }

    static JsonObject Json(object o) => JsonNode.Parse(k8s.KubernetesJson.Serialize(o))!.AsObject();

    static StatusNode Node(JsonObject o, IReadOnlyList<StatusNode> children)
    {
        var ready = Obj.Condition(o, "Ready");
        var stalled = Obj.Condition(o, "Stalled") is { Status: "True" } s ? s : null;
        var kind = Obj.Str(o["kind"]) ?? "?";
        var readyText = ready is null ? (o["status"] is null ? "-" : "Unknown") : ready.Status;
        if (stalled is not null) readyText += ",Stalled";
        return new StatusNode(kind, Obj.Name(o), Obj.Phase(o), readyText, stalled?.Reason ?? ready?.Reason, stalled?.Message ?? ready?.Message, children);
    }

    public static string RenderTree(IReadOnlyList<StatusNode> roots)
    {
        var rows = new List<(string Tree, StatusNode Node)>();
        void Walk(StatusNode n, string prefix, string branch)
        {
            rows.Add((branch + $"{n.Kind}/{n.Name}", n));
            for (var i = 0; i < n.Children.Count; i++)
            {
                var last = i == n.Children.Count - 1;
                Walk(n.Children[i], prefix + (last ? "   " : "│  "), prefix + (last ? "└─ " : "├─ "));
            }
        }

        foreach (var root in roots) Walk(root, "", "");
        if (rows.Count == 0) return "nothing to show: no tenant or workspace you may read\n";
        return Output.Table(["NAME", "PHASE", "READY", "REASON", "MESSAGE"],
            rows.Select(r => (IReadOnlyList<string>)[r.Tree, r.Node.Phase ?? "-", r.Node.Ready, r.Node.Reason ?? "", Short(r.Node.Message)]));
    }

    static string Short(string? message) => message is null ? "" : message.Length <= 100 ? message : message[..97] + "...";
}
