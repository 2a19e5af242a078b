using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;

namespace ControlPlane.Operator.AuditApi;

/// <summary>
/// Serves audit.controlplane.io/v1alpha1 on its own port (docs/audit-api.md): discovery, list, get and
/// watch of AuditEvents and DeploymentEvents, as JSON or a meta.k8s.io Table. Every request must come
/// through the API server's front proxy (<see cref="FrontProxy"/>) and is authorized by a
/// SubjectAccessReview for the user the proxy names. Read-only.
/// </summary>
public sealed partial class AuditApiServer(AuditLog log, FrontProxy proxy, AccessReviewer reviewer, KubeApi api, AuditApiOptions options, TimeProvider time, ILogger<AuditApiServer> logger)
{
    const int MaxPage = 500;
    readonly ConcurrentDictionary<string, DateTimeOffset> allowed = new(StringComparer.Ordinal);

    public void Map(WebApplication app)
    {
        var host = $"*:{options.Port}";
        const string prefix = "/apis/" + AuditObjects.Group + "/" + AuditObjects.Version;
        app.MapGet("/apis", (HttpContext http) => Discovery(http, AuditObjects.GroupList())).RequireHost(host);
        app.MapGet("/apis/" + AuditObjects.Group, (HttpContext http) => Discovery(http, AuditObjects.GroupObject())).RequireHost(host);
        app.MapGet(prefix, (HttpContext http) => Discovery(http, AuditObjects.ResourceList())).RequireHost(host);
        app.MapGet(prefix + "/{resource}", (HttpContext http, string resource) => Collection(http, resource, null)).RequireHost(host);
        app.MapGet(prefix + "/namespaces/{ns}/{resource}", (HttpContext http, string ns, string resource) => Collection(http, resource, ns)).RequireHost(host);
        app.MapGet(prefix + "/namespaces/{ns}/{resource}/{name}", (HttpContext http, string ns, string resource, string name) => Item(http, resource, ns, name)).RequireHost(host);
        app.MapMethods(prefix + "/{**rest}", ["POST", "PUT", "PATCH", "DELETE"], (HttpContext http) =>
            Reply(http, 405, AuditObjects.Status(405, "MethodNotAllowed", "audit.controlplane.io is read-only: get, list and watch only"))).RequireHost(host);
    }

    static Task Reply(HttpContext http, int code, JsonObject body)
    {
        http.Response.StatusCode = code;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(body.ToJsonString(), http.RequestAborted);
    }

    static Task Unauthorized(HttpContext http) => Reply(http, 401, AuditObjects.Status(401, "Unauthorized", "Unauthorized"));

    /// <summary>Discovery needs the front proxy's certificate (the aggregator asks without a user), nothing more: it names no row.</summary>
    Task Discovery(HttpContext http, JsonObject body) =>
        FrontProxy.IsFrontProxy(http.Connection.ClientCertificate, proxy.Settings) ? Reply(http, 200, body) : Unauthorized(http);

    ProxiedUser? Authenticate(HttpContext http) =>
        FrontProxy.IsFrontProxy(http.Connection.ClientCertificate, proxy.Settings) ? FrontProxy.UserOf(http.Request.Headers, proxy.Settings!) : null;

    Task<bool> AuthorizeAsync(HttpContext http, ProxiedUser user, AuditResource resource, string verb, string? ns, string? name) =>
        AuthorizeAsync(http, user, AuditObjects.Group, resource.Plural, verb, ns, name);

    /// <summary>A SubjectAccessReview for the proxied user (allowed answers cached briefly); a refusal is answered 403 here.</summary>
    async Task<bool> AuthorizeAsync(HttpContext http, ProxiedUser user, string group, string plural, string verb, string? ns, string? name)
    {
        var key = string.Join('\n', user.Name, string.Join(',', user.Groups), string.Join(';', user.Extra.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Key + "=" + string.Join(',', e.Value))),
            verb, group, plural, ns ?? "", name ?? "");
        var now = time.GetUtcNow();
        if (allowed.TryGetValue(key, out var until) && until > now) return true;
        AccessAnswer answer;
        try
        {
            answer = await reviewer.ReviewAsync(new Requester(user.Name, user.Groups), new AccessCheck(ns ?? "", group, plural, verb, name),
                http.RequestAborted, extra: user.Extra.Count == 0 ? null : user.Extra).ConfigureAwait(false);
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException)
        {
            // Nothing is served without the API server's answer.
            logger.LogWarning("audit API: SubjectAccessReview failed: {Error}", e.Message);
            await Reply(http, 503, AuditObjects.Status(503, "ServiceUnavailable", "authorization could not be checked; retry")).ConfigureAwait(false);
            return false;
        }

        if (answer.Allowed)
        {
            if (allowed.Count > 10_000) allowed.Clear(); // bounded: a cache, not a record
            allowed[key] = now + options.AuthorizationCacheTtl;
            return true;
        }

        var where = ns is null ? "at the cluster scope" : $"in the namespace \"{ns}\"";
        await Reply(http, 403, AuditObjects.Status(403, "Forbidden",
            $"{plural}.{group}{(name is null ? "" : $" \"{name}\"")} is forbidden: User \"{user.Name}\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {where}")).ConfigureAwait(false);
        return false;
    }

    static AuditResource? ResourceOf(string plural) => AuditObjects.Resources.FirstOrDefault(r => r.Plural == plural);

    async Task Item(HttpContext http, string plural, string ns, string name)
    {
        if (Authenticate(http) is not { } user)
        {
            await Unauthorized(http).ConfigureAwait(false);
            return;
        }

        if (ResourceOf(plural) is not { } resource)
        {
            await Reply(http, 404, AuditObjects.Status(404, "NotFound", $"the server could not find the requested resource ({plural})")).ConfigureAwait(false);
            return;
        }

        if (!await AuthorizeAsync(http, user, resource, "get", ns, name).ConfigureAwait(false)) return;
        await Guarded(http, async () =>
        {
            var rows = long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                ? await log.ReadAsync(new AuditQuery(resource.Table, ns, [], 0, long.MaxValue, 1, id), http.RequestAborted).ConfigureAwait(false)
                : [];
            if (rows.Count == 0)
            {
                await Reply(http, 404, AuditObjects.Status(404, "NotFound", $"{resource.Plural}.{AuditObjects.Group} \"{name}\" not found")).ConfigureAwait(false);
                return;
            }

            await Reply(http, 200, TableRequest(http) is { } table
                ? AuditObjects.Table(resource, rows, rows[0].Id, null, table, IncludeObject(http))
                : AuditObjects.Object(resource, rows[0])).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    async Task Collection(HttpContext http, string plural, string? ns)
    {
        if (Authenticate(http) is not { } user)
        {
            await Unauthorized(http).ConfigureAwait(false);
            return;
        }

        if (plural == NotificationDeliveryObjects.Plural)
        {
            await DeliveriesAsync(http, user, ns).ConfigureAwait(false);
            return;
        }

        if (ResourceOf(plural) is not { } resource)
        {
            await Reply(http, 404, AuditObjects.Status(404, "NotFound", $"the server could not find the requested resource ({plural})")).ConfigureAwait(false);
            return;
        }

        var q = http.Request.Query;
        var watch = q["watch"].FirstOrDefault() is "1" or "true";
        if (!await AuthorizeAsync(http, user, resource, watch ? "watch" : "list", ns, null).ConfigureAwait(false)) return;
        IReadOnlyList<AuditCondition> conditions;
        try
        {
            conditions = Selectors.Parse(resource.Table, q["labelSelector"].FirstOrDefault(), q["fieldSelector"].FirstOrDefault());
        }
        catch (SelectorException e)
        {
            await Reply(http, 400, AuditObjects.Status(400, "BadRequest", e.Message)).ConfigureAwait(false);
            return;
        }

        await Guarded(http, () => watch ? WatchAsync(http, resource, ns, conditions) : ListAsync(http, resource, ns, conditions)).ConfigureAwait(false);
    }

    async Task ListAsync(HttpContext http, AuditResource resource, string? ns, IReadOnlyList<AuditCondition> conditions)
    {
        var q = http.Request.Query;
        var limit = int.TryParse(q["limit"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l is > 0 and <= MaxPage ? l : MaxPage;
        long after = 0, head;
        if (q["continue"].FirstOrDefault() is { Length: > 0 } token)
        {
            if (ParseContinue(token) is not { } c)
            {
                await Reply(http, 400, AuditObjects.Status(400, "BadRequest", "continue: not a token this API issued")).ConfigureAwait(false);
                return;
            }

            (after, head) = c;
        }
        else
        {
            head = await log.HeadAsync(resource.Table, http.RequestAborted).ConfigureAwait(false);
        }

        var rows = await log.ReadAsync(new AuditQuery(resource.Table, ns, conditions, after, head, limit + 1), http.RequestAborted).ConfigureAwait(false);
        var more = rows.Count > limit;
        var page = more ? rows.Take(limit).ToList() : rows;
        var next = more ? Continue(page[^1].Id, head) : null;
        await Reply(http, 200, TableRequest(http) is { } table
            ? AuditObjects.Table(resource, page, head, next, table, IncludeObject(http))
            : AuditObjects.List(resource, page, head, next)).ConfigureAwait(false);
    }

    async Task WatchAsync(HttpContext http, AuditResource resource, string? ns, IReadOnlyList<AuditCondition> conditions)
    {
        var q = http.Request.Query;
        var ct = http.RequestAborted;
        var cursor = long.TryParse(q["resourceVersion"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var rv) && rv > 0
            ? rv
            : await log.HeadAsync(resource.Table, ct).ConfigureAwait(false);
        var timeout = int.TryParse(q["timeoutSeconds"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var t) && t > 0 ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(30);
        var bookmarks = q["allowWatchBookmarks"].FirstOrDefault() is "true" or "1";
        var table = TableRequest(http);
        var include = IncludeObject(http);
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/json";
        await http.Response.StartAsync(ct).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
        var started = Stopwatch.StartNew();
        var lastBookmark = Stopwatch.StartNew();
        try
        {
            while (started.Elapsed < timeout && !ct.IsCancellationRequested)
            {
                // Appends are serialised by an advisory lock held to commit, so every id up to the head is committed: a cursor misses none.
                var head = await log.HeadAsync(resource.Table, ct).ConfigureAwait(false);
                while (cursor < head)
                {
                    var rows = await log.ReadAsync(new AuditQuery(resource.Table, ns, conditions, cursor, head, MaxPage), ct).ConfigureAwait(false);
                    var sb = new StringBuilder();
                    foreach (var row in rows)
                    {
                        JsonNode obj = table is null ? AuditObjects.Object(resource, row) : AuditObjects.Table(resource, [row], row.Id, null, table, include);
                        sb.Append(new JsonObject { ["type"] = "ADDED", ["object"] = obj }.ToJsonString()).Append('\n');
                    }

                    cursor = rows.Count == MaxPage ? rows[^1].Id : head;
                    if (sb.Length > 0)
                    {
                        await http.Response.WriteAsync(sb.ToString(), ct).ConfigureAwait(false);
                        await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
                    }
                }

                if (bookmarks && lastBookmark.Elapsed > TimeSpan.FromSeconds(30))
                {
                    var bookmark = new JsonObject
                    {
                        ["type"] = "BOOKMARK",
                        ["object"] = new JsonObject { ["apiVersion"] = AuditObjects.GroupVersion, ["kind"] = resource.Kind, ["metadata"] = new JsonObject { ["resourceVersion"] = AuditObjects.Name(cursor) } },
                    };
                    await http.Response.WriteAsync(bookmark.ToJsonString() + "\n", ct).ConfigureAwait(false);
                    await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
                    lastBookmark.Restart();
                }

                await Task.Delay(options.WatchPollInterval, time, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away.
        }
    }

    /// <summary>Postgres unreachable or failing is a 503 with the error class, never the statement or connection string.</summary>
    async Task Guarded(HttpContext http, Func<Task> serve)
    {
        try
        {
            await serve().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !http.RequestAborted.IsCancellationRequested)
        {
            var failure = PostgresFailure.Of(e, "the audit store (Postgres)");
            logger.LogWarning("audit API: {Message}", failure.Message);
            if (!http.Response.HasStarted)
            {
                await Reply(http, 503, AuditObjects.Status(503, "ServiceUnavailable", failure.Message)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The Table version asked for (Accept: application/json;as=Table;v=v1;g=meta.k8s.io), or null for plain objects.</summary>
    public static string? TableRequest(HttpContext http)
    {
        string? found = null;
        foreach (var accept in http.Request.Headers.Accept.SelectMany(a => (a ?? "").Split(',')))
        {
            var parts = accept.Split(';').Select(p => p.Trim()).ToList();
            if (!parts.Contains("as=Table") || !parts.Contains("g=meta.k8s.io")) continue;
            if (parts.Contains("v=v1")) return "v1";
            if (parts.Contains("v=v1beta1")) found ??= "v1beta1";
        }

        return found;
    }

    static string IncludeObject(HttpContext http) => http.Request.Query["includeObject"].FirstOrDefault() ?? "Metadata";

    static string Continue(long after, long head) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{after}:{head}"));

    static (long After, long Head)? ParseContinue(string token)
    {
        try
        {
            var parts = Encoding.UTF8.GetString(Convert.FromBase64String(token)).Split(':');
            return parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var a) && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
                ? (a, h)
                : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
