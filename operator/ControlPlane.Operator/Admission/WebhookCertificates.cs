using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography;
using System.Text;
using ControlPlane.Runtime;
using Prometheus;
using k8s.Models;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// The webhook's CA and serving certificate. At start each replica reads the shared Secret; when it
/// holds none, or one that expires within RenewBefore or lacks a needed name, a new CA and
/// certificate are made and stored (a replica that loses the create race uses the winner's). The
/// current certificate is swapped in without a restart.
/// </summary>
public sealed class WebhookCertificates(KubeApi api, WebhookOptions options, TimeProvider time, ILogger<WebhookCertificates> logger)
{
    const string CaKey = "ca.crt";
    X509Certificate2? current;

    public X509Certificate2? Current => Volatile.Read(ref current);

    public string CaBundlePem { get; private set; } = "";

    /// <summary>Exports the serving certificate's remaining validity (renewal happens at restart, so an alert must see it run out).</summary>
    public void ExportExpiry(CollectorRegistry registry) => ExportExpiry(registry, () => Current, time);

    /// <summary>
    /// controlplane_webhook_certificate_expiry_seconds: seconds until <paramref name="current"/>'s NotAfter,
    /// read at every scrape (negative once expired); no series before a certificate is loaded.
    /// </summary>
    public static void ExportExpiry(CollectorRegistry registry, Func<X509Certificate2?> current, TimeProvider time)
    {
        var gauge = Metrics.WithCustomRegistry(registry).CreateGauge("controlplane_webhook_certificate_expiry_seconds",
            "Seconds until the webhook serving certificate's NotAfter (negative once expired).");
        registry.AddBeforeCollectCallback(() =>
        {
            if (current() is { } cert) gauge.Set((cert.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime).TotalSeconds);
            else gauge.Unpublish();
        });
    }

    public IReadOnlyList<string> Sans()
    {
        var svc = $"{options.ServiceName}.{options.ServiceNamespace}";
        return [options.ServiceName, svc, $"{svc}.svc", $"{svc}.svc.cluster.local", .. options.ExtraSans];
    }

    public async Task EnsureAsync(CancellationToken ct)
    {
        var secret = await api.TryGetAsync<V1Secret>(ResourceType.Secrets, options.CertSecretNamespace, options.CertSecretName, ct).ConfigureAwait(false);
        if (options.CertificateSource == WebhookCertificateSource.External)
        {
            // cert-manager (or another issuer) writes and renews the Secret: read it, never write it.
            var issued = secret is null ? null : Load(secret, requireCa: false);
            if (issued is null)
            {
                throw new CertificateNotIssuedException($"Secret {options.CertSecretNamespace}/{options.CertSecretName} holds no tls.crt/tls.key yet " +
                                                         "(ControlPlane:Webhook:CertificateSource is External: its issuer, e.g. cert-manager, writes it)");
            }

            Use(issued.Value.Cert, issued.Value.CaPem);
            return;
        }

        if (secret is not null && Load(secret) is { } loaded && Fresh(loaded.Cert))
        {
            Use(loaded.Cert, loaded.CaPem);
            return;
        }

        var (cert, key, newCaPem) = Generate();
        // Other replicas keep serving the previous certificate until they next read the Secret: the
        // bundle keeps every CA still valid through the overlap, so the API server trusts them all.
        var caPem = Bundle(newCaPem, secret?.Data?.TryGetValue(CaKey, out var previous) == true ? Encoding.UTF8.GetString(previous) : null);
        var data = new Dictionary<string, byte[]>
        {
            ["tls.crt"] = Encoding.UTF8.GetBytes(cert),
            ["tls.key"] = Encoding.UTF8.GetBytes(key),
            [CaKey] = Encoding.UTF8.GetBytes(caPem),
        };
        try
        {
            if (secret is null)
            {
                await api.CreateAsync(ResourceType.Secrets, options.CertSecretNamespace, new V1Secret
                {
                    ApiVersion = "v1", Kind = "Secret", Type = "kubernetes.io/tls", Data = data,
                    Metadata = new V1ObjectMeta { Name = options.CertSecretName, NamespaceProperty = options.CertSecretNamespace, Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "controlplane" } },
                }, ct).ConfigureAwait(false);
            }
            else
            {
                secret.Data = data;
                await api.ReplaceAsync(ResourceType.Secrets, options.CertSecretNamespace, options.CertSecretName, secret, ct).ConfigureAwait(false);
            }

            logger.LogInformation("webhook serving certificate issued for {Sans}", string.Join(", ", Sans()));
        }
        catch (KubeApiException e) when (e.IsConflict || e.Reason == "AlreadyExists")
        {
            // Another replica stored one first: use it.
            await EnsureAsync(ct).ConfigureAwait(false);
            return;
        }

        Use(X509Certificate2.CreateFromPem(cert, key), caPem);
    }

    /// <summary>The new CA first, then the previous bundle's CAs that have not expired.</summary>
    string Bundle(string newCaPem, string? previousPem)
    {
        var bundle = new StringBuilder(newCaPem.TrimEnd('\n')).Append('\n');
        if (string.IsNullOrEmpty(previousPem)) return bundle.ToString();
        var previous = new X509Certificate2Collection();
        try
        {
            previous.ImportFromPem(previousPem);
        }
        catch (CryptographicException)
        {
            return bundle.ToString();
        }

        foreach (var ca in previous.Where(c => c.NotAfter.ToUniversalTime() > time.GetUtcNow().UtcDateTime))
        {
            bundle.Append(ca.ExportCertificatePem().TrimEnd('\n')).Append('\n');
        }

        return bundle.ToString();
    }

    void Use(X509Certificate2 cert, string caPem)
    {
        // Re-import so SslStream on Linux can use the private key.
        var usable = X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
        Volatile.Write(ref current, usable);
        CaBundlePem = caPem;
    }

    bool Fresh(X509Certificate2 cert)
    {
        if (cert.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime < options.RenewBefore) return false;
        var san = cert.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        var names = san?.EnumerateDnsNames().Concat(san.EnumerateIPAddresses().Select(i => i.ToString())).ToHashSet() ?? [];
        return Sans().All(names.Contains);
    }

    static (X509Certificate2 Cert, string CaPem)? Load(V1Secret secret, bool requireCa = true)
    {
        if (secret.Data is null || !secret.Data.TryGetValue("tls.crt", out var crt) || !secret.Data.TryGetValue("tls.key", out var key)) return null;
        byte[]? ca = null;
        if (!secret.Data.TryGetValue(CaKey, out ca) && requireCa) return null;
        try
        {
            return (X509Certificate2.CreateFromPem(Encoding.UTF8.GetString(crt), Encoding.UTF8.GetString(key)), ca is null ? "" : Encoding.UTF8.GetString(ca));
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    (string Cert, string Key, string CaPem) Generate()
    {
        var now = time.GetUtcNow();
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("CN=controlplane-webhook-ca", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caReq.CreateSelfSigned(now.AddMinutes(-5), now + options.CertificateValidity + TimeSpan.FromDays(1));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={options.ServiceName}.{options.ServiceNamespace}.svc", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in Sans())
        {
            if (IPAddress.TryParse(name, out var ip)) san.AddIpAddress(ip);
            else san.AddDnsName(name);
        }

        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var cert = req.Create(ca, now.AddMinutes(-5), now + options.CertificateValidity, RandomNumberGenerator.GetBytes(16));
        return (cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem(), ca.ExportCertificatePem());
    }
}

/// <summary>An external issuer has not written the webhook's serving certificate yet: retried, not fatal.</summary>
public sealed class CertificateNotIssuedException(string message) : Exception(message);
