using System.Net;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Runtime;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>What the attack tests of time-bound grants (AccessRequest, BreakGlass) share: a workspace of a fresh tenant, what the API server lets a token user do, a refusal.</summary>
public static class Grants
{
    static readonly ResourceType Reviews = new("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false);

    static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>The call is refused by the API server (never a 500), with this status when given.</summary>
    public static async Task<KubeApiException> Refused(Func<Task> action, HttpStatusCode? status = null)
    {
        var e = await Assert.ThrowsAsync<KubeApiException>(action);
        Assert.NotEqual(HttpStatusCode.InternalServerError, e.StatusCode);
        if (status is { } s) Assert.Equal(s, e.StatusCode);
        return e;
    }

    /// <summary>A new tenant (its spec edited by <paramref name="tenant"/>) with one Ready dev workspace whose members are given (kind, name, role).</summary>
    public static async Task<string> GrantWorkspaceAsync(this ClusterFixture cluster, string prefix, Action<TenantSpec>? tenant, params (string Kind, string Name, string Role)[] members)
    {
        var tenantName = Unique(prefix);
        await cluster.CreateTenantAsync(tenantName, edit: tenant);
        var name = Unique(tenantName);
        await cluster.Api.CreateAsync(ClusterFixture.Workspaces, null, new Workspace
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new WorkspaceSpec
            {
                Tenant = tenantName, Environment = "dev", Database = new WorkspaceDatabase { Enabled = false },
                Members = [.. members.Select(m => new WorkspaceMember { Kind = m.Kind, Name = m.Name, Role = m.Role })],
            },
        }, CancellationToken.None);
        await cluster.WaitForWorkspaceAsync(name, ClusterFixture.IsReady, "Ready");
        return name;
    }

    /// <summary>Whether the API server lets the test user (by its local part) do this, as a SubjectAccessReview answers.</summary>
    public static async Task<bool> AllowedAsync(this ClusterFixture cluster, string user, string verb, string group, string resource, string ns)
    {
        var u = cluster.Plane.Users[user];
        return (await cluster.Api.CreateAsync(Reviews, null, new V1SubjectAccessReview
        {
            Spec = new V1SubjectAccessReviewSpec
            {
                User = u.Name, Groups = [.. u.Groups],
                ResourceAttributes = new V1ResourceAttributes { Verb = verb, Group = group, Resource = resource, NamespaceProperty = ns },
            },
        }, CancellationToken.None)).Status.Allowed;
    }

    public static Task WaitForAccessAsync(this ClusterFixture cluster, string user, string verb, string group, string resource, string ns, bool allowed = true) =>
        Net.WaitUntilAsync(async () => await cluster.AllowedAsync(user, verb, group, resource, ns) == allowed, TimeSpan.FromSeconds(90),
            $"{user} {(allowed ? "may" : "may not")} {verb} {resource} in {ns}");

    /// <summary>
    /// The object, read until <paramref name="condition"/> holds (generous deadline: the CI machine is loaded); the
    /// timeout names what was awaited and the last status seen.
    /// </summary>
    public static async Task<T> WaitForObjectAsync<T>(this ClusterFixture cluster, ResourceType type, string ns, string name, Func<T, bool> condition, string what, TimeSpan? timeout = null)
        where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        T? last = null;
        try
        {
            await Net.WaitUntilAsync(async () => condition(last = await cluster.Api.GetAsync<T>(type, ns, name, CancellationToken.None)),
                timeout ?? TimeSpan.FromSeconds(90), $"{type.Kind} {name}: {what}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{type.Kind} {name}: {what}; last: {k8s.KubernetesJson.Serialize(last)}");
        }

        return last!;
    }

    /// <summary>
    /// Until disposed, the system of record refuses one audit row (kind, object, action) as a server out of connections
    /// would (53300: transient); every other row is written.
    /// </summary>
    public static async Task<IAsyncDisposable> RefuseAuditRowAsync(this ClusterFixture cluster, string kind, string objectName, string action)
    {
        var fn = "refuse_" + Guid.NewGuid().ToString("N")[..10];
        var ds = cluster.Postgres.DataSourceFor();
        await using (var cmd = ds.CreateCommand($"""
            CREATE FUNCTION public.{fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.kind = '{kind}' AND NEW.object_name = '{objectName}' AND NEW.action = '{action}' THEN RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER {fn} BEFORE INSERT ON controlplane.audit_events FOR EACH ROW EXECUTE FUNCTION public.{fn}();
            """))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        return new Refusal(ds, fn);
    }

    sealed class Refusal(Npgsql.NpgsqlDataSource ds, string fn) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await using (var drop = ds.CreateCommand($"DROP TRIGGER {fn} ON controlplane.audit_events"))
            {
                await drop.ExecuteNonQueryAsync();
            }

            await ds.DisposeAsync();
        }
    }
}
