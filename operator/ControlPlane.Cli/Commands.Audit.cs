using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using k8s;
using k8s.Autorest;

namespace ControlPlane.Cli;

public static partial class Commands
{
    public const string AuditGroup = "audit.controlplane.io";
    public const string AuditVersion = "v1alpha1";

    sealed record AuditQuery(string? Namespace, string Resource, string? LabelSelector, string? FieldSelector);

    public static Command Audit(Globals g)
    {
        var tenant = new Option<string?>("--tenant") { Description = "Only this tenant's rows (label audit.controlplane.io/tenant)" };
        var workspace = new Option<string[]>("--workspace", "-w") { Description = "The workspace(s) to read (default: -n); repeat for several", AllowMultipleArgumentsPerToken = true };
        var kind = new Option<string?>("--kind") { Description = "Only rows about this kind (Workspace, Rollout, ...)" };
        var actor = new Option<string?>("--actor") { Description = "Only rows by this user" };
        var since = new Option<string?>("--since") { Description = "Only rows at or after this time: RFC 3339 (2026-12-07T10:00:00Z) or an age (30m, 2h, 7d)" };
        var all = new Option<bool>("--all-namespaces", "-A") { Description = "Every row (platform auditors): platform events and every tenant's" };
        var deployments = new Option<bool>("--deployments") { Description = "DeploymentEvents (the DeploymentIntent event store) instead of AuditEvents" };
        var chunk = ChunkSizeOption();
        var output = Globals.OutputOption();
        var cmd = new Command("audit", "The audit trail through the Kubernetes API (audit.controlplane.io/v1alpha1): list it with filters, or verify its hash chain.")
        {
            tenant, workspace, kind, actor, since, all, deployments, chunk, output,
        };
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            if (r.GetValue(deployments) && r.GetValue(kind) is not null) throw new CliError("--kind: DeploymentEvents have no kind (they are all about DeploymentIntents); drop --kind or --deployments", 2);
            var limit = ChunkSize(r.GetValue(chunk));
            var queries = await QueriesAsync(kube, r.GetValue(all), r.GetValue(workspace), r.GetValue(deployments), r.GetValue(tenant), r.GetValue(kind), r.GetValue(actor), Since(r.GetValue(since)), ct);
            var rows = new List<JsonObject>();
            foreach (var q in queries) rows.AddRange(await ListAuditAsync(kube, q, limit, ct));
            rows = rows.OrderBy(o => Obj.Long(o["chain"]?["sequence"]) ?? 0).ToList();
            if (r.GetValue(output) is { } format)
            {
                Console.Write(Output.Render(new JsonArray(rows.Select(x => x.DeepClone()).ToArray()), format));
                return 0;
            }

            if (rows.Count == 0)
            {
                Console.WriteLine("no audit rows match");
                return 0;
            }

            var isDeployment = r.GetValue(deployments);
            Console.Write(isDeployment
                ? Output.Table(["SEQ", "NAMESPACE", "OCCURRED", "INTENT", "TYPE", "FROM", "TO", "RING", "ACTOR", "REASON"], rows.Select(o =>
                {
                    var e = o["event"] as JsonObject ?? [];
                    return (IReadOnlyList<string>)[Obj.Name(o), Obj.Str(o["metadata"]?["namespace"]) ?? "", Obj.Str(e["occurredAt"]) ?? "", Obj.Str(e["name"]) ?? "", Obj.Str(e["eventType"]) ?? "",
                        Obj.Str(e["fromPhase"]) ?? "-", Obj.Str(e["toPhase"]) ?? "-", Obj.Str(e["ring"]) ?? "-", Obj.Str(e["actor"]) ?? "", Obj.Str(e["reason"]) ?? ""];
                }))
                : Output.Table(["SEQ", "NAMESPACE", "OCCURRED", "ACTOR", "ACTION", "KIND", "OBJECT", "SEVERITY", "TENANT"], rows.Select(o =>
                {
                    var e = o["event"] as JsonObject ?? [];
                    return (IReadOnlyList<string>)[Obj.Name(o), Obj.Str(o["metadata"]?["namespace"]) ?? "", Obj.Str(e["occurredAt"]) ?? "", Obj.Str(e["actor"]) ?? "", Obj.Str(e["action"]) ?? "",
                        Obj.Str(e["kind"]) ?? "", Obj.Str(e["objectName"]) ?? "", Obj.Str(e["severity"]) ?? "", Obj.Str(e["tenant"]) ?? "-"];
                })));
            return 0;
        });

        var verifyTenant = new Option<string?>("--tenant") { Description = "The tenant whose chain to verify (default: the tenant whose rows -n's workspace serves)" };
        var verifyWorkspaces = new Option<string[]>("--workspace", "-w") { Description = "The tenant's workspaces to read (default: every workspace of the tenant you may list, else -n's); repeat for several", AllowMultipleArgumentsPerToken = true };
        var verifyAll = new Option<bool>("--all-namespaces", "-A") { Description = "Verify the global chain over every row (platform auditors)" };
        var verifyDeployments = new Option<bool>("--deployments") { Description = "Verify the DeploymentEvent chain instead of the AuditEvent chain" };
        var verifyChunk = ChunkSizeOption();
        var verifyOutput = Globals.OutputOption();
        var verify = new Command("verify", "Recompute the hash chain from what the API returns and report the first break with its sequence number (exit code 4). A tenant auditor verifies their tenant's own chain (every row of the tenant's workspaces, no other tenant's); -A verifies the global chain.")
        {
            verifyTenant, verifyWorkspaces, verifyAll, verifyDeployments, verifyChunk, verifyOutput,
        };
        verify.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var resource = r.GetValue(verifyDeployments) ? "deploymentevents" : "auditevents";
            var limit = ChunkSize(r.GetValue(verifyChunk));
            ChainReport report;
            if (r.GetValue(verifyAll))
            {
                var rows = await ListAuditAsync(kube, new AuditQuery(null, resource, null, null), limit, ct);
                report = AuditChain.VerifyGlobal(rows.Select(AuditRow.From).ToList());
            }
            else
            {
                var tenantName = r.GetValue(verifyTenant);
                var given = r.GetValue(verifyWorkspaces) is { Length: > 0 } w ? w.Distinct(StringComparer.Ordinal).ToList() : null;
                // The tenant of -n's workspace: from the Workspace when the caller may read it (a tenant auditor usually may not),
                // else from the rows the namespace serves (a namespace serves only the rows of the tenant that owns it now).
                tenantName ??= given is null ? await TenantOfWorkspaceAsync(kube, kube.Namespace, ct) : null;
                var namespaces = given ?? (tenantName is null ? [kube.Namespace] : await WorkspacesOfAsync(kube, tenantName, ct));
                var label = tenantName is null ? null : TenantLabel + "=" + tenantName;
                var items = new List<JsonObject>();
                foreach (var ns in namespaces)
                {
                    items.AddRange(await ListAuditAsync(kube, new AuditQuery(ns, resource, label, null), limit, ct));
                }

                if (tenantName is null)
                {
                    var tenants = items.Select(i => Obj.Str(i["metadata"]?["labels"]?[TenantLabel])).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
                    tenantName = tenants.Count switch
                    {
                        1 => tenants[0],
                        0 => throw new CliError($"which tenant? no {resource} of a tenant in namespace(s) {string.Join(", ", namespaces)}: pass --tenant (and -w for each of its workspaces), or -A for the global chain"),
                        _ => throw new CliError($"which tenant? the namespaces read serve rows of several tenants ({string.Join(", ", tenants)}): pass --tenant"),
                    };
                    items = items.Where(i => Obj.Str(i["metadata"]?["labels"]?[TenantLabel]) == tenantName).ToList();
                }

                report = AuditChain.VerifyTenant(tenantName, items.Select(AuditRow.From).GroupBy(x => x.Sequence).Select(x => x.First()).ToList());
            }

            var chainName = report.Chain == "global" ? $"{resource} global chain" : $"{resource} chain of {report.Chain}";
            if (r.GetValue(verifyOutput) is { } format)
            {
                Console.Write(Output.Render(report, format));
            }
            else if (report.FirstBreak is { } b)
            {
                Console.WriteLine($"{chainName}: BROKEN at sequence {b.Sequence} (row {b.Row}): {b.Problem}");
            }
            else
            {
                Console.WriteLine($"{chainName}: intact ({report.Rows} row(s) read{(report.Chain == "global" ? "" : $", {report.RowsOnTenantChain} on the tenant chain")})");
            }

            return report.FirstBreak is null ? 0 : 4;
        });
        cmd.Add(verify);
        return cmd;
    }

    const string TenantLabel = "audit.controlplane.io/tenant";

    /// <summary>--chunk-size, as kubectl get spells it: rows per request; the API serves at most 500 a page.</summary>
    static Option<int> ChunkSizeOption() => new("--chunk-size") { Description = "Rows per request (1-500; the API serves at most 500 a page); every page is read, following continue tokens", DefaultValueFactory = _ => 500 };

    static int ChunkSize(int value) => value is >= 1 and <= 500 ? value : throw new CliError($"--chunk-size: {value} is not between 1 and 500", 2);

    static async Task<List<AuditQuery>> QueriesAsync(Kube kube, bool all, string[]? workspaces, bool deployments, string? tenant, string? kind, string? actor, DateTime? since, CancellationToken ct)
    {
        var resource = deployments ? "deploymentevents" : "auditevents";
        var labels = new List<string>();
        if (tenant is not null) labels.Add(TenantLabel + "=" + tenant);
        if (kind is not null) labels.Add("audit.controlplane.io/kind=" + kind);
        var fields = new List<string>();
        if (actor is not null) fields.Add("actor=" + actor);
        // Microseconds, as the rows are stored: "at or after" means exactly that time.
        if (since is { } t) fields.Add("since=" + t.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
        var label = labels.Count == 0 ? null : string.Join(",", labels);
        var field = fields.Count == 0 ? null : string.Join(",", fields);
        if (all) return [new AuditQuery(null, resource, label, field)];
        // --tenant alone: every workspace of the tenant the caller may list (else -n's).
        var namespaces = workspaces is { Length: > 0 } ? workspaces.ToList()
            : tenant is not null && !kube.NamespaceGiven ? await WorkspacesOfAsync(kube, tenant, ct)
            : [kube.Namespace];
        return namespaces.Distinct(StringComparer.Ordinal).Select(ns => new AuditQuery(ns, resource, label, field)).ToList();
    }

    /// <summary>The tenant of a workspace, or null when it is not one or the caller may not read Workspaces.</summary>
    static async Task<string?> TenantOfWorkspaceAsync(Kube kube, string ns, CancellationToken ct)
    {
        try
        {
            return (await kube.TryGetClusterAsync<Workspace>(ns, ct))?.Spec.Tenant;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden)
        {
            return null;
        }
    }

    /// <summary>--since: an RFC 3339 time or an age (30m, 2h, 7d) counted back from now.</summary>
    public static DateTime? Since(string? text)
    {
        if (text is null) return null;
        if (Durations.TryParse(text, out var age)) return DateTime.UtcNow - age;
        if (DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at)) return at;
        throw new CliError($"--since: \"{text}\" is neither a time (2026-12-07T10:00:00Z) nor an age (30m, 2h, 7d)");
    }

    static async Task<List<string>> WorkspacesOfAsync(Kube kube, string tenant, CancellationToken ct)
    {
        try
        {
            return (await kube.ListAsync<Workspace>(null, ct)).Where(w => w.Spec.Tenant == tenant).Select(w => w.Metadata.Name).ToList();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden)
        {
            // Not allowed to list workspaces: the current namespace only (gaps then may be rows of workspaces not read).
            return [kube.Namespace];
        }
    }

    /// <summary>Every row a query matches, following continue tokens; a clear error when the audit API is not there.</summary>
    static async Task<List<JsonObject>> ListAuditAsync(Kube kube, AuditQuery q, int limit, CancellationToken ct)
    {
        var rows = new List<JsonObject>();
        string? next = null;
        do
        {
            object page;
            try
            {
                page = q.Namespace is null
                    ? await kube.Client.CustomObjects.ListClusterCustomObjectAsync(AuditGroup, AuditVersion, q.Resource, continueParameter: next, fieldSelector: q.FieldSelector, labelSelector: q.LabelSelector, limit: limit, cancellationToken: ct)
                    : await kube.Client.CustomObjects.ListNamespacedCustomObjectAsync(AuditGroup, AuditVersion, q.Namespace, q.Resource, continueParameter: next, fieldSelector: q.FieldSelector, labelSelector: q.LabelSelector, limit: limit, cancellationToken: ct);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
            {
                // The API server authorizes before it routes, so a group it does not serve is 403 to most users: discovery tells.
                if (await ServedAsync(kube, ct)) throw;
                throw new CliError($"the audit API is not installed on this cluster: {AuditGroup}/{AuditVersion} is not served (the operator registers the APIService v1alpha1.{AuditGroup} when ControlPlane:AuditApi:Register is true)");
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                throw new CliError($"the audit API ({AuditGroup}/{AuditVersion}) is registered but not available (503): is the operator running and its audit listener reachable?");
            }

            var node = JsonNode.Parse(((JsonElement)page).GetRawText())!;
            rows.AddRange((node["items"] as JsonArray ?? []).OfType<JsonObject>());
            next = Obj.Str(node["metadata"]?["continue"]) is { Length: > 0 } c ? c : null;
        }
        while (next is not null);
        return rows;
    }

    /// <summary>Whether discovery (open to every authenticated user) lists the audit group and version.</summary>
    static async Task<bool> ServedAsync(Kube kube, CancellationToken ct)
    {
        var groups = await kube.Client.Apis.GetAPIVersionsAsync(ct);
        return groups.Groups?.Any(g => g.Name == AuditGroup && g.Versions.Any(v => v.Version == AuditVersion)) == true;
    }
}
