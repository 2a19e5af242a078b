using System.CommandLine;

namespace ControlPlane.Cli;

/// <summary>
/// Shell completion. `completion bash|zsh` prints a script that asks the plugin itself (the hidden
/// `__complete` command) for the words that fit, so completion always matches this build's commands
/// and options. kubectl (1.26+) completes plugins through an executable kubectl_complete-controlplane
/// on the PATH: `make plugin` writes one that calls `kubectl-controlplane __complete`.
/// </summary>
public static class Completion
{
    public static Command Command(RootCommand root)
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var cmd = new Command("completion", "Print a shell completion script: source <(kubectl-controlplane completion bash), or for zsh: source <(kubectl-controlplane completion zsh)") { shell };
        cmd.SetAction(r =>
        {
            Console.Write(Script(r.GetValue(shell)!));
            return 0;
        });
        return cmd;
    }

    public static Command CompleteCommand(RootCommand root)
    {
        var words = new Argument<string[]>("words") { Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("__complete", "Completions for the words typed so far (used by the completion scripts)") { words };
        cmd.Hidden = true;
        cmd.SetAction(r =>
        {
            var typed = r.GetValue(words) ?? [];
            foreach (var label in Suggest(root, typed)) Console.WriteLine(label);
            return 0;
        });
        return cmd;
    }

    /// <summary>The words that may come next, given the words typed so far (the last one possibly partial, "" for a new word).</summary>
    public static IEnumerable<string> Suggest(RootCommand root, IReadOnlyList<string> typed)
    {
        var line = string.Join(' ', typed.Select(w => w.Contains(' ', StringComparison.Ordinal) ? $"\"{w}\"" : w));
        return root.Parse(line).GetCompletions(line.Length).Select(c => c.Label).Where(l => l != "__complete").Distinct();
    }

    public static string Script(string shell)
    {
        const string bash = """
            _kubectl_controlplane() {
              local IFS=$'\n'
              COMPREPLY=($(kubectl-controlplane __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
            }
            complete -o default -F _kubectl_controlplane kubectl-controlplane

            """;
        return shell == "zsh" ? "autoload -U +X bashcompinit && bashcompinit\n" + bash : bash;
    }
}
