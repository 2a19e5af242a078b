using System.Diagnostics;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Bench;

/// <summary>Exposure publication: how long after the last approval the Ingress exists.</summary>
public static partial class Program
{
    static readonly int NExposures = Env("BENCH_N_EXPOSURES", 100);

    static readonly ResourceType ExposureType = ResourceType.For<Exposure>(true);
    static readonly ResourceType ApprovalType = ResourceType.For<Approval>(true);

    /// <summary>
    /// N Exposures wait in a prod workspace (two approvals each). For each in turn: the first approval,
    /// then, once the operator has counted it, the second; timed from the second approval's create
    /// until the Ingress can be read from the API server. One at a time: latency, not throughput.
    /// </summary>
    static async Task<JsonObject> ExposurePublicationAsync(BenchEnv env)
    {
        await using var op = RunningOperator.Start(env);
        await op.WaitSyncedAsync();
        await CreateTenantsAsync(env, 10);
        var ws = NewWorkspace(0, db: false);
        ws.Spec.Environment = "prod";
        ws.Spec.Members = [.. ws.Spec.Members!, new WorkspaceMember { Kind = "User", Name = "second-lead@example.com", Role = "Approver" }];
        await env.Api.CreateAsync(ResourceType.For<Workspace>(false), null, ws, CancellationToken.None);
        var ns = ws.Metadata.Name;
        await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Workspace>(ResourceType.For<Workspace>(false), null, ns, CancellationToken.None)).Status?.Phase == WorkspacePhase.Ready,
            TimeSpan.FromMinutes(1), "workspace Ready");
        await env.Api.CreateAsync(ExposureResources.Services, ns, new V1Service
        {
            ApiVersion = "v1", Kind = "Service", Metadata = new V1ObjectMeta { Name = "orders" },
            Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 8080 }] },
        }, CancellationToken.None);

        var exposures = new List<Exposure>();
        for (var i = 0; i < NExposures; i++)
        {
            exposures.Add(await env.Api.CreateAsync(ExposureType, ns, new Exposure
            {
                Metadata = new V1ObjectMeta { Name = $"api-{i:000}" },
                Spec = new ExposureSpec { Backend = new ExposureBackend { Service = "orders", Port = 8080 }, Path = "/v1", Publish = true },
            }, CancellationToken.None));
        }

        await op.WaitIdleAsync();
        var latencies = new List<double>();
        foreach (var e in exposures)
        {
            await env.Api.CreateAsync(ApprovalType, ns, BenchApproval(e, "lead0@example.com"), CancellationToken.None);
            await Net.WaitUntilAsync(async () => (await env.Api.GetAsync<Exposure>(ExposureType, ns, e.Metadata.Name, CancellationToken.None)).Status?.Conditions?
                .Any(c => c.Type == ExposureConditions.Approved && c.Message.StartsWith("1 of 2", StringComparison.Ordinal)) == true, TimeSpan.FromMinutes(1), "first approval counted");
            var watch = Stopwatch.StartNew();
            await env.Api.CreateAsync(ApprovalType, ns, BenchApproval(e, "second-lead@example.com"), CancellationToken.None);
            while (await env.Api.TryGetAsync<V1Ingress>(ExposureResources.Ingresses, ns, e.Metadata.Name, CancellationToken.None) is null)
            {
                if (watch.Elapsed > TimeSpan.FromMinutes(1)) throw new TimeoutException($"no Ingress for {e.Metadata.Name}");
                await Task.Delay(TimeSpan.FromMilliseconds(2));
            }

            latencies.Add(watch.Elapsed.TotalMilliseconds);
        }

        await op.StopAsync();
        return new JsonObject
        {
            ["exposures"] = NExposures,
            ["approvalToIngressMs"] = new JsonArray(Math.Round(Percentiles.Of(latencies, 0.5), 1), Math.Round(Percentiles.Of(latencies, 0.99), 1), Math.Round(latencies.Max(), 1)),
            ["note"] = "prod workspace (two approvals); timed from the second approval's create request until a GET of the Ingress succeeds (polled every 2 ms); in-process operator, no webhooks (approvals carry the stamps the webhook would write)",
        };
    }

    /// <summary>What the webhook would have stamped, written by the harness (no webhook runs here).</summary>
    static Approval BenchApproval(Exposure target, string approver) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = $"{target.Metadata.Name}-{approver.Split('@')[0]}",
            Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) },
        },
        Spec = new ApprovalSpec
        {
            Target = new ApprovalTarget { Kind = "Exposure", Name = target.Metadata.Name },
            Approver = approver, TargetUID = target.Metadata.Uid, TargetGeneration = target.Metadata.Generation,
        },
    };
}
