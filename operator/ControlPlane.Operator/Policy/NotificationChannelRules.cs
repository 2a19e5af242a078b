using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// A NotificationChannel's spec rules, shared by admission and the reconciler (which re-checks them: an
/// object admitted before a rule existed, or while the webhook was down, is never delivered to). Each
/// problem names its field. Where a URL may point is the egress rules' decision, passed in as
/// <paramref name="urlProblem"/> (the refusal naming spec.url, or null: allowed).
/// </summary>
public static class NotificationChannelRules
{
    public const int DefaultMaxConsecutiveFailures = 10;
    public const string PagerDutyEventsUrl = "https://events.pagerduty.com/v2/enqueue";

    public static readonly IReadOnlyList<string> Types = ["webhook", "slack", "pagerduty", "siem"];

    public static int MaxFailuresOf(NotificationChannelSpec spec) => spec.MaxConsecutiveFailures ?? DefaultMaxConsecutiveFailures;

    public static List<string> Problems(NotificationChannelSpec spec, ChannelReach reach, Func<string, string?> urlProblem)
    {
        var problems = new List<string>();
        if (!Types.Contains(spec.Type, StringComparer.Ordinal))
        {
            problems.Add($"spec.type: \"{spec.Type}\" is not one of {string.Join(", ", Types)}");
        }
        else if (spec.Type == "siem" && reach != ChannelReach.Platform)
        {
            problems.Add("spec.type: siem streams every tenant's audit trail: only a platform channel (in the operator's namespace) may be one");
        }

        if (spec.Scope is not (null or "Workspace" or "Tenant")) problems.Add($"spec.scope: \"{spec.Scope}\" is not Workspace or Tenant");
        var hasUrl = !string.IsNullOrEmpty(spec.Url);
        var hasSecretUrl = spec.UrlSecretRef is not null;
        switch (spec.Type)
        {
            case "slack":
                if (hasUrl) problems.Add("spec.url: a Slack incoming-webhook URL is a secret: put it in a Secret and name it in spec.urlSecretRef");
                if (!hasSecretUrl) problems.Add("spec.urlSecretRef: a slack channel needs the Secret holding its incoming-webhook URL");
                break;
            case "pagerduty":
                if (!hasSecretUrl) problems.Add("spec.urlSecretRef: a pagerduty channel needs the Secret holding its routing key");
                break;
            case "webhook" or "siem":
                if (hasUrl == hasSecretUrl) problems.Add("spec.url: give exactly one of spec.url and spec.urlSecretRef");
                if (spec.SigningSecretRef is null) problems.Add($"spec.signingSecretRef: a {spec.Type} channel signs every delivery: name the Secret holding its signing secret");
                break;
        }

        if (hasUrl)
        {
            if (urlProblem(spec.Url!) is { } why) problems.Add(why);
        }

        if (spec.UrlSecretRef is { } u)
        {
            if (!IsDnsName(u.Name)) problems.Add($"spec.urlSecretRef.name: \"{u.Name}\" is not a Secret name");
            if (string.IsNullOrEmpty(u.Key) || u.Key.Length > 253) problems.Add("spec.urlSecretRef.key: required, at most 253 characters");
        }

        if (spec.SigningSecretRef is { } s)
        {
            if (!IsDnsName(s.Name)) problems.Add($"spec.signingSecretRef.name: \"{s.Name}\" is not a Secret name");
            if (s.CurrentKey is { Length: 0 or > 253 }) problems.Add("spec.signingSecretRef.currentKey: 1 to 253 characters");
            if (s.PreviousKey is { Length: 0 or > 253 }) problems.Add("spec.signingSecretRef.previousKey: 1 to 253 characters");
        }

        var events = spec.Events ?? [];
        if (events.Count > 32) problems.Add("spec.events: at most 32 types");
        foreach (var (e, i) in events.Select((e, i) => (e, i)))
        {
            if (!NotificationEvents.IsKnown(e)) problems.Add($"spec.events[{i}]: \"{Trim(e)}\" is not an event type (docs/notifications.md#event-types)");
            else if (reach != ChannelReach.Platform && NotificationEvents.PlatformOnly.Contains(e)) problems.Add($"spec.events[{i}]: {e} is heard only by platform channels");
        }

        if (events.Distinct(StringComparer.Ordinal).Count() != events.Count) problems.Add("spec.events: duplicate event types");
        if (spec.WorkspaceSelector is { } sel)
        {
            if (reach == ChannelReach.Workspace) problems.Add("spec.workspaceSelector: a workspace channel hears only its own workspace; set spec.scope: Tenant to select workspaces");
            foreach (var (r, i) in (sel.MatchExpressions ?? []).Select((r, i) => (r, i)))
            {
                if (r.Operator is not ("In" or "NotIn" or "Exists" or "DoesNotExist")) problems.Add($"spec.workspaceSelector.matchExpressions[{i}].operator: \"{r.Operator}\" is not In, NotIn, Exists or DoesNotExist");
                else if (r.Operator is "In" or "NotIn" && (r.Values ?? []).Count == 0) problems.Add($"spec.workspaceSelector.matchExpressions[{i}].values: {r.Operator} needs at least one value");
                else if (r.Operator is "Exists" or "DoesNotExist" && (r.Values ?? []).Count > 0) problems.Add($"spec.workspaceSelector.matchExpressions[{i}].values: {r.Operator} takes no values");
            }
        }

        if (spec.MaxConsecutiveFailures is < 1 or > 1000) problems.Add("spec.maxConsecutiveFailures: between 1 and 1000");
        return problems;
    }

    static bool IsDnsName(string name) =>
        name.Length is > 0 and <= 253 && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.') && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1]);

    static string Trim(string s) => s.Length > 64 ? s[..64] + "…" : s;
}
