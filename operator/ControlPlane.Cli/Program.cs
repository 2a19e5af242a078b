using System.CommandLine;
using System.Net;
using System.Text.Json.Nodes;
using k8s.Autorest;

namespace ControlPlane.Cli;

/// <summary>The options every command takes, as kubectl spells them.</summary>
public sealed class Globals
{
    public Option<string?> Kubeconfig { get; } = new("--kubeconfig") { Description = "Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)", Recursive = true };
    public Option<string?> Context { get; } = new("--context") { Description = "The kubeconfig context to use", Recursive = true };
    public Option<string?> Namespace { get; } = new("--namespace", "-n") { Description = "The namespace (workspace); default: the context's, else default", Recursive = true };

    /// <summary>The connection for this invocation, as kubectl would make it.</summary>
    public Kube Connect(ParseResult r) =>
        Kube.Connect(r.GetValue(Kubeconfig), r.GetValue(Context), r.GetValue(Namespace), Environment.GetEnvironmentVariable);

    /// <summary>-o json|yaml, for commands whose output is data.</summary>
    public static Option<string?> OutputOption() => new Option<string?>("--output", "-o") { Description = "Output format: json or yaml (default: text)" }.AcceptOnlyFromAmong(Output.Formats);
}

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = BuildRoot(new Globals());
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
        {
            // One line for all problems, no usage dump: what was wrong and where to look (a list of allowed values flattened too).
            var path = string.Join(' ', parsed.CommandResult.Command.Parents().Append(parsed.CommandResult.Command).Skip(1).Select(c => c.Name));
            await Console.Error.WriteLineAsync($"error: {string.Join("; ", parsed.Errors.Select(e => string.Join(' ', e.Message.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).TrimEnd('.')))} (see: kubectl controlplane {path}{(path.Length > 0 ? " " : "")}--help)");
            return 2;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync(Describe(e)).ConfigureAwait(false);
            return e is CliError c ? c.ExitCode : 1;
        }
    }

    public static RootCommand BuildRoot(Globals g)
    {
        var root = new RootCommand("kubectl controlplane: every governed action of the ControlPlane operator from the shell. " +
                                   "It acts with your kubeconfig's identity, so RBAC and the admission webhooks decide what you may do, as for kubectl.")
        {
            g.Kubeconfig, g.Context, g.Namespace,
        };
        root.Add(Commands.Approve(g, "approve"));
        root.Add(Commands.Approve(g, "reject"));
        root.Add(Commands.Status(g));
        root.Add(Commands.Rollout(g));
        root.Add(Commands.Backup(g));
        root.Add(Commands.Restore(g));
        root.Add(Commands.Intent(g));
        root.Add(Commands.Audit(g));
        root.Add(Commands.Access(g));
        root.Add(Commands.Channel(g));
        root.Add(Completion.Command(root));
        root.Add(Completion.CompleteCommand(root));
        return root;
    }

    /// <summary>One line, no stack trace: the server's own message for an API error (what kubectl prints), ours otherwise.</summary>
    public static string Describe(Exception e) => e switch
    {
        CliError c => "error: " + OneLine(c.Message),
        HttpOperationException h => "Error from server" + ServerMessage(h),
        HttpRequestException r => $"error: cannot reach the API server: {OneLine(r.Message)}",
        TaskCanceledException => "error: timed out or interrupted",
        OperationCanceledException => "error: interrupted",
        _ => "error: " + OneLine(e.Message),
    };

    static string ServerMessage(HttpOperationException h)
    {
        var code = h.Response?.StatusCode ?? 0;
        try
        {
            if (h.Response?.Content is { Length: > 0 } body && JsonNode.Parse(body) is JsonObject status)
            {
                var reason = status["reason"]?.GetValue<string>() ?? code.ToString();
                return $" ({reason}): {OneLine(status["message"]?.GetValue<string>() ?? h.Message)}";
            }
        }
        catch (System.Text.Json.JsonException)
        {
            // Not a Status object: the HTTP status says enough.
        }

        return code == HttpStatusCode.NotFound ? " (NotFound): the resource is not served here" : $" ({code}): {OneLine(h.Message)}";
    }

    static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}

static class CommandExtensions
{
    public static IEnumerable<Command> Parents(this Command c)
    {
        var chain = new List<Command>();
        for (var p = c.Parents.OfType<Command>().FirstOrDefault(); p is not null; p = p.Parents.OfType<Command>().FirstOrDefault()) chain.Insert(0, p);
        return chain;
    }
}
