using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Runtime;
using k8s;
using k8s.Models;

namespace ControlPlane.Operator.Controllers;

/// <summary>
/// Tells on each Approval whether it counts (Ready) and why not: target gone, stale generation,
/// self-approval, or an approver without the role. Role checks read the RoleBinding cache (the
/// approver's groups were recorded by the admission webhook), so a reconcile makes no API call.
/// </summary>
public sealed class ApprovalReconciler(
    Informer<Exposure> exposures,
    Informer<DeploymentIntent> intents,
    Informer<Restore> restores,
    Informer<Workspace> workspaces,
    Informer<V1RoleBinding> roleBindings,
    ObjectWriter writer,
    TimeProvider time) : IReconciler<Approval>
{
    public static readonly ResourceType Type = ResourceType.For<Approval>(namespaced: true);

    public IKubernetesObject<V1ObjectMeta>? Target(string ns, string kind, string name) => kind switch
    {
        "Exposure" => exposures.Get($"{ns}/{name}"),
        "DeploymentIntent" => intents.Get($"{ns}/{name}"),
        "Restore" => restores.Get($"{ns}/{name}"),
        _ => null,
    };

    /// <summary>Approver or WorkspaceAdmin in the approval's namespace, by user or by one of the recorded groups; tenant owners are WorkspaceAdmins.</summary>
    public bool HoldsApproverRole(Approval approval)
    {
        var user = approval.Spec.Approver;
        if (string.IsNullOrEmpty(user)) return false;
        var groups = approval.Metadata.Annotations?.TryGetValue(Webhooks.AdmissionHandler.ApproverGroupsAnnotation, out var g) == true
            ? g.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet()
            : [];
        var ns = approval.Metadata.NamespaceProperty;
        var roles = new[] { WorkspaceRoles.ClusterRoleName("Approver"), WorkspaceRoles.ClusterRoleName("WorkspaceAdmin") };
        return roleBindings.InNamespace(ns).Any(b => roles.Contains(b.RoleRef.Name)
                                            && b.Subjects.Any(s => (s.Kind == "User" && s.Name == user) || (s.Kind == "Group" && groups.Contains(s.Name))));
    }

    public IEnumerable<string> ApprovalsOf(IKubernetesObject<V1ObjectMeta> target, IEnumerable<Approval> all) =>
        all.Where(a => a.Spec.Target.Kind == target.Kind && a.Spec.Target.Name == target.Metadata.Name)
            .Select(a => $"{a.Metadata.NamespaceProperty}/{a.Metadata.Name}");

    public async Task<ReconcileResult> ReconcileAsync(Approval approval, CancellationToken ct)
    {
        var target = Target(approval.Metadata.NamespaceProperty, approval.Spec.Target.Kind, approval.Spec.Target.Name);
        var verdict = ApprovalPolicy.Judge(approval, target, HoldsApproverRole);
        var conditions = new ConditionSet(approval.Status?.Conditions, approval.Metadata.Generation, time.GetUtcNow().UtcDateTime)
            .Set("Ready", verdict.Counts, verdict.Reason, verdict.Message);
        await writer.UpdateStatusAsync(Type, approval, new ApprovalStatus { ObservedGeneration = approval.Metadata.Generation, Conditions = conditions.ToList() }, ct)
            .ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>Is this target approved now? For the Exposure, DeploymentIntent and Restore reconcilers.</summary>
    public ApprovalState StateOf(IKubernetesObject<V1ObjectMeta> target, IEnumerable<Approval> approvals)
    {
        var environment = workspaces.Get(target.Metadata.NamespaceProperty)?.Spec.Environment ?? "dev";
        return ApprovalPolicy.Evaluate(target, environment, approvals, HoldsApproverRole);
    }
}
