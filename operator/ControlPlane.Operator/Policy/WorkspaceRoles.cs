using k8s.Models;

namespace ControlPlane.Operator.Policy;

/// <summary>
/// The six workspace ClusterRoles members are bound to (by a RoleBinding in the workspace's
/// namespace, so they grant nothing outside it). Written to config/rbac/workspace-roles.yaml by
/// `make manifests`; installed with the CRDs.
/// </summary>
public static class WorkspaceRoles
{
    public static readonly IReadOnlyList<string> Roles = ["WorkspaceAdmin", "Operator", "Approver", "Auditor", "IntegrationAdmin", "SecurityReviewer"];

    static readonly string[] All = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    static readonly string[] Read = ["get", "list", "watch"];

    static readonly string[] CoreWorkloads = ["pods", "pods/log", "services", "endpoints", "persistentvolumeclaims", "configmaps", "serviceaccounts"];
    static readonly string[] CoreReadOnly = ["events", "resourcequotas", "limitranges"];
    static readonly string[] ControlPlaneKinds = ["workspacenetworkpolicies", "exposures", "approvals", "rollouts", "deploymentintents", "backupplans", "backups", "restores", "applications", "exceptions", "accessrequests", "breakglasses", "notificationchannels"];
    static readonly string[] OperatorKinds = ["rollouts", "deploymentintents", "exposures", "backupplans", "backups", "applications", "exceptions"];

    /// <summary>"controlplane:workspace:" + kebab-case role, e.g. controlplane:workspace:workspace-admin.</summary>
    public static string ClusterRoleName(string role) => "controlplane:workspace:" + Kebab(role);

    public static string Kebab(string role) =>
        string.Concat(role.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));

    static V1PolicyRule Rule(string group, IEnumerable<string> resources, IEnumerable<string> verbs) =>
        new() { ApiGroups = [group], Resources = resources.ToList(), Verbs = verbs.ToList() };

    /// <summary>Workloads and their kin: what an operator of the workspace runs.</summary>
    static IEnumerable<V1PolicyRule> Workloads(IReadOnlyList<string> verbs) =>
    [
        Rule("", CoreWorkloads, verbs),
        Rule("apps", ["deployments", "replicasets", "statefulsets", "daemonsets"], verbs),
        Rule("batch", ["jobs", "cronjobs"], verbs),
        Rule("autoscaling", ["horizontalpodautoscalers"], verbs),
        Rule("policy", ["poddisruptionbudgets"], verbs),
    ];

    /// <summary>
    /// What only the operator writes in a workspace namespace: Ingresses (publication goes through an
    /// Exposure), NetworkPolicies (through WorkspaceNetworkPolicy), ResourceQuotas and LimitRanges (the
    /// Workspace's quota). Every role may read them; a validating webhook refuses writes by anyone else,
    /// so a RoleBinding added by hand does not reopen them.
    /// </summary>
    static IEnumerable<V1PolicyRule> Governed() =>
    [
        Rule("", CoreReadOnly, Read),
        Rule("networking.k8s.io", ["networkpolicies", "ingresses"], Read),
    ];

    /// <summary>Everything in the namespace but Secrets, read-only.</summary>
    static IEnumerable<V1PolicyRule> ReadAllButSecrets() =>
    [
        .. Workloads(Read),
        .. Governed(),
        Rule("rbac.authorization.k8s.io", ["rolebindings", "roles"], Read),
        Rule("controlplane.io", ControlPlaneKinds, Read),
    ];

    /// <summary>
    /// Every member may ask for more access just in time in their own workspace (the RoleBinding is in its
    /// namespace) and revoke or delete a request (either ends its grant); the webhook keeps role and duration immutable, approvals decide.
    /// </summary>
    static V1PolicyRule RequestAccess() => Rule("controlplane.io", ["accessrequests"], ["get", "list", "watch", "create", "update", "patch", "delete"]);

    /// <summary>
    /// Every member may create a BreakGlass (the tenant's spec.accessPolicy.breakGlass decides who may invoke) and end it
    /// (spec.end); only a WorkspaceAdmin deletes one, so an invocation stays visible until it is reviewed.
    /// </summary>
    static V1PolicyRule InvokeBreakGlass() => Rule("controlplane.io", ["breakglasses"], ["get", "list", "watch", "create", "update", "patch"]);

    /// <summary>
    /// A NotificationChannel's delivery history through the audit API (notificationdeliveries): the API server lets the
    /// request through to the operator, which serves it only to whoever may get that channel (a SubjectAccessReview).
    /// </summary>
    static V1PolicyRule ChannelHistory() => Rule("audit.controlplane.io", ["notificationdeliveries"], ["list"]);

    public static IReadOnlyList<V1PolicyRule> Rules(string role) => role switch
    {
        "WorkspaceAdmin" =>
        [
            .. Workloads(All),
            Rule("", ["secrets", "pods/exec", "pods/portforward"], All),
            .. Governed(),
            Rule("rbac.authorization.k8s.io", ["rolebindings", "roles"], Read),
            Rule("controlplane.io", ControlPlaneKinds, All),
            ChannelHistory(),
        ],
        "Operator" =>
        [
            .. Workloads(All),
            .. Governed(),
            Rule("controlplane.io", OperatorKinds, All),
            Rule("controlplane.io", ["approvals", "restores", "workspacenetworkpolicies"], Read),
            RequestAccess(),
            InvokeBreakGlass(),
        ],
        "Approver" => [.. ReadAllButSecrets(), Rule("controlplane.io", ["approvals"], ["create"]), RequestAccess(), InvokeBreakGlass(), ChannelHistory()],
        // The workspace's audit trail through audit.controlplane.io (docs/audit-api.md).
        "Auditor" => [.. ReadAllButSecrets(), Rule("audit.controlplane.io", ["auditevents", "deploymentevents"], Read), RequestAccess(), InvokeBreakGlass(), ChannelHistory()],
        // Integrations: the Secrets a channel names and the channels themselves (WorkspaceAdmin has both through ControlPlaneKinds).
        "IntegrationAdmin" => [Rule("", ["secrets", "configmaps"], All), Rule("controlplane.io", ["notificationchannels"], All), RequestAccess(), InvokeBreakGlass(), ChannelHistory()],
        // Reviews Exceptions: reads what they cover, approves or rejects them; whether an Approval counts is ExceptionApprovals' rule.
        "SecurityReviewer" => [.. ReadAllButSecrets(), Rule("controlplane.io", ["approvals"], ["create"]), RequestAccess(), InvokeBreakGlass(), ChannelHistory()],
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "unknown workspace role"),
    };

    public static IReadOnlyList<V1ClusterRole> ClusterRoles() => [.. Roles.Select(role => new V1ClusterRole
    {
        ApiVersion = "rbac.authorization.k8s.io/v1",
        Kind = "ClusterRole",
        Metadata = new V1ObjectMeta
        {
            Name = ClusterRoleName(role),
            Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "controlplane", ["controlplane.io/workspace-role"] = Kebab(role) },
        },
        Rules = Rules(role).ToList(),
    }), .. SelfService.ClusterRoles()];

    public static string RenderYaml() =>
        "# Generated by `make manifests` from operator/ControlPlane.Operator/Policy/WorkspaceRoles.cs. Do not edit.\n" +
        // Each document ends with a newline before the separator: "- create---" would glue them into one.
        string.Join("---\n", ClusterRoles().Select(r => k8s.KubernetesYaml.Serialize(r).TrimEnd('\n') + "\n"));
}
