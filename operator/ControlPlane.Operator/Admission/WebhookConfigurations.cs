using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// One mutating and one validating configuration for every controlplane.io resource:
/// failurePolicy Fail, sideEffects None (server-side dry-run works), 5 s timeout, and the CA bundle of
/// the operator's serving certificate. Written only when they differ from what is installed.
/// </summary>
public static class WebhookConfigurations
{
    public static readonly ResourceType Mutating = new("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", false);
    public static readonly ResourceType Validating = new("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", false);

    static Admissionregistrationv1WebhookClientConfig Client(WebhookOptions o, string path, string caPem) => new()
    {
        CaBundle = Encoding.UTF8.GetBytes(caPem),
        Url = string.IsNullOrEmpty(o.Url) ? null : o.Url.TrimEnd('/') + path,
        Service = string.IsNullOrEmpty(o.Url)
            ? new Admissionregistrationv1ServiceReference { NamespaceProperty = o.ServiceNamespace, Name = o.ServiceName, Path = path, Port = 443 }
            : null,
    };

    static V1RuleWithOperations Rule(params string[] operations) => new()
    {
        ApiGroups = [ApiGroup.Group],
        ApiVersions = [ApiGroup.Version],
        Operations = operations.ToList(),
        Resources = ["*"],
        Scope = "*",
    };

    static V1ObjectMeta Meta(string name) => new() { Name = name, Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "controlplane" } };

    public static V1MutatingWebhookConfiguration MutatingConfiguration(WebhookOptions o, string caPem) => new()
    {
        ApiVersion = "admissionregistration.k8s.io/v1",
        Kind = "MutatingWebhookConfiguration",
        Metadata = Meta(o.ConfigurationName + "-mutating"),
        Webhooks =
        [
            new V1MutatingWebhook
            {
                Name = "mutate.controlplane.io",
                ClientConfig = Client(o, "/mutate", caPem),
                Rules = [Rule("CREATE", "UPDATE")],
                FailurePolicy = o.FailurePolicy,
                SideEffects = "None",
                AdmissionReviewVersions = ["v1"],
                TimeoutSeconds = o.TimeoutSeconds,
                MatchPolicy = "Equivalent",
                ReinvocationPolicy = "Never",
                NamespaceSelector = new V1LabelSelector(),
                ObjectSelector = new V1LabelSelector(),
            },
        ],
    };

    public static V1ValidatingWebhookConfiguration ValidatingConfiguration(WebhookOptions o, string caPem) => new()
    {
        ApiVersion = "admissionregistration.k8s.io/v1",
        Kind = "ValidatingWebhookConfiguration",
        Metadata = Meta(o.ConfigurationName + "-validating"),
        Webhooks =
        [
            new V1ValidatingWebhook
            {
                Name = "validate.controlplane.io",
                ClientConfig = Client(o, "/validate", caPem),
                Rules = [Rule("CREATE", "UPDATE", "DELETE")],
                FailurePolicy = o.FailurePolicy,
                SideEffects = "None",
                AdmissionReviewVersions = ["v1"],
                TimeoutSeconds = o.TimeoutSeconds,
                MatchPolicy = "Equivalent",
                NamespaceSelector = new V1LabelSelector(),
                ObjectSelector = new V1LabelSelector(),
            },
            // What the operator alone writes in workspace namespaces (Ingresses, NetworkPolicies, quotas,
            // RoleBindings): a RoleBinding added by hand must not reopen what Exposure and
            // WorkspaceNetworkPolicy govern, nor grant access that no Workspace member or AccessRequest records.
            new V1ValidatingWebhook
            {
                Name = "governed.controlplane.io",
                ClientConfig = Client(o, "/validate", caPem),
                Rules =
                [
                    new V1RuleWithOperations
                    {
                        ApiGroups = ["networking.k8s.io"], ApiVersions = ["*"], Resources = ["ingresses", "networkpolicies"],
                        Operations = ["CREATE", "UPDATE", "DELETE"], Scope = "Namespaced",
                    },
                    new V1RuleWithOperations
                    {
                        ApiGroups = [""], ApiVersions = ["v1"], Resources = ["resourcequotas", "limitranges"],
                        Operations = ["CREATE", "UPDATE", "DELETE"], Scope = "Namespaced",
                    },
                    new V1RuleWithOperations
                    {
                        ApiGroups = ["rbac.authorization.k8s.io"], ApiVersions = ["*"], Resources = ["rolebindings"],
                        Operations = ["CREATE", "UPDATE", "DELETE"], Scope = "Namespaced",
                    },
                ],
                FailurePolicy = o.FailurePolicy,
                SideEffects = "None",
                AdmissionReviewVersions = ["v1"],
                TimeoutSeconds = o.TimeoutSeconds,
                MatchPolicy = "Equivalent",
                NamespaceSelector = new V1LabelSelector
                {
                    MatchExpressions = [new V1LabelSelectorRequirement { Key = "controlplane.io/workspace", OperatorProperty = "Exists" }],
                },
                ObjectSelector = new V1LabelSelector(),
            },
        ],
    };

    static readonly ResourceType Services = new("", "v1", "services", "Service", true);
    static readonly ResourceType Endpoints = new("", "v1", "endpoints", "Endpoints", true);

    /// <summary>
    /// Why the API server could not reach the webhooks through their Service, or null. A URL (local
    /// runs) is the operator's own listener; a Service must exist and select at least one pod (ready
    /// or not: this replica's own pod is listed before it is ready).
    /// </summary>
    public static async Task<string?> UnreachableAsync(KubeApi api, WebhookOptions o, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(o.Url)) return null;
        var service = $"{o.ServiceNamespace}/{o.ServiceName}";
        if (await api.TryGetAsync<V1Service>(Services, o.ServiceNamespace, o.ServiceName, ct).ConfigureAwait(false) is null)
        {
            return $"Service {service} does not exist (install the chart or dist/install.yaml, or set ControlPlane:Webhook:Url for a local run)";
        }

        var endpoints = await api.TryGetAsync<V1Endpoints>(Endpoints, o.ServiceNamespace, o.ServiceName, ct).ConfigureAwait(false);
        var pods = endpoints?.Subsets?.Sum(s => (s.Addresses?.Count ?? 0) + (s.NotReadyAddresses?.Count ?? 0)) ?? 0;
        return pods > 0 ? null : $"Service {service} has no endpoints: it selects no operator pod";
    }

    public static async Task ApplyAsync(KubeApi api, WebhookOptions o, string caPem, CancellationToken ct)
    {
        var applier = new ChildApplier(api);
        var mutating = MutatingConfiguration(o, caPem);
        var validating = ValidatingConfiguration(o, caPem);
        var currentMutating = await api.TryGetAsync<V1MutatingWebhookConfiguration>(Mutating, null, mutating.Metadata.Name, ct).ConfigureAwait(false);
        var currentValidating = await api.TryGetAsync<V1ValidatingWebhookConfiguration>(Validating, null, validating.Metadata.Name, ct).ConfigureAwait(false);
        if (o.CertificateSource == WebhookCertificateSource.External)
        {
            // The CA injector owns caBundle: keep whatever it wrote, so the two never fight.
            KeepCaBundles(mutating.Webhooks.Select(w => (w.Name, w.ClientConfig)), currentMutating?.Webhooks?.Select(w => (w.Name, w.ClientConfig)));
            KeepCaBundles(validating.Webhooks.Select(w => (w.Name, w.ClientConfig)), currentValidating?.Webhooks?.Select(w => (w.Name, w.ClientConfig)));
        }

        await applier.ApplyAsync(Mutating, mutating, currentMutating, ["webhooks"], ct).ConfigureAwait(false);
        await applier.ApplyAsync(Validating, validating, currentValidating, ["webhooks"], ct).ConfigureAwait(false);
    }

    static void KeepCaBundles(IEnumerable<(string Name, Admissionregistrationv1WebhookClientConfig Client)> desired,
        IEnumerable<(string Name, Admissionregistrationv1WebhookClientConfig Client)>? current)
    {
        var installed = current?.ToDictionary(w => w.Name, w => w.Client.CaBundle) ?? [];
        foreach (var (name, client) in desired) client.CaBundle = installed.GetValueOrDefault(name);
    }
}
