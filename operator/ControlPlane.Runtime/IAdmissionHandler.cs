using System.Text.Json.Nodes;

namespace ControlPlane.Runtime;

/// <summary>
/// One kind's admission: what the mutating webhook adds and what the validating webhook refuses.
/// The server dispatches each request to the handlers registered for its group and kind, in order.
/// </summary>
public interface IAdmissionHandler
{
    /// <summary>Adds JSON Patch operations and warnings for a CREATE or UPDATE; most kinds add none.</summary>
    Task MutateAsync(AdmissionRequest request, AdmissionPatch patch, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Every problem with the request, each naming the field and the rule; none: allowed.</summary>
    Task<List<string>> ValidateAsync(AdmissionRequest request, CancellationToken ct);
}

/// <summary>What the mutating handlers of one request add up to: JSON Patch operations, in order, and warnings for the requester.</summary>
public sealed class AdmissionPatch
{
    public JsonArray Operations { get; } = [];
    public List<string> Warnings { get; } = [];
}
