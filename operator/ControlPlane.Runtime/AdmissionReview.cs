using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ControlPlane.Runtime;

// admission.k8s.io/v1 AdmissionReview: KubernetesClient has no model for it. Generic (no kind named),
// as controller-runtime's webhook/admission package: the server and every kind's handler share it.

public sealed class AdmissionReview
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = "admission.k8s.io/v1";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "AdmissionReview";
    [JsonPropertyName("request")] public AdmissionRequest? Request { get; set; }
    [JsonPropertyName("response")] public AdmissionResponse? Response { get; set; }
}

public sealed class GroupVersionKind
{
    [JsonPropertyName("group")] public string Group { get; set; } = "";
    [JsonPropertyName("version")] public string Version { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
}

public sealed class AdmissionUserInfo
{
    [JsonPropertyName("username")] public string Username { get; set; } = "";
    [JsonPropertyName("uid")] public string? Uid { get; set; }
    [JsonPropertyName("groups")] public List<string>? Groups { get; set; }
    [JsonPropertyName("extra")] public Dictionary<string, List<string>>? Extra { get; set; }
}

public sealed class AdmissionRequest
{
    [JsonPropertyName("uid")] public string Uid { get; set; } = "";
    [JsonPropertyName("kind")] public GroupVersionKind Kind { get; set; } = new();
    [JsonPropertyName("subResource")] public string? SubResource { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("namespace")] public string? Namespace { get; set; }
    [JsonPropertyName("operation")] public string Operation { get; set; } = "";
    [JsonPropertyName("userInfo")] public AdmissionUserInfo UserInfo { get; set; } = new();
    [JsonPropertyName("object")] public JsonObject? Object { get; set; }
    [JsonPropertyName("oldObject")] public JsonObject? OldObject { get; set; }
    [JsonPropertyName("dryRun")] public bool? DryRun { get; set; }
}

public sealed class AdmissionStatus
{
    [JsonPropertyName("code")] public int Code { get; set; }
    [JsonPropertyName("message")] public string Message { get; set; } = "";
    [JsonPropertyName("reason")] public string? Reason { get; set; }
}

public sealed class AdmissionResponse
{
    [JsonPropertyName("uid")] public string Uid { get; set; } = "";
    [JsonPropertyName("allowed")] public bool Allowed { get; set; }
    [JsonPropertyName("status")] public AdmissionStatus? Status { get; set; }
    [JsonPropertyName("patch")] public string? Patch { get; set; }
    [JsonPropertyName("patchType")] public string? PatchType { get; set; }
    [JsonPropertyName("warnings")] public List<string>? Warnings { get; set; }

    public static AdmissionResponse Allow(string uid) => new() { Uid = uid, Allowed = true };

    /// <summary>A refusal; the message names the field and the rule, and reaches the user as the API error.</summary>
    public static AdmissionResponse Deny(string uid, string message, int code = 403, string reason = "Forbidden") =>
        new() { Uid = uid, Allowed = false, Status = new AdmissionStatus { Code = code, Message = message, Reason = reason } };

    public static AdmissionResponse Patched(string uid, JsonArray operations) => operations.Count == 0
        ? Allow(uid)
        : new()
        {
            Uid = uid,
            Allowed = true,
            PatchType = "JSONPatch",
            Patch = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(operations.ToJsonString())),
        };
}
