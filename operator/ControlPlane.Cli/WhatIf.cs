using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;

namespace ControlPlane.Cli;

/// <summary>The decision a DeploymentIntent would get, and why.</summary>
public sealed record WhatIfDecision(string Decision, string Reason, string Message);

/// <summary>What `intent whatif` prints or returns as data.</summary>
public sealed record WhatIfReport(
    string Intent, string Namespace, double Score, string ModelVersion, string ModelSource, double ApprovalThreshold,
    IReadOnlyList<RiskContribution> Factors, IReadOnlyList<string> Findings, string Decision, string Reason, string Message, IReadOnlyList<string> NotChecked);

/// <summary>
/// The operator's decision over what the caller can see: <see cref="IntentDecisions.Decide"/> itself (the same source file,
/// linked into this project), with the tenant's suspension as the caller reads it and no scope problems: the scope check
/// needs every workspace's labels, which the operator holds, so it is reported as not checked (admission checks it when
/// the intent is created).
/// </summary>
public static class WhatIf
{
    public static WhatIfDecision Decide(DeploymentIntentSpec spec, bool tenantSuspended, string tenant, RiskAssessment risk, IReadOnlyList<Finding> findings)
    {
        var decision = IntentDecisions.Decide(spec, new Tenant { Metadata = new k8s.Models.V1ObjectMeta { Name = tenant }, Spec = new TenantSpec { Suspended = tenantSuspended } }, [], risk, findings);
        return new(decision.Decision, decision.Reason, decision.Message);
    }
}
