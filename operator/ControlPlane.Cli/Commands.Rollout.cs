using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Cli;

/// <summary>A ring as `rollout get` shows it.</summary>
public sealed record RingView(string Name, string Phase, IReadOnlyList<string> Workspaces, string Soak, string? SoakLeft, double? SuccessRate, int? Incidents, bool RequiresApproval);

/// <summary>A Rollout at a glance: rings, images old → new, gates with their last values, soak left, approvals.</summary>
public sealed record RolloutView(
    string Name, string Namespace, long Generation, string Phase, string? CurrentRing, string? Progress, bool Paused, bool Abort, string? Promote,
    IReadOnlyList<string> Images, IReadOnlyList<string> Gates, IReadOnlyList<RingView> Rings, IReadOnlyList<Cond> Conditions, IReadOnlyList<string> Approvals, string? Rollback);

public static partial class Commands
{
    public static Command Rollout(Globals g)
    {
        var cmd = new Command("rollout", "Show and steer a Rollout: get, pause, resume, abort, promote.");
        var name = new Argument<string>("name") { Description = "The Rollout's name (in -n <workspace>)" };
        var watch = new Option<bool>("--watch", "-w") { Description = "Redraw whenever it changes (Ctrl-C ends)" };
        var output = Globals.OutputOption();
        var get = new Command("get", "Rings, workspaces, images (old → new), gates with their last values, soak time left and approvals.") { name, watch, output };
        get.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            string? last = null;
            do
            {
                var rollout = await kube.GetAsync<Rollout>(kube.Namespace, r.GetValue(name)!, ct);
                var approvals = (await kube.ListAsync<Approval>(kube.Namespace, ct)).Where(a => a.Spec.Target.Kind == Api.V1Alpha1.Rollout.KubeKind && a.Spec.Target.Name == rollout.Metadata.Name).ToList();
                var view = View(rollout, approvals, DateTime.UtcNow);
                var text = r.GetValue(output) is { } format ? Output.Render(view, format) : RenderRollout(view);
                if (text != last)
                {
                    if (r.GetValue(watch) && last is not null) Console.Write(Console.IsOutputRedirected ? "---\n" : "\u001b[H\u001b[2J");
                    Console.Write(text);
                    last = text;
                }

                if (!r.GetValue(watch)) break;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            while (!ct.IsCancellationRequested);
            return 0;
        });
        cmd.Add(get);
        cmd.Add(Control(g, "pause", "Pause: no next step is taken (a ring in progress keeps its gates watched). Sets spec.paused=true.", (_, _) => new JsonObject { ["paused"] = true }));
        cmd.Add(Control(g, "resume", "Resume a paused Rollout. Sets spec.paused=false.", (_, _) => new JsonObject { ["paused"] = false }));
        cmd.Add(Control(g, "abort", "Abort: stop and roll every touched namespace back to its recorded previous images. Sets spec.abort=true.", (_, _) => new JsonObject { ["abort"] = true }));
        var ring = new Option<string?>("--ring") { Description = "The ring whose soak ends early (default: the current ring)" };
        cmd.Add(Control(g, "promote", "End the current ring's soak early. Sets spec.promote=<ring>: it takes effect once the ring has rolled out with its gates holding and the new generation is approved as the Rollout's environment requires (by someone else: you become an author of it). Refused while a gate fails.",
            (r, rollout) =>
            {
                var target = r.GetValue(ring) ?? rollout.Status?.CurrentRing
                    ?? throw new CliError($"rollout {rollout.Metadata.Name} has no current ring (phase {rollout.Status?.Phase?.ToString() ?? "none yet"}): name one with --ring");
                if (rollout.Spec.Rings.All(x => x.Name != target)) throw new CliError($"--ring: \"{target}\" is not a ring of rollout {rollout.Metadata.Name} ({string.Join(", ", rollout.Spec.Rings.Select(x => x.Name))})");
                if (rollout.Status?.Rings?.FirstOrDefault(x => x.Name == target)?.Phase is RingPhase.Succeeded) throw new CliError($"ring {target} of rollout {rollout.Metadata.Name} already succeeded: nothing to promote");
                if (rollout.Status?.Phase is RolloutPhase.RolledBack or RolloutPhase.Succeeded or RolloutPhase.Failed) throw new CliError($"rollout {rollout.Metadata.Name} is {rollout.Status.Phase}: nothing to promote");
                return new JsonObject { ["promote"] = target };
            }, ring));
        return cmd;
    }

    static Command Control(Globals g, string verb, string description, Func<ParseResult, Api.V1Alpha1.Rollout, JsonObject> spec, params Option[] extra)
    {
        var name = new Argument<string>("name") { Description = "The Rollout's name (in -n <workspace>)" };
        var cmd = new Command(verb, description) { name };
        foreach (var o in extra) cmd.Add(o);
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var rollout = await kube.GetAsync<Api.V1Alpha1.Rollout>(kube.Namespace, r.GetValue(name)!, ct);
            var patch = spec(r, rollout);
            var updated = await kube.MergePatchAsync<Api.V1Alpha1.Rollout>(kube.Namespace, rollout.Metadata.Name, new JsonObject { ["spec"] = patch }, ct);
            var what = string.Join(", ", patch.Select(kv => $"spec.{kv.Key}={kv.Value!.ToJsonString().Trim('"')}"));
            Console.WriteLine($"rollout.controlplane.io/{rollout.Metadata.Name} {(updated.Metadata.Generation == rollout.Metadata.Generation ? "unchanged" : "patched")} ({what}; generation {updated.Metadata.Generation})");
            if (verb == "promote" && updated.Metadata.Generation != rollout.Metadata.Generation)
            {
                Console.WriteLine($"  the promotion needs an approval of generation {updated.Metadata.Generation} by an Approver other than you: kubectl controlplane approve rollout/{rollout.Metadata.Name} -n {kube.Namespace}");
            }

            return 0;
        });
        return cmd;
    }

    public static RolloutView View(Api.V1Alpha1.Rollout r, IReadOnlyList<Approval> approvals, DateTime now)
    {
        var s = r.Status;
        var previous = s?.Previous?.FirstOrDefault()?.Containers ?? [];
        var images = (r.Spec.Target.Containers ?? []).Select(c =>
        {
            var old = previous.FirstOrDefault(p => p.Name == c.Name)?.Image;
            return old is null || old == c.Image ? $"{c.Name}: {c.Image}" : $"{c.Name}: {old} → {c.Image}";
        }).ToList();
        var gates = new List<string>();
        var current = s?.Rings?.FirstOrDefault(x => x.Name == s.CurrentRing) ?? s?.Rings?.LastOrDefault(x => x.Phase is not (null or RingPhase.Pending));
        if (r.Spec.Gates is { } gg)
        {
            gates.Add($"progressDeadline {gg.ProgressDeadline}");
            gates.Add($"incidents {current?.Incidents?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"} (max {gg.MaxIncidents})");
            if (gg.SuccessRate is { } sr) gates.Add($"successRate {Output.Number(current?.SuccessRate)} (min {Output.Number(sr.Threshold)})");
        }

        var rings = r.Spec.Rings.Select(ring =>
        {
            var rs = s?.Rings?.FirstOrDefault(x => x.Name == ring.Name);
            string? left = null;
            if (rs is { Phase: RingPhase.Soaking, RolledOutAt: { } at } && Durations.TryParse(ring.Soak, out var soak)) left = Output.Age(at + soak - now);
            var workspaces = rs?.Workspaces ?? ring.Workspaces ?? (ring.Selector?.MatchLabels is { } ml ? [string.Join(",", ml.Select(kv => $"{kv.Key}={kv.Value}"))] : []);
            return new RingView(ring.Name, rs?.Phase?.ToString() ?? "Pending", workspaces, ring.Soak, left, rs?.SuccessRate, rs?.Incidents, ring.RequiresApproval);
        }).ToList();
        var conditions = (s?.Conditions ?? []).Select(c => new Cond(c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration)).ToList();
        var approvalLines = approvals.OrderBy(a => a.Metadata.CreationTimestamp).Select(a =>
        {
            var ready = a.Status?.Conditions?.FirstOrDefault(c => c.Type == ApprovalConditions.Ready);
            return $"{a.Spec.Approver ?? "?"} {a.Spec.Decision}s generation {a.Spec.TargetGeneration?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"}: {(ready is null ? "not judged yet" : ready.Status == "True" ? "counts" : $"does not count ({ready.Reason})")}";
        }).ToList();
        var rollback = s?.Rollback is { } rb ? $"{rb.Gate} in ring {rb.Ring}: {rb.Value} (limit {rb.Limit}), {rb.SecondsToIssue?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"}s to issue" : null;
        return new RolloutView(r.Metadata.Name, r.Metadata.NamespaceProperty, r.Metadata.Generation ?? 0, s?.Phase?.ToString() ?? "Pending", s?.CurrentRing, s?.Progress,
            r.Spec.Paused, r.Spec.Abort, r.Spec.Promote, images, gates, rings, conditions, approvalLines, rollback);
    }

    public static string RenderRollout(RolloutView v)
    {
        var w = new StringBuilder();
        w.AppendLine($"Name:          {v.Name}");
        w.AppendLine($"Namespace:     {v.Namespace}");
        w.AppendLine($"Generation:    {v.Generation}");
        w.AppendLine($"Phase:         {v.Phase}{(v.Progress is null ? "" : $" ({v.Progress} rings)")}{(v.CurrentRing is null ? "" : $", current ring {v.CurrentRing}")}");
        var controls = new List<string>();
        if (v.Paused) controls.Add("paused");
        if (v.Abort) controls.Add("abort");
        if (v.Promote is not null) controls.Add($"promote {v.Promote}");
        if (controls.Count > 0) w.AppendLine($"Controls:      {string.Join(", ", controls)}");
        w.AppendLine($"Images:        {string.Join("; ", v.Images)}");
        if (v.Gates.Count > 0) w.AppendLine($"Gates:         {string.Join("; ", v.Gates)}");
        if (v.Rollback is not null) w.AppendLine($"Rollback:      {v.Rollback}");
        w.AppendLine("Rings:");
        w.Append(Indent(Output.Table(["NAME", "PHASE", "WORKSPACES", "SOAK", "SOAK LEFT", "SUCCESS", "INCIDENTS", "APPROVAL"],
            v.Rings.Select(x => (IReadOnlyList<string>)[x.Name, x.Phase, x.Workspaces.Count == 0 ? "-" : string.Join(",", x.Workspaces), x.Soak, x.SoakLeft ?? "-",
                Output.Number(x.SuccessRate), x.Incidents?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-", x.RequiresApproval ? "required" : "-"]))));
        w.AppendLine("Conditions:");
        foreach (var c in v.Conditions) w.AppendLine($"  {c.Type}={c.Status} ({c.Reason}): {c.Message}");
        w.AppendLine(v.Approvals.Count == 0 ? "Approvals:     none" : "Approvals:");
        foreach (var a in v.Approvals) w.AppendLine($"  {a}");
        return w.ToString();
    }

    static string Indent(string text) => string.Concat(text.Split('\n').Where(l => l.Length > 0).Select(l => "  " + l + "\n"));
}
