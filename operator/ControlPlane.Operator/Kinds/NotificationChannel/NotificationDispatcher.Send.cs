using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>One attempt: the channel's URL and keys from its Secrets (cached briefly), the signed request, a sanitized outcome.</summary>
public sealed partial class NotificationDispatcher
{
    sealed record Credentials(string Url, string? RoutingKey, string? Current, string? Previous);

    /// <summary>
    /// The URL and secrets from the channel's own namespace, read again when the channel's spec changed or the last
    /// read is older than SecretReadInterval (a rotation is picked up within it; the overlap window covers it);
    /// null: not usable now.
    /// </summary>
    async Task<Credentials?> CredentialsAsync(NotificationChannel c, ChannelReach reach, CancellationToken ct)
    {
        var uid = c.Metadata.Uid!;
        var generation = c.Metadata.Generation ?? 0;
        var now = time.GetUtcNow().UtcDateTime;
        if (credentialCache.TryGetValue(uid, out var cached) && cached.Generation == generation && now - cached.ReadAt < o.SecretReadInterval) return cached.Value;
        var read = await ReadCredentialsAsync(c, reach, ct).ConfigureAwait(false);
        // An unusable answer is kept as long as a usable one: a channel whose Secret is wrong is not read again at every look.
        credentialCache[uid] = (read, now, generation);
        // Usable before, not now (a Secret edited to an empty or refused URL): its status says so at the next pass.
        if (read is null && cached.Value is not null) statusChanged($"{c.Metadata.NamespaceProperty}/{c.Metadata.Name}");
        if (read is not null && Uri.TryCreate(read.Url, UriKind.Absolute, out var u)) authorities[uid] = $"{u.Scheme}://{u.Host}:{u.Port}";
        else authorities.TryRemove(uid, out _);
        return read;
    }

    async Task<Credentials?> ReadCredentialsAsync(NotificationChannel c, ChannelReach reach, CancellationToken ct)
    {
        var ns = c.Metadata.NamespaceProperty;
        async Task<V1Secret?> Read(string name) => await api.TryGetAsync<V1Secret>(ResourceType.Secrets, ns, name, ct).ConfigureAwait(false);
        static string? Value(V1Secret? s, string? key) =>
            s is null || key is null ? null : s.Data?.TryGetValue(key, out var b) == true ? Encoding.UTF8.GetString(b).Trim() : (s.StringData?.TryGetValue(key, out var t) == true ? t.Trim() : null);
        string? url = c.Spec.Url;
        string? routingKey = null;
        if (c.Spec.UrlSecretRef is { } u)
        {
            var value = Value(await Read(u.Name).ConfigureAwait(false), u.Key);
            if (string.IsNullOrEmpty(value)) return null;
            if (c.Spec.Type == "pagerduty")
            {
                routingKey = value;
                url ??= NotificationChannelRules.PagerDutyEventsUrl;
            }
            else
            {
                // A URL from a Secret passes the same egress rule as one in the spec, before anything is sent.
                if (egress.UrlProblem("spec.urlSecretRef", value, reach) is not null)
                {
                    logger.LogWarning("notification channel {Namespace}/{Name}: the URL in spec.urlSecretRef is not allowed; nothing sent", ns, c.Metadata.Name);
                    return null;
                }

                url = value;
            }
        }

        if (url is null) return null;
        string? current = null;
        string? previous = null;
        if (c.Spec.SigningSecretRef is { } s)
        {
            var secret = await Read(s.Name).ConfigureAwait(false);
            current = Value(secret, s.CurrentKey ?? "current");
            previous = Value(secret, s.PreviousKey ?? "previous");
            if (string.IsNullOrEmpty(current)) return null;
        }

        return new Credentials(url, routingKey, current, previous);
    }

    /// <summary>
    /// One attempt: (status code, null) on a 2xx, else (code or null, a sanitized reason: never the URL or a secret,
    /// and whether the host itself was unavailable rather than this endpoint refusing).
    /// </summary>
    async Task<(int? Code, string? Error, bool HostDown)> SendAsync(NotificationChannel c, HttpClient client, Credentials k, PendingDelivery d, CancellationToken ct)
    {
        var body = NotificationPayloads.Body(c.Spec.Type, d.Payload, d.EventId, k.RoutingKey);
        using var request = new HttpRequestMessage(HttpMethod.Post, k.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(NotificationPayloads.ContentType(c.Spec.Type));
        request.Headers.TryAddWithoutValidation("Idempotency-Key", d.EventId);
        request.Headers.TryAddWithoutValidation("X-ControlPlane-Event-Id", d.EventId);
        request.Headers.TryAddWithoutValidation("X-ControlPlane-Event-Type", d.EventType);
        request.Headers.UserAgent.ParseAdd("controlplane-operator/1");
        if (k.Current is not null)
        {
            request.Headers.TryAddWithoutValidation("X-ControlPlane-Signature", NotificationRouting.SignatureHeader(time.GetUtcNow().ToUnixTimeSeconds(), body, k.Current, k.Previous));
        }

        try
        {
            var response = await EgressHttp.SendAsync(client, request, egress.HttpOptions, ct).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            // Nothing a receiver answers is kept or followed (a 3xx is a failure: no redirects).
            return response.IsSuccess ? (code, null, false) : (code, $"HTTP {code}", code is 502 or 503 or 504);
        }
        catch (EgressRefusedException e)
        {
            // The host resolved to an address the policy refuses (DNS rebinding, a metadata address): host, port and address only.
            return (null, $"refused by the egress policy: {e.Reason}", false);
        }
        catch (TimeoutException)
        {
            return (null, $"no complete answer within {egress.HttpOptions.RequestTimeout.TotalSeconds:0.#} s", true);
        }
        catch (HttpRequestException e)
        {
            return (null, $"request failed: {e.HttpRequestError}", true);
        }
    }
}
