using ControlPlane.Api.V1Alpha1;

namespace ControlPlane.Operator.Policy;

/// <summary>The decision of the pipeline's third step.</summary>
public sealed record IntentDecision(string Decision, string Reason, string Message)
{
    /// <summary>RequireException: whether the risk also asks for CAB approval (as RequireApproval would).</summary>
    public bool CabRequired { get; init; }
}

/// <summary>
/// The intent's decision, pure: the reconciler takes it at assessment, and the `kubectl controlplane intent whatif`
/// plugin compiles this same file (operator/ControlPlane.Cli links it) so what it predicts is what the operator decides.
/// </summary>
public static class IntentDecisions
{
    /// <summary>
    /// The decision: Deny (no artifact digest, scope invalid, tenant suspended), RequireException (a serious finding:
    /// a High or Critical vulnerability, an unsigned artifact, a scope violation; CAB too when the risk asks), RequireApproval
    /// (score above the model's threshold, or privileged tooling), else Allow.
    /// </summary>
    public static IntentDecision Decide(DeploymentIntentSpec spec, Tenant tenant, IReadOnlyList<string> scopeProblems, RiskAssessment risk, IReadOnlyList<Finding> findings)
    {
        if (string.IsNullOrEmpty(spec.Artifact.Sha256)) return new("Deny", IntentReasons.NoArtifactDigest, "spec.artifact.sha256: an artifact without a digest is never deployed");
        if (scopeProblems.Count > 0) return new("Deny", IntentReasons.ScopeInvalid, string.Join("; ", scopeProblems));
        if (tenant.Spec.Suspended) return new("Deny", IntentReasons.TenantSuspended, $"tenant {tenant.Metadata.Name} is suspended: no change is deployed");
        var serious = findings.Where(f => f.Serious).ToList();
        if (serious.Count > 0)
        {
            // Not denied: held until approved, unexpired Exceptions cover each (ExceptionCoverage); CAB on top when the risk asks.
            return new("RequireException", IntentReasons.RequiresException,
                $"{Findings.Summary(serious)}: no ring starts until an approved, unexpired Exception of this namespace for artifact sha256 {spec.Artifact.Sha256} covers each"
                + (risk.RequiresApproval ? $"; and CAB approval (risk {risk.Score:0.0}{(spec.PrivilegedTooling ? ", privileged tooling" : "")}, model {risk.ModelVersion}) before any ring past the first" : ""))
            {
                CabRequired = risk.RequiresApproval,
            };
        }

        if (risk.RequiresApproval)
        {
            var why = risk.Score > 0 && spec.PrivilegedTooling ? $"privileged tooling, risk {risk.Score:0.0}" : spec.PrivilegedTooling ? "privileged tooling" : $"risk {risk.Score:0.0}";
            return new("RequireApproval", IntentReasons.RequiresApproval, $"{why} (model {risk.ModelVersion}): no ring past the first starts until CAB approves this generation");
        }

        return new("Allow", IntentReasons.Allowed, $"risk {risk.Score:0.0} (model {risk.ModelVersion}) needs no approval");
    }
}
