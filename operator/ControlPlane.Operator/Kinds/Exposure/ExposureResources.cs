using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;
using k8s;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// Pure functions from an Exposure's spec to what publishes it: its host, route and URL, the Ingress
/// carrying the rate plan as ingress-nginx annotations, the backend check, who holds a contested
/// route, and the record of a change (a JSON Patch of the spec, hashed in a metadataOnly tenant).
/// </summary>
public static class ExposureResources
{
    public static readonly ResourceType Ingresses = new("networking.k8s.io", "v1", "ingresses", "Ingress", true);
    public static readonly ResourceType Services = new("", "v1", "services", "Service", true);


    // ingress-nginx annotations (https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/).
    public const string LimitRpm = "nginx.ingress.kubernetes.io/limit-rpm";
    public const string LimitBurstMultiplier = "nginx.ingress.kubernetes.io/limit-burst-multiplier";
    public const string ProxyReadTimeout = "nginx.ingress.kubernetes.io/proxy-read-timeout";
    public const string ProxySendTimeout = "nginx.ingress.kubernetes.io/proxy-send-timeout";
    public const string ProxyBuffering = "nginx.ingress.kubernetes.io/proxy-buffering";

    /// <summary>Websockets and server-sent events hold a connection open: an hour, not ingress-nginx's 60 s.</summary>
    public const string RealtimeTimeoutSeconds = "3600";

    /// <summary>Cache indexes of Exposures by the host their spec claims and the host they serve (routes contend by host).</summary>
    public const string ClaimedHostIndex = "host.claimed";
    public const string LiveHostIndex = "host.live";

    /// <summary>
    /// Why an Exposure's name cannot be rendered, naming the field; null when it can: the name is the value
    /// of the label controlplane.io/exposure on its Ingress (a label value has at most 63 characters), so a
    /// longer one would be admitted and then refused by the API server on every pass.
    /// </summary>
    public static string? NameProblem(string? name) =>
        name is { Length: > 63 }
            ? $"metadata.name: {name.Length} characters, at most 63: the Exposure's name is the value of the label {ApiGroup.ExposureLabel} on its Ingress (a label value has at most 63)"
            : null;

    public static string Host(string name, string workspace, ExposureSpec spec, ExposureOptions options) =>
        string.IsNullOrEmpty(spec.Host) ? $"{name}.{workspace}.{options.Domain}" : spec.Host;

    /// <summary>What must be unique across the cluster: host and (normalised) path.</summary>
    public static string Route(string name, string workspace, ExposureSpec spec, ExposureOptions options) =>
        Host(name, workspace, spec, options) + ExposureHosts.NormalPath(spec.Path);

    public static string ClaimedRoute(Exposure e, ExposureOptions options) => Route(e.Metadata.Name, e.Metadata.NamespaceProperty, e.Spec, options);

    public static string? LiveRoute(Exposure e, ExposureOptions options) =>
        e.Status?.PublishedSpec is { } live ? Route(e.Metadata.Name, e.Metadata.NamespaceProperty, live, options) : null;

    public static string ClaimedHost(Exposure e, ExposureOptions options) => Host(e.Metadata.Name, e.Metadata.NamespaceProperty, e.Spec, options);

    public static string? LiveHost(Exposure e, ExposureOptions options) =>
        e.Status?.PublishedSpec is { } live ? Host(e.Metadata.Name, e.Metadata.NamespaceProperty, live, options) : null;

    /// <summary>A route as it contends: the workspace holding it, the host and the normalised path prefix.</summary>
    public sealed record RouteKey(string Namespace, string Host, string Path)
    {
        public override string ToString() => Host + Path;
    }

    public static RouteKey KeyOf(Exposure e, ExposureSpec spec, ExposureOptions options) =>
        new(e.Metadata.NamespaceProperty, Host(e.Metadata.Name, e.Metadata.NamespaceProperty, spec, options), ExposureHosts.NormalPath(spec.Path));

    public static RouteKey ClaimedKey(Exposure e, ExposureOptions options) => KeyOf(e, e.Spec, options);

    public static RouteKey? LiveKey(Exposure e, ExposureOptions options) => e.Status?.PublishedSpec is { } live ? KeyOf(e, live, options) : null;

    /// <summary>
    /// Two routes contend on one host: inside a workspace only the same prefix (its own nested routes are
    /// its business); across workspaces any overlapping prefix (/orders and /orders/admin, / and anything).
    /// </summary>
    public static bool Contend(RouteKey a, RouteKey b) =>
        a.Host == b.Host && (a.Namespace == b.Namespace ? a.Path == b.Path : ExposureHosts.PathsOverlap(a.Path, b.Path));

    static bool ContendsWith(Exposure c, RouteKey route, ExposureOptions options) =>
        Contend(ClaimedKey(c, options), route) || LiveServes(c, route, options);

    static bool LiveServes(Exposure c, RouteKey route, ExposureOptions options) => LiveKey(c, options) is { } live && Contend(live, route);

    public static string Endpoint(string name, string workspace, ExposureSpec spec, ExposureOptions options) => "https://" + Route(name, workspace, spec, options);

    /// <summary>The rate plan and the type's needs as ingress-nginx annotations (the README has the table).</summary>
    public static Dictionary<string, string> Annotations(ExposureSpec spec, long generation)
    {
        var a = new Dictionary<string, string> { [ApiGroup.PublishedGenerationAnnotation] = generation.ToString(CultureInfo.InvariantCulture) };
        var plan = spec.RatePlan;
        if (plan?.RequestsPerMinute is { } rpm)
        {
            a[LimitRpm] = rpm.ToString(CultureInfo.InvariantCulture);
            // ingress-nginx sizes the burst as a multiple of the rate: the smallest multiple that admits the asked burst.
            if (plan.Burst is { } burst && burst > 0) a[LimitBurstMultiplier] = Math.Max(1, (int)Math.Ceiling((double)burst / rpm)).ToString(CultureInfo.InvariantCulture);
        }

        // ingress-nginx cannot count a month: the quota is carried for the metering that enforces it.
        if (plan?.MonthlyQuota is { } quota) a[ApiGroup.MonthlyQuotaAnnotation] = quota.ToString(CultureInfo.InvariantCulture);
        if (spec.Type == "Realtime")
        {
            a[ProxyReadTimeout] = RealtimeTimeoutSeconds;
            a[ProxySendTimeout] = RealtimeTimeoutSeconds;
            a[ProxyBuffering] = "off";
        }

        return a;
    }

    /// <summary>The Ingress that serves <paramref name="spec"/> (an approved generation), owned by the Exposure.</summary>
    public static V1Ingress Ingress(Exposure e, ExposureSpec spec, long generation, ExposureOptions options)
    {
        var host = Host(e.Metadata.Name, e.Metadata.NamespaceProperty, spec, options);
        return new V1Ingress
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "Ingress",
            Metadata = new V1ObjectMeta
            {
                Name = e.Metadata.Name,
                NamespaceProperty = e.Metadata.NamespaceProperty,
                Labels = new Dictionary<string, string>
                {
                    [ApiGroup.ManagedByLabel] = ApiGroup.ManagedByValue,
                    [ApiGroup.WorkspaceLabel] = e.Metadata.NamespaceProperty,
                    [ApiGroup.ExposureLabel] = e.Metadata.Name,
                },
                Annotations = Annotations(spec, generation),
                OwnerReferences = [ChildApplier.OwnerReference(e)],
            },
            Spec = new V1IngressSpec
            {
                IngressClassName = options.IngressClass,
                Tls = [new V1IngressTLS { Hosts = [host] }],
                Rules =
                [
                    new V1IngressRule
                    {
                        Host = host,
                        Http = new V1HTTPIngressRuleValue
                        {
                            Paths =
                            [
                                new V1HTTPIngressPath
                                {
                                    Path = ExposureHosts.NormalPath(spec.Path),
                                    PathType = "Prefix",
                                    Backend = new V1IngressBackend
                                    {
                                        Service = new V1IngressServiceBackend { Name = spec.Backend.Service, Port = new V1ServiceBackendPort { Number = spec.Backend.Port } },
                                    },
                                },
                            ],
                        },
                    },
                ],
            },
        };
    }

    /// <summary>Why <paramref name="spec"/>'s backend cannot be served, naming the field; null when the Service has the port.</summary>
    public static string? BackendProblem(string ns, ExposureSpec spec, V1Service? service)
    {
        if (service is null) return $"spec.backend.service: Service {spec.Backend.Service} does not exist in namespace {ns}";
        var ports = service.Spec?.Ports ?? [];
        if (ports.Any(p => p.Port == spec.Backend.Port)) return null;
        var has = ports.Count == 0 ? "none" : string.Join(", ", ports.Select(p => p.Port.ToString(CultureInfo.InvariantCulture)));
        return $"spec.backend.port: Service {spec.Backend.Service} in namespace {ns} has no port {spec.Backend.Port} (its ports: {has})";
    }

    /// <summary>
    /// Why <paramref name="service"/> may never be a backend, naming the field, or null: only a ClusterIP
    /// Service with a selector routes to the workspace's own pods (an ExternalName, or hand-written
    /// Endpoints of a selector-less Service, would publish any address through the edge).
    /// </summary>
    public static string? BackendRefusal(string ns, ExposureBackend backend, V1Service? service)
    {
        if (service is null) return null;
        var type = service.Spec?.Type ?? "ClusterIP";
        if (type != "ClusterIP")
        {
            return $"spec.backend.service: Service {backend.Service} in namespace {ns} is of type {type}; only a ClusterIP Service with a selector is published";
        }

        return service.Spec?.Selector is { Count: > 0 }
            ? null
            : $"spec.backend.service: Service {backend.Service} in namespace {ns} has no selector (its endpoints are written by hand and may point anywhere); only a ClusterIP Service with a selector is published";
    }

    /// <summary>
    /// Who holds a route several Exposures contend for (<see cref="Contend"/>): the one already serving
    /// it, then the oldest, then by namespace/name. Admission refuses a second claim; this settles the
    /// ones that slipped in together.
    /// </summary>
    public static Exposure? RouteHolder(IEnumerable<Exposure> claimants, RouteKey route, ExposureOptions options) =>
        claimants
            .Where(c => ContendsWith(c, route, options))
            .OrderBy(c => LiveServes(c, route, options) ? 0 : 1)
            .ThenBy(c => c.Metadata.CreationTimestamp ?? DateTime.MaxValue)
            .ThenBy(c => c.Metadata.NamespaceProperty, StringComparer.Ordinal)
            .ThenBy(c => c.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();

    public static JsonNode SpecNode(ExposureSpec? spec) => spec is null ? new JsonObject() : JsonNode.Parse(KubernetesJson.Serialize(spec))!;

    public static string SpecHash(ExposureSpec spec) => SystemDatabase.Sha256Hex(SystemDatabase.Canonical(SpecNode(spec)));

    /// <summary>The change from the live spec to the new one as a JSON Patch; values hashed when the data mode keeps metadata only.</summary>
    public static JsonArray Change(ExposureSpec? live, ExposureSpec next, bool metadataOnly)
    {
        var patch = JsonPatch.Diff(SpecNode(live), SpecNode(next));
        return metadataOnly ? JsonPatch.Redact(patch) : patch;
    }

    /// <summary>A deep copy: the published spec kept in status must not alias the object's live spec.</summary>
    public static ExposureSpec Copy(ExposureSpec spec) => KubernetesJson.Deserialize<ExposureSpec>(KubernetesJson.Serialize(spec));
}
