using System.Text.Json.Nodes;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// Who may approve, as the source row of an <c>approval.requested</c> event records it (details.approvers), so the
/// notification names the people or roles it is for without the receiver asking the cluster: the count the target needs,
/// how many are still missing, the roles that count (<see cref="ApprovalPolicy.ApproverRoles"/>: every kind whose request
/// is audited is judged by them, but an Exception: its SecurityReviewers, passed in) and, where the operator routes the
/// request (a DeploymentIntent's CAB, status.assignedApprovers), the assigned approvers.
/// </summary>
public static class ApprovalAsks
{
    /// <summary>The details.approvers object. <paramref name="required"/> null: not known at the source (an intent's is per ring).</summary>
    /// <param name="roles">The roles that count; null: <see cref="ApprovalPolicy.ApproverRoles"/>.</param>
    public static JsonObject Who(int? required, IReadOnlyCollection<string> approvedSoFar, IReadOnlyList<string>? assigned, IReadOnlyList<string>? roles = null)
    {
        var who = new JsonObject();
        if (required is { } n)
        {
            who["required"] = n;
            who["stillNeeded"] = Math.Max(0, n - approvedSoFar.Count);
        }

        who["roles"] = new JsonArray([.. (roles ?? ApprovalPolicy.ApproverRoles).Select(r => (JsonNode)JsonValue.Create(r))]);
        if (assigned is { Count: > 0 }) who["assigned"] = new JsonArray([.. assigned.Select(a => (JsonNode)JsonValue.Create(a))]);
        return who;
    }

    /// <summary><paramref name="details"/> (a copy when given, else new) with details.approvers set.</summary>
    public static JsonObject With(JsonObject? details, int? required, IReadOnlyCollection<string> approvedSoFar, IReadOnlyList<string>? assigned,
        IReadOnlyList<string>? roles = null)
    {
        var d = details?.DeepClone().AsObject() ?? new JsonObject();
        d["approvers"] = Who(required, approvedSoFar, assigned, roles);
        return d;
    }
}
