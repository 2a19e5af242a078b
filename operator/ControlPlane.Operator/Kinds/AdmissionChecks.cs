using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using k8s;

namespace ControlPlane.Operator.Kinds;

/// <summary>Small reads of an admission request that every kind's admission uses alike.</summary>
public static class AdmissionChecks
{
    public static T As<T>(JsonObject node) => KubernetesJson.Deserialize<T>(node.ToJsonString());

    public static string? AnnotationOf(JsonObject? obj, string key) =>
        obj?["metadata"]?["annotations"]?[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static List<string> Immutable(JsonObject? before, JsonObject? after, params string[] fields)
    {
        var problems = new List<string>();
        foreach (var field in fields)
        {
            var old = before?["spec"]?[field];
            var now = after?["spec"]?[field];
            if (!JsonNode.DeepEquals(old, now)) problems.Add($"spec.{field}: field is immutable (was {old?.ToJsonString() ?? "unset"}, now {now?.ToJsonString() ?? "unset"})");
        }

        return problems;
    }

    /// <summary>
    /// An update of a time-bound grant (AccessRequest, BreakGlass): nothing can stretch it, so <paramref name="fields"/> are
    /// immutable, and its end switch (<paramref name="endFlag"/>) only goes from false to true. Each problem ends with <paramref name="hint"/>.
    /// </summary>
    public static List<string> GrantUpdateProblems(AdmissionRequest r, string[] fields, string endFlag, string hint)
    {
        var problems = Immutable(r.OldObject, r.Object, fields).Select(p => $"{p}: {hint}").ToList();
        if (r.OldObject?["spec"]?[endFlag]?.GetValue<bool>() == true && r.Object?["spec"]?[endFlag]?.GetValue<bool>() != true)
        {
            problems.Add($"spec.{endFlag}: an ended grant stays ended; {hint}");
        }

        return problems;
    }

    public static bool DeletionAllowedByAnnotation(JsonObject? obj) =>
        obj?["metadata"]?["annotations"]?[ApiGroup.AllowDeleteAnnotation]?.GetValue<string>() == "true";

    /// <summary>The raw text of a quota field as the user wrote it, for messages (a parsed quantity may not print).</summary>
    public static Func<string, string?> RawQuota(JsonObject? obj) => resource => obj?["spec"]?["quota"]?[resource] switch
    {
        JsonValue v when v.TryGetValue<string>(out var text) => text,
        { } node => node.ToJsonString(),
        null => null,
    };

    /// <summary>Refused when the object is not in a workspace's namespace.</summary>
    public static List<string> InWorkspace(AdmissionRequest r, AdmissionCaches caches) =>
        r.Operation is "CREATE" or "UPDATE" && caches.WorkspaceOfNamespace(r.Namespace) is null ? [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"] : [];
}
