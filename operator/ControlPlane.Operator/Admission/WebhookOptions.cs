namespace ControlPlane.Operator.Admission;

/// <summary>The "ControlPlane:Webhook" configuration section.</summary>
public sealed class WebhookOptions
{
    public bool Enabled { get; set; } = true;
    public string BindAddress { get; set; } = "0.0.0.0";
    public int Port { get; set; } = 9443;

    /// <summary>Secret (in CertSecretNamespace) that holds the CA and serving certificate, shared by every replica.</summary>
    public string CertSecretNamespace { get; set; } = "controlplane-system";
    public string CertSecretName { get; set; } = "controlplane-webhook-cert";

    /// <summary>The Service in front of the operator's webhook port (used when Url is empty).</summary>
    public string ServiceNamespace { get; set; } = "controlplane-system";
    public string ServiceName { get; set; } = "controlplane-webhook";

    /// <summary>When set, the API server calls this base URL instead of the Service (local runs and tests).</summary>
    public string? Url { get; set; }

    /// <summary>Prefix of the MutatingWebhookConfiguration and ValidatingWebhookConfiguration names.</summary>
    public string ConfigurationName { get; set; } = "controlplane";

    /// <summary>Extra subject alternative names (DNS names or IPs) for the serving certificate.</summary>
    public List<string> ExtraSans { get; set; } = [];

    public TimeSpan CertificateValidity { get; set; } = TimeSpan.FromDays(365);

    /// <summary>A certificate this close to expiry is renewed.</summary>
    public TimeSpan RenewBefore { get; set; } = TimeSpan.FromDays(30);

    public int TimeoutSeconds { get; set; } = 5;

    /// <summary>The configurations' failurePolicy: Fail (default) or Ignore.</summary>
    public string FailurePolicy { get; set; } = "Fail";

    /// <summary>
    /// Operator (default): the operator issues the serving certificate from its own CA and injects the
    /// CA bundle. External: another issuer (cert-manager) writes CertSecretName and injects the bundle
    /// (cert-manager.io/inject-ca-from); the operator only reads the Secret and never writes either.
    /// </summary>
    public WebhookCertificateSource CertificateSource { get; set; } = WebhookCertificateSource.Operator;

    /// <summary>
    /// PEM bundle of the CA that signs the API server's client certificate towards webhooks (its
    /// --admission-control-config-file). When set, the webhook port completes a TLS handshake only
    /// with a client certificate that chains to it: nobody but the API server is answered.
    /// </summary>
    public string? ClientCaFile { get; set; }

    /// <summary>
    /// Usernames that count as the operator when admission guards what it alone writes (Ingresses,
    /// NetworkPolicies, quotas in workspace namespaces). The identity of the operator's own credentials
    /// (its ServiceAccount token) is always included.
    /// </summary>
    public List<string> OperatorUsernames { get; set; } = [];
}

public enum WebhookCertificateSource
{
    Operator,
    External,
}
