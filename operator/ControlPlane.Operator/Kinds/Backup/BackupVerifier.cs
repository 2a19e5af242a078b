using Amazon.Runtime;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Operator.Kinds;

/// <summary>What reading a stored backup back found.</summary>
public sealed record Verification(bool Ok, string Message, string? ServerVersion, string? PgDumpVersion, int Entries);

/// <summary>
/// Reads a stored backup back: its SHA-256 and size must equal what was uploaded, and `pg_restore
/// --list` must parse it as an archive. A backup that fails this is Failed, never Completed.
/// </summary>
public static class BackupVerifier
{
    public static async Task<Verification> VerifyAsync(ObjectStore store, PgTools tools, string key, UploadResult expected, CancellationToken ct)
    {
        UploadResult? read = null;
        string listing;
        try
        {
            // pg_restore --list stops reading after the table of contents; the rest is still read and hashed.
            listing = await tools.ListAsync(async stdin => read = await store.ReadAsync(key, new UntilClosed(stdin), ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (PgToolException e)
        {
            return new(false, $"the stored object is not a readable archive: {e.Message}", null, null, 0);
        }
        catch (AmazonClientException e)
        {
            // The client's own check of the body against its ETag failed: the stored bytes changed.
            return new(false, $"the stored object failed the integrity check while read back: {e.Message}", null, null, 0);
        }

        if (read is null) return new(false, "the stored object could not be read back", null, null, 0);
        if (read.Sha256 != expected.Sha256 || read.SizeBytes != expected.SizeBytes)
        {
            return new(false, $"the stored object differs from what was uploaded (sha256 {read.Sha256}, {read.SizeBytes} bytes; uploaded sha256 {expected.Sha256}, {expected.SizeBytes} bytes)", null, null, 0);
        }

        var (server, dump) = BackupRules.VersionsFromList(listing);
        var entries = listing.Split('\n').Count(l => l.Length > 0 && !l.StartsWith(';'));
        return server is null
            ? new(false, "pg_restore --list shows no archive header", null, null, entries)
            : new(true, $"verified: sha256 and size match; pg_restore --list reads {entries} entries", server, dump, entries);
    }

    /// <summary>Passes writes on until the reader goes away, then drops them (the caller keeps reading to hash the whole object).</summary>
    sealed class UntilClosed(Stream inner) : Stream
    {
        bool closed;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            if (closed) return;
            try
            {
                await inner.WriteAsync(buffer, ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                closed = true;
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
