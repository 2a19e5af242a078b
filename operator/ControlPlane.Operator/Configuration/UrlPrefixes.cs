namespace ControlPlane.Operator.Configuration;

/// <summary>
/// Whether a URL a tenant wrote is under one of the prefixes the platform configured. Compared as parsed URLs, not
/// as strings: the same scheme, host and port, and the path under the prefix's path at a segment boundary. A string
/// prefix let "https://plane.example.com.attacker.net/" through under "https://plane.example.com", and
/// "https://plane.example.com:8443/" or "/api-admin/" under "https://plane.example.com" and "/api".
/// </summary>
public static class UrlPrefixes
{
    public static bool Allows(string? url, IEnumerable<string> prefixes)
    {
        // No user info, no backslashes or dot segments the parser would resolve into another path.
        if (url is null || url.Contains('\\', StringComparison.Ordinal) || !Uri.TryCreate(url, UriKind.Absolute, out var target)) return false;
        if (!string.IsNullOrEmpty(target.UserInfo) || target.OriginalString.Split('?', '#')[0].Split('/').Any(s => s is "." or ".." or "%2e" or "%2E" or "%2e%2e" or "%2E%2E")) return false;
        return prefixes.Any(p => Uri.TryCreate(p, UriKind.Absolute, out var prefix)
                                 && string.Equals(target.Scheme, prefix.Scheme, StringComparison.OrdinalIgnoreCase)
                                 && string.Equals(target.IdnHost, prefix.IdnHost, StringComparison.OrdinalIgnoreCase)
                                 && target.Port == prefix.Port
                                 && UnderPath(target.AbsolutePath, prefix.AbsolutePath));
    }

    static bool UnderPath(string path, string prefix)
    {
        var head = prefix.TrimEnd('/');
        return head.Length == 0 || path == head || path.StartsWith(head + "/", StringComparison.Ordinal);
    }
}
