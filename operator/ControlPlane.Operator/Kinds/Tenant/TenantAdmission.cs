using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Tenants: names, quota and rules (<see cref="SpecRules"/>), an immutable configured region, delegated
/// domains no other tenant holds, a prefix no other tenant's workspace uses; no delete while it has workspaces.
/// </summary>
public sealed class TenantAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    public Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct) =>
        Task.FromResult<List<string>>([.. ValidateTenant(r), .. TenantRegion(r), .. TenantDomains(r), .. TenantPrefix(r)]);

    List<string> ValidateTenant(AdmissionRequest r)
    {
        switch (r.Operation)
        {
            case "CREATE":
                return TenantRules(r);
            case "UPDATE":
                return [.. Immutable(r.OldObject, r.Object, "region"), .. TenantRules(r)];
            case "DELETE":
                var name = r.Name ?? "";
                var count = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, name).Count();
                return count > 0 && !DeletionAllowedByAnnotation(r.OldObject)
                    ? [$"tenant {name} still has {count} workspace(s): delete them first, or set the annotation {ApiGroup.AllowDeleteAnnotation}: \"true\""]
                    : [];
            default:
                return [];
        }
    }

    static List<string> TenantRules(AdmissionRequest r)
    {
        if (r.Object is null || (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"]))) return [];
        var tenant = As<Tenant>(r.Object);
        if (string.IsNullOrEmpty(tenant.Metadata.Name)) tenant.Metadata.Name = r.Name;
        var problems = SpecRules.Tenant(tenant, RawQuota(r.Object));
        problems.AddRange(CabRouting.RouteProblems(tenant.Spec.CabRoutes));
        problems.AddRange(BreakGlassRules.PolicyProblems(tenant.Spec.AccessPolicy?.BreakGlass));
        if (r.Operation != "CREATE" || string.IsNullOrEmpty(tenant.Metadata.Name)) problems.RemoveAll(p => p.StartsWith("metadata.name:", StringComparison.Ordinal));
        return problems;
    }

    List<string> TenantRegion(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var region = r.Object["spec"]?["region"]?.GetValue<string>() ?? "";
        return Placement.UnservedTenantRegion(settings.Options, region) is { } problem ? [problem] : [];
    }

    /// <summary>Delegated domains: well-formed, outside the platform's default domain, and overlapping no other tenant's (delegation is exclusive).</summary>
    List<string> TenantDomains(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var tenant = As<Tenant>(r.Object);
        var name = string.IsNullOrEmpty(tenant.Metadata.Name) ? r.Name ?? "" : tenant.Metadata.Name;
        var domains = tenant.Spec.Exposure?.AllowedDomains;
        if (r.Operation == "UPDATE" && r.OldObject is not null && (As<Tenant>(r.OldObject).Spec.Exposure?.AllowedDomains ?? []).SequenceEqual(domains ?? [])) return [];
        return ExposureHosts.DelegationProblems(name, domains, ExposureHosts.DelegationsOf(caches.Tenants.List()), settings.Options.Exposure).ToList();
    }

    /// <summary>A new tenant's prefix holds no other tenant's workspace (<see cref="WorkspaceNames.PrefixTakenBy"/>).</summary>
    List<string> TenantPrefix(AdmissionRequest r) =>
        r.Operation == "CREATE" && WorkspaceNames.PrefixTakenBy(r.Name ?? r.Object?["metadata"]?["name"]?.GetValue<string>() ?? "", settings.Options,
            caches.Workspaces.List().Select(w => (w.Metadata.Name, w.Spec.Tenant))) is { } taken ? [taken] : [];
}
