using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Operator.Store;

/// <summary>A generation of an Exposure that went live ("published") or was taken down ("unpublished").</summary>
public sealed record ExposurePublication(
    string ExposureUid,
    string Namespace,
    string Name,
    string Tenant,
    long Generation,
    string Action,
    string? Author,
    IReadOnlyList<string> Approvers,
    DateTime? PublishedAt,
    string SpecHash,
    JsonArray Diff,
    bool ValuesRedacted,
    string Reason);

/// <summary>Exposure publications in the system of record: append-only rows, each with its audit event.</summary>
public static class ExposureStore
{
    /// <summary>Records a publication once: a pass repeated after a crash finds the row and appends nothing (returns false).</summary>
    public static Task<bool> RecordPublicationAsync(this SystemDatabase db, ExposurePublication p, AuditEntry audit, CancellationToken ct) =>
        db.WriteIfChangedAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.exposure_publications
                    (exposure_uid, namespace, name, tenant, generation, action, author, approvers, published_at, spec_hash, diff, values_redacted, reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12, $13)
                ON CONFLICT (exposure_uid, generation, action) DO NOTHING
                """, conn, tx);
            cmd.Parameters.AddWithValue(p.ExposureUid);
            cmd.Parameters.AddWithValue(p.Namespace);
            cmd.Parameters.AddWithValue(p.Name);
            cmd.Parameters.AddWithValue(p.Tenant);
            cmd.Parameters.AddWithValue(p.Generation);
            cmd.Parameters.AddWithValue(p.Action);
            cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)p.Author ?? DBNull.Value);
            cmd.Parameters.AddWithValue(new JsonArray(p.Approvers.Select(a => (JsonNode)JsonValue.Create(a)).ToArray()).ToJsonString());
            cmd.Parameters.AddWithValue(NpgsqlDbType.TimestampTz, (object?)p.PublishedAt ?? DBNull.Value);
            cmd.Parameters.AddWithValue(p.SpecHash);
            cmd.Parameters.AddWithValue(p.Diff.ToJsonString());
            cmd.Parameters.AddWithValue(p.ValuesRedacted);
            cmd.Parameters.AddWithValue(p.Reason);
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, audit, ct);

    /// <summary>The spec hash recorded when this generation of the exposure was published, or null.</summary>
    public static async Task<string?> PublishedSpecHashAsync(this SystemDatabase db, string exposureUid, long generation, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT spec_hash FROM controlplane.exposure_publications
            WHERE exposure_uid = $1 AND generation = $2 AND action = 'published'
            """);
        cmd.Parameters.AddWithValue(exposureUid);
        cmd.Parameters.AddWithValue(generation);
        return (string?)await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    /// <summary>An exposure's publications, oldest first (tests and `kubectl`-less audits read them).</summary>
    public static async Task<IReadOnlyList<ExposurePublication>> GetPublicationsAsync(this SystemDatabase db, string exposureUid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT exposure_uid, namespace, name, tenant, generation, action, author, approvers::text, published_at, spec_hash, diff::text, values_redacted, reason
            FROM controlplane.exposure_publications WHERE exposure_uid = $1 ORDER BY id
            """);
        cmd.Parameters.AddWithValue(exposureUid);
        var result = new List<ExposurePublication>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var approvers = JsonNode.Parse(r.GetString(7))!.AsArray().Select(a => a!.GetValue<string>()).ToList();
            result.Add(new ExposurePublication(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetString(5),
                r.IsDBNull(6) ? null : r.GetString(6), approvers, r.IsDBNull(8) ? null : r.GetDateTime(8), r.GetString(9),
                JsonNode.Parse(r.GetString(10))!.AsArray(), r.GetBoolean(11), r.GetString(12)));
        }

        return result;
    }
}
