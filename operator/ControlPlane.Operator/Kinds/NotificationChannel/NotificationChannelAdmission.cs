using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Runtime;
using static ControlPlane.Operator.Kinds.AdmissionChecks;

namespace ControlPlane.Operator.Kinds;

/// <summary>
/// NotificationChannels: in a workspace namespace (a workspace or, with spec.scope Tenant, a tenant channel) or
/// in the operator's namespace (platform). Every rule of <see cref="NotificationChannelRules"/>; the URL by the
/// egress rules for the channel's reach; a siem channel only on the platform; a Tenant channel created or
/// edited only by an owner of the tenant (Tenant spec.owners, which only platform administrators edit), so a
/// WorkspaceAdmin cannot listen to their neighbours' workspaces; a platform channel only by a platform administrator
/// (who may update Tenants, by a SubjectAccessReview). Secrets are named without a namespace: always
/// the channel's own.
/// </summary>
public sealed class NotificationChannelAdmission(AdmissionCaches caches, AdmissionSettings settings) : IAdmissionHandler
{
    readonly NotificationEgress egress = new(settings.Options);

    public async Task<List<string>> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only writes (a test-delivery nonce, finalizers) pass.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        var channel = As<NotificationChannel>(r.Object);
        var platform = r.Namespace == settings.Options.OperatorNamespace;
        var reach = platform ? ChannelReach.Platform : channel.Spec.Scope == "Tenant" ? ChannelReach.Tenant : ChannelReach.Workspace;
        var problems = new List<string>();
        if (!platform)
        {
            var tenant = caches.TenantOfNamespace(r.Namespace);
            if (tenant is null)
            {
                return [$"metadata.namespace: \"{r.Namespace}\" is neither a workspace nor the operator's namespace: a NotificationChannel belongs to a workspace, or to the platform"];
            }

            var wasTenant = r.OldObject?["spec"]?["scope"]?.GetValue<string>() == "Tenant";
            if ((reach == ChannelReach.Tenant || wasTenant) && !SelfService.IsOwner(tenant, r.UserInfo.Username, r.UserInfo.Groups ?? []))
            {
                problems.Add($"spec.scope: only an owner of tenant {tenant.Metadata.Name} (its spec.owners) may create or change a tenant-wide channel; {r.UserInfo.Username} is not one");
            }
        }
        else if (!settings.MayWriteGoverned(r.UserInfo) && !await caches.IsPlatformAdminAsync(r.UserInfo, ct).ConfigureAwait(false))
        {
            // RBAC should keep tenants out of the operator's namespace; a binding granted by mistake must not make anyone a platform listener.
            problems.Add($"metadata.namespace: a platform channel (in {r.Namespace}) hears every tenant: only a platform administrator may create or change one; {r.UserInfo.Username} is not one");
        }

        problems.AddRange(NotificationChannelRules.Problems(channel.Spec, reach, url => egress.UrlProblem("spec.url", url, reach)));
        return problems;
    }
}
