-- AccessRequest: phase Pending (awaiting approval), Active (granted until status.expiresAt), Expired, Revoked, Rejected.
local phase = status.phase
if phase == "Active" and ready.status == "True" then return verdict("Healthy", ready.message) end
-- Ended (expired, revoked) or refused: final and Stalled, like an expired Exception; a new request is needed.
if phase == "Expired" or phase == "Revoked" or phase == "Rejected" then return verdict("Degraded", describe(ready)) end
-- An approval is a person's act: held until given.
if phase == "Pending" then return judgeReason(ready, nil, { AwaitingApproval = true }) end
return judgeReason(ready, nil, nil)
