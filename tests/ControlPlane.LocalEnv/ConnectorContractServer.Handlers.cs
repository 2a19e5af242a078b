using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;

namespace ControlPlane.LocalEnv;

/// <summary>The contract's routes (docs/execution-plane-connector.openapi.yaml), served from memory.</summary>
public sealed partial class ConnectorContractServer
{
    static readonly ImmutableArray<string> PublishFields = ["correlationId", "tenant", "namespace", "intent", "application", "version", "image", "sha256", "ring"];
    static readonly FrozenSet<string> Actions = FrozenSet.Create("rollback", "uninstall", "redeploy", "pin_ring");

    async Task HandleAsync(HttpContext ctx)
    {
        var request = ctx.Request;
        string body;
        using (var reader = new StreamReader(request.Body, Encoding.UTF8)) body = await reader.ReadToEndAsync(ctx.RequestAborted);
        var authorized = request.Headers.Authorization.ToString() is { Length: > 0 } auth
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(auth), expectedAuthorization);
        var headers = request.Headers
            .Where(h => !h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            .ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        Injection? injected;
        lock (gate)
        {
            calls.Add(new RecordedCall(request.Method, request.Path.Value ?? "/", headers, body, authorized));
            // Injected failures are for the deployment calls the tests count; the capabilities call (once per intent, at
            // assessment) is failed on its own terms (RollbackStrategies = null), so it never takes a failure meant for a publish.
            var capabilities = request.Method == "GET" && (request.Path.Value ?? "").Trim('/') == "capabilities";
            injected = authorized && !capabilities && injections.Count > 0 ? injections.Dequeue() : null;
        }

        if (!authorized)
        {
            await ErrorAsync(ctx, 401, "PERMANENT", "invalid_credentials", "missing or wrong bearer token");
            return;
        }

        if (injected is { Delay: { } delay })
        {
            try
            {
                await Task.Delay(delay, ctx.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return; // the client gave up, as it should
            }
        }
        else if (injected is not null)
        {
            ctx.Response.StatusCode = injected.Status;
            if (injected.RetryAfterHeader is { } ra) ctx.Response.Headers.RetryAfter = ra;
            if (injected.Location is { } to) ctx.Response.Headers.Location = to;
            if (injected.Body is { } b)
            {
                ctx.Response.ContentType = b.StartsWith('{') ? "application/json" : "text/html";
                await ctx.Response.WriteAsync(b, ctx.RequestAborted);
            }

            return;
        }

        var segments = (request.Path.Value ?? "").Trim('/').Split('/');
        var (status, answer, replayed) = (request.Method, segments) switch
        {
            ("POST", ["deployments"]) => Publish(request.Headers, body),
            ("GET", ["deployments", var c, var r]) => Query(c, r),
            ("POST", ["deployments", var c, var r, "remediate"]) => Remediate(c, r, request.Headers, body),
            ("GET", ["idempotency", var k]) => Idempotency(k),
            ("GET", ["capabilities"]) => Capabilities(),
            ("HEAD", ["idempotency", var k]) => Idempotency(k) is var (_, a, _) && a!["exists"]!.GetValue<bool>() ? (200, null, false) : (404, null, false),
            _ => (404, Error("PERMANENT", "resource_not_found", $"no route {request.Method} {request.Path}"), false),
        };
        ctx.Response.StatusCode = status;
        if (replayed) ctx.Response.Headers["Idempotent-Replayed"] = "true";
        if (answer is not null)
        {
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(answer.ToJsonString(), ctx.RequestAborted);
        }
    }

    (int, JsonObject?, bool) Publish(IHeaderDictionary headers, string body)
    {
        var key = headers["Idempotency-Key"].ToString();
        if (key.Length == 0) return (400, Error("PERMANENT", "invalid_request", "Idempotency-Key header is required"), false);
        if (ParseObject(body) is not { } o) return (400, Error("PERMANENT", "invalid_request", "body is not a JSON object"), false);
        foreach (var f in PublishFields)
        {
            if (Str(o, f) is not { Length: > 0 }) return (400, Error("PERMANENT", "invalid_request", $"field '{f}' is required"), false);
        }

        if (o["workspaces"] is not JsonArray ws || ws.Any(w => w?.GetValueKind() != JsonValueKind.String))
            return (400, Error("PERMANENT", "invalid_request", "field 'workspaces' must be an array of names"), false);
        var correlationId = Str(o, "correlationId")!;
        var ring = Str(o, "ring")!;
        if (key != Key(correlationId, ring)) return (400, Error("PERMANENT", "invalid_request", "Idempotency-Key must be <correlationId>:<ring> of the body"), false);
        if (headers["X-Correlation-Id"].ToString() != correlationId) return (400, Error("PERMANENT", "invalid_request", "X-Correlation-Id must equal the body's correlationId"), false);

        lock (gate)
        {
            if (byKey.TryGetValue(key, out var existing))
            {
                // A replay deploys nothing; the same key for a different deployment is a caller's bug.
                return JsonNode.DeepEquals(publishedBodies[key], o)
                    ? (200, StatusJson(existing), true)
                    : (409, Error("PERMANENT", "invalid_request", $"Idempotency-Key {key} was used for a different deployment"), false);
            }

            var workspaces = ws.Select(w => w!.GetValue<string>()).ToList();
            var d = new Deployment(key, correlationId, ring, Str(o, "application")!, Str(o, "version")!, workspaces,
                "pending", null, true, workspaces, null, 0, false, [], "accepted");
            byKey[key] = d;
            publishedBodies[key] = o;
            deploymentsCreated++;
            return (201, StatusJson(d), false);
        }
    }

    (int, JsonObject?, bool) Query(string correlationId, string ring)
    {
        lock (gate)
        {
            var key = Key(correlationId, ring);
            if (!byKey.TryGetValue(key, out var d)) return (404, Error("PERMANENT", "resource_not_found", $"no deployment {key}"), false);
            var served = d;
            if (AutoAdvance && !d.Pinned)
            {
                byKey[key] = d.State switch
                {
                    "pending" => d with { State = "in_progress", Message = "installing" },
                    "in_progress" => d with { State = "succeeded", ActualVersion = d.Version, SuccessRate = 1.0, Message = "installed" },
                    _ => d,
                };
                served = byKey[key];
            }

            return (200, StatusJson(served), false);
        }
    }

    (int, JsonObject?, bool) Remediate(string correlationId, string ring, IHeaderDictionary headers, string body)
    {
        if (ParseObject(body) is not { } o || Str(o, "action") is not { } action || !Actions.Contains(action))
            return (400, Error("PERMANENT", "invalid_request", $"action must be one of {string.Join(", ", Actions)}"), false);
        var version = Str(o, "version");
        var strategy = Str(o, "strategy");
        lock (gate)
        {
            if (strategy is not null && rollbackStrategies?.Contains(strategy) != true)
                return (400, Error("PERMANENT", "invalid_request", $"rollback strategy '{strategy}' is not advertised"), false);
        }

        // A plane-specific strategy (intune-supersedence, ...) knows what to go back to; the built-in ones are told a version.
        var builtIn = strategy is null or "previous-version" or "specific-version";
        if (action == "rollback" && version is null && builtIn) return (400, Error("PERMANENT", "invalid_request", "rollback needs a version"), false);
        lock (gate)
        {
            var key = Key(correlationId, ring);
            if (!byKey.TryGetValue(key, out var d)) return (404, Error("PERMANENT", "resource_not_found", $"no deployment {key}"), false);
            var idempotencyKey = headers["Idempotency-Key"].ToString();
            if (idempotencyKey.Length > 0 && !remediationKeys.Add(idempotencyKey)) return (200, StatusJson(d), true);
            d = action switch
            {
                "rollback" => d with { State = "rolled_back", ActualVersion = version, Message = $"rolled back to {version}" },
                "uninstall" => d with { State = "rolled_back", ActualVersion = null, Assigned = false, Workspaces = [], Message = "uninstalled" },
                "redeploy" => d with { State = "pending", ActualVersion = null, Assigned = true, Workspaces = d.DesiredWorkspaces, Pinned = false, Message = "redeploying" },
                _ => d with { Pinned = true, Message = "ring pinned" },
            };
            d = d with { Remediations = [.. d.Remediations, version is null ? action : $"{action}:{version}"] };
            byKey[key] = d;
            if (strategy is not null)
            {
                if (!strategiesByKey.TryGetValue(key, out var list)) strategiesByKey[key] = list = [];
                list.Add(strategy);
            }
            return (200, StatusJson(d), false);
        }
    }

    (int, JsonObject?, bool) Capabilities()
    {
        lock (gate)
        {
            return rollbackStrategies is { } strategies
                ? (200, new JsonObject { ["rollbackStrategies"] = new JsonArray([.. strategies.Select(n => (JsonNode)JsonValue.Create(n))]) }, false)
                : (404, Error("PERMANENT", "resource_not_found", "no route GET /capabilities"), false);
        }
    }

    (int, JsonObject?, bool) Idempotency(string key)
    {
        lock (gate)
        {
            var answer = new JsonObject { ["key"] = key, ["exists"] = byKey.ContainsKey(key) };
            if (byKey.TryGetValue(key, out var d))
            {
                answer["correlationId"] = d.CorrelationId;
                answer["ring"] = d.Ring;
            }

            return (200, answer, false);
        }
    }

    static JsonObject StatusJson(Deployment d) => new()
    {
        ["correlationId"] = d.CorrelationId,
        ["ring"] = d.Ring,
        ["state"] = d.State,
        ["actualVersion"] = d.ActualVersion,
        ["assigned"] = d.Assigned,
        ["workspaces"] = new JsonArray([.. d.Workspaces.Select(w => (JsonNode)JsonValue.Create(w))]),
        ["successRate"] = d.SuccessRate,
        ["incidents"] = d.Incidents,
        ["message"] = d.Message,
    };

    static JsonObject Error(string errorClass, string code, string message) =>
        new() { ["error"] = new JsonObject { ["class"] = errorClass, ["code"] = code, ["message"] = message } };

    static async Task ErrorAsync(HttpContext ctx, int status, string errorClass, string code, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(Error(errorClass, code, message).ToJsonString(), ctx.RequestAborted);
    }

    static JsonObject? ParseObject(string body)
    {
        try
        {
            return JsonNode.Parse(body) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    static string? Str(JsonObject o, string name) => o[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
