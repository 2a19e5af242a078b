namespace ControlPlane.Api;

/// <summary>
/// Prometheus has no per-tenant authorization, so a tenant's successRate query is run only when every
/// series it can read is provably inside the ring: every vector selector must carry the matcher
/// namespace=~"{{namespaces}}" (replaced by the ring's namespaces, an anchored regex), the way
/// prom-label-proxy enforces a label on every selector. A small, conservative tokenizer: whatever it
/// cannot prove safe (a bare metric name, a selector without that matcher, a comment, info(), input
/// it cannot read) is refused, never rewritten.
/// </summary>
public static class PromQuery
{
    public const string Field = "spec.gates.successRate.query";
    public const string RequiredMatcher = "namespace=~\"{{namespaces}}\"";

    enum Kind { Ident, Number, String, Punct }

    sealed record Token(Kind Kind, string Text, int At);

    /// <summary>Keywords followed by a label list in parentheses (never selectors).</summary>
    static readonly HashSet<string> LabelListKeywords = new(StringComparer.OrdinalIgnoreCase) { "by", "without", "on", "ignoring", "group_left", "group_right" };

    /// <summary>Aggregations, which may put their by/without clause first (sum by (x) (...)).</summary>
    static readonly HashSet<string> Aggregations = new(StringComparer.Ordinal)
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    };

    static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase) { "and", "or", "unless", "bool", "offset", "atan2" };

    /// <summary>
    /// Keywords Prometheus also reads as a bare metric name where an operand is expected (its grammar's
    /// metric_identifier: rate(offset[5m]), x / or): there they are selectors like any other.
    /// </summary>
    static readonly HashSet<string> MetricNameKeywords = new(StringComparer.OrdinalIgnoreCase) { "and", "or", "unless", "offset", "by", "without" };

    /// <summary>What an operand follows: the start, '(', ',', a binary or unary operator, a binary keyword, a group modifier.</summary>
    static readonly HashSet<string> BeforeOperand = new(StringComparer.OrdinalIgnoreCase)
    {
        "(", ",", "+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=", "and", "or", "unless", "bool", "group_left", "group_right",
    };

    /// <summary>Functions that read series the query does not select (info joins target_info): refused.</summary>
    static readonly HashSet<string> Refused = new(StringComparer.Ordinal) { "info" };

    /// <summary>What is wrong with the query, each naming the field; empty when every selector is confined to the ring.</summary>
    public static IReadOnlyList<string> Problems(string query)
    {
        if (Tokenize(query, out var error) is not { } tokens) return [$"{Field}: {error}"];
        var problems = new List<string>();
        var selectors = 0;
        var operandExpected = true;
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            var next = i + 1 < tokens.Count ? tokens[i + 1] : null;
            var atOperand = operandExpected;
            operandExpected = t.Kind != Kind.String && BeforeOperand.Contains(t.Text);
            if (t.Kind == Kind.Ident)
            {
                if (atOperand && MetricNameKeywords.Contains(t.Text) && next?.Text is not ("(" or "{"))
                {
                    problems.Add($"{Field}: selector {t.Text} at offset {t.At} has no matcher {RequiredMatcher}: every selector must be confined to the ring's namespaces");
                    continue;
                }

                if (LabelListKeywords.Contains(t.Text))
                {
                    if (next?.Text != "(") continue;
                    var close = tokens.FindIndex(i + 1, x => x.Text == ")");
                    if (close < 0 || tokens.Skip(i + 2).Take(close - i - 2).Any(x => x.Kind is not (Kind.Ident or Kind.String) && x.Text != ","))
                    {
                        return [$"{Field}: the label list after {t.Text} at offset {t.At} holds more than label names"];
                    }

                    i = close;
                    // After on(...)/ignoring(...)/group_x(...) an operand follows; after by(...)/without(...) it does not.
                    operandExpected = !t.Text.Equals("by", StringComparison.OrdinalIgnoreCase) && !t.Text.Equals("without", StringComparison.OrdinalIgnoreCase);
                    continue;
                }

                if (Keywords.Contains(t.Text)) continue;
                if (Aggregations.Contains(t.Text) && next is { Kind: Kind.Ident } && LabelListKeywords.Contains(next.Text)) continue;
                if (next?.Text == "(")
                {
                    if (Refused.Contains(t.Text)) problems.Add($"{Field}: {t.Text}() at offset {t.At} reads series the query does not select; it is not allowed");
                    continue;
                }

                if (next?.Text == "{") continue; // the selector's matchers follow
                problems.Add($"{Field}: selector {t.Text} at offset {t.At} has no matcher {RequiredMatcher}: every selector must be confined to the ring's namespaces");
                continue;
            }

            if (t.Text != "{") continue;
            selectors++;
            var end = tokens.FindIndex(i + 1, x => x.Text == "}");
            if (end < 0) return [$"{Field}: the selector at offset {t.At} is not closed"];
            var matchers = tokens.GetRange(i + 1, end - i - 1);
            if (!Confined(matchers, out var why)) problems.Add($"{Field}: the selector at offset {t.At} {why}");
            i = end;
        }

        return problems;
    }

    /// <summary>label op "value" (, ...): one of them exactly namespace=~"{{namespaces}}"; nothing but matchers.</summary>
    static bool Confined(List<Token> matchers, out string why)
    {
        var confined = false;
        var i = 0;
        while (i < matchers.Count)
        {
            var name = matchers[i];
            if (name.Kind == Kind.String && (i + 1 == matchers.Count || matchers[i + 1].Text == ","))
            {
                i += 2; // a quoted metric name (PromQL 3)
                continue;
            }

            if (name.Kind is not (Kind.Ident or Kind.String) || i + 2 >= matchers.Count
                || matchers[i + 1].Text is not ("=" or "!=" or "=~" or "!~") || matchers[i + 2].Kind != Kind.String)
            {
                why = "holds something other than label matchers";
                return false;
            }

            if (name.Text == "namespace" && matchers[i + 1].Text == "=~" && matchers[i + 2].Text == "{{namespaces}}") confined = true;
            i += 3;
            if (i < matchers.Count && matchers[i].Text != ",")
            {
                why = "holds something other than label matchers";
                return false;
            }

            i++;
        }

        why = confined ? "" : $"has no matcher {RequiredMatcher}: every selector must be confined to the ring's namespaces";
        return confined;
    }

    /// <summary>Tokens (a string token's Text is its raw content between the quotes), or null and why.</summary>
    static List<Token>? Tokenize(string q, out string error)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < q.Length)
        {
            var c = q[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '#')
            {
                error = $"comments (# at offset {i}) are not allowed";
                return null;
            }
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                var start = i;
                while (i < q.Length && (char.IsAsciiLetterOrDigit(q[i]) || q[i] is '_' or ':')) i++;
                tokens.Add(new Token(Kind.Ident, q[start..i], start));
            }
            else if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < q.Length && char.IsAsciiDigit(q[i + 1])))
            {
                var start = i;
                while (i < q.Length && (char.IsAsciiLetterOrDigit(q[i]) || q[i] is '.' or '_'
                                        || (q[i] is '+' or '-' && q[i - 1] is 'e' or 'E' && !q[start..i].Contains('x', StringComparison.OrdinalIgnoreCase)))) i++;
                tokens.Add(new Token(Kind.Number, q[start..i], start));
            }
            else if (c is '"' or '\'' or '`')
            {
                var start = i++;
                while (i < q.Length && q[i] != c)
                {
                    if (c != '`' && q[i] == '\\') i++;
                    if (c != '`' && i < q.Length && q[i] == '\n') break;
                    i++;
                }

                if (i >= q.Length || q[i] != c)
                {
                    error = $"the string at offset {start} is not closed";
                    return null;
                }

                tokens.Add(new Token(Kind.String, q[(start + 1)..i], start));
                i++;
            }
            else if (i + 1 < q.Length && q.Substring(i, 2) is "=~" or "!~" or "!=" or "==" or "<=" or ">=")
            {
                tokens.Add(new Token(Kind.Punct, q.Substring(i, 2), i));
                i += 2;
            }
            else if ("(){}[],=<>+-*/%^@".Contains(c, StringComparison.Ordinal) || c == ':')
            {
                tokens.Add(new Token(Kind.Punct, c.ToString(), i));
                i++;
            }
            else
            {
                error = $"unexpected character '{c}' at offset {i}";
                return null;
            }
        }

        error = "";
        return tokens;
    }
}
