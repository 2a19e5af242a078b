using System.Collections.Concurrent;
using Prometheus;

namespace ControlPlane.Runtime;

/// <summary>
/// Counts every API request by verb (get, list, watch, create, update, patch, delete) and status
/// code. Exposed as rest_client_requests_total (the client-go name), and readable in process, so
/// tests and benchmarks can assert "this reconcile wrote nothing" (lease renewals are counted apart).
/// </summary>
public sealed class RequestMetricsHandler(Counter requests) : DelegatingHandler
{
    readonly ConcurrentDictionary<string, long> byVerb = new();

    public static readonly IReadOnlySet<string> WriteVerbs = new HashSet<string> { "create", "update", "patch", "delete" };

    public long Count(string verb) => byVerb.TryGetValue(verb, out var n) ? n : 0;

    public long Writes => WriteVerbs.Sum(Count);

    public IReadOnlyDictionary<string, long> Snapshot() => new Dictionary<string, long>(byVerb);

    public static string VerbOf(HttpRequestMessage request)
    {
        var method = request.Method.Method;
        var query = request.RequestUri?.Query ?? "";
        var path = request.RequestUri?.AbsolutePath ?? "";
        return method switch
        {
            "GET" when query.Contains("watch=true", StringComparison.Ordinal) => "watch",
            "GET" => IsCollection(path) ? "list" : "get",
            // Access reviews (SubjectAccessReview) are questions, not writes: nothing is stored.
            "POST" when path.StartsWith("/apis/authorization.k8s.io/", StringComparison.Ordinal) => "review",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => method.ToLowerInvariant(),
        };
    }

    // /api/v1/namespaces is a collection, /api/v1/namespaces/x an item, /api/v1/namespaces/x/events a collection.
    static bool IsCollection(string path)
    {
        var segments = path.Trim('/').Split('/');
        var rest = segments[0] == "api" ? segments.Length - 2 : segments.Length - 3;
        return rest % 2 == 1;
    }

    /// <summary>Lease renewals, counted apart: leader election writes every few seconds by design.</summary>
    public long LeaseRequests => Interlocked.Read(ref leaseRequests);

    long leaseRequests;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var verb = VerbOf(request);
        if (request.RequestUri?.AbsolutePath.StartsWith("/apis/coordination.k8s.io/", StringComparison.Ordinal) == true) Interlocked.Increment(ref leaseRequests);
        else byVerb.AddOrUpdate(verb, 1, (_, n) => n + 1);
        try
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            requests.WithLabels(verb, ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
            return response;
        }
        catch (HttpRequestException)
        {
            requests.WithLabels(verb, "<error>").Inc();
            throw;
        }
    }
}
