using System.Net;
using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Api;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Cronos;
using k8s;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// Admission decisions for every ControlPlane kind. Identity comes only from the authenticated
/// request (userInfo); reads come from the caches; every refusal names the field and the rule.
/// </summary>
public sealed partial class AdmissionHandler(AdmissionCaches caches, AdmissionSettings settings)
{
    public const string AllowDeleteAnnotation = ApiGroup.AllowDeleteAnnotation;
    public const string ApproverGroupsAnnotation = ApiGroup.ApproverGroupsAnnotation;

    /// <summary>The kinds an Approval can name: whoever changes their spec is an author of that generation.</summary>
    public static readonly IReadOnlyList<string> ApprovableKinds = ["Exposure", "DeploymentIntent", "Restore", "Rollout"];

    static string Escape(string segment) => segment.Replace("~", "~0").Replace("/", "~1");

    static T As<T>(JsonObject node) => KubernetesJson.Deserialize<T>(node.ToJsonString());

    // ---- mutating -------------------------------------------------------------------------------

    public async Task<AdmissionResponse> MutateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Object is null || r.Operation is not ("CREATE" or "UPDATE")) return AdmissionResponse.Allow(r.Uid);
        var ops = new JsonArray();
        var annotations = r.Object["metadata"]?["annotations"] as JsonObject;
        void SetAnnotation(string key, string? value)
        {
            if (value is null)
            {
                if (annotations?.ContainsKey(key) != true) return;
                ops.Add(new JsonObject { ["op"] = "remove", ["path"] = "/metadata/annotations/" + Escape(key) });
                annotations.Remove(key);
            }
            else if (annotations is null)
            {
                ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/metadata/annotations", ["value"] = new JsonObject { [key] = value } });
                annotations = new JsonObject { [key] = value };
            }
            else
            {
                ops.Add(new JsonObject { ["op"] = annotations.ContainsKey(key) ? "replace" : "add", ["path"] = "/metadata/annotations/" + Escape(key), ["value"] = value });
                annotations[key] = value;
            }
        }

        // Whatever the requester wrote in a stamped annotation is overwritten on create and restored on
        // update: only the API server knows who asked. Not silently: the requester gets a warning.
        var warnings = new List<string>();
        foreach (var (key, value) in Stamps(r, await TargetContentHashAsync(r, ct).ConfigureAwait(false)).Concat(OperatorStamps(r)))
        {
            var supplied = AnnotationOf(r.Object, key);
            if (supplied == value) continue;
            if (r.Operation == "CREATE" ? supplied is not null : supplied != AnnotationOf(r.OldObject, key))
            {
                warnings.Add($"metadata.annotations[{key}]: set only by the admission webhook; the value supplied was {(r.Operation == "CREATE" ? "replaced" : "restored")}");
            }

            SetAnnotation(key, value);
        }

        if (r.Operation == "CREATE" && r.Kind.Kind == Approval.KubeKind) await MutateApprovalAsync(r, ops, warnings, ct).ConfigureAwait(false);
        if (r.Operation == "CREATE" && r.Kind.Kind == Workspace.KubeKind) await MutateWorkspaceAsync(r, ops, ct).ConfigureAwait(false);
        var response = AdmissionResponse.Patched(r.Uid, ops);
        if (warnings.Count > 0) response.Warnings = warnings;
        return response;
    }

    async Task MutateWorkspaceAsync(AdmissionRequest r, JsonArray ops, CancellationToken ct)
    {
        var spec = r.Object!["spec"] as JsonObject;
        var tenant = spec?["tenant"]?.GetValue<string>() is { } t ? await caches.TenantAsync(t, ct).ConfigureAwait(false) : null;
        if (spec is null || tenant is null) return;
        if (!spec.ContainsKey("region")) ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/region", ["value"] = tenant.Spec.Region });
        if (!spec.ContainsKey("dataMode")) ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/dataMode", ["value"] = tenant.Spec.DataMode });
    }

    // ---- validating -----------------------------------------------------------------------------

    public async Task<AdmissionResponse> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        var problems = (r.Kind.Group == ApiGroup.Group ? r.Kind.Kind : r.Kind.Group + "/" + r.Kind.Kind) switch
        {
            "Tenant" => [.. ValidateTenant(r), .. TenantRegion(r), .. TenantDomains(r), .. TenantPrefix(r)],
            "Workspace" => [.. await SelfServiceAsync(r, ct).ConfigureAwait(false), .. WorkspaceNamespace(r), .. await ServiceAccountMembersAsync(r, ct).ConfigureAwait(false), .. WorkspaceExtensions(r), .. WorkspaceScopeLabels(r), .. await ValidateWorkspaceAsync(r, ct).ConfigureAwait(false)],
            "networking.k8s.io/Ingress" or "networking.k8s.io/NetworkPolicy" or "/ResourceQuota" or "/LimitRange" => GovernedKind(r),
            "Approval" => await ValidateApprovalAsync(r, ct).ConfigureAwait(false),
            "Exposure" => await ValidateExposureAsync(r, ct).ConfigureAwait(false),
            "WorkspaceNetworkPolicy" => ValidateNetworkPolicy(r),
            "DeploymentIntent" => await ValidateDeploymentIntentAsync(r, ct).ConfigureAwait(false),
            "Rollout" => [.. ValidateRollout(r), .. RingsInTenant(r), .. await RequesterMayPatchRingsAsync(r, ct).ConfigureAwait(false)],
            "BackupPlan" => [.. ValidateBackupPlan(r), .. BackupDatabaseOfWorkspace(r)],
            "Backup" => [.. ValidateBackup(r), .. InWorkspace(r)],
            "Restore" => [.. ValidateRestore(r), .. RestoreDatabaseOfWorkspace(r)],
            _ => [],
        };
        // Stamps exist on our own kinds only (the mutating webhook sees nothing else).
        if (r.Operation is "CREATE" or "UPDATE" && r.Kind.Group == ApiGroup.Group) problems = [.. ValidateStamps(r, await TargetContentHashAsync(r, ct).ConfigureAwait(false)), .. ValidateOperatorStamps(r), .. problems];
        if (problems.Count == 0) return AdmissionResponse.Allow(r.Uid);
        var subject = $"{r.Kind.Kind} {(string.IsNullOrEmpty(r.Namespace) ? "" : r.Namespace + "/")}{r.Name}";
        return AdmissionResponse.Deny(r.Uid, $"{subject} refused: {string.Join("; ", problems)}", (int)HttpStatusCode.UnprocessableEntity, "Invalid");
    }

    static List<string> Immutable(JsonObject? before, JsonObject? after, params string[] fields)
    {
        var problems = new List<string>();
        foreach (var field in fields)
        {
            var old = before?["spec"]?[field];
            var now = after?["spec"]?[field];
            if (!JsonNode.DeepEquals(old, now)) problems.Add($"spec.{field}: field is immutable (was {old?.ToJsonString() ?? "unset"}, now {now?.ToJsonString() ?? "unset"})");
        }

        return problems;
    }

    static bool DeletionAllowedByAnnotation(JsonObject? obj) =>
        obj?["metadata"]?["annotations"]?[AllowDeleteAnnotation]?.GetValue<string>() == "true";

    List<string> ValidateTenant(AdmissionRequest r)
    {
        switch (r.Operation)
        {
            case "CREATE":
                return TenantRules(r);
            case "UPDATE":
                return [.. Immutable(r.OldObject, r.Object, "region"), .. TenantRules(r)];
            case "DELETE":
                var name = r.Name ?? "";
                var count = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, name).Count();
                return count > 0 && !DeletionAllowedByAnnotation(r.OldObject)
                    ? [$"tenant {name} still has {count} workspace(s): delete them first, or set the annotation {AllowDeleteAnnotation}: \"true\""]
                    : [];
            default:
                return [];
        }
    }

    async Task<List<string>> ValidateWorkspaceAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Operation == "DELETE")
        {
            // The recorded environment too: a spec lowered past the webhook (while it was down) still guards.
            var env = WorkspaceEnvironments.Strictest(r.OldObject?["spec"]?["environment"]?.GetValue<string>(), r.OldObject?["status"]?["environment"]?.GetValue<string>());
            return env == WorkspaceEnvironments.Prod && !DeletionAllowedByAnnotation(r.OldObject)
                ? [$"workspace {r.Name} has spec.environment: prod and cannot be deleted without the annotation {AllowDeleteAnnotation}: \"true\""]
                : [];
        }

        if (r.Operation == "UPDATE")
        {
            var problems = Immutable(r.OldObject, r.Object, "tenant");
            problems.AddRange(EnvironmentLowered(r));
            // region: immutable once set (the mutating webhook sets it from the tenant at creation).
            if (r.OldObject?["spec"]?["region"] is not null) problems.AddRange(Immutable(r.OldObject, r.Object, "region"));
            problems.AddRange(WorkspaceRules(r));
            return problems;
        }

        if (r.Operation != "CREATE" || r.Object is null) return [];
        var rules = WorkspaceRules(r);
        var ws = As<Workspace>(r.Object);
        var tenant = await caches.TenantAsync(ws.Spec.Tenant, ct).ConfigureAwait(false);
        if (tenant is null) return [.. rules, $"spec.tenant: tenant \"{ws.Spec.Tenant}\" does not exist"];
        var result = rules;
        if (tenant.Metadata.DeletionTimestamp is not null) result.Add($"spec.tenant: tenant {tenant.Metadata.Name} is being deleted and gets no new workspace");
        var region = WorkspaceResources.EffectiveRegion(ws, tenant);
        if (region != tenant.Spec.Region) result.Add($"spec.region: \"{region}\" must equal tenant {tenant.Metadata.Name}'s region \"{tenant.Spec.Region}\"");
        if (tenant.Spec.Suspended) result.Add($"spec.tenant: tenant {tenant.Metadata.Name} is suspended and gets no new workspace");
        var siblings = caches.Workspaces.ByIndex(WorkspaceResources.TenantIndex, tenant.Metadata.Name).ToList();
        var grant = Quota.AllocateQuota(ws, tenant, siblings);
        // A count, not the grant order: a newcomer created in the same second as a workspace not yet
        // admitted would otherwise pass by sorting first by name.
        var others = siblings.Count(w => w.Metadata.Name != ws.Metadata.Name);
        if (grant.OverWorkspaceLimit || others >= tenant.Spec.Quota?.MaxWorkspaces) result.Add($"spec.tenant: tenant {tenant.Metadata.Name} allows {tenant.Spec.Quota!.MaxWorkspaces} workspace(s) (spec.quota.maxWorkspaces) and has them all");
        result.AddRange(grant.Shortfalls.Select(s => s + " (does not fit what remains of the tenant's quota)"));
        return result;
    }

    /// <summary>The raw text of a quota field as the user wrote it, for messages (a parsed quantity may not print).</summary>
    static Func<string, string?> RawQuota(JsonObject? obj) => resource => obj?["spec"]?["quota"]?[resource] switch
    {
        JsonValue v when v.TryGetValue<string>(out var text) => text,
        { } node => node.ToJsonString(),
        null => null,
    };

    /// <summary>
    /// Names, members, quantities and provider keys (<see cref="SpecRules"/>). On update only when
    /// the spec changed, so metadata-only writes (finalizers, annotations) always pass, even for an
    /// object stored before these rules; the name only on create (it cannot change).
    /// </summary>
    static List<string> WorkspaceRules(AdmissionRequest r)
    {
        if (r.Object is null || (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"]))) return [];
        var ws = As<Workspace>(r.Object);
        if (string.IsNullOrEmpty(ws.Metadata.Name)) ws.Metadata.Name = r.Name;
        var problems = SpecRules.Workspace(ws, RawQuota(r.Object));
        if (r.Operation != "CREATE" || string.IsNullOrEmpty(ws.Metadata.Name)) problems.RemoveAll(p => p.StartsWith("metadata.name:", StringComparison.Ordinal));
        return problems;
    }

    static List<string> TenantRules(AdmissionRequest r)
    {
        if (r.Object is null || (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"]))) return [];
        var tenant = As<Tenant>(r.Object);
        if (string.IsNullOrEmpty(tenant.Metadata.Name)) tenant.Metadata.Name = r.Name;
        var problems = SpecRules.Tenant(tenant, RawQuota(r.Object));
        if (r.Operation != "CREATE" || string.IsNullOrEmpty(tenant.Metadata.Name)) problems.RemoveAll(p => p.StartsWith("metadata.name:", StringComparison.Ordinal));
        return problems;
    }

    /// <summary>Delegated domains: well-formed, outside the platform's default domain, and overlapping no other tenant's (delegation is exclusive).</summary>
    List<string> TenantDomains(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var tenant = As<Tenant>(r.Object);
        var name = string.IsNullOrEmpty(tenant.Metadata.Name) ? r.Name ?? "" : tenant.Metadata.Name;
        var domains = tenant.Spec.Exposure?.AllowedDomains;
        if (r.Operation == "UPDATE" && r.OldObject is not null && (As<Tenant>(r.OldObject).Spec.Exposure?.AllowedDomains ?? []).SequenceEqual(domains ?? [])) return [];
        return ExposureHosts.DelegationProblems(name, domains, ExposureHosts.DelegationsOf(caches.Tenants.List()), settings.Options.Exposure).ToList();
    }

    Tenant? TenantOfNamespace(string? ns) =>
        ns is null ? null : caches.Workspaces.Get(ns) is { } ws ? caches.Tenants.Get(ws.Spec.Tenant) : null;

    /// <summary>
    /// The same bounds the reconciler renders within (<see cref="WorkspaceNetworkPolicyResources.OutOfBounds"/>):
    /// CIDRs inside the tenant's allowlists, workspace peers of the same tenant, no rule without peers.
    /// </summary>
    List<string> ValidateNetworkPolicy(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        // Metadata-only updates always pass: a policy degraded by a shrunk allowlist can still be labelled or annotated.
        if (r.Operation == "UPDATE" && JsonNode.DeepEquals(r.OldObject?["spec"], r.Object["spec"])) return [];
        var policy = As<WorkspaceNetworkPolicy>(r.Object);
        var tenant = TenantOfNamespace(r.Namespace);
        if (tenant is null) return [$"metadata.namespace: \"{r.Namespace}\" is not a workspace"];
        var problems = new List<string>();
        if (WorkspaceNetworkPolicyResources.NameProblem(r.Name ?? policy.Metadata.Name) is { } name) problems.Add(name);
        problems.AddRange(WorkspaceNetworkPolicyResources.OutOfBounds(policy.Spec, TenantNetworkBounds.Of(tenant, ws => InTenant(ws, tenant.Metadata.Name))));
        problems.AddRange(WorkspaceNetworkPolicyResources.MalformedSelectors(policy.Spec));
        return problems;
    }

    static List<string> ValidateRollout(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var problems = SpecRules.Rollout(As<Rollout>(r.Object).Spec);
        // The change rolled out is fixed once started: a new version is a new Rollout (its previous
        // images and ring history belong to this one).
        if (r.Operation == "UPDATE") problems.AddRange(Immutable(r.OldObject, r.Object, "target"));
        return problems;
    }

    List<string> ValidateBackupPlan(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var plan = As<BackupPlan>(r.Object);
        var problems = new List<string>();
        try
        {
            CronExpression.Parse(plan.Spec.Schedule, CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            problems.Add($"spec.schedule: \"{plan.Spec.Schedule}\" is not a five-field cron expression ({e.Message})");
        }

        if (r.Operation == "CREATE" && BackupRules.PlanNameProblem(plan.Metadata.Name ?? r.Name) is { } name) problems.Add(name);
        if (plan.Spec.Retention?.MaxAge is { } maxAge && !Durations.TryParse(maxAge, out _)) problems.Add($"spec.retention.maxAge: \"{maxAge}\" is not a duration (e.g. 30d)");
        if (BackupRules.TenantStorageRefusal(plan, settings.Options.Backup) is { } refusal) problems.Add(refusal);
        return problems;
    }

    static List<string> ValidateBackup(AdmissionRequest r) =>
        r.Operation == "UPDATE" && r.Object is not null ? Immutable(r.OldObject, r.Object, "backupPlan") : [];

    static List<string> ValidateRestore(AdmissionRequest r)
    {
        if (r.Operation is not ("CREATE" or "UPDATE") || r.Object is null) return [];
        var restore = As<Restore>(r.Object);
        var problems = new List<string>();
        if ((restore.Spec.TargetTime is null) == (restore.Spec.Backup is null)) problems.Add("spec: set exactly one of targetTime or backup");
        if ((restore.Spec.Into.Database is null) == (restore.Spec.Into.InPlace != true)) problems.Add("spec.into: set exactly one of database or inPlace: true");
        var phase = r.OldObject?["status"]?["phase"]?.GetValue<string>();
        if (r.Operation == "UPDATE" && phase is "Running" or "Completed" or "Failed")
        {
            problems.AddRange(Immutable(r.OldObject, r.Object, "backupPlan", "into", "targetTime", "backup").Select(p => p + $" once the restore is {phase}"));
        }

        return problems;
    }
}
