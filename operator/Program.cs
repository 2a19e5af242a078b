using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Crds;
using ControlPlane.Operator.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace ControlPlane.Operator;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "generate-manifests")
        {
            // Everything generated from the C# types: crds/ and the workspace ClusterRoles.
            var root = args.Length >= 2 ? args[1] : ".";
            var crds = Path.Combine(root, "crds");
            Directory.CreateDirectory(crds);
            foreach (var (file, yaml) in CrdGenerator.RenderAll()) await File.WriteAllTextAsync(Path.Combine(crds, file), yaml);
            Directory.CreateDirectory(Path.Combine(root, "config", "rbac"));
            await File.WriteAllTextAsync(Path.Combine(root, "config", "rbac", "workspace-roles.yaml"), Controllers.WorkspaceRoles.RenderYaml());
            Console.WriteLine($"wrote {CrdGenerator.RenderAll().Count} CRDs to {crds} and the workspace ClusterRoles to config/rbac");
            return 0;
        }

        var app = BuildApp(args);
        await app.RunAsync();
        return 0;
    }

    /// <summary>The operator process: health and metrics endpoints, and the runtime as a hosted service.</summary>
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
        builder.WebHost.UseUrls(options.HealthUrls);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(sp => new OperatorRuntime(options, OperatorRuntime.LoadKubeConfig(options.Kubeconfig), sp.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddHostedService<OperatorService>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));

        var app = builder.Build();
        var runtime = app.Services.GetRequiredService<OperatorRuntime>();
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", () => runtime.IsReady ? Results.Text("ok") : Results.Text("caches not synced", statusCode: 503));
        app.MapMetrics("/metrics", runtime.Metrics.Registry);
        return app;
    }
}

/// <summary>Runs the operator runtime for the host's lifetime; graceful shutdown releases the lease.</summary>
sealed class OperatorService(OperatorRuntime runtime, ILogger<OperatorService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        logger.LogInformation("operator {Identity} starting against {Host}", runtime.Identity, runtime.Api.Host);
        await runtime.RunAsync(stoppingToken);
        logger.LogInformation("operator {Identity} stopped", runtime.Identity);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await runtime.DisposeAsync();
    }
}
