namespace ControlPlane.Api.V1Alpha1;

/// <summary>
/// The spec rules of a BreakGlass and who may invoke it, shared by its admission (which refuses) and its
/// reconciler (which refuses again: the webhook can be bypassed, and the tenant's policy can change after
/// admission). Each problem names the field and the rule broken.
/// </summary>
public static class BreakGlassRules
{
    /// <summary>No break-glass grant lasts longer, whatever the tenant's policy says; also the default.</summary>
    public static readonly TimeSpan HardMaxDuration = TimeSpan.FromHours(1);

    /// <summary>Its RoleBinding is named controlplane-breakglass-&lt;name&gt;, and an object name has at most 253 characters.</summary>
    public const string BindingPrefix = "controlplane-breakglass-";

    public const int MaxNameLength = 253 - 24;

    const string PolicyField = "spec.accessPolicy.breakGlass";

    /// <summary>The tenant's break-glass policy, or null: break-glass is disabled.</summary>
    public static TenantBreakGlassPolicy? PolicyOf(Tenant? tenant) => tenant?.Spec.AccessPolicy?.BreakGlass;

    /// <summary>The longest grant the tenant allows: its policy's maxDuration, never above 1h.</summary>
    public static TimeSpan MaxDuration(TenantBreakGlassPolicy? policy) =>
        policy?.MaxDuration is { } text && Durations.TryParse(text, out var max) && max > TimeSpan.Zero && max < HardMaxDuration ? max : HardMaxDuration;

    /// <summary>spec.duration, 1h when absent; null when it is not a duration.</summary>
    public static TimeSpan? DurationOf(BreakGlassSpec spec) =>
        string.IsNullOrEmpty(spec.Duration) ? HardMaxDuration : Durations.TryParse(spec.Duration, out var d) ? d : null;

    /// <summary>Why the BreakGlass's name cannot carry its RoleBinding's, or null.</summary>
    public static string? NameProblem(string? name) =>
        (name ?? "").Length > MaxNameLength ? $"metadata.name: at most {MaxNameLength} characters (its RoleBinding is named {BindingPrefix}<name>)" : null;

    /// <summary>Why break-glass is disabled in the tenant, or null.</summary>
    public static string? Disabled(Tenant tenant) =>
        PolicyOf(tenant) is null ? $"{PolicyField}: tenant {tenant.Metadata.Name} declares no break-glass policy, so break-glass is disabled in its workspaces" : null;

    /// <summary>Every problem of the spec against the tenant's break-glass policy (none is checked but the policy's absence when it is absent).</summary>
    public static List<string> Problems(BreakGlassSpec spec, Tenant tenant)
    {
        if (Disabled(tenant) is { } disabled) return [disabled];
        var policy = PolicyOf(tenant)!;
        var problems = new List<string>();
        if (spec.Role != policy.Role)
        {
            problems.Add($"spec.role: \"{spec.Role}\" is not the emergency role the tenant declares in {PolicyField}.role ({policy.Role})");
        }

        var max = MaxDuration(policy);
        if (DurationOf(spec) is not { } duration)
        {
            problems.Add($"spec.duration: \"{spec.Duration}\" is not a duration (e.g. 30m, 1h)");
        }
        else
        {
            if (duration < AccessRequestRules.MinDuration) problems.Add($"spec.duration: {spec.Duration} is shorter than {Durations.Format(AccessRequestRules.MinDuration)}");
            if (duration > max) problems.Add($"spec.duration: {spec.Duration} is beyond the maximum {Durations.Format(max)} ({PolicyField}.maxDuration, never more than 1h)");
        }

        if (AccessRequestRules.JustificationProblem(spec.Justification) is { } why) problems.Add(why);
        if (string.IsNullOrWhiteSpace(spec.Incident)) problems.Add("spec.incident: required: the incident the emergency access is for (e.g. INC-1234)");
        return problems;
    }

    /// <summary>Every problem of a tenant's break-glass policy (the Tenant's admission refuses them, naming the field).</summary>
    public static List<string> PolicyProblems(TenantBreakGlassPolicy? policy)
    {
        if (policy is null) return [];
        var problems = new List<string>();
        if (!Durations.TryParse(policy.MaxDuration, out var max) || max < AccessRequestRules.MinDuration || max > HardMaxDuration)
        {
            problems.Add($"{PolicyField}.maxDuration: \"{policy.MaxDuration}\" must be a duration from {Durations.Format(AccessRequestRules.MinDuration)} to 1h: break-glass never lasts longer");
        }

        if ((policy.Invokers.Users?.Count ?? 0) + (policy.Invokers.Groups?.Count ?? 0) == 0)
        {
            problems.Add($"{PolicyField}.invokers: names nobody; name the users or groups who may break the glass (or remove the policy to disable it)");
        }

        foreach (var user in (policy.Invokers.Users ?? []).Where(u => KubernetesIdentities.IsServiceAccount(u, null)))
        {
            problems.Add($"{PolicyField}.invokers.users: {user} is a ServiceAccount; only a person invokes break-glass");
        }

        foreach (var group in (policy.Invokers.Groups ?? []).Where(g => g.StartsWith("system:", StringComparison.Ordinal)))
        {
            problems.Add($"{PolicyField}.invokers.groups: {group} is a system: group (every user or every ServiceAccount); name a group of people");
        }

        return problems;
    }

    /// <summary>
    /// Which entry of the policy's invokers names this caller: "user:&lt;name&gt;" or "group:&lt;group&gt;" (a
    /// system: group never counts), or null. Only admission can ask it with groups: it alone sees the caller's.
    /// </summary>
    public static string? InvokerMatch(TenantBreakGlassPolicy? policy, string? user, IEnumerable<string>? groups)
    {
        if (policy is null || string.IsNullOrEmpty(user)) return null;
        if (policy.Invokers.Users?.Contains(user) == true) return "user:" + user;
        var group = (groups ?? []).Where(g => !g.StartsWith("system:", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            .FirstOrDefault(g => policy.Invokers.Groups?.Contains(g) == true);
        return group is null ? null : "group:" + group;
    }

    /// <summary>
    /// Whether a match stamped at admission still lets <paramref name="invoker"/> invoke under the current policy:
    /// a user entry names the invoker and is still listed; a group entry is still listed (membership is what the
    /// webhook saw: the reconciler cannot see groups). Null or unknown: no.
    /// </summary>
    public static bool MatchHolds(TenantBreakGlassPolicy? policy, string? invoker, string? match)
    {
        if (policy is null || string.IsNullOrEmpty(invoker) || string.IsNullOrEmpty(match)) return false;
        if (match.StartsWith("user:", StringComparison.Ordinal)) return match[5..] == invoker && policy.Invokers.Users?.Contains(invoker) == true;
        if (match.StartsWith("group:", StringComparison.Ordinal))
        {
            var group = match[6..];
            return !group.StartsWith("system:", StringComparison.Ordinal) && policy.Invokers.Groups?.Contains(group) == true;
        }

        return false;
    }
}
