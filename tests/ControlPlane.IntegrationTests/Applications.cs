using ControlPlane.Api.V1Alpha1;
using ControlPlane.LocalEnv;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// The Application every DeploymentIntent names (issue 23): created by the admin in the intent's namespace
/// with the tests' usual scope (acq-001, bu-finance, online) and the rings asked for, approved as CAB
/// approves it, and waited for until that scope is in effect. Where no webhook runs (ClusterFixture), the
/// stamps it would write are written by hand; with the webhook, each approver acts as a token user.
/// </summary>
public static class Applications
{
    public static readonly ResourceType Type = ResourceType.For<Application>(true);
    static readonly ResourceType Approvals = ResourceType.For<Approval>(true);

    /// <summary>The tests' usual scope with these rings.</summary>
    public static ApplicationScope Scope(IEnumerable<string> rings) => new()
    {
        AcquisitionBoundaries = ["acq-001"], BusinessUnits = ["bu-finance"], SiteClasses = ["online"], Rings = rings.Distinct().Order(StringComparer.Ordinal).ToList(),
    };

    /// <summary>An approver: by name with no webhook in front (the approver stamp written by hand), or as a token user's client.</summary>
    public sealed record Approver(string Name, KubeApi? Api = null);

    /// <summary>
    /// Application <paramref name="name"/> in <paramref name="ns"/> with the usual scope and these rings (an existing one is
    /// widened to them), approved by <paramref name="approvers"/>, once its scope is in effect (the running operator decides).
    /// </summary>
    public static async Task<Application> ApprovedApplicationAsync(KubeApi admin, string ns, IEnumerable<string>? rings, IReadOnlyList<Approver> approvers, string name = "app")
    {
        var wanted = Scope(rings ?? []);
        var app = await admin.TryGetAsync<Application>(Type, ns, name, CancellationToken.None);
        if (app?.Status?.ApprovedScope is { } approved && ApplicationPlan.IsSubset(wanted, approved)) return app;
        if (app is null)
        {
            app = await admin.CreateAsync(Type, ns, new Application
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    // What the webhook stamps, where none runs (with one, the admin's own identity replaces it).
                    Annotations = approvers.Any(a => a.Api is null) ? new Dictionary<string, string> { [ApiGroup.CreatedByAnnotation] = "admin" } : null,
                },
                Spec = new ApplicationSpec { Owner = "alice@example.com", AllowedScope = wanted },
            }, CancellationToken.None);
        }
        else
        {
            wanted = Scope([.. wanted.Rings, .. app.Spec.AllowedScope.Rings]);
            app.Spec.AllowedScope = wanted;
            app = await admin.ReplaceAsync(Type, ns, name, app, CancellationToken.None);
        }

        foreach (var approver in approvers)
        {
            var approval = new Approval
            {
                Metadata = new V1ObjectMeta { Name = $"{name}-{Guid.NewGuid().ToString("N")[..6]}" },
                Spec = new ApprovalSpec { Target = new ApprovalTarget { Kind = Application.KubeKind, Name = name }, Decision = "approve", Comment = "scope reviewed" },
            };
            if (approver.Api is null)
            {
                approval.Metadata.Annotations = new Dictionary<string, string> { [ApiGroup.ApproverGroupsAnnotation] = ApprovalPolicy.FormatGroups([]) };
                approval.Spec.Approver = approver.Name;
                approval.Spec.TargetUID = app.Metadata.Uid;
                approval.Spec.TargetGeneration = app.Metadata.Generation;
            }

            await Net.WaitUntilAsync(async () =>
            {
                try
                {
                    await (approver.Api ?? admin).CreateAsync(Approvals, ns, approval, CancellationToken.None);
                    return true;
                }
                catch (KubeApiException e) when (e.StatusCode is System.Net.HttpStatusCode.Forbidden or System.Net.HttpStatusCode.UnprocessableEntity)
                {
                    return false; // the approver's RoleBinding is not there yet (RBAC, or the webhook's approver check)
                }
            }, TimeSpan.FromSeconds(60), $"{approver.Name} approves Application {ns}/{name}");
        }

        Application? last = null;
        try
        {
            await Net.WaitUntilAsync(async () =>
            {
                last = await admin.GetAsync<Application>(Type, ns, name, CancellationToken.None);
                return last.Status?.ApprovedScope is { } scope && ApplicationPlan.IsSubset(wanted, scope);
            }, TimeSpan.FromSeconds(90), $"Application {ns}/{name}: its scope in effect");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last status: {k8s.KubernetesJson.Serialize(last?.Status)}", e);
        }

        return last!;
    }
}
