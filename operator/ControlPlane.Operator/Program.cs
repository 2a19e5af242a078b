using System.Net;
using ControlPlane.Operator.Admission;
using ControlPlane.Operator.AuditApi;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Crds;
using ControlPlane.Operator.Kinds;
using Prometheus;

namespace ControlPlane.Operator;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "generate-manifests")
        {
            // Everything generated from the C# types: crds/, docs/api/ and the workspace ClusterRoles.
            var root = args.Length >= 2 ? args[1] : ".";
            var crds = Path.Combine(root, "crds");
            Directory.CreateDirectory(crds);
            foreach (var (file, yaml) in CrdGenerator.RenderAll()) await File.WriteAllTextAsync(Path.Combine(crds, file), yaml);
            await ApiReference.WriteAsync(root, CrdGenerator.GenerateAll()); // docs/api/, from the same CRD objects
            Directory.CreateDirectory(Path.Combine(root, "config", "rbac"));
            await File.WriteAllTextAsync(Path.Combine(root, "config", "rbac", "workspace-roles.yaml"), Policy.WorkspaceRoles.RenderYaml());
            Console.WriteLine($"wrote {CrdGenerator.RenderAll().Count} CRDs to {crds} and the workspace ClusterRoles to config/rbac");
            return 0;
        }

        try
        {
            var app = BuildApp(args);
            await app.RunAsync();
            return Environment.ExitCode;
        }
        catch (Exception e) when (e is MissingConfigurationException or k8s.Exceptions.KubeConfigException)
        {
            // The message names the setting; the stack trace (and abort, exit 134) would bury it.
            await Console.Error.WriteLineAsync($"controlplane-operator: {e.Message}");
            return 1;
        }
    }

    /// <summary>The operator process: health and metrics endpoints, admission webhooks, and the runtime as a hosted service.</summary>
    public static WebApplication BuildApp(string[] args, Action<IConfigurationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        configure?.Invoke(builder.Configuration);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.IncludeScopes = true;
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        var options = new ControlPlaneOptions();
        builder.Configuration.GetSection(ControlPlaneOptions.Section).Bind(options);
        var webhook = new WebhookOptions();
        builder.Configuration.GetSection(ControlPlaneOptions.Section + ":Webhook").Bind(webhook);
        var auditApi = new AuditApiOptions();
        builder.Configuration.GetSection(ControlPlaneOptions.Section + ":AuditApi").Bind(auditApi);
        // The audit API serves with the webhook's certificate: no webhook, no audit API.
        var serveAudit = auditApi.Enabled && webhook.Enabled;

        // Explicit listeners: health and metrics over HTTP, admission over TLS with the current certificate.
        var health = new Uri(options.HealthUrls.Split(';')[0].Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("*", "127.0.0.1", StringComparison.Ordinal));
        var healthBind = options.HealthUrls.Contains("0.0.0.0", StringComparison.Ordinal) || options.HealthUrls.Contains('*') ? IPAddress.Any : IPAddress.Parse(health.Host);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            kestrel.Listen(healthBind, health.Port);
            if (serveAudit)
            {
                // Any client certificate completes the handshake; each request is then checked against the front proxy's CA
                // (AuditApiServer), which the API server publishes and may rotate, so a refusal is a 401 naming nothing.
                kestrel.Listen(IPAddress.Parse(auditApi.BindAddress), auditApi.Port, listen => listen.UseHttps(https =>
                {
                    var certs = kestrel.ApplicationServices.GetRequiredService<WebhookCertificates>();
                    https.ServerCertificateSelector = (_, _) => certs.Current;
                    https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate;
                    https.ClientCertificateValidation = (_, _, _) => true;
                }));
            }

            if (!webhook.Enabled) return;
            var clientCa = WebhookClientAuthentication.Load(webhook.ClientCaFile);
            kestrel.Listen(IPAddress.Parse(webhook.BindAddress), webhook.Port, listen => listen.UseHttps(https =>
            {
                var certs = kestrel.ApplicationServices.GetRequiredService<WebhookCertificates>();
                https.ServerCertificateSelector = (_, _) => certs.Current;
                if (clientCa is null) return;
                https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.RequireCertificate;
                https.ClientCertificateValidation = (certificate, _, _) => WebhookClientAuthentication.IsTrusted(certificate, clientCa);
            }));
        });

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(webhook);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp => new OperatorRuntime(options, OperatorRuntime.LoadKubeConfig(options.Kubeconfig), sp.GetRequiredService<ILoggerFactory>()));
        if (webhook.Enabled)
        {
            builder.Services.AddSingleton(sp =>
            {
                var runtime = sp.GetRequiredService<OperatorRuntime>();
                var certificates = new WebhookCertificates(runtime.Api, webhook, TimeProvider.System, sp.GetRequiredService<ILogger<WebhookCertificates>>());
                certificates.ExportExpiry(runtime.Metrics.Registry);
                return certificates;
            });
            builder.Services.AddSingleton(sp => new AdmissionCaches(sp.GetRequiredService<OperatorRuntime>().Api, sp.GetRequiredService<OperatorRuntime>().Metrics,
                sp.GetRequiredService<ILoggerFactory>()));
            builder.Services.AddSingleton(sp =>
            {
                var caches = sp.GetRequiredService<AdmissionCaches>();
                var settings = new AdmissionSettings(options, OperatorIdentity.Usernames(sp.GetRequiredService<OperatorRuntime>().KubeConfig, webhook.OperatorUsernames));
                return new AdmissionDispatcher(KindRegistry.AdmissionRoutes(new AdmissionDependencies(caches, settings)), caches.All);
            });
            builder.Services.AddSingleton<WebhookService>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<WebhookService>());
        }

        if (serveAudit) AddAuditApi(builder.Services, auditApi);
        builder.Services.AddHostedService<OperatorService>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));

        var app = builder.Build();
        var runtime = app.Services.GetRequiredService<OperatorRuntime>();
        var healthHost = $"*:{health.Port}";
        // A dead loop or a lease that could not be given up: unhealthy and unready, and the process exits non-zero.
        runtime.Fatal += reason =>
        {
            Environment.ExitCode = 1;
            app.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        };
        // Each listener's endpoints are bound to its port (RequireHost("*:<port>")), which ASP.NET matches against the Host
        // header: a value the client writes. Before routing, the Host is given the port the connection really arrived on,
        // so no listener reaches another's endpoints (the plain-HTTP health port, or the audit port that takes any client,
        // cannot reach the webhook's /validate), and the aggregator, which addresses the Service's port, is still served.
        app.Use((http, next) =>
        {
            http.Request.Host = new HostString(string.IsNullOrEmpty(http.Request.Host.Host) ? "localhost" : http.Request.Host.Host, http.Connection.LocalPort);
            return next(http);
        });
        app.UseRouting();
        app.MapGet("/healthz", () => runtime.FatalError is { } fatal ? Results.Text(fatal, statusCode: 503) : Results.Text("ok")).RequireHost(healthHost);
        app.MapGet("/readyz", () => runtime.FatalError is { } fatal
            ? Results.Text(fatal, statusCode: 503)
            : webhook.Enabled && app.Services.GetRequiredService<WebhookService>().NotRegisteredReason is { } unregistered
                ? Results.Text(unregistered, statusCode: 503)
                : runtime.IsReady && (!webhook.Enabled || app.Services.GetRequiredService<AdmissionCaches>().Synced)
                    ? Results.Text("ok")
                    : Results.Text("caches not synced", statusCode: 503)).RequireHost(healthHost);
        app.MapMetrics("/metrics", runtime.Metrics.Registry).RequireHost(healthHost);
        if (webhook.Enabled)
        {
            WebhookService.Map(app, webhook, app.Services.GetRequiredService<AdmissionDispatcher>(), runtime.Metrics);
        }

        if (serveAudit) app.Services.GetRequiredService<AuditApiServer>().Map(app);
        return app;
    }

    /// <summary>The aggregated API audit.controlplane.io (docs/audit-api.md): its server, front proxy, chain verification and APIService.</summary>
    static void AddAuditApi(IServiceCollection services, AuditApiOptions auditApi)
    {
        services.AddSingleton(auditApi);
        services.AddSingleton(sp => new Store.AuditLog(sp.GetRequiredService<OperatorRuntime>().Database.DataSource, auditApi.PlatformNamespace));
        services.AddSingleton(sp => new FrontProxy(sp.GetRequiredService<OperatorRuntime>().Api, sp.GetRequiredService<ILogger<FrontProxy>>()));
        services.AddSingleton(sp => new AuditApiServer(sp.GetRequiredService<Store.AuditLog>(), sp.GetRequiredService<FrontProxy>(),
            new Adapters.AccessReviewer(sp.GetRequiredService<OperatorRuntime>().Api), sp.GetRequiredService<OperatorRuntime>().Api, auditApi, TimeProvider.System,
            sp.GetRequiredService<ILogger<AuditApiServer>>()));
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<OperatorRuntime>();
            return new AuditChainVerifier(sp.GetRequiredService<Store.AuditLog>(), runtime.Database, auditApi, runtime.Metrics.Registry, TimeProvider.System,
                sp.GetRequiredService<ILoggerFactory>().CreateLogger<AuditChainVerifier>());
        });
        services.AddHostedService(sp =>
        {
            var certificates = sp.GetRequiredService<WebhookCertificates>();
            return new AuditApiService(sp.GetRequiredService<OperatorRuntime>().Api, sp.GetRequiredService<FrontProxy>(), sp.GetRequiredService<AuditChainVerifier>(),
                auditApi, () => certificates.CaBundlePem, TimeProvider.System, sp.GetRequiredService<ILogger<AuditApiService>>());
        });
    }
}

/// <summary>Runs the operator runtime for the host's lifetime; graceful shutdown releases the lease (the container disposes the runtime).</summary>
sealed class OperatorService(OperatorRuntime runtime, ILogger<OperatorService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        logger.LogInformation("operator {Identity} starting against {Host}", runtime.Identity, runtime.Api.Host);
        await runtime.RunAsync(stoppingToken);
        logger.LogInformation("operator {Identity} stopped", runtime.Identity);
    }

}
