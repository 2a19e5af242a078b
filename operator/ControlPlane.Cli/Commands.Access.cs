using System.CommandLine;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Cli;

/// <summary>An AccessRequest as `access list` and `access request` show it.</summary>
public sealed record AccessRow(
    string Namespace, string Name, string Phase, string? Requester, string Role, string Duration, string? Ticket,
    string? ApprovedBy, DateTime? ExpiresAt, string? Remaining, string? Reason, string? Message);

/// <summary>What `access request` created, and who must approve it.</summary>
public sealed record AccessRequestOutlook(AccessRow Request, string? Approval, int? Missing, int? Required, string Approvers, string ApproveWith);

public static partial class Commands
{
    /// <summary>The workspace roles a request may name: the enum of spec.role in the API (the CRD's own list).</summary>
    public static readonly IReadOnlyList<string> AccessRoles =
        typeof(AccessRequestSpec).GetProperty(nameof(AccessRequestSpec.Role))!.GetCustomAttribute<EnumAttribute>()!.Values;

    static readonly KindInfo AccessRequests = Kinds.All.First(k => k.Kind == AccessRequest.KubeKind);

    public static Command Access(Globals g)
    {
        var cmd = new Command("access", "Just-in-time access: ask for a workspace role for a while (AccessRequest), approve or reject a request, revoke a grant early, list requests.");
        cmd.Add(AccessRequestCommand(g));
        cmd.Add(AccessDecision(g, "approve"));
        cmd.Add(AccessDecision(g, "reject"));
        cmd.Add(AccessRevoke(g));
        cmd.Add(AccessList(g));
        return cmd;
    }

    static Command AccessRequestCommand(Globals g)
    {
        var workspace = new Argument<string>("workspace") { Description = "The workspace the access is for (the AccessRequest is created in its namespace)" };
        var role = new Option<string>("--role") { Description = $"The workspace role asked for: {string.Join(", ", AccessRoles)} (never above the tenant's spec.accessPolicy.maxRole, default Operator)", Required = true };
        role.AcceptOnlyFromAmong([.. AccessRoles]);
        var duration = new Option<string>("--duration") { Description = "How long the grant lasts from approval, e.g. 30m, 2h (at most the tenant's spec.accessPolicy.maxDuration, default 8h)", Required = true };
        var justification = new Option<string>("--justification") { Description = "Why (at least 20 characters and 4 distinct words): shown to the approvers, kept in the audit trail", Required = true };
        var ticket = new Option<string?>("--ticket") { Description = "A ticket or incident reference, e.g. OPS-1234" };
        var name = new Option<string?>("--name") { Description = "The AccessRequest's name (default: <role>-<random>)" };
        var wait = new Option<bool>("--wait") { Description = "Follow the request until it is Active (exit 0) or ends without a grant (exit 3)" };
        var timeout = TimeoutOption();
        var output = Globals.OutputOption();
        var cmd = new Command("request", "Ask for a workspace role for a while: creates an AccessRequest as you (the webhook stamps you as the requester) and prints who must approve it. Nobody can approve their own request.")
        {
            workspace, role, duration, justification, ticket, name, wait, timeout, output,
        };
        cmd.Validators.Add(v =>
        {
            if (v.GetValue(duration) is { } d && !Durations.TryParse(d, out _)) v.AddError($"--duration: \"{d}\" is not a duration (e.g. 30m, 2h, 1h30m)");
        });
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var ns = r.GetValue(workspace)!;
            var requestName = r.GetValue(name) ?? $"{Kebab(r.GetValue(role)!)}-{Suffix()}";
            var created = await kube.CreateAsync(ns, new AccessRequest
            {
                ApiVersion = ApiGroup.ApiVersion,
                Metadata = new V1ObjectMeta { Name = requestName },
                Spec = new AccessRequestSpec { Role = r.GetValue(role)!, Duration = r.GetValue(duration)!, Justification = r.GetValue(justification)!, Ticket = r.GetValue(ticket) },
            }, ct);
            var format = r.GetValue(output);
            if (format is null) Console.WriteLine($"accessrequest.controlplane.io/{created.Metadata.Name} created in {ns}: {created.Spec.Role} for {created.Spec.Duration} as {Requester(created) ?? "you"}");

            // The operator's first verdict says how many approvals it needs (one outside prod, two in prod): poll for it briefly, as `approve` does.
            var current = created;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (current.Status?.ObservedGeneration != current.Metadata.Generation && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
                current = await kube.GetAsync<AccessRequest>(ns, requestName, ct);
            }

            var outlook = Outlook(current, DateTime.UtcNow);
            if (format is not null && !r.GetValue(wait))
            {
                Console.Write(Output.Render(outlook, format));
                return 0;
            }

            if (format is null) Console.Write(DescribeRequest(outlook));
            if (!r.GetValue(wait)) return 0;
            var done = await FollowAsync(r.GetValue(timeout), ct, async () => await kube.GetAsync<AccessRequest>(ns, requestName, ct),
                a => a.Status?.Phase?.ToString() ?? "Pending",
                a => a.Status?.Conditions?.FirstOrDefault(c => c.Type == AccessRequestConditions.Ready)?.Message,
                a => a.Status?.Phase is AccessRequestPhase.Active or AccessRequestPhase.Expired or AccessRequestPhase.Revoked or AccessRequestPhase.Rejected);
            if (format is not null) Console.Write(Output.Render(Outlook(done, DateTime.UtcNow), format));
            if (done.Status?.Phase != AccessRequestPhase.Active)
            {
                var ready = done.Status?.Conditions?.FirstOrDefault(c => c.Type == AccessRequestConditions.Ready);
                throw new CliError($"accessrequest {requestName} is {done.Status?.Phase}: {ready?.Reason}: {ready?.Message}", 3);
            }

            if (format is null) Console.WriteLine($"active: {done.Spec.Role} in {ns} until {Output.Time(done.Status.ExpiresAt)} (RoleBinding {done.Status.RoleBinding})");
            return 0;
        });
        return cmd;
    }

    /// <summary>`access approve|reject name`: the Approval `approve accessrequest/name` creates, without typing the kind.</summary>
    static Command AccessDecision(Globals g, string verb)
    {
        var decision = verb == "approve" ? "approve" : "reject";
        var name = new Argument<string>("name") { Description = $"The AccessRequest to {verb} (in -n <workspace>)" };
        var comment = new Option<string?>("--comment", "-m") { Description = "Why: kept with the Approval in the audit trail" };
        var wait = new Option<TimeSpan>("--wait") { Description = "How long to wait for the operator's verdict on the Approval (0: do not wait)", DefaultValueFactory = _ => TimeSpan.FromSeconds(60) };
        var output = Globals.OutputOption();
        var cmd = new Command(verb, decision == "approve"
            ? "Approve an AccessRequest (same as: approve accessrequest/<name>): creates an Approval as you and prints what it still needs. Exit code 3 when the Approval does not count (your own request, not an Approver, ...)."
            : "Reject an AccessRequest (same as: reject accessrequest/<name>): any counting reject ends it as Rejected.")
        {
            name, comment, wait, output,
        };
        cmd.SetAction((r, ct) => ApproveAsync(g, r, AccessRequests, r.GetValue(name)!, decision, r.GetValue(comment), r.GetValue(wait), r.GetValue(output), ct));
        return cmd;
    }

    static Command AccessRevoke(Globals g)
    {
        var name = new Argument<string>("name") { Description = "The AccessRequest whose grant ends now (in -n <workspace>)" };
        var cmd = new Command("revoke", "End a grant (or a pending request) now: sets spec.revoke=true; the operator deletes its RoleBinding and audits access.revoked. Cannot be undone.") { name };
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var request = await kube.GetAsync<AccessRequest>(kube.Namespace, r.GetValue(name)!, ct);
            if (request.Status?.Phase is AccessRequestPhase.Expired or AccessRequestPhase.Rejected)
            {
                throw new CliError($"accessrequest {request.Metadata.Name} is {request.Status.Phase}: it grants nothing, there is nothing to revoke");
            }

            if (request.Spec.Revoke == true)
            {
                Console.WriteLine($"accessrequest.controlplane.io/{request.Metadata.Name} unchanged (already revoked; phase {request.Status?.Phase?.ToString() ?? "Pending"})");
                return 0;
            }

            await kube.MergePatchAsync<AccessRequest>(kube.Namespace, request.Metadata.Name, new JsonObject { ["spec"] = new JsonObject { ["revoke"] = true } }, ct);
            Console.WriteLine($"accessrequest.controlplane.io/{request.Metadata.Name} revoked (spec.revoke=true): the operator deletes RoleBinding {AccessBindingPrefix}{request.Metadata.Name} and audits access.revoked");
            return 0;
        });
        return cmd;
    }

    static Command AccessList(Globals g)
    {
        var all = new Option<bool>("--all-namespaces", "-A") { Description = "Every namespace you may list" };
        var output = Globals.OutputOption();
        var cmd = new Command("list", "AccessRequests, newest first: phase, requester, role, duration, expiry and time remaining.") { all, output };
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var requests = await kube.ListAsync<AccessRequest>(r.GetValue(all) ? null : kube.Namespace, ct);
            var now = DateTime.UtcNow;
            var rows = requests.OrderByDescending(a => a.Metadata.CreationTimestamp).ThenBy(a => a.Metadata.Name, StringComparer.Ordinal).Select(a => Row(a, now)).ToList();
            if (r.GetValue(output) is { } format)
            {
                Console.Write(Output.Render(rows, format));
                return 0;
            }

            Console.Write(RenderAccessList(rows, r.GetValue(all) ? null : kube.Namespace));
            return 0;
        });
        return cmd;
    }

    /// <summary>The RoleBinding that carries a request's grant is this prefix and the request's name (the operator's AccessRequestResources).</summary>
    public const string AccessBindingPrefix = "controlplane-access-";

    /// <summary>"WorkspaceAdmin" → "workspace-admin": a role as a name part.</summary>
    public static string Kebab(string role) =>
        string.Concat(role.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));

    static string? Requester(AccessRequest a) =>
        a.Status?.Requester ?? (a.Metadata.Annotations?.TryGetValue(ApiGroup.CreatedByAnnotation, out var by) == true ? by : null);

    /// <summary>A request as a row: remaining time only while Active (until status.expiresAt, as the operator recorded it).</summary>
    public static AccessRow Row(AccessRequest a, DateTime now)
    {
        var ready = a.Status?.Conditions?.FirstOrDefault(c => c.Type == AccessRequestConditions.Ready);
        var remaining = a.Status is { Phase: AccessRequestPhase.Active, ExpiresAt: { } expires } ? Output.Age(expires.ToUniversalTime() - now) : null;
        return new AccessRow(a.Metadata.NamespaceProperty ?? "", a.Metadata.Name, a.Status?.Phase?.ToString() ?? "Pending", Requester(a), a.Spec.Role, a.Spec.Duration,
            a.Spec.Ticket, a.Status?.ApprovedBy, a.Status?.ExpiresAt, remaining, ready?.Reason, ready?.Message);
    }

    /// <summary>Who must approve a request, from the operator's Approved condition ("0 of 1 approval(s) ...") when it has judged it.</summary>
    public static AccessRequestOutlook Outlook(AccessRequest a, DateTime now)
    {
        var approved = a.Status?.Conditions?.FirstOrDefault(c => c.Type == AccessRequestConditions.Approved);
        var (have, required) = Counts(approved?.Message);
        var ns = a.Metadata.NamespaceProperty ?? "";
        return new AccessRequestOutlook(Row(a, now), approved?.Message, required is { } q && have is { } h ? Math.Max(0, q - h) : null, required,
            RolesFor(AccessRequest.KubeKind, ns), $"kubectl controlplane access approve {a.Metadata.Name} -n {ns}");
    }

    public static string DescribeRequest(AccessRequestOutlook o)
    {
        var w = new StringBuilder();
        w.AppendLine($"  phase:        {o.Request.Phase}{(o.Request.Reason is null ? "" : $" ({o.Request.Reason})")}");
        if (o.Approval is not null) w.AppendLine($"  approval:     {o.Approval}");
        if (o.Request.Phase is "Pending")
        {
            w.AppendLine(o.Missing is { } missing
                ? $"  still needs:  {missing} approval(s) (of {o.Required}) from {o.Approvers}"
                : $"  still needs:  approvals from {o.Approvers} (one outside prod, two in prod)");
            w.AppendLine($"  approve with: {o.ApproveWith} (by someone else)");
        }
        else if (o.Request.Message is not null)
        {
            w.AppendLine($"  status:       {o.Request.Message}");
        }

        return w.ToString();
    }

    public static string RenderAccessList(IReadOnlyList<AccessRow> rows, string? ns)
    {
        if (rows.Count == 0) return ns is null ? "no access requests\n" : $"no access requests in namespace {ns}\n";
        return Output.Table(["NAMESPACE", "NAME", "PHASE", "REQUESTER", "ROLE", "DURATION", "EXPIRES", "REMAINING"],
            rows.Select(a => (IReadOnlyList<string>)[a.Namespace, a.Name, a.Phase, a.Requester ?? "-", a.Role, a.Duration, Output.Time(a.ExpiresAt), a.Remaining ?? "-"]));
    }
}
