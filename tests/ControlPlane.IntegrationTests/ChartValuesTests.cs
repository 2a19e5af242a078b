using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.Configuration;
using ControlPlane.Runtime;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using YamlDotNet.Serialization;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// Every value of charts/controlplane/values.yaml rendered at least once (one values file sets them all,
/// and each is asserted on the objects it lands in), the schema still strict, and the capability checks
/// (Prometheus Operator, cert-manager CRDs). helm template only: no server.
/// </summary>
public sealed class ChartValuesTests : IDisposable
{
    readonly string helmHome = Path.Combine(Path.GetTempPath(), "controlplane-helm-values-" + Guid.NewGuid().ToString("N")[..8]);

    const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// <summary>A value for every key of values.yaml (ChartValues_EveryKeyIsSetByTheTestValues keeps it so).</summary>
    const string AllValues = """
        createNamespace: true
        nameOverride: cp
        fullnameOverride: acme-cp
        commonLabels: {team: platform}
        crds: {create: true, keep: false}
        image: {repository: registry.example.com/controlplane, tag: "1.2.3", digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", pullPolicy: Always}
        imagePullSecrets: [{name: regcred}]
        replicas: 3
        serviceAccount: {create: true, name: cp-sa, annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::1:role/cp"}}
        rbac: {create: true}
        systemDatabase: {secretName: sysdb, key: conn}
        keyEncryptionKey: {secretName: kek2, key: k}
        regions:
          eu:
            database: {secretName: db-eu, key: eu}
            allowedExtensions: [pg_trgm]
            backupStorage: {endpoint: "https://s3.example.com", bucket: backups-eu, prefix: cp, credentialsSecret: s3-eu, signingRegion: eu-west-1}
            evidenceStorage: {endpoint: "https://s3.example.com", bucket: evidence-eu, prefix: ev, credentialsSecret: s3-ev, signingRegion: eu-west-2}
        deploymentIntent:
          requireScanReport: false
          trustedSigningKeys:
          - |
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest
            -----END PUBLIC KEY-----
        backup: {maxConcurrent: 3, allowTenantStorage: true, tenantStorageEndpoints: ["https://s3.tenant.example.com/"], deleteGrace: "2.00:00:00"}
        regionsSecret: {name: more-regions}
        reservedNamespaces: [vault]
        reservedNamespaceDefaults: false
        forceTenantPrefix: true
        allowedWorkspaceNames: ["{tenant}-*"]
        exposure: {ingressClass: traefik, domain: apps.acme.example}
        notifications: {urlPrefixes: ["https://hooks.example.com/services/"], allowedHosts: ["events.pagerduty.com"], allowPrivateAddresses: true, proxy: "http://proxy.platform.svc:3128"}
        workers: 8
        logLevel: Debug
        leaderElection: {leaseName: cp-leader}
        webhook:
          port: 10443
          timeoutSeconds: 10
          failurePolicy: Ignore
          url: ""
          clientCA: {configMapName: apiserver-ca, key: ca.pem}
          certManager: {enabled: true, issuerRef: {name: corp-ca, kind: ClusterIssuer, group: cert-manager.io}, duration: 2160h, renewBefore: 360h}
        metrics:
          port: 9090
          serviceMonitor: {enabled: true, interval: 15s, labels: {release: prom}}
          prometheusRule: {enabled: true, labels: {release: prom}, reconcileErrorRatePerSecond: 0.5, webhookLatencyP99Seconds: 2.5, backupOverdueSeconds: 3600, auditVerificationStaleSeconds: 7200, breakGlassReviewOverdueSeverity: critical}
        auditApi: {enabled: true, port: 10444, servicePort: 9443, verifyInterval: "00:20:00", fullVerifyInterval: "12:00:00"}
        networkPolicy: {enabled: true, podCIDRs: [10.42.0.0/16], metricsNamespaceLabels: {monitoring: "yes"}}
        grafana: {dashboard: {enabled: true, labels: {grafana_folder_label: ops}, annotations: {grafana_folder: ControlPlane}}}
        podDisruptionBudget: {minAvailable: 2}
        resources: {requests: {cpu: 200m, memory: 300Mi}, limits: {memory: 600Mi}}
        podLabels: {cost-center: cc-42}
        podAnnotations: {example.com/owner: platform}
        nodeSelector: {kubernetes.io/os: linux}
        tolerations: [{key: dedicated, operator: Equal, value: control, effect: NoSchedule}]
        affinity:
          nodeAffinity:
            requiredDuringSchedulingIgnoredDuringExecution:
              nodeSelectorTerms: [{matchExpressions: [{key: node-role.example.com/control, operator: Exists}]}]
        topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app.kubernetes.io/name: cp-operator}}}]
        priorityClassName: system-cluster-critical
        podSecurityContext: {runAsNonRoot: true, runAsUser: 1001, seccompProfile: {type: RuntimeDefault}}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: {drop: [ALL]}}
        extraEnv: [{name: DOTNET_gcServer, value: "0"}]
        extraVolumes: [{name: s3-ca, configMap: {name: s3-ca}}]
        extraVolumeMounts: [{name: s3-ca, mountPath: /etc/ssl/s3, readOnly: true}]
        """;

    static readonly string[] AllCrdApis =
    [
        "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
        "--api-versions", "cert-manager.io/v1/Certificate",
    ];

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(helmHome)) Directory.Delete(helmHome, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    async Task<string> ValuesFileAsync(string yaml)
    {
        Directory.CreateDirectory(helmHome);
        var file = Path.Combine(helmHome, Guid.NewGuid().ToString("N")[..8] + ".yaml");
        await File.WriteAllTextAsync(file, yaml);
        return file;
    }

    /// <summary>Key paths down to scalars, lists, empty maps and label maps (their keys are the user's, e.g. "a/b").</summary>
    static IEnumerable<string> LeafPaths(object? node, string prefix) => node switch
    {
        IDictionary<object, object> map when map.Count > 0 && !map.Keys.Any(k => ((string)k).Contains('/', StringComparison.Ordinal)) => map.SelectMany(kv => LeafPaths(kv.Value, prefix.Length == 0 ? (string)kv.Key : $"{prefix}.{kv.Key}")),
        _ => [prefix],
    };

    static bool HasPath(object? node, string path)
    {
        foreach (var key in path.Split('.'))
        {
            if (node is not IDictionary<object, object> map || !map.TryGetValue(key, out node)) return false;
        }

        return true;
    }

    [Fact]
    public void ChartValues_EveryKeyIsSetByTheTestValues()
    {
        // A value added to values.yaml without a test here fails this.
        var yaml = new DeserializerBuilder().Build();
        var defaults = yaml.Deserialize<object>(File.ReadAllText(Path.Combine(Tools.Repo, Tools.Chart, "values.yaml")));
        var all = yaml.Deserialize<object>(AllValues);
        var missing = LeafPaths(defaults, "").Where(p => !HasPath(all, p)).ToList();
        Assert.True(missing.Count == 0, $"values.yaml keys the test values do not set: {string.Join(", ", missing)}");
    }

    [Fact]
    public async Task ChartValues_EveryValueLandsInTheRenderedObjects()
    {
        var values = await ValuesFileAsync(AllValues);
        var objects = ManifestObject.Parse(await Tools.RenderAsync(helmHome, ["--values", values, .. AllCrdApis]));
        ManifestObject One(string kind, string? name = null) => objects.Single(o => o.Kind == kind && (name is null || o.Name == name));

        // Names, labels, namespace, CRDs.
        Assert.All(objects, o => Assert.Equal("platform", o.As<V1ConfigMap>().Metadata.Labels["team"]));
        Assert.Equal("controlplane-system", One("Namespace").Name);
        var crds = objects.Where(o => o.Kind == "CustomResourceDefinition").ToList();
        Assert.Equal(Directory.GetFiles(Path.Combine(Tools.Repo, "crds"), "*.yaml").Length, crds.Count);
        Assert.All(crds, c => Assert.DoesNotContain("helm.sh/resource-policy", c.Yaml)); // crds.keep: false
        var deployment = One("Deployment", "acme-cp-operator").As<V1Deployment>();
        var selector = deployment.Spec.Selector.MatchLabels;
        Assert.Equal("cp-operator", selector["app.kubernetes.io/name"]);
        Assert.Equal(3, deployment.Spec.Replicas);

        // The pod.
        var pod = deployment.Spec.Template;
        var spec = pod.Spec;
        var c = Assert.Single(spec.Containers);
        Assert.Equal($"registry.example.com/controlplane@{Digest}", c.Image);
        Assert.Equal("Always", c.ImagePullPolicy);
        Assert.Equal("regcred", Assert.Single(spec.ImagePullSecrets).Name);
        Assert.Equal("cp-sa", spec.ServiceAccountName);
        Assert.Equal(("cc-42", "platform"), (pod.Metadata.Labels["cost-center"], pod.Metadata.Labels["team"]));
        Assert.Equal("platform", pod.Metadata.Annotations["example.com/owner"]);
        Assert.Equal("linux", spec.NodeSelector["kubernetes.io/os"]);
        Assert.Equal(("dedicated", "NoSchedule"), (Assert.Single(spec.Tolerations).Key, spec.Tolerations[0].Effect));
        Assert.Null(spec.Affinity.PodAntiAffinity);
        Assert.Equal("node-role.example.com/control", spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Key);
        Assert.Equal(("topology.kubernetes.io/zone", "ScheduleAnyway"), (Assert.Single(spec.TopologySpreadConstraints).TopologyKey, spec.TopologySpreadConstraints[0].WhenUnsatisfiable));
        Assert.Equal("system-cluster-critical", spec.PriorityClassName);
        Assert.Equal(1001L, spec.SecurityContext.RunAsUser);
        Assert.Equal((false, true), (c.SecurityContext.AllowPrivilegeEscalation, c.SecurityContext.ReadOnlyRootFilesystem));
        Assert.Equal(("200m", "300Mi", "600Mi"), (c.Resources.Requests["cpu"].ToString(), c.Resources.Requests["memory"].ToString(), c.Resources.Limits["memory"].ToString()));
        Assert.Equal(("s3-ca", "s3-ca"), (spec.Volumes.Single(v => v.Name == "s3-ca").ConfigMap.Name, c.VolumeMounts.Single(m => m.MountPath == "/etc/ssl/s3").Name));
        Assert.Equal("apiserver-ca", spec.Volumes.Single(v => v.Name == "client-ca").ConfigMap.Name);
        Assert.Equal((10443, 9090), (c.Ports.Single(p => p.Name == "webhook").ContainerPort, c.Ports.Single(p => p.Name == "health").ContainerPort));
        Assert.Equal("0", c.Env.Single(e => e.Name == "DOTNET_gcServer").Value);
        Assert.Equal(("sysdb", "conn"), (c.Env.Single(e => e.Name == "ControlPlane__SystemDatabase").ValueFrom.SecretKeyRef.Name, c.Env.Single(e => e.Name == "ControlPlane__SystemDatabase").ValueFrom.SecretKeyRef.Key));
        Assert.Equal(("kek2", "k"), (c.Env.Single(e => e.Name == "ControlPlane__KeyEncryptionKey").ValueFrom.SecretKeyRef.Name, c.Env.Single(e => e.Name == "ControlPlane__KeyEncryptionKey").ValueFrom.SecretKeyRef.Key));
        Assert.Equal(("db-eu", "eu"), (c.Env.Single(e => e.Name == "ControlPlane__Regions__eu__Database").ValueFrom.SecretKeyRef.Name, c.Env.Single(e => e.Name == "ControlPlane__Regions__eu__Database").ValueFrom.SecretKeyRef.Key));
        Assert.Equal("more-regions", Assert.Single(c.EnvFrom).SecretRef.Name);

        // The plain env binds to the operator's options as the operator binds it.
        var env = c.Env.Where(e => e.Value is not null).ToDictionary(e => e.Name.Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
        var config = new ConfigurationBuilder().AddInMemoryCollection(env).Build();
        var options = new ControlPlaneOptions();
        config.GetSection(ControlPlaneOptions.Section).Bind(options);
        var webhook = new WebhookOptions();
        config.GetSection(ControlPlaneOptions.Section + ":Webhook").Bind(webhook);
        Assert.Equal(["pg_trgm"], options.Regions["eu"].AllowedExtensions ?? []);
        Assert.Equal(("https://s3.example.com", "backups-eu", "cp", "s3-eu", "eu-west-1"), (options.Regions["eu"].BackupStorage!.Endpoint, options.Regions["eu"].BackupStorage!.Bucket,
            options.Regions["eu"].BackupStorage!.Prefix, options.Regions["eu"].BackupStorage!.CredentialsSecret, options.Regions["eu"].BackupStorage!.SigningRegion));
        Assert.Equal(("https://s3.example.com", "evidence-eu", "ev", "s3-ev", "eu-west-2"), (options.Regions["eu"].EvidenceStorage!.Endpoint, options.Regions["eu"].EvidenceStorage!.Bucket,
            options.Regions["eu"].EvidenceStorage!.Prefix, options.Regions["eu"].EvidenceStorage!.CredentialsSecret, options.Regions["eu"].EvidenceStorage!.SigningRegion));
        Assert.False(options.DeploymentIntent.RequireScanReport);
        Assert.Equal(["-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest\n-----END PUBLIC KEY-----\n"], options.DeploymentIntent.TrustedSigningKeys);
        Assert.Equal((3, true, TimeSpan.FromDays(2)), (options.Backup.MaxConcurrent, options.Backup.AllowTenantStorage, options.Backup.DeleteGrace));
        Assert.Equal(["https://s3.tenant.example.com/"], options.Backup.TenantStorageEndpoints);
        Assert.Equal(["vault"], options.ReservedNamespaces);
        Assert.Equal((false, true), (options.ReservedNamespaceDefaults, options.ForceTenantPrefix));
        Assert.Equal(["{tenant}-*"], options.AllowedWorkspaceNames);
        Assert.Equal(("traefik", "apps.acme.example"), (options.Exposure.IngressClass, options.Exposure.Domain));
        Assert.Equal(["https://hooks.example.com/services/"], options.NotificationUrlPrefixes);
        Assert.Equal(["events.pagerduty.com"], options.NotificationAllowedHosts);
        Assert.Equal((true, "http://proxy.platform.svc:3128"), (options.NotificationAllowPrivateAddresses, options.NotificationProxy));
        Assert.Equal(8, options.Workers);
        Assert.Equal("Debug", config["Logging:LogLevel:Default"]);
        Assert.Equal("cp-leader", options.LeaderElection.LeaseName);
        Assert.Equal("http://0.0.0.0:9090", options.HealthUrls);
        Assert.Equal((10443, 10, "Ignore", WebhookCertificateSource.External), (webhook.Port, webhook.TimeoutSeconds, webhook.FailurePolicy, webhook.CertificateSource));
        Assert.Equal(("acme-cp-webhook", "acme-cp-webhook-cert", "/etc/controlplane/client-ca/ca.pem"), (webhook.ServiceName, webhook.CertSecretName, webhook.ClientCaFile));
        var audit = new ControlPlane.Operator.AuditApi.AuditApiOptions();
        config.GetSection(ControlPlaneOptions.Section + ":AuditApi").Bind(audit);
        Assert.Equal((true, 10444, "acme-cp-webhook", 9443, false), (audit.Enabled, audit.Port, audit.ServiceName, audit.ServicePort, audit.Register)); // cert-manager injects the CA
        Assert.Equal((TimeSpan.FromMinutes(20), TimeSpan.FromHours(12), "controlplane-system"), (audit.VerifyInterval, audit.FullVerifyInterval, audit.PlatformNamespace));
        Assert.Equal(10444, c.Ports.Single(p => p.Name == "audit").ContainerPort);
        var apiService = One("APIService", "v1alpha1.audit.controlplane.io").Raw;
        Assert.Equal("controlplane-system/acme-cp-webhook", ((IDictionary<object, object>)((IDictionary<object, object>)apiService["metadata"])["annotations"])["cert-manager.io/inject-ca-from"]);

        // Webhook configurations: what the operator writes with these options, plus cert-manager's CA injection.
        foreach (var (kind, ours) in new (string, object)[]
                 {
                     ("MutatingWebhookConfiguration", WebhookConfigurations.MutatingConfiguration(webhook, "")),
                     ("ValidatingWebhookConfiguration", WebhookConfigurations.ValidatingConfiguration(webhook, "")),
                 })
        {
            var rendered = One(kind);
            Assert.Equal("controlplane-system/acme-cp-webhook", rendered.As<V1MutatingWebhookConfiguration>().Metadata.Annotations["cert-manager.io/inject-ca-from"]);
            var a = System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(ours))!["webhooks"]!;
            var b = System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(kind.StartsWith("Mutating", StringComparison.Ordinal)
                ? rendered.As<V1MutatingWebhookConfiguration>() : rendered.As<V1ValidatingWebhookConfiguration>()))!["webhooks"]!;
            foreach (var w in a.AsArray().Concat(b.AsArray())) w!["clientConfig"]!.AsObject().Remove("caBundle");
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(a, b), $"{kind}: chart {b}\noperator {a}");
            Assert.Contains("failurePolicy: Ignore", rendered.Yaml);
            Assert.Contains("timeoutSeconds: 10", rendered.Yaml);
        }

        // cert-manager: a Certificate from the given issuer into the Secret the operator reads; no chart-made Secret or Issuer.
        var certificate = One("Certificate", "acme-cp-webhook").Raw;
        var certSpec = (IDictionary<object, object>)certificate["spec"];
        Assert.Equal("acme-cp-webhook-cert", certSpec["secretName"]);
        Assert.Equal(("2160h", "360h"), (certSpec["duration"], certSpec["renewBefore"]));
        Assert.Contains("acme-cp-webhook.controlplane-system.svc", ((IList<object>)certSpec["dnsNames"]).Cast<string>());
        var issuer = (IDictionary<object, object>)certSpec["issuerRef"];
        Assert.Equal(("corp-ca", "ClusterIssuer"), (issuer["name"], issuer["kind"]));
        Assert.DoesNotContain(objects, o => o.Kind is "Issuer" || (o.Kind == "Secret" && o.Name == "acme-cp-webhook-cert"));

        // Services, PDB, NetworkPolicy, ServiceAccount, RBAC subjects.
        Assert.Equal(selector, One("Service", "acme-cp-webhook").As<V1Service>().Spec.Selector);
        Assert.Equal(9090, One("Service", "acme-cp-metrics").As<V1Service>().Spec.Ports.Single().Port);
        var pdb = One("PodDisruptionBudget").As<V1PodDisruptionBudget>();
        Assert.Equal(("acme-cp-operator", "2"), (pdb.Metadata.Name, pdb.Spec.MinAvailable.Value));
        Assert.Equal(selector, pdb.Spec.Selector.MatchLabels);
        var policy = One("NetworkPolicy", "acme-cp-operator").As<V1NetworkPolicy>();
        Assert.Equal(selector["app.kubernetes.io/name"], policy.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"]);
        Assert.Equal(["10.42.0.0/16"], policy.Spec.Ingress[0].FromProperty[0].IpBlock.Except);
        Assert.Equal("10443", policy.Spec.Ingress[0].Ports[0].Port.Value);
        Assert.Equal("yes", policy.Spec.Ingress[1].FromProperty[0].NamespaceSelector.MatchLabels["monitoring"]);
        var sa = One("ServiceAccount", "cp-sa").As<V1ServiceAccount>();
        Assert.Equal("arn:aws:iam::1:role/cp", sa.Metadata.Annotations["eks.amazonaws.com/role-arn"]);
        Assert.All(objects.Where(o => o.Kind is "ClusterRoleBinding" or "RoleBinding"), b => Assert.Equal("cp-sa", Assert.Single(b.As<V1RoleBinding>().Subjects).Name));

        // Monitoring.
        var monitor = One("ServiceMonitor");
        Assert.Contains("release: prom", monitor.Yaml);
        Assert.Contains("interval: 15s", monitor.Yaml);
        var rule = One("PrometheusRule").Yaml;
        Assert.Contains("release: prom", rule);
        Assert.Contains("> 0.5", rule);
        Assert.Contains(@"le=~`2.5(\.0)?`", rule); // the latency SLO's bucket
        Assert.Contains("> 3600", rule);
        Assert.Matches(@"alert: ControlPlaneBreakGlassReviewOverdue\s+expr: [^\n]+\s+labels: \{severity: critical\}", rule);
        Assert.Contains("service=\"acme-cp-metrics\"", rule);
        var dashboard = objects.Single(o => o.Kind == "ConfigMap" && o.As<V1ConfigMap>().Metadata.Labels.ContainsKey("grafana_dashboard")).As<V1ConfigMap>();
        Assert.Equal(("1", "ops", "ControlPlane"), (dashboard.Metadata.Labels["grafana_dashboard"], dashboard.Metadata.Labels["grafana_folder_label"], dashboard.Metadata.Annotations["grafana_folder"]));
    }

    [Fact]
    public async Task ChartValues_CreateSwitches_TheirDefaults_AndCertManagersOwnIssuer()
    {
        // Defaults: no UID forced (the image's 65532, or the platform's), the anti-affinity, CRDs kept, the operator's own CA.
        var defaults = ManifestObject.Parse(await Tools.RenderAsync(helmHome));
        var pod = defaults.Single(o => o.Kind == "Deployment").As<V1Deployment>().Spec.Template.Spec;
        Assert.True(pod.SecurityContext.RunAsUser is null && pod.SecurityContext.RunAsGroup is null && pod.SecurityContext.FsGroup is null && pod.SecurityContext.RunAsNonRoot == true,
            KubernetesJson.Serialize(pod.SecurityContext));
        Assert.Null(pod.Containers[0].SecurityContext.RunAsUser);
        Assert.NotNull(pod.Affinity.PodAntiAffinity);
        Assert.Equal("controlplane-operator", pod.ServiceAccountName);
        Assert.All(defaults.Where(o => o.Kind == "CustomResourceDefinition"), c => Assert.Contains("helm.sh/resource-policy: keep", c.Yaml));
        Assert.Contains(defaults, o => o.Kind == "Secret" && o.Name == "controlplane-webhook-cert");
        Assert.DoesNotContain(defaults, o => o.Kind is "Certificate" or "Issuer" || o.Yaml.Contains("inject-ca-from", StringComparison.Ordinal));
        // A release named otherwise prefixes the chart name (as Helm charts do).
        var other = ManifestObject.Parse((await Tools.HelmAsync(helmHome, null, "template", "platform", Tools.Chart, "--namespace", "controlplane-system")).EnsureSuccess("helm template").Stdout);
        Assert.Equal(("platform-controlplane-operator", "platform-controlplane-operator"),
            (other.Single(o => o.Kind == "Deployment").Name, other.Single(o => o.Kind == "Deployment").As<V1Deployment>().Spec.Template.Spec.ServiceAccountName));

        // Off: no CRDs, no RBAC, no ServiceAccount; the Deployment runs as the named one.
        var off = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--set", "crds.create=false", "--set", "rbac.create=false",
            "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=existing"));
        Assert.DoesNotContain(off, o => o.Kind is "CustomResourceDefinition" or "ClusterRole" or "Role" or "ClusterRoleBinding" or "RoleBinding" or "ServiceAccount");
        Assert.Equal("existing", off.Single(o => o.Kind == "Deployment").As<V1Deployment>().Spec.Template.Spec.ServiceAccountName);

        // cert-manager without an issuerRef: a self-signed Issuer the Certificate names.
        var own = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--set", "webhook.certManager.enabled=true", "--api-versions", "cert-manager.io/v1/Certificate"));
        var issuer = own.Single(o => o.Kind == "Issuer");
        Assert.Contains("selfSigned: {}", issuer.Yaml);
        Assert.Contains($"name: {issuer.Name}", own.Single(o => o.Kind == "Certificate").Yaml);
        // The group alone (helm template --api-versions monitoring.coreos.com/v1, as often written) is enough too.
        var grouped = ManifestObject.Parse(await Tools.RenderAsync(helmHome, "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
            "--set", "webhook.certManager.enabled=true", "--api-versions", "monitoring.coreos.com/v1", "--api-versions", "cert-manager.io/v1"));
        Assert.Equal(3, grouped.Count(o => o.Kind is "ServiceMonitor" or "PrometheusRule" or "Certificate"));
        // Without cert-manager's CRDs the chart says so.
        var refused = await Tools.HelmAsync(helmHome, null, "template", "x", Tools.Chart, "--set", "webhook.certManager.enabled=true");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("no cert-manager.io/v1 Certificate", refused.Stderr);
    }

    [Theory]
    [InlineData("affinty: {}", "affinty")]
    [InlineData("podLabel: {a: b}", "podLabel")]
    [InlineData("crds: {create: true, kepp: true}", "kepp")]
    [InlineData("image: {repository: x, digest: latest}", "digest")]
    [InlineData("webhook: {failurePolicy: Maybe}", "failurePolicy")]
    [InlineData("webhook: {certManager: {enabled: true, issuerRef: {name: ca, kind: Secret}}}", "kind")]
    [InlineData("serviceAccount: {create: true, nmae: x}", "nmae")]
    [InlineData("keyEncryptionKey: {secretName: kek, key: key, value: c2VjcmV0}", "value")]
    public async Task ChartValues_SchemaRefusesTyposAndInlineSecrets(string yaml, string named)
    {
        var values = await ValuesFileAsync(yaml);
        var result = await Tools.HelmAsync(helmHome, null, ["template", "x", Tools.Chart, "--values", values, .. AllCrdApis]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(named, result.Stderr);
    }
}

/// <summary>
/// ControlPlane:Webhook:CertificateSource=External (the chart's webhook.certManager): the operator serves
/// the certificate cert-manager wrote and leaves the Secret and the injected caBundle alone.
/// </summary>
[Collection(InstallCollection.Name)]
public sealed class ExternalWebhookCertificateTests(InstallFixture fixture)
{
    static (string CertPem, string KeyPem) SelfSigned(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(90));
        return (cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    [Fact]
    public async Task External_ServesTheIssuersCertificate_AndNeverWritesTheSecretOrTheCaBundle()
    {
        using var api = fixture.Plane.NewApi();
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var ns = "certs-" + suffix;
        await fixture.Plane.EnsureNamespaceAsync(ns);
        WebhookOptions Options(WebhookCertificateSource source) => new()
        {
            CertificateSource = source, CertSecretNamespace = ns, CertSecretName = "webhook-cert", ServiceNamespace = ns,
            // Its own configuration names, and Ignore: nothing of this collection's other tests is refused meanwhile.
            ConfigurationName = "certtest-" + suffix, FailurePolicy = "Ignore", Url = "https://127.0.0.1:1",
        };
        var external = Options(WebhookCertificateSource.External);
        var certs = new WebhookCertificates(api, external, TimeProvider.System, NullLogger<WebhookCertificates>.Instance);
        try
        {
            // Not issued yet: retried by the caller, and nothing is created in the issuer's place.
            await Assert.ThrowsAsync<CertificateNotIssuedException>(() => certs.EnsureAsync(CancellationToken.None));
            Assert.Null(await api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, "webhook-cert", CancellationToken.None));

            // cert-manager writes the Secret and its CA injector the caBundle.
            var (certPem, keyPem) = SelfSigned($"controlplane-webhook.{ns}.svc");
            var injected = SelfSigned("injected-ca").CertPem;
            await api.CreateAsync(ResourceType.Secrets, ns, new V1Secret
            {
                ApiVersion = "v1", Kind = "Secret", Type = "kubernetes.io/tls", Metadata = new V1ObjectMeta { Name = "webhook-cert", NamespaceProperty = ns },
                Data = new Dictionary<string, byte[]> { ["tls.crt"] = Encoding.UTF8.GetBytes(certPem), ["tls.key"] = Encoding.UTF8.GetBytes(keyPem), ["ca.crt"] = Encoding.UTF8.GetBytes(certPem) },
            }, CancellationToken.None);
            await WebhookConfigurations.ApplyAsync(api, Options(WebhookCertificateSource.Operator), injected, CancellationToken.None);
            var secretVersion = (await api.GetAsync<V1Secret>(ResourceType.Secrets, ns, "webhook-cert", CancellationToken.None)).Metadata.ResourceVersion;

            await certs.EnsureAsync(CancellationToken.None);
            Assert.Equal(X509Certificate2.CreateFromPem(certPem).Thumbprint, certs.Current?.Thumbprint);
            await WebhookConfigurations.ApplyAsync(api, external, certs.CaBundlePem, CancellationToken.None);

            Assert.Equal(secretVersion, (await api.GetAsync<V1Secret>(ResourceType.Secrets, ns, "webhook-cert", CancellationToken.None)).Metadata.ResourceVersion);
            var validating = await api.GetAsync<V1ValidatingWebhookConfiguration>(WebhookConfigurations.Validating, null, external.ConfigurationName + "-validating", CancellationToken.None);
            var mutating = await api.GetAsync<V1MutatingWebhookConfiguration>(WebhookConfigurations.Mutating, null, external.ConfigurationName + "-mutating", CancellationToken.None);
            Assert.All(validating.Webhooks, w => Assert.Equal(injected, Encoding.UTF8.GetString(w.ClientConfig.CaBundle)));
            Assert.Equal(injected, Encoding.UTF8.GetString(Assert.Single(mutating.Webhooks).ClientConfig.CaBundle));
            Assert.All(validating.Webhooks, w => Assert.Equal("Ignore", w.FailurePolicy));

            // The operator's own CA (the default) does write the bundle: the check above can tell.
            await WebhookConfigurations.ApplyAsync(api, Options(WebhookCertificateSource.Operator), certs.CaBundlePem, CancellationToken.None);
            validating = await api.GetAsync<V1ValidatingWebhookConfiguration>(WebhookConfigurations.Validating, null, external.ConfigurationName + "-validating", CancellationToken.None);
            Assert.All(validating.Webhooks, w => Assert.Equal(certPem, Encoding.UTF8.GetString(w.ClientConfig.CaBundle)));
        }
        finally
        {
            foreach (var (type, name) in new[] { (WebhookConfigurations.Mutating, "-mutating"), (WebhookConfigurations.Validating, "-validating") })
            {
                try
                {
                    await api.DeleteAsync(type, null, external.ConfigurationName + name, CancellationToken.None);
                }
                catch (KubeApiException e) when (e.IsNotFound)
                {
                }
            }
        }
    }
}
