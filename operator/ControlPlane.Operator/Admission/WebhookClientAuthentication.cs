using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// The webhook answers only the API server: a client certificate that chains to the configured CA
/// (ControlPlane:Webhook:ClientCaFile) and is meant for client authentication.
/// </summary>
public static class WebhookClientAuthentication
{
    const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    public static X509Certificate2Collection? Load(string? caFile)
    {
        if (string.IsNullOrWhiteSpace(caFile)) return null;
        var bundle = new X509Certificate2Collection();
        bundle.ImportFromPemFile(caFile);
        if (bundle.Count == 0) throw new InvalidOperationException($"ControlPlane:Webhook:ClientCaFile {caFile} holds no certificate");
        return bundle;
    }

    public static bool IsTrusted(X509Certificate2 certificate, X509Certificate2Collection trusted)
    {
        var usage = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        if (usage is not null && !usage.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == ClientAuthOid)) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}
