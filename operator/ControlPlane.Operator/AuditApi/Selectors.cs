using System.Globalization;
using ControlPlane.Operator.Store;

namespace ControlPlane.Operator.AuditApi;

/// <summary>A selector the API cannot serve: its message names the selector and the part at fault.</summary>
public sealed class SelectorException(string message) : Exception(message);

/// <summary>
/// Label and field selectors (Kubernetes syntax) as conditions on the audit tables' columns (pure).
/// Labels: =, ==, !=, in, notin, key, !key; a key no row carries matches as an absent label does.
/// Fields: =, ==, != on the fields docs/audit-api.md lists; another field is refused, naming it.
/// </summary>
public static class Selectors
{
    public static IReadOnlyList<AuditCondition> Parse(AuditTable table, string? labelSelector, string? fieldSelector)
    {
        var columns = table == AuditTable.AuditEvents ? AuditLog.AuditColumns : AuditLog.DeploymentColumns;
        var result = new List<AuditCondition>();
        foreach (var term in Split(labelSelector))
        {
            result.Add(Label(term, columns));
        }

        foreach (var term in Split(fieldSelector))
        {
            result.Add(Field(term, columns));
        }

        return result;
    }

    static IEnumerable<string> Split(string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector)) yield break;
        var depth = 0;
        var start = 0;
        for (var i = 0; i < selector.Length; i++)
        {
            if (selector[i] == '(') depth++;
            else if (selector[i] == ')') depth--;
            else if (selector[i] == ',' && depth == 0)
            {
                yield return selector[start..i].Trim();
                start = i + 1;
            }
        }

        yield return selector[start..].Trim();
    }

    static AuditCondition Label(string term, IReadOnlyDictionary<string, string> columns)
    {
        string? Column(string key) => key.StartsWith("audit.controlplane.io/", StringComparison.Ordinal) && columns.TryGetValue(key, out var c) ? c : null;
        if (term.Length == 0) throw new SelectorException("labelSelector: an empty requirement");
        foreach (var op in new[] { " notin ", " in " })
        {
            var at = term.IndexOf(op, StringComparison.Ordinal);
            if (at <= 0) continue;
            var set = term[(at + op.Length)..].Trim();
            if (!set.StartsWith('(') || !set.EndsWith(')')) throw new SelectorException($"labelSelector: \"{term}\": a set must be in parentheses");
            var values = set[1..^1].Split(',').Select(v => v.Trim()).Where(v => v.Length > 0).ToList();
            return new AuditCondition(Column(term[..at].Trim()), op.Trim(), values);
        }

        if (term.StartsWith('!')) return new AuditCondition(Column(term[1..].Trim()), "!exists", []);
        foreach (var op in new[] { "!=", "==", "=" })
        {
            var at = term.IndexOf(op, StringComparison.Ordinal);
            if (at <= 0) continue;
            return new AuditCondition(Column(term[..at].Trim()), op == "==" ? "=" : op, [term[(at + op.Length)..].Trim()]);
        }

        if (term.Any(c => c is ' ' or '(' or ')' or '<' or '>')) throw new SelectorException($"labelSelector: \"{term}\" is not a requirement this API serves (=, ==, !=, in, notin, key, !key)");
        return new AuditCondition(Column(term), "exists", []);
    }

    static AuditCondition Field(string term, IReadOnlyDictionary<string, string> columns)
    {
        foreach (var op in new[] { "!=", "==", "=" })
        {
            var at = term.IndexOf(op, StringComparison.Ordinal);
            if (at <= 0) continue;
            var key = term[..at].Trim();
            var value = term[(at + op.Length)..].Trim();
            var sqlOp = op == "==" ? "=" : op;
            if (key == "since")
            {
                if (sqlOp != "=") throw new SelectorException("fieldSelector: since takes =, an RFC 3339 time");
                if (!DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out _))
                {
                    throw new SelectorException($"fieldSelector: since={value} is not an RFC 3339 time");
                }

                return new AuditCondition("a.occurred_at", ">=time", [value]);
            }

            if (key == "metadata.namespace") return new AuditCondition("$namespace", sqlOp, [value]);
            if (key.StartsWith("audit.controlplane.io/", StringComparison.Ordinal) || !columns.TryGetValue(key, out var column))
            {
                var known = string.Join(", ", columns.Keys.Where(k => !k.Contains('/', StringComparison.Ordinal)).Append("metadata.namespace").Append("since"));
                throw new SelectorException($"fieldSelector: field \"{key}\" is not supported (supported: {known})");
            }

            return new AuditCondition(column, sqlOp, [value]);
        }

        throw new SelectorException($"fieldSelector: \"{term}\" is not field=value or field!=value");
    }
}
