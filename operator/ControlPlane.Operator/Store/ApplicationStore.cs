using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using Npgsql;

namespace ControlPlane.Operator.Store;

/// <summary>An Application scope version that took effect, as recorded.</summary>
public sealed record ScopeVersionRecord(
    string ApplicationUid,
    string Namespace,
    string Name,
    string Tenant,
    int Version,
    long Generation,
    ApplicationScope Scope,
    ScopeDiff Diff,
    BlastRadius BlastRadius,
    IReadOnlyList<string> Approvers,
    string Reason,
    DateTime ApprovedAt);

/// <summary>How recording a version went: a new row, the same row already there (a repeated pass), or another scope under that version.</summary>
public enum ScopeRecordOutcome { Recorded, AlreadyRecorded, Conflict }

/// <summary>Application scope versions in the system of record: append-only rows, each with its audit event.</summary>
public static class ApplicationStore
{
    static string Json<T>(T value) => k8s.KubernetesJson.Serialize(value);

    /// <summary>SHA-256 (hex) of a scope's JSON (its dimensions normalised by the caller).</summary>
    public static string ScopeHash(ApplicationScope scope) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Json(scope))));

    /// <summary>
    /// Records a version once, with its audit event in the same transaction: a pass repeated after a crash (or on a
    /// stale cache) finds the same row and appends nothing; another scope already under that version is a conflict.
    /// </summary>
    public static async Task<ScopeRecordOutcome> RecordScopeVersionAsync(this SystemDatabase db, ScopeVersionRecord v, AuditEntry audit, CancellationToken ct)
    {
        string? existing = null;
        var recorded = await db.WriteIfChangedAsync(async (conn, tx) =>
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO controlplane.application_scope_versions
                    (application_uid, namespace, name, tenant, version, generation, scope, scope_hash, diff, blast_radius, approvers, reason, approved_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12, $13)
                ON CONFLICT (application_uid, version) DO NOTHING
                """, conn, tx);
            cmd.Parameters.AddWithValue(v.ApplicationUid);
            cmd.Parameters.AddWithValue(v.Namespace);
            cmd.Parameters.AddWithValue(v.Name);
            cmd.Parameters.AddWithValue(v.Tenant);
            cmd.Parameters.AddWithValue(v.Version);
            cmd.Parameters.AddWithValue(v.Generation);
            cmd.Parameters.AddWithValue(Json(v.Scope));
            cmd.Parameters.AddWithValue(ScopeHash(v.Scope));
            cmd.Parameters.AddWithValue(Json(v.Diff));
            cmd.Parameters.AddWithValue(Json(v.BlastRadius));
            cmd.Parameters.AddWithValue(new JsonArray(v.Approvers.Select(a => (JsonNode)JsonValue.Create(a)).ToArray()).ToJsonString());
            cmd.Parameters.AddWithValue(v.Reason);
            cmd.Parameters.AddWithValue(NpgsqlTypes.NpgsqlDbType.TimestampTz, v.ApprovedAt);
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1) return true;
            await using var read = new NpgsqlCommand("SELECT scope_hash FROM controlplane.application_scope_versions WHERE application_uid = $1 AND version = $2", conn, tx);
            read.Parameters.AddWithValue(v.ApplicationUid);
            read.Parameters.AddWithValue(v.Version);
            existing = await read.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
            return false;
        }, audit, ct).ConfigureAwait(false);
        return recorded ? ScopeRecordOutcome.Recorded : existing == ScopeHash(v.Scope) ? ScopeRecordOutcome.AlreadyRecorded : ScopeRecordOutcome.Conflict;
    }

    /// <summary>The newest recorded version of an Application: what its status must start from after a conflict.</summary>
    public static async Task<(int Version, ApplicationScope Scope, IReadOnlyList<string> Approvers, DateTime ApprovedAt)?> LatestScopeVersionAsync(this SystemDatabase db, string applicationUid, CancellationToken ct)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            SELECT version, scope::text, approvers::text, approved_at FROM controlplane.application_scope_versions
            WHERE application_uid = $1 ORDER BY version DESC LIMIT 1
            """);
        cmd.Parameters.AddWithValue(applicationUid);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false)) return null;
        var scope = k8s.KubernetesJson.Deserialize<ApplicationScope>(reader.GetString(1));
        var approvers = k8s.KubernetesJson.Deserialize<List<string>>(reader.GetString(2));
        return (reader.GetInt32(0), scope, approvers, DateTime.SpecifyKind(reader.GetDateTime(3), DateTimeKind.Utc));
    }
}
