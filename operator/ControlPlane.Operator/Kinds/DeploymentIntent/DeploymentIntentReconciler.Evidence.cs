using System.Text.Json.Nodes;
using Amazon.Runtime;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Adapters;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using ControlPlane.Runtime;
using k8s.Models;

namespace ControlPlane.Operator.Kinds;

/// <summary>What a ConfigMap key or an allowed URL gave: its bytes, or why not (missing: wait for it; refused: never).</summary>
sealed record ReferencedBytes(byte[]? Bytes, string Where, string? Missing = null, string? Refused = null);

/// <summary>Why no ring may start yet for want of stored evidence (a condition reason and message); Deny when the pack can never pass.</summary>
sealed record EvidenceHold(string Reason, string Message, bool Deny = false);

/// <summary>
/// Issue 23, items 4 and 5: findings come from the scanner's report (read once per generation, kept
/// in status.findings), and the evidence pack is checked and kept, write-once, in the region's
/// evidence storage before the first ring starts.
/// </summary>
public sealed partial class DeploymentIntentReconciler
{
    static bool BeforeDecision(IntentPhase? phase) => phase is null or IntentPhase.Pending or IntentPhase.RiskAssessed or IntentPhase.ScopeValidated;

    /// <summary>
    /// Reads the scan report of this generation (once: status.findingsGeneration says it was read, so
    /// a resync fetches nothing), checks its SHA-256, parses it, checks it is about this artifact, and
    /// records the union of its findings, the author's and the signature check's in status.findings.
    /// False when the intent must not go on: denied (a tampered, unparsable or foreign report, or none
    /// where one is required) or waiting for the report to appear (<see cref="IntentPass.Recheck"/>).
    /// </summary>
    async Task<bool> ScanReportAsync(IntentPass pass, CancellationToken ct)
    {
        var intent = pass.Intent;
        var spec = intent.Spec;
        var status = pass.Status;
        if (status.FindingsGeneration == intent.Metadata.Generation) return true;
        // Assessed before findings were recorded (an older operator): its decision stands, nothing is fetched.
        if (!BeforeDecision(status.Phase)) return true;

        var found = new List<Finding>(Findings.FromSpec(spec));
        if (spec.Artifact.ScanReport is { } report)
        {
            var read = await ReadReferencedAsync("spec.artifact.scanReport", report.ConfigMap, report.Key, report.Url, intent.Metadata.NamespaceProperty, ct).ConfigureAwait(false);
            if (read.Missing is { } missing)
            {
                var message = $"{missing}: findings come from the scan report; the intent is assessed once it is there";
                pass.Conditions.Set(IntentConditions.Ready, false, IntentReasons.ScanReportMissing, message)
                    .Set(IntentConditions.Progressing, false, IntentReasons.ScanReportMissing, message);
                pass.Recheck = PollInterval; // ConfigMaps and URLs are not watched
                return false;
            }

            if (read.Refused is { } refused) return DenyArtifact(pass, IntentReasons.ScanReportInvalid, refused, tampered: false);
            var actual = DeploymentIntentResources.Sha256Hex(read.Bytes!);
            if (actual != report.Sha256)
            {
                return DenyArtifact(pass, IntentReasons.ScanReportInvalid, $"spec.artifact.scanReport.sha256: {read.Where} has SHA-256 {actual}, not {report.Sha256}: the report is not the one pinned", tampered: true);
            }

            var parsed = ScanReports.Parse(report.Format, read.Bytes, spec.Artifact.Image, spec.Artifact.Sha256);
            if (parsed.Problem is { } problem) return DenyArtifact(pass, IntentReasons.ScanReportInvalid, $"{problem} ({read.Where})", tampered: false);
            found.AddRange(parsed.Findings);
        }
        else if (options.DeploymentIntent.RequireScanReport)
        {
            return DenyArtifact(pass, IntentReasons.ScanReportMissing,
                "spec.artifact.scanReport: required: findings come from a scanner's report (Trivy or CycloneDX JSON, SHA-256 pinned), not from the author alone (ControlPlane:DeploymentIntent:RequireScanReport)",
                tampered: false);
        }

        if (ArtifactSignatures.Check(spec.Artifact.Sha256, spec.Artifact.Signature, options.DeploymentIntent.TrustedSigningKeys) is { } unsigned) found.Add(unsigned);
        status.Findings = Findings.Union(found).Select(f => new IntentFinding { Type = f.Type.ToString(), Id = f.Id, Severity = f.Severity, Source = f.Source }).ToList();
        status.FindingsGeneration = intent.Metadata.Generation;
        return true;
    }

    /// <summary>Denied before any ring: the phase, the conditions, and, for a pinned hash that does not match (tampering), a security audit event.</summary>
    bool DenyArtifact(IntentPass pass, string reason, string message, bool tampered)
    {
        pass.Status.Decision = "Deny";
        pass.Move(IntentPhase.Denied, reason, message, new JsonObject { ["decision"] = "Deny" });
        pass.Conditions.Set(IntentConditions.Ready, false, reason, message).Set(IntentConditions.Progressing, false, IntentReasons.Denied, message);
        if (tampered)
        {
            pass.Audits.Add(new AuditEntry(ApprovalPolicy.AuthorsOf(pass.Intent).LastOrDefault() ?? "unknown", "deploymentintent.hashMismatch", DeploymentIntent.KubeKind,
                $"{pass.Intent.Metadata.NamespaceProperty}/{pass.Intent.Metadata.Name}", pass.Tenant,
                new JsonObject { ["reason"] = reason, ["generation"] = pass.Intent.Metadata.Generation, ["message"] = message }, Severity: "security"));
        }

        return false;
    }

    /// <summary>
    /// The evidence gate before any ring starts: null once the pack is checked and stored (status.evidence
    /// says so: a resync reads and writes nothing). Otherwise it reads the pack, checks its SHA-256 (a
    /// mismatch denies), copies it write-once to the region's evidence storage under its
    /// content-addressed key, records an evidence_stored event and status.evidence, and sets
    /// EvidenceStored. A missing pack or unavailable storage holds every ring (never skipped) and is retried.
    /// </summary>
    async Task<EvidenceHold?> EvidenceAsync(IntentPass pass, Workspace ws, Tenant tenant, CancellationToken ct)
    {
        var intent = pass.Intent;
        var status = pass.Status;
        var pack = intent.Spec.EvidencePackRef;
        if (pack is not null && status.Evidence is { } stored && stored.Sha256 == pack.Sha256) return null;

        var started = (status.Rings ?? []).Any(r => r.Phase != IntentRingPhase.Pending);
        EvidenceHold Hold(string reason, string message, bool deny = false)
        {
            pass.Conditions.Set(IntentConditions.EvidenceStored, false, reason, message);
            return new EvidenceHold(reason, message, deny && !started);
        }

        if (pack is null)
        {
            return Hold(IntentReasons.EvidenceMissing, "spec.evidencePackRef: required: every intent carries an evidence pack (a ConfigMap or URL with its sha256), checked and kept before the first ring starts", deny: true);
        }

        var read = await ReadReferencedAsync("spec.evidencePackRef", pack.ConfigMap, pack.Key, pack.Url, intent.Metadata.NamespaceProperty, ct).ConfigureAwait(false);
        if (read.Missing is { } missing) return Hold(IntentReasons.EvidenceMissing, missing);
        if (read.Refused is { } refused) return Hold(IntentReasons.EvidenceInvalid, refused, deny: true);
        var sha = DeploymentIntentResources.Sha256Hex(read.Bytes!);
        if (sha != pack.Sha256)
        {
            var message = $"spec.evidencePackRef.sha256: {read.Where} has SHA-256 {sha}, not {pack.Sha256}: the evidence pack is not the one pinned";
            if (!started)
            {
                pass.Audits.Add(new AuditEntry(ApprovalPolicy.AuthorsOf(intent).LastOrDefault() ?? "unknown", "deploymentintent.hashMismatch", DeploymentIntent.KubeKind,
                    $"{intent.Metadata.NamespaceProperty}/{intent.Metadata.Name}", pass.Tenant,
                    new JsonObject { ["reason"] = IntentReasons.EvidenceInvalid, ["generation"] = intent.Metadata.Generation, ["message"] = message }, Severity: "security"));
            }

            return Hold(IntentReasons.EvidenceInvalid, message, deny: true);
        }

        var region = Placement.Region(options, Placement.WorkspaceRegion(ws, tenant));
        if (EvidenceStorage.Of(region) is not { } platform) return Hold(IntentReasons.EvidenceStorageUnavailable, EvidenceStorage.None(region) + ": publication and promotion wait");
        var secret = await api.TryGetAsync<V1Secret>(ResourceType.Secrets, options.OperatorNamespace, platform.CredentialsSecret, ct).ConfigureAwait(false);
        string? Field(string key) => secret?.Data?.TryGetValue(key, out var v) == true && v.Length > 0 ? System.Text.Encoding.UTF8.GetString(v) : null;
        if (Field("accessKeyId") is not { } accessKey || Field("secretAccessKey") is not { } secretKey)
        {
            return Hold(IntentReasons.EvidenceStorageUnavailable,
                $"{EvidenceStorage.Setting(region)}:CredentialsSecret: Secret {options.OperatorNamespace}/{platform.CredentialsSecret} is missing or has no accessKeyId/secretAccessKey: publication and promotion wait");
        }

        var target = new S3Target(platform.Endpoint, platform.Bucket, platform.Prefix, accessKey, secretKey, platform.SigningRegion);
        var key = EvidenceStorage.Key(target.KeyPrefix, pass.Tenant, sha);
        bool copied;
        try
        {
            using var store = new ObjectStore(target);
            // Write once: read first (s3rver ignores If-None-Match), then a conditional PUT, then read again if it lost a race.
            var decision = EvidenceStorage.Decide(await store.Sha256OrNullAsync(key, ct).ConfigureAwait(false), sha);
            copied = decision == EvidenceWrite.Put && await store.PutIfAbsentAsync(key, read.Bytes!, ct).ConfigureAwait(false);
            if (decision == EvidenceWrite.Put && !copied) decision = EvidenceStorage.Decide(await store.Sha256OrNullAsync(key, ct).ConfigureAwait(false), sha);
            if (decision == EvidenceWrite.Conflict)
            {
                // Once per change of the condition, not on every retry.
                if (pass.Intent.Status?.Conditions?.FirstOrDefault(c => c.Type == IntentConditions.EvidenceStored)?.Message?.Contains("never overwritten", StringComparison.Ordinal) != true)
                {
                    logger.LogWarning("Evidence storage {Storage} holds other bytes under {Key}: not overwritten", target, key);
                }

                return Hold(IntentReasons.EvidenceStorageUnavailable, $"{target}: {key} holds other bytes than SHA-256 {sha}: a key is written once and never overwritten; an administrator must look at the storage");
            }
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException or TimeoutException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            var why = e is AmazonServiceException s ? $"{s.ErrorCode ?? s.StatusCode.ToString()}: {s.Message}" : e.Message;
            return Hold(IntentReasons.EvidenceStorageUnavailable, $"evidence storage {target} unavailable ({why}): publication and promotion wait and are retried");
        }

        status.Evidence = new StoredEvidence { Key = key, Sha256 = sha, Storage = target.ToString(), StoredAt = pass.Now };
        var what = $"evidence pack {read.Where} (SHA-256 {sha}) {(copied ? "stored" : "already stored")} at {target.Endpoint.TrimEnd('/')}/{target.Bucket}/{key}";
        pass.Record("evidence_stored", null, IntentReasons.EvidenceStored, what,
            new JsonObject { ["key"] = key, ["sha256"] = sha, ["storage"] = target.ToString(), ["copied"] = copied }, "evidence/stored");
        pass.Conditions.Set(IntentConditions.EvidenceStored, true, IntentReasons.EvidenceStored, $"evidence pack SHA-256 {sha} checked and kept at {key}");
        return null;
    }

    /// <summary>
    /// The bytes a reference names: a ConfigMap key in the intent's namespace (never another's) or a URL
    /// under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes (checked again here, whatever admission let through).
    /// </summary>
    async Task<ReferencedBytes> ReadReferencedAsync(string field, string? configMap, string key, string? url, string ns, CancellationToken ct)
    {
        if ((configMap is null) == (url is null)) return new(null, field, Refused: $"{field}: name exactly one of configMap and url");
        if (configMap is not null)
        {
            var where = $"ConfigMap {ns}/{configMap}";
            var cm = await api.TryGetAsync<V1ConfigMap>(WorkspaceReconciler.ConfigMaps, ns, configMap, ct).ConfigureAwait(false);
            if (cm is null) return new(null, where, Missing: $"{field}.configMap: {where} does not exist");
            if (cm.Data?.TryGetValue(key, out var text) != true) return new(null, where, Missing: $"{field}.key: {where} has no key {key}");
            return new(System.Text.Encoding.UTF8.GetBytes(text!), where);
        }

        var allowed = options.DeploymentIntent.EvidenceUrlPrefixes;
        if (!Configuration.UrlPrefixes.Allows(url!, allowed))
        {
            return new(null, url!, Refused: $"{field}.url: {url} is not under ControlPlane:DeploymentIntent:EvidenceUrlPrefixes ({(allowed.Count == 0 ? "none configured" : string.Join(", ", allowed))})");
        }

        var bytes = await planes.FetchEvidenceAsync(url!, ct).ConfigureAwait(false);
        return bytes is null ? new(null, url!, Missing: $"{field}.url: {url} could not be read") : new(bytes, url!);
    }
}
