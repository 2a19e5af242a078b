using System.Security.Cryptography;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 23 items 4 and 5: scan reports in the scanners' published formats (fixtures under
/// Fixtures/scan-reports), the artifact match, the union with the author's list, signatures against the
/// platform's keys, the evidence store's write-once key rule and admission's evidence rules.
/// </summary>
public sealed class EvidenceUnitTests
{
    const string Image = "registry.example/payments:1.4.0";
    const string Digest = "3f1c9a7e5b2d4c6a8e0f1b3d5c7a9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a3c";
    static readonly string Other = new('b', 64);

    static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(Repository.Root(), "tests", "ControlPlane.UnitTests", "Fixtures", "scan-reports", name));

    static List<(string Id, string Severity)> Shown(ScanReportResult r) => r.Findings.Select(f => (f.Id, f.Severity)).ToList();

    [Fact]
    public void ATrivyReport_GivesEveryVulnerabilityOnce_AtTheHighestSeverityOfAnyTarget_UnknownAsCritical()
    {
        var r = ScanReports.Parse("trivy", Fixture("trivy-payments-1.4.0.json"), Image, Digest);
        Assert.Null(r.Problem);
        Assert.Equal([("CVE-2011-3374", "Low"), ("CVE-2023-4039", "Medium"), ("CVE-2024-45490", "High"), ("GHSA-xr7q-jx4m-x55m", "Critical"), ("TEMP-0841856-B18BAF", "Critical")], Shown(r));
        Assert.All(r.Findings, f => Assert.Equal("scan:trivy", f.Source));
        Assert.Equal(["CVE-2024-45490", "GHSA-xr7q-jx4m-x55m", "TEMP-0841856-B18BAF"], r.Findings.Where(f => f.Serious).Select(f => f.Id));
    }

    [Fact]
    public void ACycloneDx15Report_TakesTheHighestRatingOfEachVulnerability()
    {
        var r = ScanReports.Parse("cyclonedx", Fixture("cyclonedx-payments-1.4.0.json"), Image, Digest);
        Assert.Null(r.Problem);
        Assert.Equal([("CVE-2011-3374", "Low"), ("CVE-2024-45490", "High"), ("GHSA-xr7q-jx4m-x55m", "Critical"), ("TEMP-0841856-B18BAF", "Critical")], Shown(r));
        Assert.All(r.Findings, f => Assert.Equal("scan:cyclonedx", f.Source));
    }

    [Fact]
    public void AReportAboutAnotherArtifact_IsRefused_NamingTheReportsField()
    {
        var trivy = ScanReports.Parse("trivy", Fixture("trivy-payments-1.4.0.json"), Image, Other);
        Assert.Contains("spec.artifact.scanReport: the report is about another artifact: Metadata.RepoDigests gives sha256 " + Digest, trivy.Problem);
        Assert.Contains("not spec.artifact.sha256 (" + Other + ")", trivy.Problem);
        Assert.Empty(trivy.Findings);

        var cdx = ScanReports.Parse("cyclonedx", Fixture("cyclonedx-payments-1.4.0.json"), Image, Other);
        Assert.Contains("metadata.component.hashes/purl gives sha256 " + Digest, cdx.Problem);

        // No digest in the report: its name must be the intent's image.
        var named = """{"SchemaVersion":2,"ArtifactName":"registry.example/other:1.0","Results":[]}""";
        Assert.Contains("ArtifactName is \"registry.example/other:1.0\", not spec.artifact.image", ScanReports.Parse("trivy", Encoding.UTF8.GetBytes(named), Image, Digest).Problem);
        Assert.Null(ScanReports.Parse("trivy", Encoding.UTF8.GetBytes(named.Replace("registry.example/other:1.0", Image, StringComparison.Ordinal)), Image, Digest).Problem);

        var anonymous = """{"bomFormat":"CycloneDX","specVersion":"1.5","vulnerabilities":[]}""";
        Assert.Contains("the report names no artifact", ScanReports.Parse("cyclonedx", Encoding.UTF8.GetBytes(anonymous), Image, Digest).Problem);
    }

    [Fact]
    public void CycloneDxComponentHashes_IdentifyTheArtifact()
    {
        var bom = $$$"""{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"component":{"type":"container","name":"x","hashes":[{"alg":"SHA-256","content":"{{{Digest}}}"}]}},"vulnerabilities":[{"id":"CVE-1","ratings":[]}]}""";
        var r = ScanReports.Parse("cyclonedx", Encoding.UTF8.GetBytes(bom), Image, Digest);
        Assert.Null(r.Problem);
        Assert.Equal([("CVE-1", "Critical")], Shown(r)); // no rating: unknown, never lowered
        Assert.NotNull(ScanReports.Parse("cyclonedx", Encoding.UTF8.GetBytes(bom), Image, Other).Problem);
    }

    [Theory]
    [InlineData("trivy", "not json at all", "spec.artifact.scanReport: not JSON")]
    [InlineData("trivy", "[1,2]", "spec.artifact.scanReport: the report is not a JSON object")]
    [InlineData("trivy", """{"bomFormat":"CycloneDX"}""", "spec.artifact.scanReport: not a Trivy JSON report")]
    [InlineData("cyclonedx", """{"SchemaVersion":2,"ArtifactName":"x"}""", "spec.artifact.scanReport: not a CycloneDX JSON report")]
    [InlineData("trivy", """{"SchemaVersion":2,"ArtifactName":"registry.example/payments:1.4.0","Results":[{"Vulnerabilities":[{"Severity":"HIGH"}]}]}""", "Results[0].Vulnerabilities[0].VulnerabilityID is missing")]
    [InlineData("cyclonedx", """{"bomFormat":"CycloneDX","metadata":{"component":{"name":"registry.example/payments:1.4.0"}},"vulnerabilities":{}}""", "vulnerabilities is not an array")]
    public void AReportThatDoesNotParse_IsRefused_NamingTheField(string format, string text, string expected) =>
        Assert.Contains(expected, ScanReports.Parse(format, Encoding.UTF8.GetBytes(text), Image, Digest).Problem);

    [Fact]
    public void TheAuthorsList_AddsFindings_NeverHidesOrLowersTheScanners()
    {
        var spec = new DeploymentIntentSpec
        {
            Artifact = new Artifact { Image = Image, Sha256 = Digest, Vulnerabilities = [new Vulnerability { Id = "CVE-2024-45490", Severity = "Low" }, new Vulnerability { Id = "CVE-9999-0001", Severity = "Medium" }] },
        };
        var scan = ScanReports.Parse("trivy", Fixture("trivy-payments-1.4.0.json"), Image, Digest).Findings;
        var all = Findings.Union([.. Findings.FromSpec(spec), .. scan]);
        Assert.Equal(("High", "scan:trivy"), all.Where(f => f.Id == "CVE-2024-45490").Select(f => (f.Severity, f.Source)).Single());
        Assert.Equal(("Medium", "spec"), all.Where(f => f.Id == "CVE-9999-0001").Select(f => (f.Severity, f.Source)).Single());
        Assert.Equal(6, all.Count);
    }

    [Theory]
    [InlineData("UNKNOWN", "Critical")]
    [InlineData(null, "Critical")]
    [InlineData("weird", "Critical")]
    [InlineData("negligible", "Low")]
    [InlineData("info", "Low")]
    [InlineData("moderate", "Medium")]
    [InlineData("HIGH", "High")]
    public void ScannerSeverities_MapToTheContracts_NeverLowered(string? scanner, string expected) => Assert.Equal(expected, ScanReports.Severity(scanner));

    // Signatures: what `openssl dgst -sha256 -sign key.pem artifact | base64` makes, here from .NET's own keys.
    static readonly byte[] ArtifactBytes = Encoding.UTF8.GetBytes("the artifact's bytes");
    static string ArtifactDigest => Convert.ToHexStringLower(SHA256.HashData(ArtifactBytes));

    [Fact]
    public void AnEcdsaP256Signature_Verifies_AsDerOrP1363_AndNothingElseDoes()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pem = key.ExportSubjectPublicKeyInfoPem();
        var der = Convert.ToBase64String(key.SignData(ArtifactBytes, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        var p1363 = Convert.ToBase64String(key.SignData(ArtifactBytes, HashAlgorithmName.SHA256));
        Assert.Null(ArtifactSignatures.Check(ArtifactDigest, der, [pem]));
        Assert.Null(ArtifactSignatures.Check(ArtifactDigest, p1363, [pem]));

        // Over another digest, by another key, missing, or garbage: an UnsignedPackage finding, serious.
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var unsigned = ArtifactSignatures.Check(new string('c', 64), der, [pem]);
        Assert.Equal(new Finding(FindingType.UnsignedPackage, "unsigned", "High", "signature"), unsigned);
        Assert.True(unsigned!.Serious);
        Assert.NotNull(ArtifactSignatures.Check(ArtifactDigest, der, [other.ExportSubjectPublicKeyInfoPem()]));
        Assert.NotNull(ArtifactSignatures.Check(ArtifactDigest, null, [pem]));
        Assert.NotNull(ArtifactSignatures.Check(ArtifactDigest, "!!notbase64", [pem]));
        // One trusted key among several is enough.
        Assert.Null(ArtifactSignatures.Check(ArtifactDigest, der, [other.ExportSubjectPublicKeyInfoPem(), pem]));
    }

    [Fact]
    public void AnRsaSignature_Verifies_Pkcs1OrPss()
    {
        using var key = RSA.Create(2048);
        var pem = key.ExportSubjectPublicKeyInfoPem();
        Assert.Null(ArtifactSignatures.Check(ArtifactDigest, Convert.ToBase64String(key.SignData(ArtifactBytes, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)), [pem]));
        Assert.Null(ArtifactSignatures.Check(ArtifactDigest, Convert.ToBase64String(key.SignData(ArtifactBytes, HashAlgorithmName.SHA256, RSASignaturePadding.Pss)), [pem]));
        Assert.NotNull(ArtifactSignatures.Check(Other, Convert.ToBase64String(key.SignData(ArtifactBytes, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)), [pem]));
    }

    [Fact]
    public void WithNoKeysConfigured_NoSignatureFinding_AndKeysThatDoNotParseAreNamed()
    {
        Assert.Null(ArtifactSignatures.Check(ArtifactDigest, null, []));
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var rsa1024 = RSA.Create(1024);
        using var good = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(
            ["ControlPlane:DeploymentIntent:TrustedSigningKeys:0: not a PEM ECDSA P-256 or RSA public key", "ControlPlane:DeploymentIntent:TrustedSigningKeys:1: not a PEM ECDSA P-256 or RSA public key",
             "ControlPlane:DeploymentIntent:TrustedSigningKeys:2: not a PEM ECDSA P-256 or RSA public key"],
            ArtifactSignatures.KeyProblems(["garbage", p384.ExportSubjectPublicKeyInfoPem(), rsa1024.ExportSubjectPublicKeyInfoPem(), good.ExportSubjectPublicKeyInfoPem()]));
    }

    [Fact]
    public void TheEvidenceKey_IsContentAddressedPerTenant_AndWrittenOnce()
    {
        var sha = new string('d', 64);
        Assert.Equal("eu/evidence/acme/" + sha, EvidenceStorage.Key("eu/", "acme", sha));
        Assert.Equal("evidence/acme/" + sha, EvidenceStorage.Key("", "acme", sha));
        Assert.Throws<ArgumentException>(() => EvidenceStorage.Key("", "../other", sha));
        Assert.Throws<ArgumentException>(() => EvidenceStorage.Key("", "acme", "../../x"));
        Assert.Throws<ArgumentException>(() => EvidenceStorage.Key("", "acme", sha.ToUpperInvariant()));

        Assert.Equal(EvidenceWrite.Put, EvidenceStorage.Decide(null, sha));
        Assert.Equal(EvidenceWrite.AlreadyStored, EvidenceStorage.Decide(sha, sha));
        Assert.Equal(EvidenceWrite.Conflict, EvidenceStorage.Decide(new string('e', 64), sha));
    }

    [Fact]
    public void EvidenceGoesToTheRegionsEvidenceStorage_ElseItsBackupStorage_ElseNowhere()
    {
        var options = new ControlPlaneOptions();
        options.Regions["eu"] = new RegionOptions
        {
            BackupStorage = new BackupStorageOptions { Endpoint = "https://s3.eu", Bucket = "backups", CredentialsSecret = "s3" },
            EvidenceStorage = new BackupStorageOptions { Endpoint = "https://s3.eu", Bucket = "evidence", Prefix = "cp", CredentialsSecret = "s3-evidence" },
        };
        options.Regions["us"] = new RegionOptions { BackupStorage = new BackupStorageOptions { Endpoint = "https://s3.us", Bucket = "backups", CredentialsSecret = "s3" } };
        options.Regions["ap"] = new RegionOptions();
        Assert.Equal(("evidence", "cp", "s3-evidence"), EvidenceStorage.Of(Placement.Region(options, "eu")) is { } eu ? (eu.Bucket, eu.Prefix, eu.CredentialsSecret) : default);
        Assert.Equal("backups", EvidenceStorage.Of(Placement.Region(options, "us"))!.Bucket);
        Assert.Null(EvidenceStorage.Of(Placement.Region(options, "ap")));
        Assert.Contains("region ap has no evidence storage configured", EvidenceStorage.None(Placement.Region(options, "ap")));
    }

    static DeploymentIntentSpec Spec(Action<DeploymentIntentSpec>? edit = null)
    {
        var spec = new DeploymentIntentSpec
        {
            Artifact = new Artifact { Image = Image, Sha256 = Digest, ScanReport = new ScanReportRef { ConfigMap = "scan", Sha256 = Digest, Format = "trivy" } },
            EvidencePackRef = new EvidencePackRef { ConfigMap = "evidence", Sha256 = Digest },
        };
        edit?.Invoke(spec);
        return spec;
    }

    [Fact]
    public void Admission_RefusesANewIntentWithoutEvidenceOrScanReport_AndAnUpdateRemovingThem_NamingTheField()
    {
        var options = new DeploymentIntentOptions { EvidenceUrlPrefixes = ["https://evidence.example/"] };
        Assert.Empty(IntentEvidenceRules.Problems(Spec(), null, options));
        Assert.Contains(IntentEvidenceRules.Problems(Spec(s => s.EvidencePackRef = null), null, options), p => p.StartsWith("spec.evidencePackRef: required", StringComparison.Ordinal));
        Assert.Contains(IntentEvidenceRules.Problems(Spec(s => s.Artifact.ScanReport = null), null, options), p => p.StartsWith("spec.artifact.scanReport: required", StringComparison.Ordinal));
        Assert.Empty(IntentEvidenceRules.Problems(Spec(s => s.Artifact.ScanReport = null), null, new DeploymentIntentOptions { RequireScanReport = false }));
        // An update may not remove them; one that never had them (admitted before the rule) is not refused for it.
        Assert.NotEmpty(IntentEvidenceRules.Problems(Spec(s => s.EvidencePackRef = null), Spec(), options));
        Assert.Empty(IntentEvidenceRules.Problems(Spec(s => { s.EvidencePackRef = null; s.Artifact.ScanReport = null; }), Spec(s => { s.EvidencePackRef = null; s.Artifact.ScanReport = null; }), options));

        Assert.Contains("spec.artifact.scanReport: name exactly one of configMap and url",
            IntentEvidenceRules.Problems(Spec(s => s.Artifact.ScanReport!.Url = "https://evidence.example/r.json"), null, options));
        Assert.Contains(IntentEvidenceRules.Problems(Spec(s => s.Artifact.ScanReport = new ScanReportRef { Url = "https://attacker.example/r.json", Sha256 = Digest }), null, options),
            p => p.StartsWith("spec.artifact.scanReport.url: https://attacker.example/r.json is not under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes", StringComparison.Ordinal));
        Assert.Empty(IntentEvidenceRules.Problems(Spec(s => s.Artifact.ScanReport = new ScanReportRef { Url = "https://evidence.example/r.json", Sha256 = Digest }), null, options));
        Assert.Contains(IntentEvidenceRules.Problems(Spec(s => s.EvidencePackRef = new EvidencePackRef { Url = "https://169.254.169.254/latest", Sha256 = Digest }), null, options),
            p => p.StartsWith("spec.evidencePackRef.url:", StringComparison.Ordinal));
        Assert.Contains("spec.artifact.signature: not base64", IntentEvidenceRules.Problems(Spec(s => s.Artifact.Signature = "%%%"), null, options));
    }
}
