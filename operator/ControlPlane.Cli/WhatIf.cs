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
/// The operator's decision steps over what the caller can see (DeploymentIntentResources.Decide, in the
/// same order and words): no digest → Deny; a suspended tenant → Deny; a serious finding → Deny; the
/// risk model asks for approval → RequireApproval; else Allow. The scope check needs the tenant's
/// scopes and every workspace's labels, which the operator holds: it is reported as not checked, and
/// admission checks it when the intent is created. ControlPlane.UnitTests.WhatIfTests compares this
/// with the reconciler's Decide case by case, so a change there fails a test until this follows.
/// </summary>
public static class WhatIf
{
    public static WhatIfDecision Decide(DeploymentIntentSpec spec, bool tenantSuspended, string tenant, RiskAssessment risk, IReadOnlyList<Finding> findings)
    {
        if (string.IsNullOrEmpty(spec.Artifact.Sha256)) return new("Deny", IntentReasons.NoArtifactDigest, "spec.artifact.sha256: an artifact without a digest is never deployed");
        if (tenantSuspended) return new("Deny", IntentReasons.TenantSuspended, $"tenant {tenant} is suspended: no change is deployed");
        var serious = findings.Where(f => f.Serious).ToList();
        if (serious.Count > 0)
        {
            return new("Deny", IntentReasons.Vulnerable,
                $"spec.artifact.vulnerabilities: {string.Join(", ", serious)}; exceptions (RequireException) are not supported yet: fix or upgrade the artifact");
        }

        if (risk.RequiresApproval)
        {
            var why = risk.Score > 0 && spec.PrivilegedTooling ? $"privileged tooling, risk {risk.Score:0.0}" : spec.PrivilegedTooling ? "privileged tooling" : $"risk {risk.Score:0.0}";
            return new("RequireApproval", IntentReasons.RequiresApproval, $"{why} (model {risk.ModelVersion}): no ring past the first starts until CAB approves this generation");
        }

        return new("Allow", IntentReasons.Allowed, $"risk {risk.Score:0.0} (model {risk.ModelVersion}) needs no approval");
    }
}
