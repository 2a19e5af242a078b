using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Which Approvals a RoleBinding's change can judge differently. A binding whose subjects are users and groups
/// changes only what those people may do: their approvals in its namespace (do they hold an approver role, can they
/// act as an author) and, since a target's approval counts every approval of it, the other approvals of the same
/// targets. A binding naming a ServiceAccount (or nobody) can be a link in a token-minting chain
/// (<see cref="ApprovalPolicy.ControlsAnAuthor"/>): every approval in the namespace is judged again, as before.
/// Without this, each just-in-time grant's binding made or deleted re-judged every approval of its namespace
/// (1,000 grants ending in a namespace of 250 approvals: 230,000 approval reconciles, the expiry bench's CPU).
/// </summary>
public static class ApprovalBindingWatch
{
    /// <summary>The approvals (queue keys) of <paramref name="inNamespace"/>, the binding's namespace, it can judge differently; the watch asks for the binding before and after a change.</summary>
    public static IEnumerable<string> AffectedBy(V1RoleBinding binding, IReadOnlyList<Approval> inNamespace)
    {
        var subjects = binding.Subjects ?? [];
        IEnumerable<Approval> affected = inNamespace;
        if (subjects.Count > 0 && subjects.All(s => s.Kind is "User" or "Group"))
        {
            var users = subjects.Where(s => s.Kind == "User").Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            var groups = subjects.Where(s => s.Kind == "Group").Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            var targets = inNamespace.Where(a => users.Contains(a.Spec.Approver ?? "") || ApprovalPolicy.GroupsOf(a).Any(groups.Contains))
                .Select(a => (a.Spec.Target.Kind, a.Spec.Target.Name)).ToHashSet();
            affected = targets.Count == 0 ? [] : inNamespace.Where(a => targets.Contains((a.Spec.Target.Kind, a.Spec.Target.Name)));
        }

        return affected.Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}");
    }
}
