using System.Security.Cryptography;
using System.Text;

namespace ControlPlane.Operator.Store;

/// <summary>A value sealed by envelope encryption; every field is safe to store, none is the secret.</summary>
public sealed record SealedValue(byte[] Ciphertext, byte[] Nonce, byte[] Tag, byte[] WrappedKey, byte[] WrapNonce, byte[] WrapTag, string KekId);

/// <summary>
/// Envelope encryption: each value is encrypted with AES-256-GCM under a fresh random data key, and
/// the data key is wrapped (AES-256-GCM) by the key-encryption key from configuration
/// (ControlPlane:KeyEncryptionKey, 32 bytes base64; a Secret in production).
/// </summary>
public sealed class KeyVault
{
    readonly byte[] kek;

    public KeyVault(string? keyEncryptionKeyBase64)
    {
        if (string.IsNullOrWhiteSpace(keyEncryptionKeyBase64))
        {
            throw new InvalidOperationException("ControlPlane:KeyEncryptionKey is not set: provider keys cannot be stored without a key-encryption key (32 bytes, base64).");
        }

        byte[] key;
        try
        {
            key = Convert.FromBase64String(keyEncryptionKeyBase64);
        }
        catch (FormatException)
        {
            throw new InvalidOperationException("ControlPlane:KeyEncryptionKey is not valid base64 (expected 32 random bytes, base64).");
        }

        if (key.Length != 32) throw new InvalidOperationException($"ControlPlane:KeyEncryptionKey must be 32 bytes (AES-256); it is {key.Length}.");
        kek = key;
        // Identifies which KEK wrapped a value, without revealing it (for KEK rotation).
        KekId = "kek-" + Convert.ToHexStringLower(SHA256.HashData(key))[..12];
    }

    public string KekId { get; }

    public SealedValue Seal(string plaintext)
    {
        var dataKey = RandomNumberGenerator.GetBytes(32);
        try
        {
            var (ciphertext, nonce, tag) = Encrypt(dataKey, Encoding.UTF8.GetBytes(plaintext));
            var (wrapped, wrapNonce, wrapTag) = Encrypt(kek, dataKey);
            return new SealedValue(ciphertext, nonce, tag, wrapped, wrapNonce, wrapTag, KekId);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    public string Open(SealedValue value)
    {
        if (value.KekId != KekId) throw new CryptographicException($"value was wrapped by {value.KekId}, not by the configured {KekId}");
        var dataKey = Decrypt(kek, value.WrappedKey, value.WrapNonce, value.WrapTag);
        try
        {
            return Encoding.UTF8.GetString(Decrypt(dataKey, value.Ciphertext, value.Nonce, value.Tag));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    static (byte[] Ciphertext, byte[] Nonce, byte[] Tag) Encrypt(byte[] key, byte[] plaintext)
    {
        using var aes = new AesGcm(key, AesGcm.TagByteSizes.MaxSize);
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[AesGcm.TagByteSizes.MaxSize];
        aes.Encrypt(nonce, plaintext, ciphertext, tag);
        return (ciphertext, nonce, tag);
    }

    static byte[] Decrypt(byte[] key, byte[] ciphertext, byte[] nonce, byte[] tag)
    {
        using var aes = new AesGcm(key, tag.Length);
        var plaintext = new byte[ciphertext.Length];
        aes.Decrypt(nonce, ciphertext, tag, plaintext);
        return plaintext;
    }

    /// <summary>A stable, non-reversible identifier of a key: sha256 of the value, truncated.</summary>
    public static string Fingerprint(string value) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)))[..16];
}
