using ControlPlane.Operator.Api.V1Alpha1;
using ControlPlane.Operator.Controllers;

namespace ControlPlane.Operator.Webhooks;

/// <summary>Exposures: published from a workspace's namespace only, and each host+path claimed once across the cluster.</summary>
public sealed partial class AdmissionHandler
{
    async Task<List<string>> ValidateExposureAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var exposure = As<Exposure>(r.Object);
        var ns = r.Namespace ?? exposure.Metadata.NamespaceProperty ?? "";
        exposure.Metadata.NamespaceProperty = ns;
        if (r.Operation == "CREATE" && await caches.WorkspaceAsync(ns, ct).ConfigureAwait(false) is null)
        {
            return [$"metadata.namespace: \"{ns}\" is not the namespace of a workspace: an Exposure publishes an API of a workspace"];
        }

        var options = settings.Options.Exposure;
        var route = ExposureResources.ClaimedRoute(exposure, options);
        // An update that keeps its route keeps its claim (a claim settled at reconcile must stay editable).
        if (r.Operation == "UPDATE" && r.OldObject is not null)
        {
            var old = As<Exposure>(r.OldObject);
            old.Metadata.NamespaceProperty = ns;
            if (ExposureResources.ClaimedRoute(old, options) == route) return [];
        }

        var holder = caches.Exposures.List().FirstOrDefault(other =>
            !(other.Metadata.NamespaceProperty == ns && other.Metadata.Name == exposure.Metadata.Name)
            && (ExposureResources.ClaimedRoute(other, options) == route || ExposureResources.LiveRoute(other, options) == route));
        return holder is null
            ? []
            : [$"spec.host/spec.path: {route} is already claimed by Exposure {holder.Metadata.NamespaceProperty}/{holder.Metadata.Name}; host and path are unique across the cluster"];
    }
}
