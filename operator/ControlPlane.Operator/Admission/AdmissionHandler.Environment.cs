using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// A workspace's environment is a classification its requesters must not control: raising it is
/// always allowed, lowering it (prod to test or dev, test to dev) only once a platform administrator
/// has lifted the workspace's deletion guard (the annotation owners cannot set), the same approved
/// path that deleting a prod workspace takes. Otherwise prod-to-dev-then-delete, or fewer approvals,
/// would be one patch away.
/// </summary>
public sealed partial class AdmissionHandler
{
    static List<string> EnvironmentLowered(AdmissionRequest r)
    {
        if (r.Operation != "UPDATE" || r.Object is null || r.OldObject is null) return [];
        var before = r.OldObject["spec"]?["environment"]?.GetValue<string>();
        var after = r.Object["spec"]?["environment"]?.GetValue<string>();
        if (!WorkspaceEnvironments.Lowers(before, after) || DeletionAllowedByAnnotation(r.Object)) return [];
        return [$"spec.environment: may not be lowered from {WorkspaceEnvironments.Strictest(before)} to {WorkspaceEnvironments.Strictest(after)} " +
                $"(raising is allowed); a platform administrator lowers it only after lifting the deletion guard ({AllowDeleteAnnotation}: \"true\")"];
    }
}
