using System.Text.Json.Nodes;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;

namespace ControlPlane.Operator.Kinds;

/// <summary>The workspace's row in the system of record, written only when what it records changed.</summary>
public sealed partial class WorkspaceReconciler
{
    async Task<WorkspaceRecord> SyncRecordAsync(Workspace ws, Tenant tenant, string region, string environment, WorkspaceRecord? existing, string state, CancellationToken ct)
    {
        var dataMode = WorkspaceResources.EffectiveDataMode(ws, tenant);
        var members = new JsonArray((ws.Spec.Members ?? []).Select(m => (JsonNode)new JsonObject { ["kind"] = m.Kind, ["name"] = m.Name, ["role"] = m.Role }).ToArray());
        var membersJson = SystemDatabase.Canonical(members);
        var specHash = SystemDatabase.Sha256Hex(SystemDatabase.Canonical(System.Text.Json.Nodes.JsonNode.Parse(k8s.KubernetesJson.Serialize(ws.Spec))));
        // Written by the database allocation only (recorded once, never derived again from the name).
        var dbName = existing?.DeletedAt is null ? existing?.DatabaseName : null;
        var keepState = existing is not null && existing.DeletedAt is null && existing.ProvisioningState == "ready" && state == "creating";
        var desired = new WorkspaceRecord(existing?.Id ?? Guid.NewGuid(), ws.Metadata.Name, tenant.Metadata.Name, region, environment, dataMode,
            keepState ? "ready" : state, specHash, membersJson, dbName, null);
        var unchanged = existing is not null && existing.DeletedAt is null && existing.SpecHash == desired.SpecHash
                        && existing.ProvisioningState == desired.ProvisioningState && existing.DataMode == desired.DataMode && existing.Environment == desired.Environment
                        && SystemDatabase.Canonical(JsonNode.Parse(existing.MembersJson)) == membersJson;
        if (unchanged) return existing!;

        var created = existing is null || existing.DeletedAt is not null;
        var details = new JsonObject
        {
            ["generation"] = ws.Metadata.Generation,
            ["specHash"] = specHash,
            ["state"] = desired.ProvisioningState,
            ["members"] = ws.Spec.Members?.Count ?? 0,
            ["region"] = region,
            ["dataMode"] = dataMode,
        };
        var action = created ? "workspace.created" : existing!.ProvisioningState != desired.ProvisioningState ? $"workspace.{desired.ProvisioningState}" : "workspace.updated";
        if (!created && existing!.DataMode != dataMode)
        {
            details["dataModeChanged"] = new JsonObject { ["from"] = existing.DataMode, ["to"] = dataMode };
            action = "workspace.dataModeChanged";
        }

        if (!created && existing!.Environment != environment)
        {
            details["environmentChanged"] = new JsonObject { ["from"] = existing.Environment, ["to"] = environment };
            if (action == "workspace.updated") action = "workspace.environmentChanged";
        }

        var actor = CreatedBy(ws);
        if (!created && existing!.MembersJson is var oldMembers && SystemDatabase.Canonical(JsonNode.Parse(oldMembers)) != membersJson)
        {
            // Who and what: self-service membership changes are audited like an administrator's.
            var (added, removed) = SelfService.MemberDiff(k8s.KubernetesJson.Deserialize<List<WorkspaceMember>>(oldMembers), ws.Spec.Members);
            details["membersChanged"] = true;
            details["membersAdded"] = new JsonArray(added.Select(m => (JsonNode)JsonValue.Create(m)).ToArray());
            details["membersRemoved"] = new JsonArray(removed.Select(m => (JsonNode)JsonValue.Create(m)).ToArray());
            if (action == "workspace.updated") action = "workspace.membersChanged";
            actor = LastSpecEditor(ws) ?? actor;
        }

        await database.UpsertWorkspaceAsync(desired, Guid.TryParse(tenant.Status?.RecordId, out var tid) ? tid : null, ws.Metadata.Uid ?? "",
            new AuditEntry(actor, action, "Workspace", ws.Metadata.Name, tenant.Metadata.Name, details), ct).ConfigureAwait(false);
        return desired;
    }

    /// <summary>A platform administrator set controlplane.io/allow-delete: "true" (owners cannot): the one approved path to delete a prod workspace or lower its environment.</summary>
    static bool DeletionGuardLifted(Workspace ws) =>
        ws.Metadata.Annotations?.TryGetValue(ApiGroup.AllowDeleteAnnotation, out var value) == true && value == "true";

    /// <summary>Who last changed the spec, as the admission webhook stamped it (absent before the first spec change).</summary>
    static string? LastSpecEditor(Workspace ws) =>
        ws.Metadata.Annotations?.TryGetValue(ApiGroup.LastSpecEditorAnnotation, out var who) == true && !string.IsNullOrEmpty(who) ? who : null;
}
