using System.Text.Json.Nodes;
using System.Text;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using Npgsql;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>Bring-your-own provider keys: validated, sealed, rotated and retired.</summary>
public sealed partial class WorkspaceReconciler
{
    /// <summary>
    /// Reads each referenced Secret when it changed (its metadata is cached), validates the key's
    /// format, and stores it sealed when its fingerprint differs from the active one. The value never
    /// reaches status, Events, logs or exceptions: only the provider and a fingerprint do.
    /// </summary>
    async Task<bool> ReconcileProviderKeysAsync(Workspace ws, Tenant tenant, WorkspaceStatus status, ConditionSet conditions, CancellationToken ct)
    {
        var specKeys = ws.Spec.ProviderKeys ?? [];
        List<StoredProviderKey> stored;
        try
        {
            stored = specKeys.Count == 0 && (ws.Status?.ProviderKeys?.Count ?? 0) == 0
                ? []
                : await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            conditions.Set(WorkspaceConditions.ProviderKeysReady, false, WorkspaceReasons.DatabaseUnavailable, e.Message);
            return false;
        }

        // A provider listed twice is ambiguous (which key is active?): neither entry is applied, and
        // nothing is written for it, until one is removed.
        var problems = SpecRules.ProviderKeys(specKeys).ToList();
        var duplicated = SpecRules.DuplicateProviders(specKeys).Select(d => specKeys[d.Index].Provider).ToHashSet(StringComparer.Ordinal);
        var grace = options.KeyRotationGrace;
        for (var i = 0; i < specKeys.Count; i++)
        {
            var key = specKeys[i];
            if (duplicated.Contains(key.Provider)) continue;
            var meta = caches.AllSecretsMetadata.Get($"{ws.Metadata.Name}/{key.SecretRef.Name}");
            if (meta is null)
            {
                problems.Add($"spec.providerKeys[{i}].secretRef: Secret {key.SecretRef.Name} not found in namespace {ws.Metadata.Name}");
                continue;
            }

            var memo = $"{ws.Metadata.Name}/{key.Provider}";
            var version = $"{meta.Metadata.ResourceVersion}/{key.SecretRef.Key}/{key.Endpoint}";
            var active = stored.FirstOrDefault(s => s.Provider == key.Provider && s.RetiredAt is null);
            if (active is not null && processedKeySecrets.TryGetValue(memo, out var seen) && seen == version) continue;

            var secret = await api.TryGetAsync<V1Secret>(Secrets, ws.Metadata.Name, key.SecretRef.Name, ct).ConfigureAwait(false);
            if (secret?.Data?.TryGetValue(key.SecretRef.Key, out var raw) != true)
            {
                problems.Add($"spec.providerKeys[{i}].secretRef.key: Secret {key.SecretRef.Name} has no key \"{key.SecretRef.Key}\"");
                continue;
            }

            var value = Encoding.UTF8.GetString(raw!).Trim();
            if (ProviderKeys.Validate(i, key.Provider, key.Endpoint, value) is { } invalid)
            {
                problems.Add(invalid);
                continue;
            }

            if (vault is null)
            {
                problems.Add("ControlPlane:KeyEncryptionKey is not configured: provider keys cannot be stored");
                continue;
            }

            var fingerprint = KeyVault.Fingerprint(value);
            if (active?.Fingerprint != fingerprint)
            {
                try
                {
                    await database.StoreProviderKeyAsync(ws.Metadata.Name, key.Provider, fingerprint, vault.Seal(value), grace,
                        new AuditEntry(Actor, active is null ? "providerKey.stored" : "providerKey.rotated", "Workspace", ws.Metadata.Name, tenant.Metadata.Name,
                            new JsonObject { ["provider"] = key.Provider, ["fingerprint"] = fingerprint, ["previousFingerprint"] = active?.Fingerprint }), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    conditions.Set(WorkspaceConditions.ProviderKeysReady, false, WorkspaceReasons.DatabaseUnavailable, e.Message);
                    return false;
                }

                await events.NormalAsync(ws, active is null ? WorkspaceReasons.ProviderKeyStored : WorkspaceReasons.ProviderKeyRotated,
                    $"{key.Provider} key {fingerprint} is active{(active is null ? "" : $"; {active.Fingerprint} stays valid for {grace}")}", ct).ConfigureAwait(false);
                stored = await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
            }

            processedKeySecrets[memo] = version;
        }

        // Providers dropped from the spec: their keys retire (and are purged after the grace period).
        foreach (var orphan in stored.Where(s => s.RetiredAt is null && specKeys.All(k => k.Provider != s.Provider)).ToList())
        {
            await database.RetireProviderKeyAsync(ws.Metadata.Name, orphan.Provider, grace,
                new AuditEntry(Actor, "providerKey.retired", "Workspace", ws.Metadata.Name, tenant.Metadata.Name,
                    new JsonObject { ["provider"] = orphan.Provider, ["fingerprint"] = orphan.Fingerprint }), ct).ConfigureAwait(false);
            stored = await database.GetProviderKeysAsync(ws.Metadata.Name, ct).ConfigureAwait(false);
        }

        status.ProviderKeys = specKeys.DistinctBy(k => k.Provider).Select(k => stored.FirstOrDefault(s => s.Provider == k.Provider && s.RetiredAt is null) is { } s
                ? new ProviderKeyStatus
                {
                    Provider = k.Provider,
                    Fingerprint = s.Fingerprint,
                    ValidatedAt = s.ValidatedAt,
                    RotatedAt = stored.Any(o => o.Provider == k.Provider && o.RetiredAt is not null) ? s.CreatedAt : null,
                }
                : null).OfType<ProviderKeyStatus>().ToList();
        if (status.ProviderKeys.Count == 0) status.ProviderKeys = null;

        if (problems.Count > 0)
        {
            var message = string.Join("; ", problems);
            var previous = ws.Status?.Conditions?.FirstOrDefault(c => c.Type == WorkspaceConditions.ProviderKeysReady)?.Message;
            conditions.Set(WorkspaceConditions.ProviderKeysReady, false, WorkspaceReasons.InvalidProviderKey, message);
            if (previous != message) await events.WarningAsync(ws, WorkspaceReasons.InvalidProviderKey, message, ct).ConfigureAwait(false);
            return false;
        }

        if (specKeys.Count > 0 || ws.Status?.Conditions?.Any(c => c.Type == WorkspaceConditions.ProviderKeysReady) == true)
        {
            conditions.Set(WorkspaceConditions.ProviderKeysReady, true, WorkspaceReasons.Valid, $"{specKeys.Count} provider key(s) validated and stored encrypted.");
        }

        return true;
    }
}
