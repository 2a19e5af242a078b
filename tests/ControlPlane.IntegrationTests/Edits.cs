using ControlPlane.Runtime;
using k8s;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// A spec edit as kubectl edit (and client-go's RetryOnConflict) makes it: read, change, replace, and
/// read again when the operator wrote the object (its status) in between. A test that replaces an
/// object it read earlier fails whenever the operator happens to write meanwhile: on a loaded machine, often.
/// </summary>
public static class Edits
{
    public static async Task<T> EditAsync<T>(this KubeApi api, ResourceType type, string? ns, string name, Action<T> edit)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        for (var attempt = 1; ; attempt++)
        {
            var current = await api.GetAsync<T>(type, ns, name, CancellationToken.None);
            edit(current);
            try
            {
                return await api.ReplaceAsync(type, ns, name, current, CancellationToken.None);
            }
            catch (KubeApiException e) when (e.IsConflict && e.Reason != "Invalid" && attempt < 10)
            {
            }
        }
    }
}
