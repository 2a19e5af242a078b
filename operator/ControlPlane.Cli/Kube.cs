using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace ControlPlane.Cli;

/// <summary>One page of a list, as the API server returns it.</summary>
public sealed class ObjectList<T>
{
    public V1ListMeta? Metadata { get; set; }
    public List<T> Items { get; set; } = [];
}

/// <summary>
/// The caller's connection to the API server: the kubeconfig kubectl would use (--kubeconfig, else
/// $KUBECONFIG, else ~/.kube/config), its context (--context) and namespace (-n, else the context's,
/// else default). Every read and write is the caller's own: RBAC and admission decide.
/// </summary>
public sealed class Kube : IDisposable
{
    public Kubernetes Client { get; }
    public string Namespace { get; }
    public string Server { get; }
    readonly bool namespaceGiven;

    Kube(Kubernetes client, string ns, bool namespaceGiven, string server)
    {
        Client = client;
        Namespace = ns;
        this.namespaceGiven = namespaceGiven;
        Server = server;
    }

    /// <summary>-n was given (or the context names a namespace): commands that default to all namespaces use it then.</summary>
    public bool NamespaceGiven => namespaceGiven;

    public static Kube Connect(string? kubeconfig, string? context, string? ns, Func<string, string?> env)
    {
        var paths = kubeconfig is { Length: > 0 } ? [kubeconfig]
            : env("KUBECONFIG") is { Length: > 0 } list ? list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            : [Path.Combine(env("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config")];
        var existing = paths.Where(File.Exists).ToList();
        if (existing.Count == 0)
        {
            var where = kubeconfig is { Length: > 0 } ? $"--kubeconfig {kubeconfig}" : env("KUBECONFIG") is { Length: > 0 } ? $"KUBECONFIG={env("KUBECONFIG")}" : paths[0];
            throw new CliError($"no kubeconfig: {where} does not exist (pass --kubeconfig, set KUBECONFIG, or write ~/.kube/config)");
        }

        KubernetesClientConfiguration config;
        try
        {
            // KubernetesClient merges no kubeconfig list: the first file that exists is the one used (kubectl merges them).
            var merged = KubernetesClientConfiguration.LoadKubeConfig(new FileInfo(existing[0]));
            if (context is { Length: > 0 } && merged.Contexts?.Any(c => c.Name == context) != true)
            {
                throw new CliError($"--context: context \"{context}\" is not in the kubeconfig ({string.Join(", ", merged.Contexts?.Select(c => c.Name) ?? [])})");
            }

            config = KubernetesClientConfiguration.BuildConfigFromConfigObject(merged, context);
        }
        catch (k8s.Exceptions.KubeConfigException e)
        {
            throw new CliError($"kubeconfig {string.Join(":", existing)}: {e.Message}");
        }

        var given = ns is { Length: > 0 } || config.Namespace is { Length: > 0 };
        return new Kube(new Kubernetes(config), ns is { Length: > 0 } ? ns : config.Namespace is { Length: > 0 } c ? c : "default", given, config.Host);
    }

    public static (string Group, string Version, string Plural, string Kind) Resource<T>()
    {
        var e = (KubernetesEntityAttribute?)Attribute.GetCustomAttribute(typeof(T), typeof(KubernetesEntityAttribute))
            ?? throw new InvalidOperationException($"{typeof(T).Name} has no [KubernetesEntity]");
        return (e.Group, e.ApiVersion, e.PluralName, e.Kind);
    }

    static T Convert<T>(object o) => KubernetesJson.Deserialize<T>(o is JsonElement e ? e.GetRawText() : KubernetesJson.Serialize(o));

    public async Task<T?> TryGetAsync<T>(string ns, string name, CancellationToken ct) where T : class
    {
        var (g, v, p, _) = Resource<T>();
        try
        {
            return Convert<T>(await Client.CustomObjects.GetNamespacedCustomObjectAsync(g, v, ns, p, name, ct).ConfigureAwait(false));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>The object, or a one-line error naming what was not found where.</summary>
    public async Task<T> GetAsync<T>(string ns, string name, CancellationToken ct) where T : class =>
        await TryGetAsync<T>(ns, name, ct).ConfigureAwait(false)
        ?? throw new CliError($"{Resource<T>().Kind} \"{name}\" not found in namespace \"{ns}\" (wrong name, or wrong namespace: pass -n <workspace>)");

    public async Task<T?> TryGetClusterAsync<T>(string name, CancellationToken ct) where T : class
    {
        var (g, v, p, _) = Resource<T>();
        try
        {
            return Convert<T>(await Client.CustomObjects.GetClusterCustomObjectAsync(g, v, p, name, ct).ConfigureAwait(false));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Every object of a namespace (all namespaces when ns is null), paged.</summary>
    public async Task<List<T>> ListAsync<T>(string? ns, CancellationToken ct, string? labelSelector = null)
    {
        var (g, v, p, _) = Resource<T>();
        var items = new List<T>();
        string? next = null;
        do
        {
            var page = ns is null
                ? await Client.CustomObjects.ListClusterCustomObjectAsync(g, v, p, continueParameter: next, labelSelector: labelSelector, limit: 500, cancellationToken: ct).ConfigureAwait(false)
                : await Client.CustomObjects.ListNamespacedCustomObjectAsync(g, v, ns, p, continueParameter: next, labelSelector: labelSelector, limit: 500, cancellationToken: ct).ConfigureAwait(false);
            var list = Convert<ObjectList<T>>(page);
            items.AddRange(list.Items);
            next = list.Metadata?.ContinueProperty is { Length: > 0 } c ? c : null;
        }
        while (next is not null);
        return items;
    }

    public async Task<T> CreateAsync<T>(string ns, T obj, CancellationToken ct)
    {
        var (g, v, p, _) = Resource<T>();
        return Convert<T>(await Client.CustomObjects.CreateNamespacedCustomObjectAsync(obj!, g, v, ns, p, cancellationToken: ct).ConfigureAwait(false));
    }

    /// <summary>A JSON merge patch of the object's spec (what `kubectl patch --type merge` sends).</summary>
    public async Task<T> MergePatchAsync<T>(string ns, string name, JsonObject patch, CancellationToken ct)
    {
        var (g, v, p, _) = Resource<T>();
        return Convert<T>(await Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), g, v, ns, p, name, cancellationToken: ct).ConfigureAwait(false));
    }

    /// <summary>Any controlplane.io object as JSON (the plugin reads conditions and stamps alike for every kind), or a one-line not-found error.</summary>
    public async Task<JsonObject> GetNodeAsync(KindInfo kind, string ns, string name, CancellationToken ct)
    {
        try
        {
            var o = await Client.CustomObjects.GetNamespacedCustomObjectAsync(ControlPlane.Api.V1Alpha1.ApiGroup.Group, ControlPlane.Api.V1Alpha1.ApiGroup.Version, ns, kind.Plural, name, ct).ConfigureAwait(false);
            return JsonNode.Parse(((JsonElement)o).GetRawText())!.AsObject();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new CliError($"{kind.Kind} \"{name}\" not found in namespace \"{ns}\" (wrong name, or wrong namespace: pass -n <workspace>)");
        }
    }

    /// <summary>Every object of a kind in a namespace as JSON; null when the caller may not list it (RBAC decides, not us).</summary>
    public async Task<List<JsonObject>?> ListNodesAsync(KindInfo kind, string ns, CancellationToken ct)
    {
        try
        {
            var o = await Client.CustomObjects.ListNamespacedCustomObjectAsync(ControlPlane.Api.V1Alpha1.ApiGroup.Group, ControlPlane.Api.V1Alpha1.ApiGroup.Version, ns, kind.Plural, limit: 500, cancellationToken: ct).ConfigureAwait(false);
            var list = JsonNode.Parse(((JsonElement)o).GetRawText())!["items"]?.AsArray() ?? [];
            return list.OfType<JsonObject>().ToList();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public void Dispose() => Client.Dispose();
}
