using System.Security.Cryptography;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Artifact signatures: spec.artifact.signature (base64) over the artifact's SHA-256 digest, checked
/// against the platform's keys (ControlPlane:DeploymentIntent:TrustedSigningKeys, PEM: ECDSA P-256 or
/// RSA). The signed message is the artifact itself, so the digest is the pre-hash: what
/// `openssl dgst -sha256 -sign key.pem artifact | base64 -w0` prints. ECDSA signatures are accepted as
/// DER (openssl) or IEEE P1363 (r||s); RSA as PKCS#1 v1.5 (openssl's default) or PSS. A key the tenant
/// supplies is never read: only the operator's options are.
/// </summary>
public static class ArtifactSignatures
{
    /// <summary>The finding id for an artifact whose signature is missing or does not verify (what an Exception covers).</summary>
    public const string UnsignedId = "unsigned";

    /// <summary>Keys that do not parse, each naming its index (checked at startup and reported, never silently skipped).</summary>
    public static IReadOnlyList<string> KeyProblems(IReadOnlyList<string> pems)
    {
        var problems = new List<string>();
        for (var i = 0; i < pems.Count; i++)
        {
            if (Load(pems[i]) is null) problems.Add($"ControlPlane:DeploymentIntent:TrustedSigningKeys:{i}: not a PEM ECDSA P-256 or RSA public key");
        }

        return problems;
    }

    /// <summary>
    /// The signature finding for an intent: none when no key is configured (nothing to check against) or
    /// the signature verifies under one of the keys; otherwise an UnsignedPackage finding (serious).
    /// </summary>
    public static Finding? Check(string? sha256, string? signature, IReadOnlyList<string> trustedKeys) =>
        trustedKeys.Count == 0 || Verifies(sha256, signature, trustedKeys) ? null
            : new Finding(FindingType.UnsignedPackage, UnsignedId, "High", "signature");

    /// <summary>Whether <paramref name="signature"/> (base64) verifies over the digest <paramref name="sha256"/> (hex) under one of the keys.</summary>
    public static bool Verifies(string? sha256, string? signature, IReadOnlyList<string> trustedKeys)
    {
        if (string.IsNullOrEmpty(sha256) || string.IsNullOrEmpty(signature) || sha256.Length != 64) return false;
        byte[] digest, sig;
        try
        {
            digest = Convert.FromHexString(sha256);
            sig = Convert.FromBase64String(signature);
        }
        catch (FormatException)
        {
            return false;
        }

        foreach (var pem in trustedKeys)
        {
            using var key = Load(pem);
            switch (key)
            {
                case ECDsa ec when ec.VerifyHash(digest, sig, DSASignatureFormat.Rfc3279DerSequence) || ec.VerifyHash(digest, sig, DSASignatureFormat.IeeeP1363FixedFieldConcatenation):
                case RSA rsa when rsa.VerifyHash(digest, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1) || rsa.VerifyHash(digest, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pss):
                    return true;
            }
        }

        return false;
    }

    /// <summary>The key in a PEM (SubjectPublicKeyInfo): ECDSA on P-256 or RSA of at least 2048 bits; else null.</summary>
    static AsymmetricAlgorithm? Load(string pem)
    {
        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(pem);
            if (ec.KeySize == 256) return ec;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
        }

        ec.Dispose();
        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
            if (rsa.KeySize >= 2048) return rsa;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
        }

        rsa.Dispose();
        return null;
    }
}
