using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Cli;

/// <summary>What a target still needs after an approval, as its status and the approval's conditions say.</summary>
public sealed record ApprovalOutlook(
    string Approval, string Decision, bool Counts, string? Reason, string? Message,
    bool TargetApproved, string? TargetReason, string? TargetMessage, int? Missing, int? Required, IReadOnlyList<string> Authors, string Roles);

public static partial class Commands
{
    public static Command Approve(Globals g, string verb)
    {
        var decision = verb == "approve" ? "approve" : "reject";
        var target = new Argument<string>("target") { Description = $"<kind>/<name> of the object to {verb}: {string.Join(", ", Kinds.Approvable)} (also plural or short names: rollouts/orders, di/payments)" };
        var comment = new Option<string?>("--comment", "-m") { Description = "Why: kept with the Approval in the audit trail" };
        var wait = new Option<TimeSpan>("--wait") { Description = "How long to wait for the operator's verdict on the Approval (0: do not wait)", DefaultValueFactory = _ => TimeSpan.FromSeconds(60) };
        var output = Globals.OutputOption();
        var cmd = new Command(verb, decision == "approve"
            ? "Approve an object's current generation: creates an Approval as you (the webhook stamps your identity), then prints what the object still needs: how many more approvals, from which roles, and who may not approve because they authored it. Exit code 3 when the Approval was created but does not count (self-approval, not an Approver, ...)."
            : "Reject an object's current generation: creates an Approval with decision reject as you; any counting reject blocks the generation.")
        {
            target, comment, wait, output,
        };
        cmd.SetAction(async (r, ct) =>
        {
            var (kind, name) = Kinds.ApprovableTarget(r.GetValue(target)!);
            return await ApproveAsync(g, r, kind, name, decision, r.GetValue(comment), r.GetValue(wait), r.GetValue(output), ct);
        });
        return cmd;
    }

    /// <summary>
    /// Creates the caller's Approval of the object's current generation and prints what the object still needs
    /// (shared by `approve|reject kind/name` and `access approve|reject name`). Exit code 3 when it does not count.
    /// </summary>
    static async Task<int> ApproveAsync(Globals g, ParseResult r, KindInfo kind, string name, string decision, string? comment, TimeSpan wait, string? format, CancellationToken ct)
    {
        using var kube = g.Connect(r);
        var ns = kube.Namespace;
        var obj = await kube.GetNodeAsync(kind, ns, name, ct);
        var approval = new Approval
        {
            ApiVersion = ApiGroup.ApiVersion,
            Metadata = new V1ObjectMeta { Name = ApprovalName(name, decision) },
            Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = kind.Kind, Name = name }, Decision = decision, Comment = comment },
        };
        var created = await kube.CreateAsync(ns, approval, ct);
        var outlook = await OutlookAsync(kube, kind, ns, name, created, wait, ct);
        if (format is not null)
        {
            Console.Write(Output.Render(outlook, format));
        }
        else
        {
            Console.Write(Describe(outlook, kind.Kind, name, ns, created.Spec.Approver, Obj.Generation(obj)));
        }

        return outlook.Counts || outlook.Reason is null ? 0 : 3;
    }

    /// <summary>A readable, unique name: the target, the decision and a random suffix, within 253 characters.</summary>
    static string ApprovalName(string target, string decision)
    {
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        var stem = $"{target}-{decision}";
        return (stem.Length > 240 ? stem[..240] : stem) + "-" + suffix;
    }

    static async Task<ApprovalOutlook> OutlookAsync(Kube kube, KindInfo kind, string ns, string name, Approval created, TimeSpan wait, CancellationToken ct)
    {
        var approvals = Kinds.All.First(k => k.Kind == Approval.KubeKind);
        var deadline = DateTime.UtcNow + wait;
        JsonObject current = JsonNode.Parse(k8s.KubernetesJson.Serialize(created))!.AsObject();
        // The operator's verdict is written to the Approval's status at its generation: poll, the way kubectl wait does.
        while (true)
        {
            var ready = Obj.Condition(current, ApprovalConditions.Ready);
            var target = Obj.Condition(current, ApprovalConditions.TargetApproved);
            if ((ready is not null && target is not null && Obj.ObservedGeneration(current) == Obj.Generation(current)) || DateTime.UtcNow >= deadline) break;
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            current = await kube.GetNodeAsync(approvals, ns, created.Metadata.Name, ct);
        }

        var obj = await kube.GetNodeAsync(kind, ns, name, ct);
        var verdict = Obj.Condition(current, ApprovalConditions.Ready);
        var targetState = Obj.Condition(current, ApprovalConditions.TargetApproved);
        var (have, required) = Counts(targetState?.Message);
        return new ApprovalOutlook(created.Metadata.Name, created.Spec.Decision, verdict?.Status == "True", verdict?.Reason, verdict?.Message,
            targetState?.Status == "True", targetState?.Reason, targetState?.Message,
            required is { } req && have is { } h ? Math.Max(0, req - h) : null, required, AuthorsOf(obj), RolesFor(kind.Kind, ns));
    }

    /// <summary>"1 of 2 approval(s) for generation 3" → (1, 2).</summary>
    public static (int? Have, int? Required) Counts(string? message)
    {
        var m = message is null ? null : CountPattern().Match(message);
        return m is { Success: true } ? (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)) : (null, null);
    }

    [GeneratedRegex(@"(\d+) of (\d+) approval")]
    private static partial Regex CountPattern();

    /// <summary>Who wrote the generation under review, as the admission webhook stamped it: they may not approve it.</summary>
    public static IReadOnlyList<string> AuthorsOf(JsonObject obj)
    {
        var authors = new List<string>();
        void Add(string? user)
        {
            if (user is { Length: > 0 } && !authors.Contains(user)) authors.Add(user);
        }

        Add(Obj.Annotation(obj, ApiGroup.CreatedByAnnotation));
        Add(Obj.Annotation(obj, ApiGroup.LastSpecEditorAnnotation));
        foreach (var editor in JsonArrayOf(Obj.Annotation(obj, ApiGroup.SpecEditorsAnnotation))) Add(editor is JsonValue v && v.TryGetValue<string>(out var s) ? s : null);
        foreach (var onBehalf in JsonArrayOf(Obj.Annotation(obj, ApiGroup.OnBehalfOfAnnotation))) Add(Obj.Str(onBehalf?["user"]));
        return authors;
    }

    static JsonArray JsonArrayOf(string? text)
    {
        if (string.IsNullOrEmpty(text)) return [];
        try
        {
            return JsonNode.Parse(text) as JsonArray ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    static string RolesFor(string kind, string ns) => kind switch
    {
        "Rollout" or "DeploymentIntent" => $"distinct people holding Approver or WorkspaceAdmin in {ns} (and in every prod workspace its rings reach); two in prod",
        "Restore" => $"distinct people holding Approver or WorkspaceAdmin in {ns}; two in prod, one for an in-place restore elsewhere",
        "AccessRequest" => $"distinct people holding Approver or WorkspaceAdmin in {ns}, never the requester (nor through a group); two in prod",
        _ => $"distinct people holding Approver or WorkspaceAdmin in {ns}; two in prod",
    };

    static string Describe(ApprovalOutlook o, string kind, string name, string ns, string? approver, long generation)
    {
        var w = new System.Text.StringBuilder();
        w.AppendLine($"approval.controlplane.io/{o.Approval} created in {ns}: {o.Decision} {kind} {name} generation {generation}{(approver is null ? "" : $" as {approver}")}");
        if (o.Reason is null)
        {
            w.AppendLine("  verdict:      not yet (the operator has not judged it; see kubectl get approval " + o.Approval + " -n " + ns + ")");
        }
        else
        {
            w.AppendLine(o.Counts ? $"  verdict:      counts ({o.Reason}): {o.Message}" : $"  verdict:      DOES NOT COUNT ({o.Reason}): {o.Message}");
        }

        if (o.TargetReason is not null) w.AppendLine($"  {kind}:{new string(' ', Math.Max(1, 13 - kind.Length))}{(o.TargetApproved ? "approved" : o.TargetReason)}: {o.TargetMessage}");
        if (!o.TargetApproved && o.TargetReason != ApprovalReasons.Rejected)
        {
            w.AppendLine(o.Missing is { } missing
                ? $"  still needs:  {missing} more approval(s) of generation {generation} (of {o.Required}), from {o.Roles}"
                : $"  still needs:  approvals from {o.Roles}");
        }

        w.AppendLine(o.Authors.Count == 0 ? "  authors:      none on record" : $"  may not approve (authors of this generation): {string.Join(", ", o.Authors)}");
        return w.ToString();
    }
}
