using System.Text.Json;
using System.Text;
using k8s;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// The username the API server knows the operator by, read from its own bearer token (a
/// ServiceAccount token is a JWT whose subject is system:serviceaccount:ns:name). The token is the
/// operator's own; it is decoded, not verified, and never logged.
/// </summary>
public static class OperatorIdentity
{
    const string InClusterToken = "/var/run/secrets/kubernetes.io/serviceaccount/token";

    public static IReadOnlySet<string> Usernames(KubernetesClientConfiguration config, IEnumerable<string> configured)
    {
        var names = new HashSet<string>(configured, StringComparer.Ordinal);
        var token = config.AccessToken;
        if (string.IsNullOrEmpty(token) && File.Exists(InClusterToken)) token = File.ReadAllText(InClusterToken).Trim();
        if (SubjectOf(token) is { } subject) names.Add(subject);
        return names;
    }

    /// <summary>The JWT's "sub" claim, or null when the token is not a JWT.</summary>
    public static string? SubjectOf(string? token)
    {
        var parts = token?.Split('.');
        if (parts is not { Length: 3 }) return null;
        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + ((4 - payload.Length % 4) % 4), '=');
            using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(payload)));
            return doc.RootElement.TryGetProperty("sub", out var sub) && sub.ValueKind == JsonValueKind.String ? sub.GetString() : null;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return null;
        }
    }
}
