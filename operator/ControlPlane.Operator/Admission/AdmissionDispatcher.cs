using System.Net;
using ControlPlane.Runtime;

namespace ControlPlane.Operator.Admission;

/// <summary>
/// Sends each admission request to the handlers registered for its group and kind (the kind registry),
/// in order: the mutating handlers' patches and warnings add up, the validating handlers' problems
/// add up into one refusal that names the object. Identity comes only from the authenticated request
/// (userInfo); the handlers read the caches whose informers this holds, never Postgres.
/// </summary>
public sealed class AdmissionDispatcher(IReadOnlyDictionary<(string Group, string Kind), IReadOnlyList<IAdmissionHandler>> routes, IReadOnlyList<IInformer> informers)
{
    /// <summary>The caches the handlers read: run by the webhook service in every replica.</summary>
    public IReadOnlyList<IInformer> Informers => informers;

    public bool Synced => informers.All(i => i.HasSynced);

    IReadOnlyList<IAdmissionHandler> HandlersOf(AdmissionRequest r) => routes.TryGetValue((r.Kind.Group, r.Kind.Kind), out var handlers) ? handlers : [];

    public async Task<AdmissionResponse> MutateAsync(AdmissionRequest r, CancellationToken ct)
    {
        if (r.Object is null || r.Operation is not ("CREATE" or "UPDATE")) return AdmissionResponse.Allow(r.Uid);
        var patch = new AdmissionPatch();
        foreach (var handler in HandlersOf(r)) await handler.MutateAsync(r, patch, ct).ConfigureAwait(false);
        var response = AdmissionResponse.Patched(r.Uid, patch.Operations);
        if (patch.Warnings.Count > 0) response.Warnings = patch.Warnings;
        return response;
    }

    public async Task<AdmissionResponse> ValidateAsync(AdmissionRequest r, CancellationToken ct)
    {
        var problems = new List<string>();
        foreach (var handler in HandlersOf(r)) problems.AddRange(await handler.ValidateAsync(r, ct).ConfigureAwait(false));
        if (problems.Count == 0) return AdmissionResponse.Allow(r.Uid);
        var subject = $"{r.Kind.Kind} {(string.IsNullOrEmpty(r.Namespace) ? "" : r.Namespace + "/")}{r.Name}";
        return AdmissionResponse.Deny(r.Uid, $"{subject} refused: {string.Join("; ", problems)}", (int)HttpStatusCode.UnprocessableEntity, "Invalid");
    }
}
