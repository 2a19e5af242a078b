namespace ControlPlane.Operator.Backups;

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
            listing = await tools.ListAsync(async stdin => read = await store.ReadAsync(key, stdin, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (PgToolException e)
        {
            return new(false, $"the stored object is not a readable archive: {e.Message}", null, null, 0);
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
}
