-- Backup: phase Pending (Waiting, Queued), Running, Completed (stored and verified), Failed.
local phase = status.phase
if phase == "Completed" and ready.status == "True" then return verdict("Healthy", ready.message) end
if phase == "Failed" then return verdict("Degraded", describe(ready)) end
if phase == "Running" or phase == "Pending" then return verdict("Progressing", describe(ready)) end
return judgeReason(ready, nil, nil)
