using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Kinds;
using ControlPlane.Runtime;

namespace ControlPlane.Tests;

/// <summary>Waiting on an Exposure's reconciled status, shared by the Exposure test classes.</summary>
public static class ExposureWaits
{
    static readonly ResourceType Exposures = ResourceType.For<Exposure>(true);

    /// <summary>The Exposure once its status is of its current generation and <paramref name="condition"/> holds; the last status in the timeout's message.</summary>
    public static async Task<Exposure> WaitForAsync(KubeApi api, string ws, string name, Func<Exposure, bool> condition, string what)
    {
        Exposure? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await api.GetAsync<Exposure>(Exposures, ws, name, CancellationToken.None);
                return last.Status?.ObservedGeneration == last.Metadata.Generation && condition(last);
            }, TimeSpan.FromSeconds(30), $"exposure {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"exposure {name}: {what}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}");
        }

        return last!;
    }

    public static string? ReadyReason(Exposure e) => e.Status?.Conditions?.FirstOrDefault(c => c.Type == ExposureConditions.Ready)?.Reason;
}
