using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>What a change awaiting CAB is routed by: its acquisition boundary and business unit.</summary>
public sealed record CabScope(string AcquisitionBoundary, string? BusinessUnit);

/// <summary>
/// CAB routing (the tenant's spec.cabRoutes), pure: which Approvers are assigned to a change of a given
/// acquisition boundary and business unit, and whether one approver is. With no route declared every
/// eligible Approver is assigned (what approvals always meant); with routes, only those a matching route
/// names, by user or by a group recorded at admission. Any kind awaiting CAB asks this (DeploymentIntent
/// today), so the rule is the same wherever a CAB decision is made.
/// </summary>
public static class CabRouting
{
    /// <summary>How a group is written in status.assignedApprovers (a user is written as its name).</summary>
    public const string GroupPrefix = "group:";

    public static bool Routed(IReadOnlyList<CabRoute>? routes) => routes is { Count: > 0 };

    /// <summary>The routes covering this scope: an empty list of boundaries or business units covers every one.</summary>
    public static IReadOnlyList<CabRoute> Matching(IReadOnlyList<CabRoute>? routes, CabScope scope) =>
        (routes ?? []).Where(r => (r.AcquisitionBoundaries is not { Count: > 0 } ab || ab.Contains(scope.AcquisitionBoundary))
                                  && (r.BusinessUnits is not { Count: > 0 } bu || (scope.BusinessUnit is { } mine && bu.Contains(mine))))
            .ToList();

    /// <summary>
    /// Why <paramref name="user"/> (with the groups recorded when they approved) is not assigned to a change of
    /// <paramref name="scope"/>, or null when assigned (always, with no route declared).
    /// </summary>
    public static string? NotAssigned(string? user, IReadOnlyCollection<string> groups, IReadOnlyList<CabRoute>? routes, CabScope scope)
    {
        if (!Routed(routes)) return null;
        var matching = Matching(routes, scope);
        if (matching.Count == 0)
        {
            return $"no spec.cabRoutes entry of the tenant covers acquisition boundary {scope.AcquisitionBoundary}{(scope.BusinessUnit is { } bu ? $", business unit {bu}" : "")}: nobody is assigned to approve it";
        }

        var assigned = matching.Any(r => (user is not null && (r.Subjects ?? []).Contains(user))
                                         || (r.Groups ?? []).Any(g => !g.StartsWith("system:", StringComparison.Ordinal) && groups.Contains(g)));
        return assigned ? null
            : $"{user} is not assigned by the tenant's spec.cabRoutes to changes of acquisition boundary {scope.AcquisitionBoundary}{(scope.BusinessUnit is { } b ? $", business unit {b}" : "")}; assigned: {Describe(matching)}";
    }

    /// <summary>
    /// status.assignedApprovers: the eligible Approvers (subjects bound to an approver role in every namespace
    /// whose approvers count, see <see cref="EligibleApprovers"/>), minus the change's authors, narrowed by the
    /// matching routes when any route is declared. Users by name, groups as group:&lt;name&gt;, sorted.
    /// </summary>
    public static IReadOnlyList<string> AssignedApprovers(IEnumerable<ApproverSubject> eligible, IReadOnlyList<CabRoute>? routes, CabScope scope, IReadOnlyCollection<string> authors)
    {
        var candidates = eligible.Where(s => !(s.Kind == "User" && authors.Contains(s.Name))).ToList();
        if (Routed(routes))
        {
            var matching = Matching(routes, scope);
            var users = matching.SelectMany(r => r.Subjects ?? []).ToHashSet(StringComparer.Ordinal);
            var groups = matching.SelectMany(r => r.Groups ?? []).ToHashSet(StringComparer.Ordinal);
            candidates = candidates.Where(s => s.Kind == "User" ? users.Contains(s.Name) : groups.Contains(s.Name)).ToList();
        }

        return candidates.Select(s => s.Kind == "User" ? s.Name : GroupPrefix + s.Name).Distinct().Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The people (users) and groups bound to the Approver or WorkspaceAdmin role in every one of the given namespaces'
    /// RoleBindings: ServiceAccounts and system: groups never are approvers (<see cref="ApprovalPolicy.IsApprover"/>).
    /// </summary>
    public static IReadOnlyList<ApproverSubject> EligibleApprovers(IReadOnlyList<IEnumerable<V1RoleBinding>> bindingsPerNamespace)
    {
        HashSet<ApproverSubject>? common = null;
        foreach (var bindings in bindingsPerNamespace)
        {
            var here = bindings.Where(b => b.RoleRef.Kind == "ClusterRole" && ApprovalPolicy.ApproverRoles.Contains(b.RoleRef.Name))
                .SelectMany(b => b.Subjects ?? [])
                .Where(s => (s.Kind == "User" && ApprovalPolicy.NotAPerson(s.Name, []) is null) || (s.Kind == "Group" && !s.Name.StartsWith("system:", StringComparison.Ordinal)))
                .Select(s => new ApproverSubject(s.Kind, s.Name))
                .ToHashSet();
            if (common is null) common = here;
            else common.IntersectWith(here);
        }

        return common?.OrderBy(s => s.Kind, StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal).ToList() ?? [];
    }

    /// <summary>A Tenant's spec.cabRoutes refused at admission, naming the field: a route that assigns nobody, empty names, system: groups.</summary>
    public static List<string> RouteProblems(IReadOnlyList<CabRoute>? routes)
    {
        var problems = new List<string>();
        for (var i = 0; i < (routes?.Count ?? 0); i++)
        {
            var r = routes![i];
            if ((r.Subjects?.Count ?? 0) + (r.Groups?.Count ?? 0) == 0) problems.Add($"spec.cabRoutes[{i}]: names no subject and no group: it would assign nobody");
            for (var j = 0; j < (r.Subjects?.Count ?? 0); j++)
            {
                if (string.IsNullOrWhiteSpace(r.Subjects![j])) problems.Add($"spec.cabRoutes[{i}].subjects[{j}]: empty");
                else if (ApprovalPolicy.NotAPerson(r.Subjects[j], []) is not null) problems.Add($"spec.cabRoutes[{i}].subjects[{j}]: \"{r.Subjects[j]}\" is a ServiceAccount; approvers are people");
            }

            for (var j = 0; j < (r.Groups?.Count ?? 0); j++)
            {
                if (string.IsNullOrWhiteSpace(r.Groups![j])) problems.Add($"spec.cabRoutes[{i}].groups[{j}]: empty");
                else if (r.Groups[j].StartsWith("system:", StringComparison.Ordinal)) problems.Add($"spec.cabRoutes[{i}].groups[{j}]: \"{r.Groups[j]}\" is a system: group (everyone, or every ServiceAccount); it never makes an approver");
            }
        }

        return problems;
    }

    static string Describe(IReadOnlyList<CabRoute> routes)
    {
        var names = routes.SelectMany(r => (r.Subjects ?? []).Concat((r.Groups ?? []).Select(g => GroupPrefix + g))).Distinct().Order(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "nobody" : string.Join(", ", names);
    }
}

/// <summary>A RoleBinding subject reduced to what routing compares: its kind (User or Group) and name.</summary>
public sealed record ApproverSubject(string Kind, string Name);
