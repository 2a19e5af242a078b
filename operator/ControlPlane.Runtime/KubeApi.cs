using System.Net.Http.Headers;
using System.Net.Security;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text;
using k8s.Models;
using k8s;

namespace ControlPlane.Runtime;

/// <summary>A resource the runtime lists, watches and writes: group/version/plural, and its scope.</summary>
public sealed record ResourceType(string Group, string Version, string Plural, string Kind, bool Namespaced)
{
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    string Prefix => Group.Length == 0 ? $"api/{Version}" : $"apis/{Group}/{Version}";

    public string CollectionPath(string? ns) =>
        Namespaced && !string.IsNullOrEmpty(ns) ? $"{Prefix}/namespaces/{ns}/{Plural}" : $"{Prefix}/{Plural}";

    public string ItemPath(string? ns, string name, string? subresource = null) =>
        CollectionPath(ns) + "/" + Uri.EscapeDataString(name) + (subresource is null ? "" : "/" + subresource);

    public static ResourceType For<T>(bool namespaced) where T : IKubernetesObject
    {
        var e = (KubernetesEntityAttribute?)Attribute.GetCustomAttribute(typeof(T), typeof(KubernetesEntityAttribute))
            ?? throw new InvalidOperationException($"{typeof(T).Name} lacks [KubernetesEntity]");
        return new ResourceType(e.Group ?? "", e.ApiVersion, e.PluralName, e.Kind, namespaced);
    }

    public static readonly ResourceType Namespaces = new("", "v1", "namespaces", "Namespace", false);
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "Secret", true);
    public static readonly ResourceType Events = new("", "v1", "events", "Event", true);
    public static readonly ResourceType Leases = new("coordination.k8s.io", "v1", "leases", "Lease", true);
    public static readonly ResourceType Crds = new("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false);
}

/// <summary>An error status answered by the API server. Carries reason and message, never a request body.</summary>
public sealed class KubeApiException(HttpStatusCode statusCode, string reason, string message)
    : Exception($"{(int)statusCode} {reason}: {message}")
{
    public HttpStatusCode StatusCode { get; } = statusCode;
    public string Reason { get; } = reason;
    public string StatusMessage { get; } = message;
    public bool IsNotFound => StatusCode == HttpStatusCode.NotFound;
    public bool IsConflict => StatusCode == HttpStatusCode.Conflict;
    public bool IsGone => StatusCode == HttpStatusCode.Gone;
}

public sealed record ListPage<T>(IReadOnlyList<T> Items, string ResourceVersion, string? Continue);

public static class PatchTypes
{
    public const string Merge = "application/merge-patch+json";
    public const string Json = "application/json-patch+json";

    /// <summary>Built-in kinds only: lists merge by their key (containers by name).</summary>
    public const string StrategicMerge = "application/strategic-merge-patch+json";
}

/// <summary>
/// A small REST client for the Kubernetes API over one HttpClient: typed models in and out through
/// KubernetesJson, raw paths for any group, and streaming watches. Requests pass through
/// <see cref="RequestMetricsHandler"/>, so every call the operator makes is counted by verb.
/// </summary>
public sealed class KubeApi : IDisposable
{
    readonly HttpClient http;
    readonly KubernetesClientConfiguration config;

    /// <param name="multiplexed">
    /// HTTP/2 where the server offers it (TLS), many requests over a few connections and no cap on them:
    /// for a client of many long watches (one per namespace), which would otherwise hold a connection each.
    /// </param>
    public KubeApi(KubernetesClientConfiguration config, RequestMetricsHandler? metrics = null, bool multiplexed = false)
    {
        this.config = config;
        var sockets = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = multiplexed ? int.MaxValue : 256,
            EnableMultipleHttp2Connections = multiplexed,
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = ValidateServer,
                ClientCertificates = ClientCertificates(config),
            },
        };
        HttpMessageHandler handler = sockets;
        if (metrics is not null)
        {
            metrics.InnerHandler = handler;
            handler = metrics;
        }

        http = new HttpClient(handler, disposeHandler: true)
        {
            BaseAddress = new Uri(config.Host.TrimEnd('/') + "/"),
            Timeout = Timeout.InfiniteTimeSpan, // per call through cancellation; watches stream for minutes
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("controlplane-operator/0.1");
        if (multiplexed) http.DefaultRequestVersion = HttpVersion.Version20;
    }

    public string Host => config.Host;

    /// <summary>
    /// Every request but a watch must finish within this, so a hung connection cannot hold a
    /// reconcile, a lease renewal or a shutdown (the HttpClient itself has no timeout: watches stream).
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    static X509CertificateCollection? ClientCertificates(KubernetesClientConfiguration config)
    {
        if (string.IsNullOrEmpty(config.ClientCertificateData) && string.IsNullOrEmpty(config.ClientCertificateFilePath)) return null;
        var certPem = !string.IsNullOrEmpty(config.ClientCertificateData)
            ? Encoding.UTF8.GetString(Convert.FromBase64String(config.ClientCertificateData))
            : File.ReadAllText(config.ClientCertificateFilePath);
        var keyPem = !string.IsNullOrEmpty(config.ClientCertificateKeyData)
            ? Encoding.UTF8.GetString(Convert.FromBase64String(config.ClientCertificateKeyData))
            : File.ReadAllText(config.ClientKeyFilePath);
        using var pem = X509Certificate2.CreateFromPem(certPem, keyPem);
        // Re-import so the private key is usable by SslStream on Linux.
        return [X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null)];
    }

    bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (config.SkipTlsVerify || errors == SslPolicyErrors.None) return true;
        if (config.SslCaCerts is null || config.SslCaCerts.Count == 0 || certificate is null) return false;
        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.CustomTrustStore.AddRange(config.SslCaCerts);
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return custom.Build(leaf);
    }

    /// <summary>Accept header values asking for metadata only (controller-runtime's metadata informers).</summary>
    public const string MetadataListAccept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    public const string MetadataAccept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

    async Task<HttpRequestMessage> NewRequest(HttpMethod method, string path, HttpContent? content, CancellationToken ct, string? accept = null)
    {
        // Requests made here take the client's version (HTTP/2 for a multiplexed one); the server may answer in 1.1.
        var request = new HttpRequestMessage(method, path) { Content = content, Version = http.DefaultRequestVersion, VersionPolicy = HttpVersionPolicy.RequestVersionOrLower };
        request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse(accept ?? "application/json"));
        if (config.TokenProvider is not null)
        {
            request.Headers.Authorization = await config.TokenProvider.GetAuthenticationHeaderAsync(ct).ConfigureAwait(false);
        }
        else if (!string.IsNullOrEmpty(config.AccessToken))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", config.AccessToken);
        }
        else if (!string.IsNullOrEmpty(config.Username))
        {
            var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{config.Username}:{config.Password}"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", basic);
        }

        return request;
    }

    public async Task<string> SendAsync(HttpMethod method, string path, string? body, string contentType, CancellationToken ct, string? accept = null)
    {
        using var request = await NewRequest(method, path,
            body is null ? null : new StringContent(body, Encoding.UTF8, contentType), ct, accept).ConfigureAwait(false);
        // The content type must be exactly the patch type, without a charset the API server rejects.
        if (request.Content is not null) request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(RequestTimeout);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, deadline.Token).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(deadline.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) throw ToException(response.StatusCode, text);
            return text;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new KubeApiException(HttpStatusCode.GatewayTimeout, "Timeout", $"{method} {path} got no answer within {RequestTimeout.TotalSeconds:0.#} s");
        }
    }

    internal static KubeApiException ToException(HttpStatusCode code, string body)
    {
        try
        {
            var status = KubernetesJson.Deserialize<V1Status>(body);
            return new KubeApiException(code, status.Reason ?? code.ToString(), status.Message ?? "");
        }
        catch (JsonException)
        {
            return new KubeApiException(code, code.ToString(), body.Length > 512 ? body[..512] : body);
        }
    }

    public async Task<T> GetAsync<T>(ResourceType type, string? ns, string name, CancellationToken ct) =>
        KubernetesJson.Deserialize<T>(await SendAsync(HttpMethod.Get, type.ItemPath(ns, name), null, "application/json", ct).ConfigureAwait(false));

    public async Task<T?> TryGetAsync<T>(ResourceType type, string? ns, string name, CancellationToken ct) where T : class
    {
        try
        {
            return await GetAsync<T>(type, ns, name, ct).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    public async Task<ListPage<T>> ListAsync<T>(ResourceType type, string? ns, string? labelSelector, int limit, string? continueToken, CancellationToken ct,
        bool metadataOnly = false, string? fieldSelector = null, Func<JsonElement, bool>? admit = null)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(RequestTimeout);
        try
        {
            return await ListPageAsync<T>(type, ns, labelSelector, limit, continueToken, deadline.Token, metadataOnly, fieldSelector, admit).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new KubeApiException(HttpStatusCode.GatewayTimeout, "Timeout", $"LIST {type.Plural} got no answer within {RequestTimeout.TotalSeconds:0.#} s");
        }
    }

    async Task<ListPage<T>> ListPageAsync<T>(ResourceType type, string? ns, string? labelSelector, int limit, string? continueToken, CancellationToken ct,
        bool metadataOnly, string? fieldSelector, Func<JsonElement, bool>? admit)
    {
        var query = new List<string> { $"limit={limit}" };
        if (!string.IsNullOrEmpty(continueToken)) query.Add("continue=" + Uri.EscapeDataString(continueToken));
        if (!string.IsNullOrEmpty(labelSelector)) query.Add("labelSelector=" + Uri.EscapeDataString(labelSelector));
        if (!string.IsNullOrEmpty(fieldSelector)) query.Add("fieldSelector=" + Uri.EscapeDataString(fieldSelector));
        // Streamed into a pooled JsonDocument and deserialized item by item: a page of 500 objects as
        // one string (and a node tree) would be megabytes of large-object garbage per page.
        using var request = await NewRequest(HttpMethod.Get, type.CollectionPath(ns) + "?" + string.Join('&', query), null, ct,
            metadataOnly ? MetadataListAccept : null).ConfigureAwait(false);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw ToException(response.StatusCode, await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var document = await JsonDocument.ParseAsync(stream, cancellationToken: ct).ConfigureAwait(false);
        var root = document.RootElement;
        var items = new List<T>();
        if (root.TryGetProperty("items", out var array) && array.ValueKind == JsonValueKind.Array)
        {
            items.Capacity = array.GetArrayLength();
            foreach (var element in array.EnumerateArray())
            {
                // Items the caller does not want are skipped before they cost a deserialization.
                if (element.ValueKind != JsonValueKind.Object || (admit is not null && !admit(element))) continue;
                var item = KubernetesJson.Deserialize<T>(element);
                // Items of a list carry no apiVersion/kind; put them back so cached objects are whole.
                if (item is IKubernetesObject whole)
                {
                    whole.ApiVersion ??= metadataOnly ? "meta.k8s.io/v1" : type.ApiVersion;
                    whole.Kind ??= metadataOnly ? "PartialObjectMetadata" : type.Kind;
                }

                items.Add(item);
            }
        }

        var resourceVersion = "";
        string? nextPage = null;
        if (root.TryGetProperty("metadata", out var meta))
        {
            if (meta.TryGetProperty("resourceVersion", out var rv)) resourceVersion = rv.GetString() ?? "";
            if (meta.TryGetProperty("continue", out var c) && c.GetString() is { Length: > 0 } next) nextPage = next;
        }

        return new ListPage<T>(items, resourceVersion, nextPage);
    }

    /// <summary>Opens a watch stream from a resource version. The caller reads newline-delimited events.</summary>
    public async Task<HttpResponseMessage> WatchAsync(ResourceType type, string? ns, string resourceVersion, int timeoutSeconds, CancellationToken ct,
        string? labelSelector = null, bool metadataOnly = false, string? fieldSelector = null)
    {
        var path = $"{type.CollectionPath(ns)}?watch=true&allowWatchBookmarks=true&timeoutSeconds={timeoutSeconds}" +
                   $"&resourceVersion={Uri.EscapeDataString(resourceVersion)}" +
                   (string.IsNullOrEmpty(labelSelector) ? "" : "&labelSelector=" + Uri.EscapeDataString(labelSelector)) +
                   (string.IsNullOrEmpty(fieldSelector) ? "" : "&fieldSelector=" + Uri.EscapeDataString(fieldSelector));
        using var request = await NewRequest(HttpMethod.Get, path, null, ct, metadataOnly ? MetadataAccept : null).ConfigureAwait(false);
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw ToException(response.StatusCode, await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
            }
        }

        return response;
    }

    public async Task<T> CreateAsync<T>(ResourceType type, string? ns, T obj, CancellationToken ct) =>
        KubernetesJson.Deserialize<T>(await SendAsync(HttpMethod.Post, type.CollectionPath(ns), KubernetesJson.Serialize(obj), "application/json", ct).ConfigureAwait(false));

    public async Task<T> ReplaceAsync<T>(ResourceType type, string? ns, string name, T obj, CancellationToken ct, string? subresource = null) =>
        KubernetesJson.Deserialize<T>(await SendAsync(HttpMethod.Put, type.ItemPath(ns, name, subresource), KubernetesJson.Serialize(obj), "application/json", ct).ConfigureAwait(false));

    public async Task<T> PatchAsync<T>(ResourceType type, string? ns, string name, string patch, string patchType, CancellationToken ct, string? subresource = null) =>
        KubernetesJson.Deserialize<T>(await SendAsync(HttpMethod.Patch, type.ItemPath(ns, name, subresource), patch, patchType, ct).ConfigureAwait(false));

    /// <summary>Deletes an object (a missing one is fine); with <paramref name="preconditionUid"/>, only that very object, never a namesake created since.</summary>
    public async Task DeleteAsync(ResourceType type, string? ns, string name, CancellationToken ct, string? preconditionUid = null)
    {
        var body = preconditionUid is null ? null : "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"preconditions\":{\"uid\":\"" + preconditionUid + "\"}}";
        try
        {
            await SendAsync(HttpMethod.Delete, type.ItemPath(ns, name), body, "application/json", ct).ConfigureAwait(false);
        }
        catch (KubeApiException e) when (e.IsNotFound)
        {
        }
    }

    public void Dispose() => http.Dispose();
}
