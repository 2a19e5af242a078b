using ControlPlane.Operator.Configuration;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Kinds;

/// <summary>What admission knows of the operator's configuration and identity.</summary>
public sealed record AdmissionSettings(ControlPlaneOptions Options, IReadOnlySet<string> OperatorUsernames)
{
    /// <summary>Requesters that may write what a governed kind owns: the operator itself, the cluster's own controllers, and cluster admins.</summary>
    public bool MayWriteGoverned(AdmissionUserInfo user) =>
        OperatorUsernames.Contains(user.Username)
        || user.Groups?.Contains("system:masters") == true
        || user.Username == "system:kube-controller-manager"
        || user.Username.StartsWith("system:serviceaccount:kube-system:", StringComparison.Ordinal);
}
