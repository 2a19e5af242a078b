using System.Reflection;
using ControlPlane.Api;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Cli;

/// <summary>A controlplane.io kind as the API types declare it: kind, plural, short names, scope.</summary>
public sealed record KindInfo(string Kind, string Plural, IReadOnlyList<string> ShortNames, bool Namespaced, Type Type)
{
    public bool Answers(string word) =>
        string.Equals(word, Kind, StringComparison.OrdinalIgnoreCase) || string.Equals(word, Plural, StringComparison.OrdinalIgnoreCase)
        || string.Equals(word, Plural + "." + ApiGroup.Group, StringComparison.OrdinalIgnoreCase)
        || ShortNames.Any(s => string.Equals(word, s, StringComparison.OrdinalIgnoreCase));
}

/// <summary>The kinds, read from the API assembly's [KubernetesEntity] types: a new kind shows up here without an edit.</summary>
public static class Kinds
{
    public static readonly IReadOnlyList<KindInfo> All = typeof(Rollout).Assembly.GetTypes()
        .Select(t => (Type: t, Entity: t.GetCustomAttribute<KubernetesEntityAttribute>()))
        .Where(x => x.Entity is { Group: ApiGroup.Group })
        .Select(x => new KindInfo(x.Entity!.Kind, x.Entity.PluralName,
            x.Type.GetCustomAttributes<ShortNameAttribute>().Select(s => s.Name).ToList(),
            x.Type.GetCustomAttribute<EntityScopeAttribute>()?.Scope != EntityScope.Cluster, x.Type))
        .OrderBy(k => k.Kind, StringComparer.Ordinal)
        .ToList();

    /// <summary>The kinds an Approval can name: the enum of spec.target.kind in the API (the CRD's own list).</summary>
    public static readonly IReadOnlyList<string> Approvable =
        typeof(ApprovalTarget).GetProperty(nameof(ApprovalTarget.Kind))!.GetCustomAttribute<EnumAttribute>()!.Values;

    /// <summary>"rollout/orders", "ro/orders", "Exposure/orders-v1" → the approvable kind and the name, or a one-line error.</summary>
    public static (KindInfo Kind, string Name) ApprovableTarget(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == text.Length - 1)
        {
            throw new CliError($"target \"{text}\": expected <kind>/<name>, e.g. rollout/orders ({string.Join(", ", Approvable)})");
        }

        var word = text[..slash];
        var name = text[(slash + 1)..];
        var kind = All.FirstOrDefault(k => k.Answers(word));
        if (kind is null || !Approvable.Contains(kind.Kind))
        {
            throw new CliError($"target \"{text}\": unknown kind \"{word}\": an Approval names {string.Join(", ", Approvable)}");
        }

        return (kind, name);
    }
}
