using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace ControlPlane.Cli;

/// <summary>One row of the audit API (docs/audit-api.md): its event (what the hashes cover) and its places on the global and tenant chains.</summary>
public sealed record AuditRow(string Namespace, string Name, JsonObject Event, long Sequence, string PrevHash, string Hash, string? Tenant, long? TenantSequence, string? TenantPrevHash, string? TenantHash)
{
    public static AuditRow From(JsonObject o)
    {
        var chain = o["chain"] as JsonObject ?? [];
        var tenant = o["tenantChain"] as JsonObject;
        return new AuditRow(Obj.Str(o["metadata"]?["namespace"]) ?? "", Obj.Name(o), o["event"] as JsonObject ?? [],
            Obj.Long(chain["sequence"]) ?? long.Parse(Obj.Name(o), CultureInfo.InvariantCulture), Obj.Str(chain["prevHash"]) ?? "", Obj.Str(chain["hash"]) ?? "",
            tenant is null ? null : Obj.Str(tenant["tenant"]), Obj.Long(tenant?["sequence"]), tenant is null ? null : Obj.Str(tenant["prevHash"]) ?? "", tenant is null ? null : Obj.Str(tenant["hash"]));
    }

    public string? Field(string name) => Obj.Str(Event[name]);
}

/// <summary>Where a chain breaks: the row, which sequence, and what is wrong.</summary>
public sealed record ChainBreak(string Chain, long Sequence, string Row, string Problem);

/// <summary>The verdict of `audit verify`.</summary>
public sealed record ChainReport(string Chain, int Rows, int RowsOnTenantChain, ChainBreak? FirstBreak);

/// <summary>
/// The hash rule of docs/audit-api.md, recomputed client-side from what the API returned:
/// hash = lowercase hex(SHA-256(UTF-8(prevHash + canonical(event)))), canonical = keys sorted
/// ordinally at every level, no whitespace, System.Text.Json's default escaping (what
/// SystemDatabase.Canonical writes; ControlPlane.UnitTests.AuditChainTests pins the two together).
/// </summary>
public static class AuditChain
{
    public static string Canonical(JsonNode? node) => Sort(node)?.ToJsonString() ?? "null";

    static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, Sort(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Sort).ToArray()),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };

    public static string Hash(string prevHash, JsonObject evt) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(prevHash + Canonical(evt))));

    /// <summary>
    /// The global chain over every row (a platform auditor's -A), in sequence order: the first row's
    /// prevHash is "", each other row's prevHash is the hash of the row before it, each hash recomputes.
    /// A gap in the sequence numbers alone is no break (an append rolled back with its transaction
    /// consumes an id); a deleted row is, because its successor's prevHash then names a hash no row has.
    /// A tenant auditor's rows are checked on their tenant's chain instead (<see cref="VerifyTenant"/>).
    /// </summary>
    public static ChainReport VerifyGlobal(IReadOnlyList<AuditRow> rows)
    {
        var ordered = rows.OrderBy(r => r.Sequence).ToList();
        AuditRow? previous = null;
        foreach (var row in ordered)
        {
            var expectedPrev = previous?.Hash ?? "";
            if (row.PrevHash != expectedPrev)
            {
                var problem = previous is null
                    ? $"the first row's prevHash is {Short(row.PrevHash)}, not \"\": rows before it were deleted"
                    : row.Sequence != previous.Sequence + 1
                        ? $"rows {previous.Sequence + 1}..{row.Sequence - 1} are missing: prevHash {Short(row.PrevHash)} is not row {previous.Sequence}'s hash {Short(previous.Hash)}"
                        : $"prevHash {Short(row.PrevHash)} is not row {previous.Sequence}'s hash {Short(previous.Hash)}";
                return new("global", rows.Count, 0, new("global", row.Sequence, row.Name, problem));
            }

            var expected = Hash(row.PrevHash, row.Event);
            if (expected != row.Hash) return new("global", rows.Count, 0, new("global", row.Sequence, row.Name, $"hash {Short(row.Hash)} does not recompute ({Short(expected)}): the row was changed"));
            previous = row;
        }

        return new("global", rows.Count, 0, null);
    }

    /// <summary>
    /// One tenant's chain, from every row of theirs the caller could read: tenant sequences 1, 2, 3, ...
    /// with no gap, each prevHash the previous hash ("" for 1), each hash recomputing; and each row's
    /// global hash recomputing from its own global prevHash. Rows before the tenant chains began (no
    /// tenantChain) are checked on that last point only.
    /// </summary>
    public static ChainReport VerifyTenant(string tenant, IReadOnlyList<AuditRow> rows)
    {
        var label = $"tenant {tenant}";
        var onChain = rows.Where(r => r.TenantSequence is not null && r.Tenant == tenant).OrderBy(r => r.TenantSequence).ToList();
        ChainReport Broken(long sequence, AuditRow row, string problem) => new(label, rows.Count, onChain.Count, new(label, sequence, row.Name, problem));

        // Rows from before the tenant chains began (all older than the first row on one) are on the global chain only.
        foreach (var row in rows.Where(r => r.TenantSequence is null || r.Tenant != tenant).OrderBy(r => r.Sequence))
        {
            if (Hash(row.PrevHash, row.Event) != row.Hash) return Broken(row.Sequence, row, $"global hash of row {row.Sequence} does not recompute: the row was changed");
        }

        long next = 1;
        var prevHash = "";
        foreach (var row in onChain)
        {
            if (row.TenantSequence != next)
            {
                return Broken(next, row, row.TenantSequence < next
                    ? $"tenant sequence {row.TenantSequence} appears twice"
                    : $"tenant sequences {next}..{row.TenantSequence - 1} are missing (rows deleted, or in a workspace you could not read)");
            }

            if (row.TenantPrevHash != prevHash) return Broken(next, row, $"prevHash {Short(row.TenantPrevHash)} is not tenant row {next - 1}'s hash {Short(prevHash)}");
            var expected = Hash(prevHash, row.Event);
            if (expected != row.TenantHash) return Broken(next, row, $"hash {Short(row.TenantHash)} does not recompute ({Short(expected)}): the row was changed");
            if (Hash(row.PrevHash, row.Event) != row.Hash) return Broken(next, row, $"global hash of row {row.Sequence} does not recompute from its own prevHash");
            prevHash = row.TenantHash!;
            next++;
        }

        return new(label, rows.Count, onChain.Count, null);
    }

    static string Short(string? hash) => hash is null ? "(none)" : hash.Length == 0 ? "\"\"" : hash.Length > 12 ? hash[..12] : hash;
}
