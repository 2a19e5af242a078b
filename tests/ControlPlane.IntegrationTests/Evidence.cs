using System.Net;
using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Configuration;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// What every DeploymentIntent now carries (issue 23): an evidence pack and a scanner's report, each a
/// ConfigMap in the intent's namespace pinned by SHA-256. A builder calls <see cref="Attach"/> (the
/// references, pure) and, where the intent should get past assessment, <see cref="CreateAsync"/> once
/// per namespace (the ConfigMaps, as the admin). Also the regions' evidence storage the fixtures configure.
/// </summary>
public static class Evidence
{
    public const string Bucket = "evidence";
    public const string CredentialsSecret = "evidence-storage";
    public const string PackConfigMap = "evidence-pack";
    public const string Pack = "{\"tests\":\"passed\",\"coverage\":0.9}";

    /// <summary>The images the suites' intents deploy: a report ConfigMap is made for each.</summary>
    public static readonly string[] Images = ["registry.example/app:2.1.0", "registry.example/app:6.6.6", "attacker.example/app:2.1.0", "attacker.example/payments:9.9.9"];

    public static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static string PackSha256 => Sha256(Pack);

    /// <summary>A clean Trivy JSON report (no vulnerabilities) naming <paramref name="image"/> as its artifact.</summary>
    public static string CleanReport(string image) =>
        $$"""{"SchemaVersion":2,"ArtifactName":"{{image}}","ArtifactType":"container_image","Results":[{"Target":"{{image}} (debian 12.5)","Class":"os-pkgs","Type":"debian"}]}""";

    /// <summary>The ConfigMap holding the clean report of an image (named by the image's hash, so one per image and namespace).</summary>
    public static string ReportConfigMap(string image) => "scan-" + Sha256(image)[..12];

    /// <summary>Sets spec.evidencePackRef and spec.artifact.scanReport where the builder left them out.</summary>
    public static DeploymentIntentSpec Attach(DeploymentIntentSpec spec)
    {
        spec.EvidencePackRef ??= new EvidencePackRef { ConfigMap = PackConfigMap, Sha256 = PackSha256 };
        spec.Artifact.ScanReport ??= new ScanReportRef { ConfigMap = ReportConfigMap(spec.Artifact.Image), Sha256 = Sha256(CleanReport(spec.Artifact.Image)), Format = "trivy" };
        return spec;
    }

    /// <summary><see cref="Attach"/> on an intent's spec.</summary>
    public static DeploymentIntent AttachIntent(DeploymentIntent intent)
    {
        Attach(intent.Spec);
        return intent;
    }

    /// <summary>The pack and the clean reports of <see cref="Images"/> (and <paramref name="images"/>) in <paramref name="ns"/>; idempotent.</summary>
    public static async Task CreateAsync(KubeApi admin, string ns, params string[] images)
    {
        await CreateConfigMapAsync(admin, ns, PackConfigMap, "evidence", Pack);
        foreach (var image in Images.Concat(images).Distinct()) await CreateConfigMapAsync(admin, ns, ReportConfigMap(image), "report", CleanReport(image));
    }

    /// <summary><see cref="CreateAsync"/> for the intent's image, then <see cref="Attach"/>.</summary>
    public static async Task<DeploymentIntent> AttachAsync(KubeApi admin, string ns, DeploymentIntent intent)
    {
        await CreateAsync(admin, ns, intent.Spec.Artifact.Image);
        Attach(intent.Spec);
        return intent;
    }

    public static async Task CreateConfigMapAsync(KubeApi admin, string ns, string name, string key, string value)
    {
        try
        {
            await admin.CreateAsync(ControlPlane.Operator.Kinds.WorkspaceReconciler.ConfigMaps, ns, new V1ConfigMap
            {
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns }, Data = new Dictionary<string, string> { [key] = value },
            }, CancellationToken.None);
        }
        catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
        }
    }

    /// <summary>A region's evidence storage on the fixture's s3rver, under its own prefix.</summary>
    public static BackupStorageOptions Storage(LocalS3 s3, string prefix) =>
        new() { Endpoint = s3.Endpoint, Bucket = Bucket, Prefix = prefix, CredentialsSecret = CredentialsSecret };

    /// <summary>The storage credentials in the operator's namespace, as the chart's Secret would hold them.</summary>
    public static async Task CreateStorageSecretAsync(KubeApi admin)
    {
        try
        {
            await admin.CreateAsync(ResourceType.Secrets, LocalControlPlane.OperatorNamespace, new V1Secret
            {
                Metadata = new V1ObjectMeta { Name = CredentialsSecret, NamespaceProperty = LocalControlPlane.OperatorNamespace },
                Data = new Dictionary<string, byte[]> { ["accessKeyId"] = Encoding.UTF8.GetBytes(LocalS3.AccessKey), ["secretAccessKey"] = Encoding.UTF8.GetBytes(LocalS3.SecretKey) },
            }, CancellationToken.None);
        }
        catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
        }
    }
}
