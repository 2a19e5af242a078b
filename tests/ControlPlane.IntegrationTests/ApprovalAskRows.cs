using System.Text.Json.Nodes;
using ControlPlane.LocalEnv;
using ControlPlane.Operator;
using Npgsql;

namespace ControlPlane.Tests;

/// <summary>
/// The approval asks an object's reconciler audited (exposure.approval-requested, rollout.approval-requested,
/// exception.requested): read from Postgres, so a test asserts each appears once, with details.approvers.
/// </summary>
public static class ApprovalAskRows
{
    /// <summary>The details of each row of <paramref name="action"/> for kind/objectName, oldest first.</summary>
    public static async Task<List<JsonObject>> DetailsAsync(string connectionString, string kind, string objectName, string action)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT details::text FROM controlplane.audit_events WHERE kind = $1 AND object_name = $2 AND action = $3 ORDER BY id", conn);
        cmd.Parameters.AddWithValue(kind);
        cmd.Parameters.AddWithValue(objectName);
        cmd.Parameters.AddWithValue(action);
        var rows = new List<JsonObject>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add(JsonNode.Parse(r.GetString(0))!.AsObject());
        return rows;
    }

    /// <summary>Waits until exactly one such row is there (a second one fails at once) and returns its details.</summary>
    public static async Task<JsonObject> OneAsync(string connectionString, string kind, string objectName, string action, Func<JsonObject, bool>? which = null)
    {
        List<JsonObject> rows = [];
        await Net.WaitUntilAsync(async () =>
        {
            rows = (await DetailsAsync(connectionString, kind, objectName, action)).Where(which ?? (_ => true)).ToList();
            if (rows.Count > 1) throw new Xunit.Sdk.XunitException($"{rows.Count} {action} rows for {kind} {objectName}, one expected: {string.Join(" | ", rows)}");
            return rows.Count == 1;
        }, TimeSpan.FromSeconds(60), $"{action} audited for {kind} {objectName}");
        return rows[0];
    }

    /// <summary>
    /// For a fixture whose operator is shared (no TestOperator): a resync that reconciles each of <paramref name="keys"/>
    /// ("controller namespace/name") again writes nothing to Postgres (retried while something else still settles).
    /// </summary>
    public static Task ResyncWritesNothingToPostgresAsync(OperatorRuntime runtime, params string[] keys) => Net.WaitUntilAsync(async () =>
    {
        var before = runtime.Database.Writes;
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        void Count(string controller, string key, string result) => seen[$"{controller} {key}"] = true;
        runtime.Reconciled += Count;
        try
        {
            runtime.ResyncAll();
            await Net.WaitUntilAsync(() => Task.FromResult(keys.All(seen.ContainsKey)), TimeSpan.FromSeconds(30), "reconciled again");
        }
        finally
        {
            runtime.Reconciled -= Count;
        }

        return before == runtime.Database.Writes;
    }, TimeSpan.FromSeconds(60), "a resync with zero Postgres writes");
}
