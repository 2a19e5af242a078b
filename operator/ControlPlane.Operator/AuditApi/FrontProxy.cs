using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.AuditApi;

/// <summary>What the API server's front proxy says about its requests (kube-system/extension-apiserver-authentication).</summary>
public sealed record FrontProxySettings(X509Certificate2Collection ClientCa, IReadOnlyList<string> AllowedNames, IReadOnlyList<string> UserHeaders,
    IReadOnlyList<string> GroupHeaders, IReadOnlyList<string> ExtraPrefixes);

/// <summary>A caller the front proxy vouched for.</summary>
public sealed record ProxiedUser(string Name, IReadOnlyList<string> Groups, IDictionary<string, List<string>> Extra);

/// <summary>
/// Delegated authentication, as an aggregated API server does it: a request counts only when its
/// client certificate chains to the API server's requestheader client CA and has an allowed CN; then,
/// and only then, the user, groups and extras are read from the request headers. Settings come from
/// the ConfigMap kube-system/extension-apiserver-authentication, which the API server writes.
/// </summary>
public sealed class FrontProxy(KubeApi api, ILogger<FrontProxy> logger)
{
    const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    FrontProxySettings? settings;

    public FrontProxySettings? Settings => Volatile.Read(ref settings);

    public async Task RefreshAsync(CancellationToken ct)
    {
        var map = await api.GetAsync<V1ConfigMap>(new ResourceType("", "v1", "configmaps", "ConfigMap", true), "kube-system", "extension-apiserver-authentication", ct)
            .ConfigureAwait(false);
        var data = map.Data ?? new Dictionary<string, string>();
        if (!data.TryGetValue("requestheader-client-ca-file", out var pem) || string.IsNullOrWhiteSpace(pem))
        {
            throw new InvalidOperationException("kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: the API server runs without --requestheader-client-ca-file, so no aggregated API can authenticate its requests");
        }

        var ca = new X509Certificate2Collection();
        ca.ImportFromPem(pem);
        IReadOnlyList<string> List(string key, string fallback) =>
            data.TryGetValue(key, out var json) && !string.IsNullOrWhiteSpace(json) ? JsonSerializer.Deserialize<List<string>>(json) ?? [] : [fallback];
        var next = new FrontProxySettings(ca, data.TryGetValue("requestheader-allowed-names", out var names) && !string.IsNullOrWhiteSpace(names)
                ? JsonSerializer.Deserialize<List<string>>(names) ?? []
                : [],
            List("requestheader-username-headers", "X-Remote-User"), List("requestheader-group-headers", "X-Remote-Group"),
            List("requestheader-extra-headers-prefix", "X-Remote-Extra-"));
        if (Volatile.Read(ref settings) is null) logger.LogInformation("audit API: front-proxy client CA loaded ({Count} certificates, {Names} allowed names)", ca.Count, next.AllowedNames.Count);
        Volatile.Write(ref settings, next);
    }

    /// <summary>Whether the connection's client certificate is the front proxy's (pure but for the chain build).</summary>
    public static bool IsFrontProxy(X509Certificate2? certificate, FrontProxySettings? s)
    {
        if (certificate is null || s is null) return false;
        var usage = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        if (usage is not null && !usage.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == ClientAuthOid)) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(s.ClientCa);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (!chain.Build(certificate)) return false;
        // An empty list allows any CN the CA signed, as the API server itself does.
        return s.AllowedNames.Count == 0 || s.AllowedNames.Contains(certificate.GetNameInfo(X509NameType.SimpleName, false));
    }

    /// <summary>The user the headers name, or null without one; read only after <see cref="IsFrontProxy"/>.</summary>
    public static ProxiedUser? UserOf(IHeaderDictionary headers, FrontProxySettings s)
    {
        var name = s.UserHeaders.Select(h => headers[h].FirstOrDefault()).FirstOrDefault(v => !string.IsNullOrEmpty(v));
        if (name is null) return null;
        var groups = s.GroupHeaders.SelectMany(h => headers[h].Where(v => !string.IsNullOrEmpty(v)).Select(v => v!)).ToList();
        var extra = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var header in headers)
        {
            var prefix = s.ExtraPrefixes.FirstOrDefault(p => header.Key.StartsWith(p, StringComparison.OrdinalIgnoreCase));
            if (prefix is null) continue;
            var key = Uri.UnescapeDataString(header.Key[prefix.Length..]).ToLowerInvariant();
            if (!extra.TryGetValue(key, out var values)) extra[key] = values = [];
            values.AddRange(header.Value.Where(v => v is not null).Select(v => v!));
        }

        return new ProxiedUser(name, groups, extra);
    }
}
