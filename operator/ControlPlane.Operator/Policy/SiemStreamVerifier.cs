using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Policy;

/// <summary>What one SIEM line was: the next link of its chains, a redelivery of a link already seen, or a break.</summary>
public enum SiemLineOutcome
{
    Accepted,
    Duplicate,
    Broken,
}

/// <summary>A break in a stream: the line (1-based, in arrival order), its table and global sequence, and why.</summary>
public sealed record SiemProblem(long Line, string? Table, long? Sequence, string Reason);

/// <summary>Where a stream's verification stands: lines by outcome, chain heads, and every break found.</summary>
public sealed record SiemStreamReport(long Lines, long Accepted, long Duplicates, long Unrecomputable, IReadOnlyList<SiemProblem> Problems,
    IReadOnlyDictionary<string, long> LastSequenceByTable, IReadOnlyDictionary<string, long> LastTenantSequence)
{
    public bool Intact => Problems.Count == 0;
}

/// <summary>
/// Receiver-side verification of a SIEM stream (issue 26): each line is one row of controlplane.audit_events or
/// controlplane.deployment_events with its chain links, and the receiver proves nothing is missing (per table, each
/// row's prevHash is the previous row's hash: ids may skip where a transaction rolled back, links may not; per
/// tenant chain, sequence numbers 1, 2, 3, … without a gap) and nothing altered (each hash recomputes over the
/// event object by the rule of docs/audit-api.md, implemented here again on purpose: a receiver does not run the
/// operator's code). At-least-once delivery means redeliveries: a row seen before with the same hash is a
/// duplicate, with another hash a break. Not thread-safe: one instance per stream, lines in arrival order.
/// <para>
/// A line is a JSON object. Its table: <c>table</c> ("audit_events" | "deployment_events") or <c>kind</c>
/// ("AuditEvent" | "DeploymentEvent"). The global chain: <c>chain: {sequence, prevHash, hash}</c>, or flat
/// <c>seq</c>, <c>prevHash</c>, <c>hash</c>. The tenant chain, when the row is on one: <c>tenantChain: {tenant,
/// sequence, prevHash, hash}</c>, or flat <c>tenantSeq</c>, <c>tenantHash</c>, <c>tenantPrevHash</c> (optional) and
/// the tenant in <c>chainTenant</c> or <c>tenant</c>. The hashed object: <c>event</c>, exactly as the audit API serves
/// it (AuditLog.AuditEvent / DeploymentEventObject); a line without it can be checked for links and gaps but not
/// for alteration, and is counted as unrecomputable.
/// </para>
/// </summary>
public sealed class SiemStreamVerifier(bool fromGenesis = false)
{
    sealed class Chain
    {
        public long LastSequence;
        public string? LastHash;
        public readonly Dictionary<long, string> Seen = [];
    }

    readonly Dictionary<string, Chain> tables = new(StringComparer.Ordinal);
    readonly Dictionary<string, (long Sequence, string Hash)> tenantHeads = new(StringComparer.Ordinal);
    readonly List<SiemProblem> problems = [];
    long lines;
    long accepted;
    long duplicates;
    long unrecomputable;

    /// <summary>One line as received (JSON text).</summary>
    public SiemLineOutcome Accept(string line)
    {
        JsonObject? o;
        try
        {
            o = JsonNode.Parse(line) as JsonObject;
        }
        catch (JsonException)
        {
            o = null;
        }

        if (o is not null) return Accept(o);
        lines++;
        problems.Add(new SiemProblem(lines, null, null, "not a JSON object"));
        return SiemLineOutcome.Broken;
    }

    /// <summary>
    /// One line, parsed. A break is reported once and the chain continues from the line that broke it (its own hash),
    /// so one missing row is one problem, not one per row after it.
    /// </summary>
    public SiemLineOutcome Accept(JsonObject o)
    {
        ArgumentNullException.ThrowIfNull(o);
        lines++;
        var chainNode = o["chain"] as JsonObject;
        var table = Str(o, "table") ?? (Str(o, "kind") switch { "AuditEvent" => "audit_events", "DeploymentEvent" => "deployment_events", _ => null });
        var seq = Long(chainNode ?? o, chainNode is null ? "seq" : "sequence");
        var prevHash = Str(chainNode ?? o, "prevHash");
        var hash = Str(chainNode ?? o, "hash");
        var found = new List<string>();
        SiemLineOutcome Broken()
        {
            problems.AddRange(found.Select(reason => new SiemProblem(lines, table, seq, reason)));
            return SiemLineOutcome.Broken;
        }

        if (table is null) found.Add("no table (\"table\" or \"kind\")");
        else if (seq is null || prevHash is null || hash is null) found.Add("no global chain link (sequence, prevHash, hash)");
        if (found.Count > 0) return Broken();

        var chain = tables.TryGetValue(table!, out var c) ? c : tables[table!] = new Chain();
        if (seq <= chain.LastSequence)
        {
            if (chain.Seen.TryGetValue(seq!.Value, out var earlier) && earlier == hash)
            {
                duplicates++;
                return SiemLineOutcome.Duplicate;
            }

            found.Add(chain.Seen.ContainsKey(seq.Value)
                ? "delivered again with another hash: altered"
                : $"arrived after sequence {chain.LastSequence}: out of order, or a row the stream skipped");
            return Broken();
        }

        var eventObject = o["event"];
        if (chain.LastHash is { } last && prevHash != last)
        {
            found.Add($"prevHash is not the hash of sequence {chain.LastSequence}: a row between them is missing or altered");
        }
        else if (chain.LastHash is null && fromGenesis && prevHash!.Length != 0)
        {
            found.Add("the stream should start at the table's first row (prevHash \"\"): rows before it are missing");
        }

        if (eventObject is not null && Hash(prevHash!, eventObject) != hash) found.Add("hash does not match the event: altered");

        // The tenant chain, when the row is on one.
        var tenantNode = o["tenantChain"] as JsonObject;
        var tenantSeq = tenantNode is null ? Long(o, "tenantSeq") : Long(tenantNode, "sequence");
        var tenantHash = tenantNode is null ? Str(o, "tenantHash") : Str(tenantNode, "hash");
        var tenantPrev = tenantNode is null ? Str(o, "tenantPrevHash") : Str(tenantNode, "prevHash");
        var tenant = tenantNode is null ? Str(o, "chainTenant") ?? Str(o, "tenant") : Str(tenantNode, "tenant");
        string? tenantKey = null;
        if (tenantSeq is not null && (tenantHash is null || tenant is null))
        {
            found.Add("a tenant sequence without its tenant or hash");
        }
        else if (tenantSeq is not null)
        {
            tenantKey = table + "/" + tenant;
            if (tenantHeads.TryGetValue(tenantKey, out var head))
            {
                if (tenantSeq != head.Sequence + 1)
                {
                    found.Add($"tenant {tenant} sequence {tenantSeq} follows {head.Sequence}: {(tenantSeq > head.Sequence ? "rows are missing" : "out of order")}");
                }
                else
                {
                    if (tenantPrev is not null && tenantPrev != head.Hash) found.Add($"tenant {tenant} sequence {tenantSeq}: prevHash is not the hash of sequence {head.Sequence}");
                    if (eventObject is not null && Hash(head.Hash, eventObject) != tenantHash) found.Add($"tenant {tenant} sequence {tenantSeq}: tenant hash does not match the event: altered");
                }
            }
            else
            {
                if (fromGenesis && tenantSeq != 1) found.Add($"tenant {tenant}'s chain should start at sequence 1, not {tenantSeq}: rows are missing");
                var prev = tenantSeq == 1 ? "" : tenantPrev;
                if (eventObject is not null && prev is not null && Hash(prev, eventObject) != tenantHash) found.Add($"tenant {tenant} sequence {tenantSeq}: tenant hash does not match the event: altered");
            }
        }

        chain.LastSequence = seq!.Value;
        chain.LastHash = hash;
        chain.Seen[seq.Value] = hash!;
        if (tenantKey is not null) tenantHeads[tenantKey] = (tenantSeq!.Value, tenantHash!);
        if (found.Count > 0) return Broken();
        if (eventObject is null) unrecomputable++;
        accepted++;
        return SiemLineOutcome.Accepted;
    }

    public SiemStreamReport Report() => new(lines, accepted, duplicates, unrecomputable, [.. problems],
        tables.ToDictionary(t => t.Key, t => t.Value.LastSequence, StringComparer.Ordinal),
        tenantHeads.ToDictionary(t => t.Key, t => t.Value.Sequence, StringComparer.Ordinal));

    /// <summary>docs/audit-api.md: lowercase hex SHA-256 of UTF-8(prevHash + canonical(event)).</summary>
    public static string Hash(string prevHash, JsonNode eventObject) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(prevHash + Canonical(eventObject))));

    /// <summary>Keys sorted ordinally at every level, no whitespace, System.Text.Json's default escaping.</summary>
    public static string Canonical(JsonNode? node) => Sorted(node)?.ToJsonString() ?? "null";

    static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, Sorted(kv.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sorted)]),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };

    static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    static long? Long(JsonObject o, string key) => o[key] switch
    {
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<string>(out var s) && long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var p) => p,
        _ => null,
    };
}
