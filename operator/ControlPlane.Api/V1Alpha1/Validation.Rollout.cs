namespace ControlPlane.Api.V1Alpha1;

/// <summary>The Rollout's spec rules, shared by the admission webhook and the Rollout reconciler.</summary>
public static partial class SpecRules
{
    public static List<string> Rollout(RolloutSpec spec)
    {
        var problems = new List<string>();
        if (spec.Rings.Count == 0) problems.Add("spec.rings: at least one ring is required");
        foreach (var dup in spec.Rings.GroupBy(x => x.Name).Where(g => g.Count() > 1)) problems.Add($"spec.rings: ring name \"{dup.Key}\" is used more than once");
        for (var i = 0; i < spec.Rings.Count; i++)
        {
            var ring = spec.Rings[i];
            if (!IsDnsLabel(ring.Name)) problems.Add($"spec.rings[{i}].name: \"{Shown(ring.Name)}\" must be a DNS-1123 label");
            if ((ring.Workspaces?.Count ?? 0) == 0 && ring.Selector is null) problems.Add($"spec.rings[{i}]: needs workspaces or a selector");
            for (var j = 0; j < (ring.Workspaces?.Count ?? 0); j++)
            {
                if (!IsDnsLabel(ring.Workspaces![j])) problems.Add($"spec.rings[{i}].workspaces[{j}]: \"{Shown(ring.Workspaces[j])}\" is not a workspace name (a DNS-1123 label)");
            }

            if (!Durations.TryParse(ring.Soak, out _)) problems.Add($"spec.rings[{i}].soak: \"{Shown(ring.Soak)}\" is not a duration (e.g. 10m, 1h)");
        }

        if (spec.Promote is { } promote && spec.Rings.All(r => r.Name != promote))
        {
            problems.Add($"spec.promote: \"{Shown(promote)}\" is not a ring of this Rollout (spec.rings[].name)");
        }

        if (spec.Gates is { } gates)
        {
            if (!Durations.TryParse(gates.ProgressDeadline, out var deadline) || deadline <= TimeSpan.Zero)
            {
                problems.Add($"spec.gates.progressDeadline: \"{Shown(gates.ProgressDeadline)}\" is not a positive duration (e.g. 30m)");
            }

            if (gates.MaxIncidents is < 0 or > 1_000_000) problems.Add($"spec.gates.maxIncidents: {gates.MaxIncidents} must be between 0 and 1000000");
            if (gates.SuccessRate is { } rate)
            {
                if (string.IsNullOrWhiteSpace(rate.Query)) problems.Add("spec.gates.successRate.query: is required");
                // Prometheus has no per-tenant auth: a query reading outside the ring's namespaces is never run.
                else problems.AddRange(PromQuery.Problems(rate.Query));
                if (rate.Threshold is < 0 or > 1 || double.IsNaN(rate.Threshold)) problems.Add($"spec.gates.successRate.threshold: {rate.Threshold} must be between 0 and 1");
            }
        }

        var target = spec.Target;
        // A DeploymentIntent's Rollout names the intent too (deploymentIntent), and its deployment and
        // containers come from the intent's application and artifact, filled in by the intent's reconciler.
        if (target.Deployment is null)
        {
            problems.Add("spec.target.deployment: required: the Deployment, by name, in every ring workspace");
        }
        else
        {
            if (!IsDnsLabel(target.Deployment)) problems.Add($"spec.target.deployment: \"{Shown(target.Deployment)}\" must be a DNS-1123 label");
            if ((target.Containers?.Count ?? 0) == 0) problems.Add("spec.target.containers: name at least one container and its new image");
        }

        foreach (var dup in (target.Containers ?? []).GroupBy(c => c.Name).Where(g => g.Count() > 1)) problems.Add($"spec.target.containers: container \"{dup.Key}\" is named more than once");
        for (var i = 0; i < (target.Containers?.Count ?? 0); i++)
        {
            var c = target.Containers![i];
            if (!IsDnsLabel(c.Name)) problems.Add($"spec.target.containers[{i}].name: \"{Shown(c.Name)}\" must be a DNS-1123 label");
            if (string.IsNullOrEmpty(c.Image) || c.Image.Length > 512 || c.Image.Any(char.IsWhiteSpace))
            {
                problems.Add($"spec.target.containers[{i}].image: must be an image reference without spaces, at most 512 characters");
            }
        }

        return problems;
    }
}
