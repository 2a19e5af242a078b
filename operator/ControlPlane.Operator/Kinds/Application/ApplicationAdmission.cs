using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Applications: in a workspace namespace, named as a DeploymentIntent's spec.application can name them (a DNS
/// label), every value of spec.allowedScope within the tenant's spec.scopes (refused naming the field). The
/// scope itself takes effect only through CAB (the reconciler); admission only refuses what can never be approved.
/// </summary>
public sealed class ApplicationAdmission(AdmissionCaches caches) : IAdmissionHandler
{
    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only writes always pass (labels, finalizers), even after the tenant's scopes shrank.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        var app = As<Application>(r.Object);
        var ns = r.Namespace ?? app.Metadata.NamespaceProperty ?? "";
        var ws = await caches.WorkspaceAsync(ns, ct).ConfigureAwait(false);
        if (ws is null) return [$"metadata.namespace: \"{ns}\" is not the namespace of a workspace: an Application belongs to a workspace"];
        var tenant = await caches.TenantAsync(ws.Spec.Tenant, ct).ConfigureAwait(false);
        if (tenant is null) return [$"metadata.namespace: the tenant {ws.Spec.Tenant} of workspace {ns} does not exist"];
        var problems = new List<string>();
        var name = r.Name ?? app.Metadata.Name;
        if (r.Operation == "CREATE" && !SpecRules.IsDnsLabel(name))
        {
            problems.Add($"metadata.name: \"{name}\" is not a DNS label (at most 63 lowercase letters, digits and '-'): a DeploymentIntent's spec.application names it");
        }

        if (string.IsNullOrWhiteSpace(app.Spec.Owner)) problems.Add("spec.owner: required: the person accountable for the application");
        problems.AddRange(SpecRules.ApplicationScope(app.Spec.AllowedScope, tenant));
        return problems;
    }
}
