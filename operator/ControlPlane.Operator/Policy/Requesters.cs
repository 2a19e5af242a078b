using System.Text.Json.Nodes;
using System.Text.Json;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Policy;

/// <summary>Someone on whose behalf the operator acts: a username and the groups the API server gave them.</summary>
public sealed record Requester(string User, IReadOnlyList<string> Groups);

/// <summary>
/// On whose behalf the operator acts for an object: read from the webhook-stamped annotations only
/// (created-by, spec-editors, author-groups; on a Rollout the operator made for a DeploymentIntent,
/// the operator-stamped on-behalf-of), never from anything else the requester wrote.
/// </summary>
public static class Requesters
{
    /// <summary>The author-groups annotation with <paramref name="user"/>'s groups set (a JSON object, keys sorted).</summary>
    public static string WithAuthorGroups(string? current, string user, IEnumerable<string>? groups)
    {
        var map = new SortedDictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var (u, g) in ParseAuthorGroups(current)) map[u] = g;
        map[user] = (groups ?? []).ToArray();
        return JsonSerializer.Serialize(map);
    }

    public static IReadOnlyDictionary<string, string[]> ParseAuthorGroups(string? text)
    {
        if (string.IsNullOrEmpty(text)) return new Dictionary<string, string[]>();
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string[]>>(text) ?? [];
        }
        catch (JsonException)
        {
            return new Dictionary<string, string[]>();
        }
    }

    /// <summary>The on-behalf-of annotation's value for these requesters.</summary>
    public static string FormatOnBehalfOf(IEnumerable<Requester> requesters) =>
        new JsonArray(requesters.Select(r => (JsonNode)new JsonObject
        {
            ["user"] = r.User,
            ["groups"] = new JsonArray(r.Groups.Select(g => (JsonNode)JsonValue.Create(g)).ToArray()),
        }).ToArray()).ToJsonString();

    /// <summary>The on-behalf-of annotation parsed; null when malformed (never guessed).</summary>
    public static IReadOnlyList<Requester>? ParseOnBehalfOf(string text)
    {
        try
        {
            if (JsonNode.Parse(text) is not JsonArray array) return null;
            var list = new List<Requester>();
            foreach (var item in array)
            {
                if (item?["user"] is not JsonValue u || !u.TryGetValue<string>(out var user) || user.Length == 0) return null;
                var groups = (item["groups"] as JsonArray)?.Select(g => g?.GetValue<string>()).OfType<string>().ToList() ?? [];
                list.Add(new Requester(user, groups));
            }

            return list;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Every author of an object (creator and every spec editor), each with the groups recorded at admission.</summary>
    public static IReadOnlyList<Requester> AuthorsOf(IKubernetesObject<V1ObjectMeta> o)
    {
        var groups = ParseAuthorGroups(Annotation(o, ApiGroup.AuthorGroupsAnnotation));
        return ApprovalPolicy.EveryAuthorOf(o).Select(u => new Requester(u, groups.TryGetValue(u, out var g) ? g : [])).ToList();
    }

    /// <summary>
    /// Whose rights a Rollout acts with: the DeploymentIntent's authors when the operator made it for one
    /// (on-behalf-of), else its creator; and every spec editor since. Null when nobody is on record (the
    /// webhook was bypassed, or the intent has no recorded author): then it acts for nobody.
    /// </summary>
    public static IReadOnlyList<Requester>? OfRollout(Rollout rollout)
    {
        var groups = ParseAuthorGroups(Annotation(rollout, ApiGroup.AuthorGroupsAnnotation));
        Requester Known(string user) => new(user, groups.TryGetValue(user, out var g) ? g : []);
        IReadOnlyList<Requester> primary;
        if (Annotation(rollout, ApiGroup.OnBehalfOfAnnotation) is { } onBehalfOf)
        {
            if (ParseOnBehalfOf(onBehalfOf) is not { Count: > 0 } intentAuthors) return null;
            primary = intentAuthors;
        }
        else if (ApprovalPolicy.AuthorOf(rollout) is { Length: > 0 } creator)
        {
            primary = [Known(creator)];
        }
        else
        {
            return null;
        }

        var editors = ApprovalPolicy.EveryAuthorOf(rollout).Where(u => u != ApprovalPolicy.AuthorOf(rollout) && primary.All(p => p.User != u)).Select(Known);
        return [.. primary, .. editors];
    }

    static string? Annotation(IKubernetesObject<V1ObjectMeta> o, string key) =>
        o.Metadata.Annotations?.TryGetValue(key, out var value) == true ? value : null;
}
