-- Restore: phase Pending (WaitingForBackup, Waiting, Queued), AwaitingApproval, Running, Completed, Failed.
local phase = status.phase
if phase == "Completed" and ready.status == "True" then return verdict("Healthy", ready.message) end
-- A completed restore whose smoke check failed, a rejection, a refusal (PlanNotFound, OutsideRecoverabilityWindow, ...).
if phase == "Completed" or phase == "Failed" then return verdict("Degraded", describe(ready)) end
-- Approvals (two in prod; one for in place elsewhere) are a person's act: held until given.
if phase == "AwaitingApproval" then return verdict("Suspended", describe(ready)) end
if phase == "Running" or phase == "Pending" then return verdict("Progressing", describe(ready)) end
return judgeReason(ready, nil, nil)
