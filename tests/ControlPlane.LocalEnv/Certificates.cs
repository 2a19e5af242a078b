using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography;

namespace ControlPlane.LocalEnv;

/// <summary>A CA and a serving certificate for 127.0.0.1/localhost, and the service-account key pair, as PEM files.</summary>
static class Certificates
{
    public sealed record Paths(string CaCert, string ServingCert, string ServingKey, string ServiceAccountKey, string ServiceAccountPub,
        string WebhookClientCert, string WebhookClientKey, string FrontProxyCa, string FrontProxyClientCert, string FrontProxyClientKey);

    /// <summary>The CN of the API server's front-proxy client certificate (its --requestheader-allowed-names).</summary>
    public const string FrontProxyClientName = "front-proxy-client";

    public static Paths Write(string dir)
    {
        Directory.CreateDirectory(dir);
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=controlplane-local-ca", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));

        using var servingKey = RSA.Create(2048);
        var req = new CertificateRequest("CN=kube-apiserver", servingKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        san.AddDnsName("kubernetes.default.svc");
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var serving = req.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMonths(6), RandomNumberGenerator.GetBytes(16));

        // The API server's client certificate towards admission webhooks (they answer only it).
        using var clientKey = RSA.Create(2048);
        var clientReq = new CertificateRequest("CN=kube-apiserver-webhook-client", clientKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        clientReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        clientReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        clientReq.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var client = clientReq.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMonths(6), RandomNumberGenerator.GetBytes(16));

        // The front proxy (aggregated APIs) has a CA of its own, as kubeadm sets it up: a client certificate of
        // the main CA cannot pose as the proxy and name any user in X-Remote-User.
        using var proxyCaKey = RSA.Create(2048);
        var proxyCaRequest = new CertificateRequest("CN=controlplane-local-front-proxy-ca", proxyCaKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        proxyCaRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        proxyCaRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        proxyCaRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(proxyCaRequest.PublicKey, false));
        using var proxyCa = proxyCaRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
        using var proxyKey = RSA.Create(2048);
        var proxyReq = new CertificateRequest("CN=" + FrontProxyClientName, proxyKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        proxyReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        proxyReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        proxyReq.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var proxyClient = proxyReq.Create(proxyCa, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMonths(6), RandomNumberGenerator.GetBytes(16));

        using var saKey = RSA.Create(2048);
        var paths = new Paths(Path.Combine(dir, "ca.crt"), Path.Combine(dir, "apiserver.crt"), Path.Combine(dir, "apiserver.key"),
            Path.Combine(dir, "sa.key"), Path.Combine(dir, "sa.pub"), Path.Combine(dir, "webhook-client.crt"), Path.Combine(dir, "webhook-client.key"),
            Path.Combine(dir, "front-proxy-ca.crt"), Path.Combine(dir, "front-proxy-client.crt"), Path.Combine(dir, "front-proxy-client.key"));
        File.WriteAllText(paths.FrontProxyCa, proxyCa.ExportCertificatePem());
        File.WriteAllText(paths.FrontProxyClientCert, proxyClient.ExportCertificatePem());
        File.WriteAllText(paths.FrontProxyClientKey, proxyKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(paths.WebhookClientCert, client.ExportCertificatePem());
        File.WriteAllText(paths.WebhookClientKey, clientKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(paths.CaCert, ca.ExportCertificatePem());
        File.WriteAllText(paths.ServingCert, serving.ExportCertificatePem());
        File.WriteAllText(paths.ServingKey, servingKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(paths.ServiceAccountKey, saKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(paths.ServiceAccountPub, saKey.ExportSubjectPublicKeyInfoPem());
        return paths;
    }
}
