using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Exposures: published from a workspace's namespace only, on a host delegated to the tenant (or the
/// workspace's default domain), with a safe path prefix no other workspace's overlaps, to a ClusterIP
/// Service with a selector; each host+path claimed once across the cluster.
/// </summary>
public sealed class ExposureAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var exposure = As<Exposure>(r.Object);
        var ns = r.Namespace ?? exposure.Metadata.NamespaceProperty ?? "";
        exposure.Metadata.NamespaceProperty = ns;
        if (string.IsNullOrEmpty(exposure.Metadata.Name)) exposure.Metadata.Name = r.Name;
        var ws = await caches.WorkspaceAsync(ns, ct).ConfigureAwait(false);
        if (r.Operation == "CREATE" && ws is null)
        {
            return [$"metadata.namespace: \"{ns}\" is not the namespace of a workspace: an Exposure publishes an API of a workspace"];
        }

        var options = settings.Options.Exposure;
        Exposure? old = null;
        if (r.Operation == "UPDATE" && r.OldObject is not null)
        {
            old = As<Exposure>(r.OldObject);
            old.Metadata.NamespaceProperty = ns;
        }

        // Metadata-only updates always pass: an Exposure refused at reconcile can still be labelled or have its finalizer removed.
        if (old is not null && System.Text.Json.Nodes.JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        var problems = new List<string>();
        if (r.Operation == "CREATE" && ExposureResources.NameProblem(exposure.Metadata.Name) is { } name) problems.Add(name);
        if (ExposureHosts.PathProblem(exposure.Spec.Path) is { } path) problems.Add(path);
        if (ws is not null)
        {
            var host = ExposureResources.ClaimedHost(exposure, options);
            var tenants = caches.Tenants.List();
            if (ExposureHosts.HostProblem(host, ns, ws.Spec.Tenant, ExposureHosts.DelegationsOf(tenants), options) is { } hostProblem) problems.Add(hostProblem);
        }

        var service = await caches.ServiceAsync(ns, exposure.Spec.Backend.Service, ct).ConfigureAwait(false);
        if (ExposureResources.BackendRefusal(ns, exposure.Spec.Backend, service) is { } backend) problems.Add(backend);
        if (problems.Count > 0) return problems;

        // An update that keeps its route keeps its claim (a claim settled at reconcile must stay editable).
        var route = ExposureResources.ClaimedKey(exposure, options);
        if (old is not null && ExposureResources.ClaimedKey(old, options) == route) return [];
        var holder = caches.Exposures.List().FirstOrDefault(other =>
            !(other.Metadata.NamespaceProperty == ns && other.Metadata.Name == exposure.Metadata.Name)
            && (ExposureResources.Contend(ExposureResources.ClaimedKey(other, options), route)
                || ExposureResources.LiveKey(other, options) is { } live && ExposureResources.Contend(live, route)));
        if (holder is null) return [];
        var held = ExposureResources.ClaimedKey(holder, options);
        return held.Path == route.Path || holder.Metadata.NamespaceProperty == ns
            ? [$"spec.host/spec.path: {route} is already claimed by Exposure {holder.Metadata.NamespaceProperty}/{holder.Metadata.Name}; host and path are unique across the cluster"]
            : [$"spec.path: \"{route.Path}\" on host {route.Host} overlaps \"{held.Path}\" held by Exposure {holder.Metadata.NamespaceProperty}/{holder.Metadata.Name} of another workspace; a path prefix on a host belongs to one workspace"];
    }
}
