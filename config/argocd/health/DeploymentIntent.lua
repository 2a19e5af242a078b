-- DeploymentIntent: phase Pending, RiskAssessed, ScopeValidated, AwaitingApproval, InProgress, Completed, Failed,
-- RolledBack, Denied. Ready is True only for a completed change in sync with its plane.
local phase = status.phase
if ready.status == "True" then return verdict("Healthy", ready.message) end
if phase == "Denied" or phase == "Failed" or phase == "RolledBack" then return verdict("Degraded", describe(ready)) end
if phase == "AwaitingApproval" then
  -- CAB approval (or its evidence pack) is a person's act: held until given; the Approved condition says what is missing.
  local approved = condition("Approved")
  return verdict("Suspended", describe(approved ~= nil and approved.status ~= "True" and approved or ready))
end
if phase == "Completed" then
  -- Drift found and redeployed (driftRemediation auto) is on its way back, as is a drift check whose plane is
  -- briefly away; drift only reported is Degraded.
  return judgeReason(ready, { DriftRemediated = true, PlaneUnavailable = true }, nil)
end
-- Pending .. InProgress: a ring in progress, soaking, waiting for its window, another change of the same
-- application, a plane or evidence storage that is briefly away, or a scan report ConfigMap not applied yet goes on by
-- itself; a later ring waiting for approval, or an evidence pack not there, is held.
return judgeReason(ready,
  { Pending = true, RingInProgress = true, RingStarting = true, RingCompleted = true, MinimumSoak = true, ScheduleWindow = true,
    ConflictingChange = true, PlaneUnavailable = true, RiskAssessed = true, ScopeValidated = true, ApplicationNotFound = true,
    EvidenceStorageUnavailable = true, ScanReportMissing = true },
  { AwaitingApproval = true, EvidenceMissing = true, TenantSuspended = true, ApplicationNotApproved = true })
