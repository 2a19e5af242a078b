using System.Text.Json.Nodes;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Issue 26, SIEM export: the receiver-side check. Rows are chained here with the operator's own code
/// (AuditLog.AuditEvent, SystemDatabase.ChainHash, DeploymentEventStore's object), so the verifier's
/// independent implementation of the documented rule is held to what the operator writes.
/// </summary>
public sealed class SiemStreamVerifierTests
{
    sealed record Row(string Table, long Seq, JsonObject Event, string PrevHash, string Hash, string? Tenant, long? TenantSeq, string? TenantPrevHash, string? TenantHash);

    /// <summary>A stream as the operator chains it: audit rows of two tenants and a platform row, ids with a gap (a rolled-back append), and deployment events.</summary>
    static List<Row> Stream()
    {
        var rows = new List<Row>();
        var global = new Dictionary<string, string> { ["audit_events"] = "", ["deployment_events"] = "" };
        var tenants = new Dictionary<string, (long, string)>();
        var t0 = new DateTime(2026, 12, 7, 12, 0, 0, DateTimeKind.Utc);
        long id = 0;
        void Add(string table, JsonObject e, string? tenant)
        {
            id += id == 4 ? 2 : 1; // id 5 rolled back: ids skip, links do not
            var prev = global[table];
            var hash = AuditLog.Hash(prev, e);
            global[table] = hash;
            long? tseq = null;
            string? tprev = null, thash = null;
            if (tenant is not null)
            {
                var key = table + "/" + tenant;
                var (s, h) = tenants.TryGetValue(key, out var v) ? v : (0, "");
                tseq = s + 1;
                tprev = h;
                thash = AuditLog.Hash(h, e);
                tenants[key] = (tseq.Value, thash);
            }

            rows.Add(new Row(table, id, e, prev, hash, tenant, tseq, tprev, thash));
        }

        for (var i = 0; i < 8; i++)
        {
            var tenant = i % 3 == 2 ? null : i % 2 == 0 ? "acme" : "globex";
            var entry = new AuditEntry("alice@example.com", "backup.failed", "Backup", $"{tenant ?? "platform"}-dev/nightly-{i}", tenant,
                new JsonObject { ["message"] = $"pg_dump exited 1 <&> \"ü\" {i}", ["attempt"] = i, ["nested"] = new JsonObject { ["z"] = 1, ["a"] = new JsonArray(1, "x", null) } });
            Assert.Equal(SystemDatabase.ChainHash("", t0.AddSeconds(i), entry), AuditLog.Hash("", AuditLog.AuditEvent(t0.AddSeconds(i), entry)));
            Add("audit_events", AuditLog.AuditEvent(t0.AddSeconds(i), entry), tenant);
        }

        for (var i = 0; i < 3; i++)
        {
            var e = new DeploymentEvent("uid-1", "acme-prod", "checkout", "acme", "corr-1", 3, "PhaseChanged", "Pending", "Approved", null, "bob@acme.io", "Approved",
                new JsonObject { ["ring"] = i }, $"dedupe-{i}");
            Add("deployment_events", AuditLog.DeploymentEventObject(t0.AddMinutes(1 + i), e), "acme");
        }

        return rows;
    }

    /// <summary>The audit API's shape: kind, event, chain, tenantChain.</summary>
    static JsonObject Nested(Row r)
    {
        var o = new JsonObject
        {
            ["kind"] = r.Table == "audit_events" ? "AuditEvent" : "DeploymentEvent",
            ["event"] = r.Event.DeepClone(),
            ["chain"] = new JsonObject { ["sequence"] = r.Seq, ["prevHash"] = r.PrevHash, ["hash"] = r.Hash },
        };
        if (r.TenantSeq is not null) o["tenantChain"] = new JsonObject { ["tenant"] = r.Tenant, ["sequence"] = r.TenantSeq, ["prevHash"] = r.TenantPrevHash, ["hash"] = r.TenantHash };
        return o;
    }

    /// <summary>A flat line: table, seq, prevHash, hash, tenant, tenantSeq, tenantHash (no tenantPrevHash), with the event.</summary>
    static JsonObject Flat(Row r, bool withEvent = true)
    {
        var o = new JsonObject
        {
            ["id"] = $"{(r.Table == "audit_events" ? "audit" : "deployment")}/{r.Seq}",
            ["table"] = r.Table,
            ["seq"] = r.Seq,
            ["tenant"] = r.Tenant,
            ["prevHash"] = r.PrevHash,
            ["hash"] = r.Hash,
            ["tenantSeq"] = r.TenantSeq,
            ["tenantHash"] = r.TenantHash,
        };
        if (withEvent) o["event"] = r.Event.DeepClone();
        return o;
    }

    static SiemStreamReport Verify(IEnumerable<JsonObject> lines, bool fromGenesis = true)
    {
        var v = new SiemStreamVerifier(fromGenesis);
        foreach (var line in lines) v.Accept(line.ToJsonString());
        return v.Report();
    }

    [Fact]
    public void AnIntactStream_Verifies_InEitherShape()
    {
        var rows = Stream();
        foreach (var shape in new Func<Row, JsonObject>[] { Nested, r => Flat(r) })
        {
            var report = Verify(rows.Select(shape));
            Assert.True(report.Intact, string.Join("; ", report.Problems));
            Assert.Equal((11, 11, 0, 0), (report.Lines, report.Accepted, report.Duplicates, report.Unrecomputable));
            Assert.Equal(rows.Where(r => r.Table == "audit_events").Max(r => r.Seq), report.LastSequenceByTable["audit_events"]);
            Assert.Equal(3, report.LastTenantSequence["deployment_events/acme"]);
        }
    }

    [Fact]
    public void TheCanonicalForm_IsTheOperators()
    {
        var tricky = JsonNode.Parse("""{"b":[3,{"y":null,"x":"<&>'+`é\u0001\n"}],"a":1.50,"A":true}""")!;
        Assert.Equal(SystemDatabase.Canonical(tricky), SiemStreamVerifier.Canonical(tricky));
    }

    [Fact]
    public void Redeliveries_AreDuplicates_NotBreaks()
    {
        var rows = Stream();
        var lines = rows.Select(Nested).ToList();
        lines.Insert(4, lines[2]); // at-least-once: a row sent again after later ones
        lines.Insert(5, lines[3]);
        lines.Add(lines[^1]);
        var report = Verify(lines);
        Assert.True(report.Intact, string.Join("; ", report.Problems));
        Assert.Equal((11, 3), (report.Accepted, report.Duplicates));
    }

    [Fact]
    public void AMissingRow_BreaksTheGlobalChainAtTheNextRow_AndItsTenantsChainAtTheTenantsNextRow()
    {
        var rows = Stream();
        var report = Verify(rows.Where((_, i) => i != 3).Select(Nested));
        // Row 3 is globex's second; the next row (acme's) breaks the global link, globex's next row its sequence.
        Assert.Equal(2, report.Problems.Count);
        Assert.Equal(rows[4].Seq, report.Problems[0].Sequence);
        Assert.Equal($"prevHash is not the hash of sequence {rows[2].Seq}: a row between them is missing or altered", report.Problems[0].Reason);
        Assert.Equal(rows[7].Seq, report.Problems[1].Sequence);
        Assert.Equal("tenant globex sequence 3 follows 1: rows are missing", report.Problems[1].Reason);
    }

    [Fact]
    public void AMissingTenantRow_IsFound_EvenWithoutEventsToRecompute()
    {
        var rows = Stream();
        // Only the tenant chain sees it when the global link is forged consistently; here only flat links are sent.
        var lines = rows.Select(r => Flat(r, withEvent: false)).ToList();
        var report = Verify(lines);
        Assert.True(report.Intact);
        Assert.Equal(11, report.Unrecomputable);
        var dropped = Verify(lines.Where((_, i) => i != 1));
        Assert.Contains(dropped.Problems, p => p.Reason.Contains("prevHash is not the hash", StringComparison.Ordinal));
    }

    [Fact]
    public void AnAlteredEvent_IsFound_OnBothChains()
    {
        var rows = Stream();
        var lines = rows.Select(Nested).ToList();
        lines[3]["event"]!["details"]!["message"] = "nothing happened";
        var report = Verify(lines);
        Assert.Contains(report.Problems, p => p.Sequence == rows[3].Seq && p.Reason == "hash does not match the event: altered");
        Assert.Contains(report.Problems, p => p.Sequence == rows[3].Seq && p.Reason.Contains("tenant hash does not match the event: altered", StringComparison.Ordinal));
        // Only that row: the next one links to its recorded hash.
        Assert.All(report.Problems, p => Assert.Equal(rows[3].Seq, p.Sequence));
    }

    [Fact]
    public void ARedeliveryWithAnotherHash_AndAReorder_AreBreaks()
    {
        var rows = Stream();
        var lines = rows.Select(Nested).ToList();
        var forged = (JsonObject)lines[1].DeepClone();
        forged["chain"]!["hash"] = new string('0', 64);
        lines.Insert(3, forged);
        var report = Verify(lines);
        Assert.Contains(report.Problems, p => p.Reason == "delivered again with another hash: altered");

        var swapped = rows.Select(Nested).ToList();
        (swapped[5], swapped[6]) = (swapped[6], swapped[5]);
        Assert.False(Verify(swapped).Intact);
    }

    [Fact]
    public void AStreamStartingMidway_IsAnAnchor_UnlessFromGenesis()
    {
        var rows = Stream();
        var lines = rows.Skip(3).Select(Nested).ToList();
        Assert.True(Verify(lines, fromGenesis: false).Intact);
        var strict = Verify(lines, fromGenesis: true);
        Assert.Contains(strict.Problems, p => p.Reason.Contains("should start at the table's first row", StringComparison.Ordinal));
    }

    [Fact]
    public void GarbageLines_AreBreaks()
    {
        var v = new SiemStreamVerifier();
        Assert.Equal(SiemLineOutcome.Broken, v.Accept("not json"));
        Assert.Equal(SiemLineOutcome.Broken, v.Accept("""{"table":"audit_events","seq":1}"""));
        Assert.Equal(SiemLineOutcome.Broken, v.Accept("""{"seq":1,"prevHash":"","hash":"x"}"""));
        var report = v.Report();
        Assert.Equal((3, 3), (report.Lines, report.Problems.Count));
    }
}
