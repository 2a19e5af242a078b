using System.Text.Json.Serialization;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>meta.k8s.io/v1 PartialObjectMetadata: an object's metadata without its body.</summary>
[KubernetesEntity(Group = "meta.k8s.io", ApiVersion = "v1", Kind = "PartialObjectMetadata", PluralName = "")]
public sealed class PartialObjectMetadata : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "meta.k8s.io/v1";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "PartialObjectMetadata";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();
}
