using System.Text.Json.Nodes;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s;

namespace ControlPlane.Operator.Adapters;

/// <summary>One namespaced action, as a SubjectAccessReview's resourceAttributes name it.</summary>
public sealed record AccessCheck(string Namespace, string Group, string Resource, string Verb, string? Name);

/// <summary>The API server's answer for one requester and one action.</summary>
public sealed record AccessAnswer(Requester Requester, AccessCheck Check, bool Allowed, string Reason);

/// <summary>
/// "May this requester do this here", asked of the API server itself (authorization.k8s.io/v1
/// SubjectAccessReview, on every cluster since 1.6): the operator never does in a namespace what its
/// requester could not do there by hand (no confused deputy). Needs create on subjectaccessreviews.
/// </summary>
public sealed class AccessReviewer(KubeApi api)
{
    public const string Path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

    /// <summary>The review's body (pure).</summary>
    public static JsonObject Body(Requester who, AccessCheck what, string? uid = null, IDictionary<string, List<string>>? extra = null)
    {
        var attributes = new JsonObject
        {
            ["namespace"] = what.Namespace,
            ["group"] = what.Group,
            ["resource"] = what.Resource,
            ["verb"] = what.Verb,
        };
        if (what.Name is not null) attributes["name"] = what.Name;
        return new JsonObject
        {
            ["apiVersion"] = "authorization.k8s.io/v1",
            ["kind"] = "SubjectAccessReview",
            ["spec"] = new JsonObject
            {
                ["user"] = who.User,
                ["uid"] = uid,
                ["groups"] = new JsonArray(who.Groups.Select(g => (JsonNode)JsonValue.Create(g)).ToArray()),
                ["extra"] = extra is null ? null : JsonNode.Parse(KubernetesJson.Serialize(extra)),
                ["resourceAttributes"] = attributes,
            },
        };
    }

    public async Task<AccessAnswer> ReviewAsync(Requester who, AccessCheck what, CancellationToken ct, string? uid = null, IDictionary<string, List<string>>? extra = null)
    {
        var answer = JsonNode.Parse(await api.SendAsync(HttpMethod.Post, Path, Body(who, what, uid, extra).ToJsonString(), "application/json", ct).ConfigureAwait(false));
        var status = answer?["status"];
        var allowed = status?["allowed"]?.GetValue<bool>() == true && status["denied"]?.GetValue<bool>() != true;
        var reason = status?["reason"]?.GetValue<string>() ?? status?["evaluationError"]?.GetValue<string>() ?? "";
        return new AccessAnswer(who, what, allowed, reason);
    }
}
